"""TelematicsStore contract: history reads, a derivation's trips, sessions and checkpoint
saved together with their events (or nothing, over a stale checkpoint), brand scope,
tariffs."""

from __future__ import annotations

import dataclasses

import pytest

from carcloud.errors import NotFoundError
from carcloud.ingest.models import Sample, TelemetryMessage
from carcloud.storage import Stores
from carcloud.telematics.models import (
    Changes,
    ChargingSegment,
    ChargingSession,
    Trip,
    derived_id,
)
from carcloud.telematics.service import session_events, trip_events
from carcloud.telematics.store import Replacement, TelematicsStore
from carcloud.telematics.tariffs import Place, Tariff, TariffPeriod
from carcloud.telematics.timeline import CABLE, LATITUDE, ODOMETER, POWER_STATE, SPEED, Position
from tests.storage.conftest import SECOND, VIN


def trip(start_s: int, end_s: int, status: str = "completed", km: float = 5.0) -> Trip:
    return Trip(
        id=derived_id("trp", VIN, start_s * SECOND), vin=VIN, status=status,
        start_ts=start_s * SECOND, end_ts=end_s * SECOND,
        start_position=Position(48.1, 11.5), end_position=Position(48.2, 11.6),
        distance_km=km, distance_source="odometer", driving_s=float(end_s - start_s - 10),
        max_speed_kmh=88.5, energy_kwh=0.9, energy_source="battery_power", start_soc=80.0,
        end_soc=78.5, start_fuel_level=None, end_fuel_level=None, outside_temp_c=11.5,
        positions=42,
    )  # fmt: skip


def session(start_s: int, end_s: int, status: str = "completed") -> ChargingSession:
    return ChargingSession(
        id=derived_id("chg", VIN, start_s * SECOND), vin=VIN, status=status,
        start_ts=start_s * SECOND, end_ts=end_s * SECOND,
        segments=(
            ChargingSegment((start_s + 10) * SECOND, (start_s + 100) * SECOND, 0.25, 11.0),
            ChargingSegment((start_s + 200) * SECOND, (start_s + 300) * SECOND, 0.3, 10.5),
        ),
        max_power_kw=11.0, current_type="AC", start_soc=40.0, end_soc=41.0,
        position=Position(48.1, 11.5), cost=0.22, currency="EUR", tariff_id="trf_x",
    )  # fmt: skip


async def save(
    store: TelematicsStore,
    trips: Replacement[Trip] | None = None,
    sessions: Replacement[ChargingSession] | None = None,
    checkpoint: str | None = None,
) -> tuple[Changes, Changes]:
    """Save as a derivation does, over the checkpoint version stored now."""
    saved = await store.derive_checkpoint(VIN)
    version = saved[0] if saved is not None else 0
    changes = await store.save_derivation(VIN, version, trips, sessions, checkpoint)
    assert changes is not None
    return changes


async def save_trips(
    store: TelematicsStore, start: int, trips: list[Trip], emit: bool = True
) -> Changes:
    """Replace the trips from `start` on (with their events), as a derivation does."""
    return (await save(store, Replacement(start, trips, trip_events if emit else None)))[0]


async def test_history_rows_bring_several_signals_per_instant(stores: Stores) -> None:
    messages = [
        TelemetryMessage(VIN, i, i * SECOND, i * SECOND, (
            Sample(SPEED, i * SECOND, float(i)), Sample(ODOMETER, i * SECOND, 100.0 + i),
            Sample(POWER_STATE, i * SECOND, "ON"), Sample(CABLE, i * SECOND, False),
            Sample("Vehicle.Cabin.HVAC.IsAirConditioningActive", i * SECOND, True),
        ))
        for i in range(1, 6)
    ]  # fmt: skip
    await stores.telemetry.write_telemetry(messages, [])
    rows = await stores.telematics.history_rows(
        VIN, (SPEED, ODOMETER, POWER_STATE, CABLE), 2 * SECOND, 4 * SECOND
    )
    assert rows == [
        (2 * SECOND, {SPEED: 2.0, ODOMETER: 102.0, POWER_STATE: "ON", CABLE: False}),
        (3 * SECOND, {SPEED: 3.0, ODOMETER: 103.0, POWER_STATE: "ON", CABLE: False}),
    ]
    assert await stores.telematics.history_rows(VIN, (LATITUDE,), 0) == []
    # Counting gives what reading would, without reading.
    paths = (SPEED, ODOMETER, POWER_STATE, CABLE)
    assert await stores.telematics.count_rows(VIN, paths, 2 * SECOND, 4 * SECOND) == 2
    assert await stores.telematics.count_rows(VIN, paths, 0) == 5
    assert await stores.telematics.count_rows(VIN, (LATITUDE,), 0) == 0
    assert await stores.telematics.count_rows("WVWZZZ1JZXW999999", paths, 0) == 0
    last = await stores.telematics.last_values(VIN, (SPEED, LATITUDE), 4 * SECOND, 10 * SECOND)
    assert last == {SPEED: 3.0}
    assert await stores.telematics.last_values(VIN, (SPEED,), 4 * SECOND, SECOND // 2) == {}


async def test_replace_trips_creates_updates_removes_with_events(stores: Stores) -> None:
    store = stores.telematics
    first, second = trip(100, 700), trip(1000, 1600, status="driving")
    changes = await save_trips(store, 0, [first, second])
    assert changes.created == (first.id, second.id) and changes.completed == (first.id,)
    assert await store.trips_since(VIN, 650 * SECOND) == [first, second]
    assert await store.trips_since(VIN, 800 * SECOND) == [second]  # an open trip always
    # Late data: the second trip completes, the first turns out longer.
    longer = dataclasses.replace(first, distance_km=6.5)
    done = dataclasses.replace(second, status="completed", end_ts=1700 * SECOND)
    again = await save_trips(store, 0, [longer, done])
    assert set(again.updated) == {first.id, second.id} and again.completed == (second.id,)
    unchanged = await save_trips(store, 0, [longer, done])
    assert unchanged == type(unchanged)()
    # Only trips from `start` on are replaced.
    await save_trips(store, 900 * SECOND, [])
    assert [t.id for t in await store.list_trips(VIN, None)] == [first.id]
    events = await stores.events.list_events(0, None, ["trip"])
    assert [e.type for e in events] == [
        "trip.completed",
        "trip.updated",
        "trip.completed",
        "trip.removed",
    ]
    assert events[0].brand == "volta" and events[0].data["distance_km"] == 5.0
    assert events[1].data["distance_km"] == 6.5


async def test_trip_reads_are_scoped_by_brand(stores: Stores) -> None:
    store = stores.telematics
    await save_trips(store, 0, [trip(100, 700), trip(1000, 1600)], emit=False)
    assert [t.start_ts for t in await store.list_trips(VIN, "volta")] == [
        1000 * SECOND,
        100 * SECOND,
    ]
    assert [t.start_ts for t in await store.list_trips(VIN, "volta", before=1000 * SECOND)] == [
        100 * SECOND
    ]
    assert len(await store.list_trips(VIN, None, limit=1)) == 1
    one = trip(100, 700)
    assert await store.get_trip(VIN, "volta", one.id) == one
    await stores.registry.create_brand("other", "Other")
    with pytest.raises(NotFoundError):
        await store.list_trips(VIN, "other")
    with pytest.raises(NotFoundError):
        await store.get_trip(VIN, "other", one.id)
    with pytest.raises(NotFoundError):
        await store.get_trip(VIN, "volta", "trp_nope")


async def test_sessions_keep_their_segments_and_events(stores: Stores) -> None:
    store = stores.telematics
    open_one = session(5000, 5400, status="plugged_in")
    _, changes = await save(
        store, sessions=Replacement(0, [session(100, 500), open_one], session_events)
    )
    assert changes.completed == (session(100, 500).id,)
    listed = await store.list_sessions(VIN, "volta")
    assert listed == [open_one, session(100, 500)]
    assert listed[1].energy_kwh == pytest.approx(0.55)
    assert await store.sessions_since(VIN, 10_000 * SECOND) == [open_one]
    fewer = dataclasses.replace(open_one, status="completed", segments=open_one.segments[:1])
    await save(store, sessions=Replacement(4000 * SECOND, [fewer], session_events))
    assert (await store.list_sessions(VIN, None))[0].segments == open_one.segments[:1]
    events = await stores.events.list_events(0, "volta", ["charging"])
    assert [e.type for e in events] == ["charging.session_completed"] * 2
    assert len(events[1].data["segments"]) == 1


async def test_tariffs_round_trip_and_scope(stores: Stores) -> None:
    store = stores.telematics
    tariff = Tariff(
        id="trf_a", brand="volta", name="home night", currency="EUR", timezone="Europe/Berlin",
        price_per_kwh=0.35, price_per_minute=0.01, price_per_session=0.5,
        periods=(TariffPeriod(("mon", "tue"), "22:00", "06:00", 0.12, None),),
        vins=(VIN,), home=Place(48.1, 11.5, 150.0), created_at=1, updated_at=2,
    )  # fmt: skip
    assert await store.save_tariff(tariff) == tariff
    assert await store.get_tariff("trf_a", "volta") == tariff
    plain = Tariff(
        id="trf_b", brand="volta", name="flat", currency="EUR", created_at=3, updated_at=3
    )
    await store.save_tariff(plain)
    assert await store.list_tariffs("volta") == [tariff, plain]
    await store.save_tariff(dataclasses.replace(plain, price_per_kwh=0.3, updated_at=9))
    assert (await store.get_tariff("trf_b", None)).price_per_kwh == 0.3
    await stores.registry.create_brand("other", "Other")
    assert await store.list_tariffs("other") == []
    with pytest.raises(NotFoundError):
        await store.get_tariff("trf_a", "other")
    with pytest.raises(NotFoundError):
        await store.save_tariff(dataclasses.replace(plain, id="trf_c", brand="nobody"))
    assert await store.vehicle_profile(VIN) == ("volta", "E1")
    assert await store.vehicle_profile("WVWZZZ1JZXW000009") is None


async def test_trip_end_places_and_a_tariffs_geofence_round_trip(stores: Stores) -> None:
    from carcloud.telematics.models import DRIVER_PLACE, GEOFENCE, PlaceRef

    depot = PlaceRef(GEOFENCE, "depot", "gfn_0123456789abcdef")
    home = PlaceRef(DRIVER_PLACE, "home")
    placed = dataclasses.replace(trip(100, 400), start_place=depot, end_place=home)
    unplaced = trip(1000, 1400)
    store = stores.telematics
    await save_trips(store, 0, [placed, unplaced])
    assert await store.trips_since(VIN, 0) == [placed, unplaced]
    [got] = [t for t in await store.list_trips(VIN, "volta") if t.id == placed.id]
    assert (got.start_place, got.end_place) == (depot, home)
    [event, _] = await stores.events.list_events(0, "volta", ["trip"])
    assert event.data["start_place"] == {"kind": "geofence", "id": depot.id, "name": "depot"}
    assert event.data["end_place"] == {"kind": "driver_place", "id": None, "name": "home"}
    tariff = Tariff(id="trf_g", brand="volta", name="depot", currency="EUR", price_per_kwh=0.2,
                    geofence_id=depot.id, created_at=1, updated_at=1)  # fmt: skip
    await store.save_tariff(tariff)
    assert await store.get_tariff("trf_g", "volta") == tariff


async def test_a_derivation_saves_trips_sessions_and_checkpoint_together(
    stores: Stores,
) -> None:
    store = stores.telematics
    assert await store.derive_checkpoint(VIN) is None
    first, driving = trip(100, 700), trip(1000, 1600, status="driving")
    charged, plugged = session(2000, 2500), session(3000, 3400, status="plugged_in")
    trip_changes, session_changes = await store.save_derivation(
        VIN, 0,
        Replacement(0, [first, driving], trip_events),
        Replacement(0, [charged, plugged], session_events),
        '{"a": 1}',
    )  # fmt: skip
    assert trip_changes.created == (first.id, driving.id)
    assert trip_changes.completed == (first.id,)
    assert session_changes.created == (charged.id, plugged.id)
    assert session_changes.completed == (charged.id,)
    assert await store.trips_since(VIN, 0) == [first, driving]
    assert await store.sessions_since(VIN, 0) == [charged, plugged]
    assert await store.derive_checkpoint(VIN) == (1, '{"a": 1}')
    events = await stores.events.list_events(0, "volta", ["trip", "charging"])
    assert [e.type for e in events] == ["trip.completed", "charging.session_completed"]
    # Only the checkpoint: trips and sessions stay, the version moves on.
    assert await store.save_derivation(VIN, 1, None, None, '{"b": 2}') == (Changes(), Changes())
    assert await store.derive_checkpoint(VIN) == (2, '{"b": 2}')
    # Only trips (no checkpoint due): written over the version read, which stays.
    done = dataclasses.replace(driving, status="completed", end_ts=1700 * SECOND)
    changes = await store.save_derivation(
        VIN, 2, Replacement(1000 * SECOND, [done], trip_events), None, None
    )
    assert changes is not None and changes[0].completed == (driving.id,)
    assert await store.derive_checkpoint(VIN) == (2, '{"b": 2}')
    assert await store.trips_since(VIN, 0) == [first, done]
    with pytest.raises(NotFoundError):
        await store.save_derivation("WVWZZZ1JZXW000009", 0, None, None, "{}")


async def test_a_derivation_over_a_stale_checkpoint_writes_nothing(stores: Stores) -> None:
    store = stores.telematics
    first, charged = trip(100, 700), session(2000, 2500)
    assert await store.save_derivation(VIN, 0, None, None, '{"a": 1}') is not None
    # Two derivations read version 1; the first to save wins, the other writes nothing:
    # neither its trips nor its sessions nor their events nor its checkpoint.
    assert await store.save_derivation(
        VIN, 1, Replacement(0, [first], trip_events), None, '{"b": 2}'
    ) == (Changes(created=(first.id,), completed=(first.id,)), Changes())
    longer, other = dataclasses.replace(first, distance_km=9.0), trip(1000, 1300)
    for version in (1, 0, 3):
        for checkpoint in ('{"c": 3}', None):
            refused = await store.save_derivation(
                VIN, version,
                Replacement(0, [longer, other], trip_events),
                Replacement(0, [charged], session_events),
                checkpoint,
            )  # fmt: skip
            assert refused is None
    assert await store.derive_checkpoint(VIN) == (2, '{"b": 2}')
    assert await store.trips_since(VIN, 0) == [first]
    assert await store.sessions_since(VIN, 0) == []
    events = await stores.events.list_events(0, None, ["trip", "charging"])
    assert [e.type for e in events] == ["trip.completed"]
