"""The agent against a real platform: offline for a while, killed, restarted — nothing lost."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carcloud.agent.config import load_config
from carcloud.timeutil import parse_rfc3339_us
from tests.conftest import start_platform
from tests.platform import Platform

ODOMETER = "Vehicle.TraveledDistance"


def write_config(path: Path, vin: str, secret: str, port: int, speedup: float = 60.0) -> Path:
    path.write_text(
        f'vin = "{vin}"\nsecret = "{secret}"\n'
        f"[cloud]\nport = {port}\n"
        "[reconnect]\nmin_s = 0.2\nmax_s = 1.0\n"
        '[source]\nkind = "simulator"\nbrand = "volta"\n'
        f"interval_s = 0.1\nspeedup = {speedup}\n"
    )
    return path


def start_agent(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "carcloud.cli", "agent", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def history(platform: Platform, vin: str) -> list[dict[str, object]]:
    with platform.api() as api:
        points: list[dict[str, object]] = api.get(
            f"/vehicles/{vin}/signals", path=ODOMETER, limit=100_000
        )["points"]
        return points


def test_config_errors_are_clear(tmp_path: Path) -> None:
    from carcloud.errors import ConfigError

    bad = tmp_path / "agent.toml"
    bad.write_text('vin = "SHORT"\nsecret = "x"\n')
    with pytest.raises(Exception, match="exactly 17"):
        load_config(bad)
    bad.write_text('secret = "x"\n')
    with pytest.raises(ConfigError, match="needs 'vin'"):
        load_config(bad)
    bad.write_text('vin = "WVWZZZ1JZXW000001"\nsecret = "x"\n[source]\nkind = "kuksa-x"\n')
    with pytest.raises(ConfigError, match="not available"):
        load_config(bad)


@pytest.mark.slow
def test_offline_an_hour_then_kill_9_then_everything_arrives_once_in_order(tmp_path: Path) -> None:
    platform = start_platform(tmp_path / "data")
    creds = platform.register()
    config = write_config(
        tmp_path / "agent.toml", creds.vin, creds.password, platform.mqtt_port, speedup=600.0
    )
    agent = start_agent(config)
    try:
        platform.wait_for(
            lambda: len(history(platform, creds.vin)) > 5, timeout=20, what="live data"
        )
        platform.stop()  # the network is gone: the agent keeps sampling into its outbox
        time.sleep(6.5)  # 10 samples a second, each a simulated minute: over an hour
        agent.send_signal(signal.SIGKILL)  # and then the car loses power
        agent.wait()
        platform.start()
        agent = start_agent(config)

        def steps_of(points: list[dict[str, object]]) -> set[int]:
            times = [parse_rfc3339_us(str(p["ts"])) for p in points]
            return {b - a for a, b in zip(times, times[1:], strict=False)}

        def settled() -> list[dict[str, object]]:
            points = history(platform, creds.vin)
            return points if len(points) >= 80 and steps_of(points) == {60_000_000} else []

        # Backlogs travel in batches under fresh seqs (live data goes first), so
        # history is the witness: every sample is there once, a simulated minute
        # apart, with no gap and no repeat.
        with contextlib.suppress(AssertionError):
            platform.wait_for(settled, timeout=30, what="every buffered sample")
        agent.send_signal(signal.SIGINT)
        assert agent.wait(20) == 0
        points = history(platform, creds.vin)
        times = [parse_rfc3339_us(str(p["ts"])) for p in points]
        assert len(points) >= 80, f"only {len(points)} samples arrived"
        steps = steps_of(points)
        assert steps == {60_000_000}, f"a gap or a repeat in the history: {sorted(steps)[:5]}"
        assert times[-1] - times[0] >= 3600 * 1_000_000  # more than an hour of driving
        with platform.api() as api:
            assert api.get("/dead-letters", vin=creds.vin) == []
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        platform.stop()


@pytest.mark.slow
def test_a_desired_change_made_while_the_agent_was_away_is_applied_after_reconnect(
    platform: Platform, tmp_path: Path
) -> None:
    import asyncio

    from carcloud.agent.config import AgentConfig
    from carcloud.agent.runtime import Agent

    creds = platform.register()
    config = AgentConfig(
        vin=creds.vin, secret=creds.password, port=platform.mqtt_port,
        buffer_path=tmp_path / "outbox.db", reconnect_min_s=0.2, reconnect_max_s=1.0,
        source={"kind": "simulator", "interval_s": 0.2},
    )  # fmt: skip

    async def run_agent(seconds: float) -> Agent:
        agent = Agent(config)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        await asyncio.wait_for(agent.connected.wait(), 10)
        await asyncio.sleep(seconds)
        stop.set()
        await task
        return agent

    asyncio.run(run_agent(1.0))  # the car has been online once: its session exists
    with platform.api() as api:
        api.request("PUT", f"/vehicles/{creds.vin}/twin/desired",
                    json={"properties": {"charge_limit_percent": 70}})  # fmt: skip
    asyncio.run(run_agent(2.0))  # back: it re-reads the desired document and applies it
    with platform.api() as api:
        twin = platform.wait_for(
            lambda: (t := api.get(f"/vehicles/{creds.vin}/twin"))["in_sync"] and t,
            what="the desired limit applied",
        )
        assert twin["reported"]["properties"]["charge_limit_percent"] == 70
        assert twin["reported"]["desired_version"] == 1
        limit = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
        state = platform.wait_for(
            lambda: api.get(f"/vehicles/{creds.vin}/state")["signals"].get(limit),
            what="the car's charge limit signal",
        )
        assert state["value"] == 70
