"""`carcloud simulate` and `carcloud agent`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from typing import Any

from rich.live import Live
from rich.progress import Progress
from rich.text import Text

from carcloud.cli.common import (
    console,
    err_console,
    run_async,
)
from carcloud.config import (
    default_data_dir,
)
from carcloud.errors import ConfigError
from carcloud.runtime.datadir import DataDir


def _mqtt_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--mqtt {text!r} is not HOST:PORT")
    return host, int(port)


def cmd_simulate(args: argparse.Namespace) -> int:
    from carcloud.sim.session import (
        SimulationOptions,
        cars_for,
        prepare,
        run_shard,
    )

    data_dir = DataDir((args.data_dir or default_data_dir()).absolute())
    runtime = {} if (args.api and args.mqtt) else data_dir.read_runtime()
    api_url = args.api or str(runtime["http_url"])
    mqtt_host, mqtt_port = _mqtt_address(args.mqtt or str(runtime["mqtt_url"]).split("://")[1])
    key = args.key or os.environ.get("CARCLOUD_API_KEY") or data_dir.operator_key()
    if not key:
        raise ConfigError("no API key: pass --key, set CARCLOUD_API_KEY, or use --data-dir")
    shard, _, shards = (args.shard or "0/1").partition("/")
    options = SimulationOptions(
        api_url=api_url,
        api_key=key,
        mqtt_host=mqtt_host,
        mqtt_port=mqtt_port,
        vehicles=args.vehicles,
        brands=args.brands.split(",") if args.brands else None,
        rate=args.rate,
        duration_s=args.duration,
        seed=args.seed,
        speedup=args.speedup,
        gaps_per_hour=args.offline_rate,
        start_epoch_s=args.start if args.start is not None else float(int(time.time())),
        warmup_s=args.warm_up,
        credentials_file=args.credentials or data_dir.path / "sim-credentials.json",
        processes=args.processes,
        shard=int(shard),
        shards=int(shards or 1),
        ground_truth=args.ground_truth,
    )
    if args.status_json:  # a child of --processes: credentials were prepared by the parent
        from carcloud.sim.enrolment import load_credentials
        from carcloud.sim.session import fleet_for

        vehicles, credentials = fleet_for(options), load_credentials(options.credentials_file)
    else:
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("registering vehicles", total=options.vehicles)
            vehicles, credentials = prepare(options, lambda n: progress.advance(task, n))
    if options.processes > 1 and not args.status_json:
        return _run_processes(options)

    def report(stats: Any) -> None:
        if args.status_json:
            print(json.dumps(stats.as_dict()), flush=True)
        else:
            live.update(Text(stats.line()))

    async def go() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        cars = cars_for(vehicles, credentials, options.seed, options.shard, options.shards)
        return await run_shard(options, cars, stop, report)

    with Live(Text("connecting…"), console=err_console, transient=args.status_json) as live:
        stats = run_async(go())
    if not args.status_json:
        console.print(stats.line())
    return 0


def _run_processes(options: Any) -> int:
    from carcloud.sim.session import read_shard_stats, spawn_shards

    options.shards = options.processes
    children = spawn_shards(options)
    latest: dict[int, dict[str, int]] = {}

    def follow(index: int, child: Any) -> None:
        for line in child.stdout:
            parsed = read_shard_stats(line)
            if parsed is not None:
                latest[index] = parsed

    import threading

    readers = [
        threading.Thread(target=follow, args=(i, c), daemon=True) for i, c in enumerate(children)
    ]
    for reader in readers:
        reader.start()
    try:
        with Live(Text("starting processes…"), console=err_console) as live:
            while any(child.poll() is None for child in children):
                total = {
                    key: sum(s.get(key, 0) for s in latest.values())
                    for key in (
                        "vehicles",
                        "connected",
                        "offline",
                        "sent",
                        "acked",
                        "late",
                        "ticks",
                        "errors",
                        "buffered",
                    )
                }
                late = 100.0 * total["late"] / total["ticks"] if total["ticks"] else 0.0
                live.update(
                    Text(
                        f"processes {len(children)}  vehicles {total['vehicles']}  "
                        f"connected {total['connected']}  "
                        f"sent {total['sent']}  acks pending {total['sent'] - total['acked']}  "
                        f"late {late:.2f}%  errors {total['errors']}"
                    )
                )
                time.sleep(0.5)
    except KeyboardInterrupt:
        for child in children:
            child.send_signal(signal.SIGINT)
    for child in children:
        child.wait()
    return max((child.returncode or 0) for child in children)


def cmd_agent(args: argparse.Namespace) -> int:
    """`carcloud agent`: the same as the `carcloud-agent` command of the agent's distribution."""
    from carcloud_agent.cli import run_agent

    return run_agent(args.config, args.example)
