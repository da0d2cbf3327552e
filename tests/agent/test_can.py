"""CAN frames on a virtual bus become VSS values in carcloud; a lock command becomes a frame."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import can
import cantools
import cantools.database
import pytest

from carcloud.errors import ConfigError
from carcloud_agent.config import AgentConfig
from carcloud_agent.runtime import Agent
from carcloud_agent.sources.can import CanSource, compile_math
from tests.platform import Platform

EXAMPLES = resources.files("carcloud_agent") / "examples"


def database() -> cantools.database.can.Database:
    loaded = cantools.database.load_string(
        (EXAMPLES / "ev.dbc").read_text(encoding="utf-8"), database_format="dbc"
    )
    assert isinstance(loaded, cantools.database.can.Database)
    return loaded


def mapping() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / "ev_mapping.json").read_text(encoding="utf-8"))
    return loaded


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def channel() -> str:
    return f"carcloud-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ecu(channel: str) -> Iterator[can.BusABC]:
    """The car's other ECUs: a second node on the same virtual bus."""
    bus = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
    yield bus
    bus.shutdown()


def send(bus: can.BusABC, name: str, **values: Any) -> None:
    db = database()
    message = db.get_message_by_name(name)
    bus.send(can.Message(arbitration_id=message.frame_id, data=message.encode(values),
                         is_extended_id=False))  # fmt: skip


def wait_for_sample(source: CanSource, clock: Clock, step: float = 1.0) -> dict[str, Any]:
    for _ in range(200):
        clock.now += step
        due = source.sample(step)
        if due is not None:
            return due[1]
        time.sleep(0.01)
    raise AssertionError("no signals came off the bus")


def test_frames_become_vss_values_in_vss_units(channel: str, ecu: can.BusABC) -> None:
    clock = Clock()
    source = CanSource("WVWZZZ1JZXW000001", database(), mapping(),
                       can.Bus(interface="virtual", channel=channel), clock)  # fmt: skip
    try:
        send(ecu, "Drive", VehicleSpeed=123.45, Odometer=40321.7)
        send(ecu, "BatteryStatus", StateOfCharge=75.0, PackVoltage=401.2, PackTemperature=25,
             Charging=0)  # fmt: skip
        send(ecu, "Body", DoorsLocked=1, DriverDoorOpen=0, Gear="D")
        time.sleep(0.3)  # the bus delivers on its own thread
        values = wait_for_sample(source, clock, 5.0)
        assert values["Vehicle.Speed"] == pytest.approx(123.45)
        assert values["Vehicle.TraveledDistance"] == pytest.approx(40321.7)
        assert values["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"] == 75.0
        assert values["Vehicle.Powertrain.TractionBattery.CurrentVoltage"] == pytest.approx(401.2)
        assert values["Vehicle.Powertrain.TractionBattery.Temperature.Average"] == 25.0
        assert values["Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"] is True
        assert values["Vehicle.Powertrain.Transmission.CurrentGear"] == 1
        assert values["Vehicle.Powertrain.TractionBattery.Charging.IsCharging"] is False
    finally:
        source.close()


def test_on_change_signals_are_sent_only_when_they_change(channel: str, ecu: can.BusABC) -> None:
    clock = Clock()
    source = CanSource("WVWZZZ1JZXW000001", database(), mapping(),
                       can.Bus(interface="virtual", channel=channel), clock)  # fmt: skip
    try:
        send(ecu, "Body", DoorsLocked=1, DriverDoorOpen=0, Gear="P")
        first = wait_for_sample(source, clock)
        assert first["Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"] is True
        send(ecu, "Body", DoorsLocked=1, DriverDoorOpen=0, Gear="P")  # nothing changed
        time.sleep(0.1)
        clock.now += 1
        assert source.sample(1.0) is None
        send(ecu, "Body", DoorsLocked=0, DriverDoorOpen=1, Gear="P")
        changed = wait_for_sample(source, clock)
        assert changed == {
            "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked": False,
            "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen": True,
        }
    finally:
        source.close()


def test_lock_command_reaches_the_bus_as_the_mapped_frame(channel: str, ecu: can.BusABC) -> None:
    source = CanSource("WVWZZZ1JZXW000001", database(), mapping(),
                       can.Bus(interface="virtual", channel=channel))  # fmt: skip
    try:
        assert source.apply_command("lock", {}) == (True, None)
        frame = ecu.recv(timeout=2)
        assert frame is not None and frame.arbitration_id == 0x200
        decoded = database().decode_message(frame.arbitration_id, bytes(frame.data))
        assert str(decoded["LockRequest"]) == "Lock"
        accepted, reason = source.apply_command("climate_start", {})
        assert not accepted and reason is not None and "not supported over CAN" in reason
    finally:
        source.close()


@pytest.mark.parametrize("bad", ["__import__('os')", "x.real", "open('f')", "[x]", "x if x else 1"])
def test_math_transforms_allow_arithmetic_only(bad: str) -> None:
    assert compile_math("x * 0.5 - 40")(100) == 10
    assert compile_math("max(0, x) / 2")(-4) == 0
    with pytest.raises(ConfigError):
        compile_math(bad)


def test_mapping_errors_are_caught_at_start(channel: str) -> None:
    bus = can.Bus(interface="virtual", channel=channel)
    try:
        with pytest.raises(ConfigError, match="not in the signal catalog"):
            CanSource(
                "WVWZZZ1JZXW000001",
                database(),
                {"Vehicle.Nope": {"dbc2vss": {"signal": "Gear"}}},
                bus,
            )
        with pytest.raises(ConfigError, match="DBC has no signal"):
            CanSource(
                "WVWZZZ1JZXW000001",
                database(),
                {"Vehicle.Speed": {"dbc2vss": {"signal": "Warp"}}},
                bus,
            )
    finally:
        bus.shutdown()


@pytest.mark.slow
def test_can_frames_arrive_in_carcloud_and_lock_goes_back_to_the_bus(
    platform: Platform, tmp_path: Path, channel: str, ecu: can.BusABC
) -> None:
    creds = platform.register()
    config = AgentConfig(
        vin=creds.vin, secret=creds.password, port=platform.mqtt_port,
        buffer_path=tmp_path / "outbox.db", reconnect_min_s=0.2, reconnect_max_s=1.0,
        source={"kind": "can", "interval_s": 0.1},
    )  # fmt: skip
    source = CanSource(creds.vin, database(), mapping(),
                       can.Bus(interface="virtual", channel=channel))  # fmt: skip
    agent = Agent(config, source)
    outcome: dict[str, Any] = {}

    async def scenario() -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(agent.run(stop))
        await asyncio.wait_for(agent.connected.wait(), 10)
        send(ecu, "Drive", VehicleSpeed=88.0, Odometer=1234.5)
        send(ecu, "BatteryStatus", StateOfCharge=64.5, PackVoltage=390.0, PackTemperature=30,
             Charging=1)  # fmt: skip
        with platform.api() as api:
            outcome["state"] = await asyncio.to_thread(
                platform.wait_for,
                lambda: (
                    (s := api.get(f"/vehicles/{creds.vin}/state")["signals"]).get(
                        "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
                    )
                    and s
                ),
                15,
                "CAN values in the API",
            )
            command = await asyncio.to_thread(
                api.post, f"/vehicles/{creds.vin}/commands", {"kind": "lock"}
            )
            outcome["frame"] = await asyncio.to_thread(ecu.recv, 10)
            outcome["command"] = await asyncio.to_thread(
                api.get, f"/vehicles/{creds.vin}/commands/{command['id']}", wait="10s"
            )
        stop.set()
        await run

    asyncio.run(scenario())
    state = outcome["state"]
    assert state["Vehicle.Speed"]["value"] == 88.0
    assert state["Vehicle.TraveledDistance"]["value"] == pytest.approx(1234.5)
    assert state["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"]["value"] == 64.5
    assert state["Vehicle.Powertrain.TractionBattery.Temperature.Average"]["value"] == 30.0
    frame = outcome["frame"]
    assert frame is not None and frame.arbitration_id == 0x200
    assert str(database().decode_message(0x200, bytes(frame.data))["LockRequest"]) == "Lock"
    assert outcome["command"]["status"] == "succeeded"


def test_a_recorded_drive_replays_as_if_it_were_the_car() -> None:
    source = CanSource.from_config(
        "WVWZZZ1JZXW000001",
        {"dbc": "ev.dbc", "mapping": "ev_mapping.json", "replay": "ev_drive.log"},
        Path(str(EXAMPLES)),
    )
    speeds: list[float] = []
    seen: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not speeds or speeds[-1] < 87.0):
            due = source.sample(0.1)
            if due is not None:
                seen.update(due[1])
                if "Vehicle.Speed" in due[1]:
                    speeds.append(float(due[1]["Vehicle.Speed"]))  # type: ignore[arg-type]
            time.sleep(0.1)
    finally:
        source.close()
    assert speeds[-1] == 87.0 and speeds == sorted(speeds) and len(set(speeds)) > 3
    assert seen["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"] == 72.5
    assert seen["Vehicle.Powertrain.Transmission.CurrentGear"] == 1
