"""A parked car costs the geofences deriver little: its repeated position is checked once
per fence, not once per row, and a car outside every fence makes no write; a car parked
inside a fence still has its stay grow. Over a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from carcloud.geofences import geometry
from carcloud.geofences.models import Geofence, Visit
from carcloud.geofences.service import GeofenceService
from carcloud.geofences.store import EmitVisit, GeofenceStore, VisitChanges
from carcloud.geofences.visits import detect_visits
from carcloud.ingest.models import TelemetryMessage
from carcloud.storage import Stores
from carcloud.storage.sqlite import sqlite_stores
from carcloud.telematics.timeline import LATITUDE, LONGITUDE, Position
from tests.geofences.track import CENTER, SECOND, north

VIN = "WVWZZZ1JZXW000001"
T0 = 1_780_000_000 * SECOND


def depot(fence_id: str = "gfn_depot") -> Geofence:
    return Geofence(fence_id, "volta", "depot", "circle", (CENTER,), radius_m=200.0)


def test_a_repeated_position_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[Position] = []
    side = geometry.Area.side

    def counted(area: geometry.Area, position: Position, margin_m: float) -> int:
        checked.append(position)
        return side(area, position, margin_m)

    monkeypatch.setattr(geometry.Area, "side", counted)
    # Away for 60 s, parked inside for 120 s, away again (the same two spots each time).
    away, inside = north(1_000), north(0)
    fixes = [(T0 + i * SECOND, away if i < 60 or i >= 180 else inside) for i in range(240)]
    [visit] = detect_visits(VIN, depot(), fixes)
    assert (visit.enter_ts, visit.exit_ts) == (T0 + 60 * SECOND, T0 + 180 * SECOND)
    assert checked == [away, inside, away]


class CountedWrites:
    """The real geofence store, counting replace_visits (a write transaction each)."""

    def __init__(self, store: GeofenceStore) -> None:
        self.store, self.writes = store, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def replace_visits(
        self, vin: str, start: int, visits: Sequence[Visit], emit: EmitVisit | None = None
    ) -> VisitChanges:
        self.writes += 1
        return await self.store.replace_visits(vin, start, visits, emit)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    opened = sqlite_stores(tmp_path / "carcloud.db")
    await opened.open()
    await opened.registry.create_brand("volta", "Volta")
    await opened.registry.create_vehicle(VIN, "volta", "E1", 2025, [], "scrypt$h")
    yield opened
    await opened.close()


async def park(stores: Stores, position: Position, first_s: int, seconds: int) -> int:
    """Commit a row a second at `position` from second `first_s`; the first row's time."""
    messages = [
        TelemetryMessage(VIN, s, T0 + s * SECOND, T0 + s * SECOND, (
            (LATITUDE, T0 + s * SECOND, position.lat), (LONGITUDE, T0 + s * SECOND, position.lon),
        ))
        for s in range(first_s, first_s + seconds)
    ]  # fmt: skip
    await stores.telemetry.write_telemetry(messages, [])
    return T0 + first_s * SECOND


async def test_a_car_outside_every_fence_makes_no_write(stores: Stores) -> None:
    counted = CountedWrites(stores.geofences)
    service = GeofenceService(counted, stores.telematics)  # type: ignore[arg-type]
    await service.create_geofence(depot())
    for second in range(0, 300, 60):  # parked far away, derived each minute
        since = await park(stores, north(2_000), second, 60)
        assert await service.derive(VIN, since) == VisitChanges()
    assert counted.writes == 0

    since = await park(stores, north(0), 300, 60)  # drives into the depot and stays
    [created] = (await service.derive(VIN, since)).created
    [visit] = await stores.geofences.list_visits("volta")
    assert (visit.id, visit.enter_ts, visit.exit_ts) == (created, since, None)
    for second in range(360, 480, 60):  # parked inside: the stay grows
        since = await park(stores, north(0), second, 60)
        changes = await service.derive(VIN, since)
        assert changes.updated == (created,) and not changes.created
    [visit] = await stores.geofences.list_visits("volta")
    assert visit.inside and visit.dwell_s == 179
    assert counted.writes == 3
