"""The agent's footprint on a car: resident memory while it runs against a real platform.

Starts `carcloud up` (this checkout, on free ports), registers one car per agent
command given, and runs each agent with the same CAN configuration (the example
DBC and mapping, replaying the recorded drive `ev_drive.log` in a loop onto a
virtual bus) for `--seconds`. Every second it reads the agent process's resident
set size (`ps -o rss=`), and at the end checks through the API that the car's
signals arrived. The agents run one after the other, in the same session, so the
lean install and the server install are compared on the same machine and load:

    python bench/agent_footprint.py --seconds 30 \
        --agent lean=/tmp/agentvenv/bin/carcloud-agent \
        --agent server=".venv/bin/carcloud agent"
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path

from carcloud.runtime.launcher import PlatformProcess

EXAMPLES = resources.files("carcloud_agent") / "examples"


def rss_kib(pid: int) -> int:
    """The resident set size of a process in KiB (0 once it is gone)."""
    done = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True)
    return int(done.stdout.strip() or 0)


def write_config(directory: Path, vin: str, secret: str, mqtt_port: int) -> Path:
    """An agent configuration with the example CAN source, replaying a drive in a loop."""
    for name in ("ev.dbc", "ev_mapping.json", "ev_drive.log"):
        shutil.copy(str(EXAMPLES / name), directory / name)
    config = directory / "agent.toml"
    config.write_text(
        f'vin = "{vin}"\nsecret = "{secret}"\n'
        f'[cloud]\nhost = "127.0.0.1"\nport = {mqtt_port}\n'
        '[buffer]\npath = "outbox.db"\n'
        '[source]\nkind = "can"\ndbc = "ev.dbc"\nmapping = "ev_mapping.json"\n'
        'replay = "ev_drive.log"\nloop = true\ninterval_s = 1.0\n',
        encoding="utf-8",
    )
    return config


def run_agent(
    platform: PlatformProcess, label: str, command: str, vin: str, seconds: float
) -> dict[str, object]:
    """Run one agent for `seconds`; its RSS samples and what the cloud holds afterwards."""
    with platform.api() as api:
        created = api.post(
            "/vehicles", {"vin": vin, "brand": "footprint", "model": "F1", "model_year": 2026}
        )
    workdir = Path(tempfile.mkdtemp(prefix=f"agent-{label}-"))
    config = write_config(workdir, vin, created["mqtt_password"], platform.mqtt_port)
    log = (workdir / "agent.log").open("w")
    child = subprocess.Popen(
        [*shlex.split(command), "--config", str(config)], stdout=log, stderr=log
    )
    samples: list[int] = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end and child.poll() is None:
            time.sleep(1.0)
            samples.append(rss_kib(child.pid))
    finally:
        child.terminate()
        child.wait(10)
        log.close()
    with platform.api() as api:
        state = api.get(f"/vehicles/{vin}/state")
    return {
        "label": label,
        "command": command,
        "rss_kib_median": int(statistics.median(samples)) if samples else 0,
        "rss_kib_max": max(samples, default=0),
        "samples": len(samples),
        "signals_in_cloud": len(state.get("signals") or {}),
        "exit": child.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--agent", action="append", required=True, help="LABEL=COMMAND")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="carcloud-footprint-"))
    platform = PlatformProcess(data_dir)
    platform.start()
    try:
        platform.ensure_brand("footprint")
        for index, spec in enumerate(args.agent):
            label, _, command = spec.partition("=")
            vin = f"FTPRNT00000{index:06d}"
            result = run_agent(platform, label, command, vin, args.seconds)
            print(
                f"{result['label']:8s} RSS median {result['rss_kib_median'] / 1024:6.1f} MiB, "
                f"max {result['rss_kib_max'] / 1024:6.1f} MiB over {result['samples']} s; "
                f"signals in the cloud: {result['signals_in_cloud']}  ({result['command']})"
            )
    finally:
        platform.stop()


if __name__ == "__main__":
    main()
