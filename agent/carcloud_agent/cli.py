"""`carcloud-agent`: run the edge agent of one car (the server's `carcloud agent` runs it too)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from carcloud_agent import __version__
from carcloud_agent.config import EXAMPLE, AgentConfig, load_config
from carcloud_agent.errors import ConfigError


def parser() -> argparse.ArgumentParser:
    """The agent's command line."""
    cli = argparse.ArgumentParser(
        prog="carcloud-agent",
        description="The in-car agent: samples its signal source, keeps everything in a "
        "durable outbox, sends it to carcloud over MQTT and runs commands and desired "
        "properties. `carcloud-agent --example` prints a configuration to start from.",
    )
    cli.add_argument("--config", type=Path, help="the agent's TOML configuration file")
    cli.add_argument("--example", action="store_true", help="print an example configuration")
    cli.add_argument("--version", action="version", version=f"carcloud-agent {__version__}")
    return cli


async def run(config: AgentConfig) -> None:
    """Run the agent until SIGINT or SIGTERM."""
    from carcloud_agent.runtime import Agent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    agent = Agent(config)
    print(f"carcloud agent for {config.vin} → {config.host}:{config.port} (Ctrl-C stops)")
    await agent.run(stop)


def run_agent(config_path: Path | None, example: bool = False) -> int:
    """Print the example, or load the configuration and run; ConfigError says what is wrong."""
    if example:
        print(EXAMPLE, end="")
        return 0
    if config_path is None:
        raise ConfigError("the agent needs --config FILE (see --example)")
    config = load_config(config_path)
    asyncio.run(run(config))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `carcloud-agent` console script."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return run_agent(args.config, args.example)
    except ConfigError as exc:
        print(f"carcloud-agent: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
