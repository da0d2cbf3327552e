"""Campaigns: validated in the cloud, delivered through the twin, run exactly by the agent."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import can
import pytest

from carcloud.errors import ValidationError
from carcloud_agent.campaigns import compile_condition, parse_campaign
from carcloud_agent.collector import Collector
from carcloud_agent.config import AgentConfig
from carcloud_agent.runtime import Agent
from carcloud_agent.sources.can import CanSource
from tests.agent.test_can import database, mapping, send
from tests.platform import Platform

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


def test_conditions_read_signals_and_never_run_python() -> None:
    holds, used = compile_condition(f"{SPEED} > 130 and not Vehicle.IsMoving == False")
    assert used == {SPEED, "Vehicle.IsMoving"}
    assert holds({SPEED: 140.0, "Vehicle.IsMoving": True})
    assert not holds({SPEED: 120.0, "Vehicle.IsMoving": True})
    assert not holds({"Vehicle.IsMoving": True})  # a missing signal: the condition does not hold
    for bad in ("__import__('os').system('x')", "Vehicle.Nope > 1", "x > 1", "Vehicle.Speed >"):
        with pytest.raises(ValidationError):
            compile_condition(bad)


def collector(**campaigns: dict[str, Any]) -> Collector:
    engine = Collector()
    assert engine.update(campaigns) == {}
    return engine


def run(
    engine: Collector, speeds: list[float], step_ms: int = 1000
) -> list[tuple[int, dict[str, object]]]:
    sent = []
    for index, speed in enumerate(speeds):
        for at, values in engine.process(f"t{index}", index * step_ms, {SPEED: speed, SOC: 50.0}):
            sent.append((int(at[1:]), values))  # the vehicle time of each sent sample
    return sent


def test_condition_campaign_sends_only_when_it_becomes_true() -> None:
    engine = collector(overspeed={"signals": [SPEED], "trigger": "condition",
                                  "condition": f"{SPEED} > 130"})  # fmt: skip
    sent = run(engine, [100, 140, 150, 100, 160, 120])
    assert sent == [(1, {SPEED: 140}), (4, {SPEED: 160})]


def test_always_mode_min_interval_and_pre_post_windows() -> None:
    engine = collector(fast={
        "signals": [SPEED], "trigger": "condition", "condition": f"{SPEED} > 130",
        "mode": "always", "min_interval_ms": 2000, "pre_trigger_ms": 2000, "post_trigger_ms": 1000,
    })  # fmt: skip
    sent = run(engine, [100, 110, 140, 145, 150, 100, 100])
    assert [index for index, _ in sent] == [0, 1, 2, 3, 4, 5]
    # 0-1: the pre-trigger window of the trigger at 2; 3: post window; 4: fires again 2 s later;
    # 5: its post window; 6: nothing.


def test_time_campaign_sends_its_signals_at_its_period() -> None:
    engine = collector(soc={"signals": [SOC], "trigger": "time", "period_ms": 3000})
    sent = run(engine, [10] * 7)
    assert sent == [(0, {SOC: 50.0}), (3, {SOC: 50.0}), (6, {SOC: 50.0})]


def test_without_campaigns_everything_is_sent_and_bad_ones_are_reported() -> None:
    engine = Collector()
    assert engine.process("t", 0, {SPEED: 1.0}) == [("t", {SPEED: 1.0})]
    errors = engine.update({"broken": {"signals": ["Vehicle.Nope"]}, "fine": {"signals": [SPEED]}})
    assert "unknown signal" in errors["broken"] and set(engine.campaigns) == {"fine"}
    with pytest.raises(ValidationError, match="needs a condition"):
        parse_campaign("x", {"signals": [SPEED], "trigger": "condition"})


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        (" + ".join([SPEED] * 3000) + " > 0", "characters long; the limit is 1000"),
        ('"x" * 4000000000 == "y"', "works on numbers only, not on a string"),
    ],
    ids=["3000-term-sum", "string-times-4e9"],
)
def test_the_api_answers_an_abusive_condition_with_422_and_the_reason(
    platform: Platform, condition: str, reason: str
) -> None:
    with platform.api() as api, pytest.raises(ValidationError, match=reason):
        api.post("/campaigns", {
            "name": "abuse", "target": {"brand": "nobody"}, "signals": [SPEED],
            "trigger": "condition", "condition": condition,
        })  # fmt: skip


@pytest.mark.slow
def test_a_condition_campaign_reaches_the_agent_and_only_matching_data_arrives(
    platform: Platform, tmp_path: Path
) -> None:
    creds = platform.register(brand="campaignco")
    with platform.api() as api:
        created = api.post("/campaigns", {
            "name": "overspeed", "target": {"brand": "campaignco"}, "signals": [SPEED],
            "trigger": "condition", "condition": f"{SPEED} > 130",
        })  # fmt: skip
        assert created["status"]["targeted"] == 1
    channel = f"carcloud-{uuid.uuid4().hex[:8]}"
    ecu = can.Bus(interface="virtual", channel=channel)
    source = CanSource(
        creds.vin, database(), mapping(), can.Bus(interface="virtual", channel=channel)
    )
    config = AgentConfig(
        vin=creds.vin, secret=creds.password, port=platform.mqtt_port,
        buffer_path=tmp_path / "outbox.db", reconnect_min_s=0.2, reconnect_max_s=1.0,
        source={"kind": "can", "interval_s": 0.05},
    )  # fmt: skip
    agent = Agent(config, source)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        for _ in range(200):
            if agent.collector.campaigns:
                break
            await asyncio.sleep(0.05)
        assert set(agent.collector.campaigns) == {"overspeed"}
        for speed in (100.0, 140.0, 150.0, 100.0, 160.0, 120.0):
            send(ecu, "Drive", VehicleSpeed=speed, Odometer=1000.0)
            await asyncio.sleep(0.25)
        agent.report_health()
        await asyncio.sleep(1.0)
        stop.set()
        await task

    try:
        asyncio.run(scenario())
    finally:
        ecu.shutdown()
    with platform.api() as api:
        points = platform.wait_for(
            lambda: (
                (p := api.get(f"/vehicles/{creds.vin}/signals", path=SPEED)["points"])
                and len(p) >= 2
                and p
            ),
            what="the campaign's samples",
        )
        assert [p["value"] for p in points] == [140.0, 160.0]
        state = api.get(f"/vehicles/{creds.vin}/state")["signals"]
        assert "Vehicle.TraveledDistance" not in state  # not asked for by any campaign
        status = platform.wait_for(
            lambda: (c := api.get("/campaigns/overspeed"))["status"]["running"] == 1 and c,
            what="the agent reporting the campaign",
        )
        assert status["status"] == {"targeted": 1, "running": 1, "failed": 0}
        twin = api.get(f"/vehicles/{creds.vin}/twin")
        assert twin["reported"]["properties"]["agent"]["active_campaigns"] == ["overspeed"]
        paused = api.post("/campaigns/overspeed/pause")
        assert paused["active"] is False


def test_campaigns_cli(platform: Platform) -> None:
    import json
    import os
    import subprocess
    import sys

    def carcloud(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "carcloud.cli", "campaigns", *args,
             "--data-dir", str(platform.data_dir)],
            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "250"},
        )  # fmt: skip

    platform.register(brand="clibrand2")
    made = carcloud("create", "lowbattery", "--signals", f"{SOC},{SPEED}",
                    "--when", f"{SOC} < 10", "--brand", "clibrand2", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["status"]["targeted"] == 1
    listed = carcloud("list")
    assert "lowbattery" in listed.stdout and f"when {SOC} < 10" in listed.stdout
    assert json.loads(carcloud("pause", "lowbattery", "--json").stdout)["active"] is False
    bad = carcloud("create", "broken", "--signals", "Vehicle.Nope")
    assert bad.returncode == 2 and "unknown signal" in bad.stderr
    assert carcloud("delete", "lowbattery").returncode == 0
    assert "lowbattery" not in carcloud("list").stdout
