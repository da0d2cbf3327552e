"""The agent against a real platform: offline for a while, killed, restarted — nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from carcloud.timeutil import parse_rfc3339_us
from carcloud_agent.collector import Output
from carcloud_agent.config import load_config
from carcloud_agent.supervise import Supervisor
from tests.conftest import start_platform
from tests.platform import Platform

ODOMETER = "Vehicle.TraveledDistance"


def write_config(
    path: Path, vin: str, secret: str, port: int, speedup: float = 60.0, interval_s: float = 0.1
) -> Path:
    path.write_text(
        f'vin = "{vin}"\nsecret = "{secret}"\n'
        f"[cloud]\nport = {port}\nreceipt_timeout_s = 5.0\n"
        "[reconnect]\nmin_s = 0.2\nmax_s = 1.0\n"
        '[source]\nkind = "simulator"\nbrand = "volta"\n'
        f"interval_s = {interval_s}\nspeedup = {speedup}\n"
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
def test_every_sample_arrives_once_across_three_kill_9_of_the_platform(tmp_path: Path) -> None:
    """The platform dies (kill -9, nats-server too) three times while the agent sends.

    Samples acknowledged (PUBACK) but lost in a crash stay in the agent's outbox
    until a commit receipt names them, and go again after the reconnect.
    """
    from tests.ingest.test_receipts import kill_hard

    platform = start_platform(tmp_path / "data")
    creds = platform.register()
    # 50 samples a second, each a simulated minute: messages are always on the way.
    config = write_config(
        tmp_path / "agent.toml",
        creds.vin,
        creds.password,
        platform.mqtt_port,
        speedup=3000.0,
        interval_s=0.02,
    )
    agent = start_agent(config)
    try:
        for crash in range(3):
            seen = len(history(platform, creds.vin))
            platform.wait_for(
                lambda: len(history(platform, creds.vin)) > seen + 100,  # noqa: B023 - read at once
                timeout=60,
                what=f"data before crash {crash + 1}",
            )
            kill_hard(platform)
            platform.start(timeout=60)

        def gapless() -> list[dict[str, object]]:
            points = history(platform, creds.vin)
            times = [parse_rfc3339_us(str(p["ts"])) for p in points]
            steps = {b - a for a, b in zip(times, times[1:], strict=False)}
            return points if len(points) >= 400 and steps == {60_000_000} else []

        # Every sample once, a simulated minute apart: no gap where a crash was.
        with contextlib.suppress(AssertionError):
            platform.wait_for(gapless, timeout=60, what="every sample, with no gap")
        points = history(platform, creds.vin)
        times = [parse_rfc3339_us(str(p["ts"])) for p in points]
        gaps = [(a, b) for a, b in zip(times, times[1:], strict=False) if b - a != 60_000_000]
        assert not gaps, f"{len(gaps)} gaps or repeats in {len(points)} samples: {gaps[:3]}"
        assert len(points) >= 400
        agent.send_signal(signal.SIGINT)
        assert agent.wait(20) == 0
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
    from carcloud_agent.config import AgentConfig
    from carcloud_agent.runtime import Agent

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
        assert twin["reported"]["desired_version"] == twin["desired"]["version"]
        limit = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
        state = platform.wait_for(
            lambda: api.get(f"/vehicles/{creds.vin}/state")["signals"].get(limit),
            what="the car's charge limit signal",
        )
        assert state["value"] == 70


# ---- supervised loops ----------------------------------------------------------------------


async def test_a_failing_loop_is_logged_once_with_its_traceback_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = Supervisor(logging.getLogger("test.supervise"), min_delay_s=0.01)
    failures: list[Exception] = [MemoryError("first"), ValueError("second"), ValueError("third")]
    runs = 0

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if failures:
            raise failures.pop(0)

    with caplog.at_level(logging.INFO, logger="test.supervise"):
        await asyncio.wait_for(supervisor.run("sample", loop), 5)
    assert runs == 4  # three failures, then a run that returned: done, not restarted
    assert supervisor.failures == 3
    assert supervisor.last_error == "sample: ValueError: third"
    records = [r for r in caplog.records if r.name == "test.supervise"]
    assert [r.levelno for r in records] == [logging.ERROR, logging.WARNING, logging.WARNING]
    assert records[0].exc_info is not None and records[0].exc_info[0] is MemoryError
    assert all(r.exc_info is None for r in records[1:])  # one traceback per run of failures
    assert "failed again (3 in a row)" in records[2].getMessage()


def test_restart_delays_double_up_to_a_ceiling() -> None:
    supervisor = Supervisor(min_delay_s=0.1, max_delay_s=5.0)
    delays = [supervisor.delay_s(streak) for streak in range(1, 10)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert supervisor.delay_s(10_000) == 5.0


async def test_a_loop_that_was_healthy_for_a_while_starts_its_backoff_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = Supervisor(
        logging.getLogger("test.supervise"), min_delay_s=0.01, healthy_after_s=0.2
    )
    runs = 0

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            await asyncio.sleep(0.3)  # healthy for longer than healthy_after_s
        if runs <= 3:
            raise RuntimeError(f"failure {runs}")

    with caplog.at_level(logging.INFO, logger="test.supervise"):
        await asyncio.wait_for(supervisor.run("health", loop), 5)
    levels = [r.levelno for r in caplog.records if r.name == "test.supervise"]
    assert levels == [logging.ERROR, logging.WARNING, logging.ERROR]  # a new run of failures


async def test_cancelling_a_supervised_loop_goes_through_and_is_no_failure() -> None:
    supervisor = Supervisor(logging.getLogger("test.supervise"), min_delay_s=60.0)
    started = asyncio.Event()

    async def waits() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(supervisor.run("drain", waits))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert supervisor.failures == 0

    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(supervisor.run("drain", fails))
    for _ in range(100):
        if supervisor.failures:
            break
        await asyncio.sleep(0.01)
    task.cancel()  # while it waits a minute to restart
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)
    assert supervisor.failures == 1


async def test_sampling_goes_on_after_the_collector_raises_memory_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from carcloud.runtime.launcher import free_port
    from carcloud_agent.config import AgentConfig
    from carcloud_agent.runtime import Agent

    # Nothing listens on the port: the car is offline and keeps its samples in the outbox.
    config = AgentConfig(
        vin="WVWZZZ1JZXW000001", secret="x", port=free_port(),
        buffer_path=tmp_path / "outbox.db", reconnect_min_s=0.05, reconnect_max_s=0.2,
        source={"kind": "simulator", "interval_s": 0.01},
    )  # fmt: skip
    agent = Agent(config)
    process = agent.collector.process
    calls = 0

    def fails_once(ts: str, t_ms: int, values: Mapping[str, object]) -> list[Output]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise MemoryError("no room for the history")
        return process(ts, t_ms, values)

    monkeypatch.setattr(agent.collector, "process", fails_once)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        for _ in range(500):
            if agent.outbox.stats().depth >= 10:
                break
            await asyncio.sleep(0.01)
        kept = agent.outbox.stats().depth
        health = agent.health()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert calls > 3 and kept >= 10, f"sampling stopped: {calls} samples, {kept} kept"
    assert health["loop_failures"] == 1
    assert health["last_loop_error"] == "sample: MemoryError: no room for the history"
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failed) == 1 and "the sample loop failed" in failed[0].getMessage()
    assert failed[0].exc_info is not None and failed[0].exc_info[0] is MemoryError
