"""`calls.video_allowed` follows the car's committed motion, over a real store (SQLite and
PostgreSQL): written only when it changes, right when another derive process derives the
same car at the same time, and never left `true` on a car that drives."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from carcloud.calls.motion import GEAR, PARKING_BRAKE, SPEED, MotionWatch
from carcloud.ingest.models import TelemetryMessage
from carcloud.storage import Stores
from carcloud.storage.postgres import postgres_stores
from carcloud.storage.sqlite import sqlite_stores
from carcloud.twins.models import Twin
from carcloud.twins.service import TwinService
from tests.pg import postgres_database

SECOND = 1_000_000
VIN = "WVWZZZ1JZXW000001"
T0 = 1_780_000_000 * SECOND
PARKED = {SPEED: 0.0, GEAR: 1, PARKING_BRAKE: True}
MOVING = {SPEED: 38.0, GEAR: 3, PARKING_BRAKE: False}


@pytest.fixture(params=["sqlite", "postgresql"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    """Stores of one backend with brand `volta` and the vehicle VIN."""
    if request.param == "sqlite":
        opened = sqlite_stores(tmp_path / "carcloud.db")
        await opened.open()
        await opened.registry.create_brand("volta", "Volta")
        await opened.registry.create_vehicle(VIN, "volta", "E1", 2025, [], "scrypt$h")
        yield opened
        await opened.close()
        return
    async with postgres_database() as url:
        opened = postgres_stores(url)
        await opened.open()
        try:
            await opened.registry.create_brand("volta", "Volta")
            await opened.registry.create_vehicle(VIN, "volta", "E1", 2025, [], "scrypt$h")
            yield opened
        finally:
            await opened.close()


class Car:
    """The car's telemetry, committed second by second."""

    def __init__(self, stores: Stores) -> None:
        self.stores, self.second = stores, 0

    async def send(self, values: dict[str, Any]) -> None:
        self.second += 1
        at = T0 + self.second * SECOND
        samples = tuple((path, at, value) for path, value in values.items())
        message = TelemetryMessage(VIN, self.second, at, at, samples)
        await self.stores.telemetry.write_telemetry([message], [])


class Interrupted(TwinService):
    """The real twin service, except that its next desired write first lets `meanwhile`
    run to its end, as another derive process would between this one's reads and write."""

    meanwhile: Callable[[], Awaitable[None]] | None = None

    async def patch_desired(
        self, vin: str, brand: str | None, patch: dict[str, Any], if_version: int | None
    ) -> Twin:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            await meanwhile()
        return await super().patch_desired(vin, brand, patch, if_version)


async def flag(stores: Stores) -> object:
    calls = (await stores.twins.get_twin(VIN, None)).desired.get("calls", {})
    return calls.get("video_allowed")


async def test_the_flag_follows_the_motion_and_is_written_only_on_change(stores: Stores) -> None:
    car, watch = Car(stores), MotionWatch(stores.telemetry, TwinService(stores.twins))
    await stores.twins.set_desired(VIN, None, {"climate": {"temp": 21}}, None, lambda v, o, c: o)
    await car.send({"Vehicle.Cabin.HVAC.AmbientAirTemperature": 19.0})  # no speed: moving
    assert await watch.derive(VIN, T0) is False
    assert await flag(stores) is False
    await car.send(PARKED)
    assert await watch.derive(VIN, T0) is True
    parked_version = (await stores.twins.get_twin(VIN, None)).desired_version
    for _ in range(3):  # a parked car sending the same values: no new desired version
        await car.send(PARKED)
        assert await watch.derive(VIN, T0) is True
    twin = await stores.twins.get_twin(VIN, None)
    assert twin.desired_version == parked_version
    assert twin.desired_own == {"climate": {"temp": 21}, "calls": {"video_allowed": True}}
    await car.send({SPEED: 0.4, PARKING_BRAKE: False, GEAR: 0})  # rolling in neutral: parked
    assert await watch.derive(VIN, T0) is True
    await car.send({SPEED: 6.0})
    assert await watch.derive(VIN, T0) is False
    assert await flag(stores) is False
    assert (await watch.motion(VIN)).video_allowed is False  # what a join action is told


async def test_a_car_that_drives_off_during_a_derivation_keeps_video_off(stores: Stores) -> None:
    """Derivation A read a parked car; before A writes `true`, the car drives off and
    derivation B (another process) derives that, finds `false` stored and writes
    nothing; then A's `true` lands. A reads the motion again after its write."""
    car = Car(stores)
    twins_a = Interrupted(stores.twins)
    watch_a = MotionWatch(stores.telemetry, twins_a)
    watch_b = MotionWatch(stores.telemetry, TwinService(stores.twins))
    await car.send(MOVING)
    assert await watch_b.derive(VIN, T0) is False
    await car.send(PARKED)

    async def drives_off() -> None:
        await car.send(MOVING)
        assert await watch_b.derive(VIN, T0) is False  # `false` is stored: nothing to write

    twins_a.meanwhile = drives_off
    assert await watch_a.derive(VIN, T0) is False
    assert await flag(stores) is False


async def test_another_process_s_write_is_never_taken_for_this_one_s(stores: Stores) -> None:
    """A process that last saw `false` still checks the twin: another process may have
    written `true` since (the car parked there), and the car now moves again."""
    car = Car(stores)
    watch_a = MotionWatch(stores.telemetry, TwinService(stores.twins))
    watch_b = MotionWatch(stores.telemetry, TwinService(stores.twins))
    await car.send(MOVING)
    assert await watch_a.derive(VIN, T0) is False
    await car.send(PARKED)
    assert await watch_b.derive(VIN, T0) is True
    await car.send(MOVING)
    assert await watch_a.derive(VIN, T0) is False
    assert await flag(stores) is False
