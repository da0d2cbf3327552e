"""Rows of the telematics tables, shared by both backends: one encoding, one decoding,
and what replacing a vehicle's trips or sessions changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from carcloud.events.models import NewEvent
from carcloud.telematics.models import Changes, ChargingSegment, ChargingSession, PlaceRef, Trip
from carcloud.telematics.store import Replacement
from carcloud.telematics.tariffs import Place, Tariff, TariffPeriod
from carcloud.telematics.timeline import Position

D = TypeVar("D", Trip, ChargingSession)

# Trip fields in table order (after id and vehicle_id); the vin comes from the join.
TRIP_FIELDS = (
    "status", "start_ts", "end_ts", "start_lat", "start_lon", "end_lat", "end_lon",
    "distance_km", "distance_source", "driving_s", "max_speed_kmh", "energy_kwh",
    "energy_source", "start_soc", "end_soc", "start_fuel_level", "end_fuel_level",
    "outside_temp_c", "positions", "start_place", "end_place",
)  # fmt: skip
SESSION_FIELDS = (
    "status", "start_ts", "end_ts", "energy_kwh", "max_power_kw", "current_type",
    "start_soc", "end_soc", "lat", "lon", "cost", "currency", "tariff_id",
)  # fmt: skip
SEGMENT_FIELDS = ("start_ts", "end_ts", "energy_kwh", "max_power_kw")
TARIFF_FIELDS = (
    "name", "currency", "timezone", "price_per_kwh", "price_per_minute",
    "price_per_session", "periods", "vins", "home", "created_at", "updated_at", "geofence_id",
)  # fmt: skip
# The SELECT heads of both backends' reads (a WHERE clause follows).
TARIFF_SELECT = (
    f"SELECT t.id, b.slug, {', '.join('t.' + f for f in TARIFF_FIELDS)} "
    "FROM tariffs t JOIN brands b ON b.id = t.brand_id "
)


def _lat_lon(position: Position | None) -> tuple[float | None, float | None]:
    return (position.lat, position.lon) if position is not None else (None, None)


def _position(lat: Any, lon: Any) -> Position | None:
    return Position(float(lat), float(lon)) if lat is not None and lon is not None else None


def _place_json(place: PlaceRef | None) -> str | None:
    return orjson.dumps(place.document()).decode() if place is not None else None


def _place(raw: Any) -> PlaceRef | None:
    if raw is None:
        return None
    found = orjson.loads(raw)
    return PlaceRef(found["kind"], found["name"], found.get("id"))


def trip_values(trip: Trip) -> tuple[Any, ...]:
    """A trip's TRIP_FIELDS values."""
    return (
        trip.status, trip.start_ts, trip.end_ts, *_lat_lon(trip.start_position),
        *_lat_lon(trip.end_position), trip.distance_km, trip.distance_source, trip.driving_s,
        trip.max_speed_kmh, trip.energy_kwh, trip.energy_source, trip.start_soc, trip.end_soc,
        trip.start_fuel_level, trip.end_fuel_level, trip.outside_temp_c, trip.positions,
        _place_json(trip.start_place), _place_json(trip.end_place),
    )  # fmt: skip


def trip_of(trip_id: str, vin: str, values: Sequence[Any]) -> Trip:
    """A trip from its id, vin and TRIP_FIELDS values."""
    v = list(values)
    return Trip(
        id=trip_id, vin=vin, status=v[0], start_ts=int(v[1]), end_ts=int(v[2]),
        start_position=_position(v[3], v[4]), end_position=_position(v[5], v[6]),
        distance_km=float(v[7]), distance_source=v[8], driving_s=float(v[9]),
        max_speed_kmh=v[10], energy_kwh=v[11], energy_source=v[12], start_soc=v[13],
        end_soc=v[14], start_fuel_level=v[15], end_fuel_level=v[16], outside_temp_c=v[17],
        positions=int(v[18]), start_place=_place(v[19]), end_place=_place(v[20]),
    )  # fmt: skip


def session_values(session: ChargingSession) -> tuple[Any, ...]:
    """A session's SESSION_FIELDS values."""
    return (
        session.status, session.start_ts, session.end_ts, session.energy_kwh,
        session.max_power_kw, session.current_type, session.start_soc, session.end_soc,
        *_lat_lon(session.position), session.cost, session.currency, session.tariff_id,
    )  # fmt: skip


def segment_values(segment: ChargingSegment) -> tuple[Any, ...]:
    """A segment's SEGMENT_FIELDS values."""
    return (segment.start_ts, segment.end_ts, segment.energy_kwh, segment.max_power_kw)


def session_of(
    session_id: str, vin: str, values: Sequence[Any], segments: Sequence[Sequence[Any]]
) -> ChargingSession:
    """A session from its id, vin, SESSION_FIELDS values and its segments' rows, in order."""
    v = list(values)
    return ChargingSession(
        id=session_id, vin=vin, status=v[0], start_ts=int(v[1]), end_ts=int(v[2]),
        segments=tuple(
            ChargingSegment(int(s[0]), int(s[1]), float(s[2]), float(s[3])) for s in segments
        ),
        max_power_kw=v[4], current_type=v[5], start_soc=v[6], end_soc=v[7],
        position=_position(v[8], v[9]), cost=v[10], currency=v[11], tariff_id=v[12],
    )  # fmt: skip


def tariff_values(tariff: Tariff) -> tuple[Any, ...]:
    """A tariff's TARIFF_FIELDS values (periods, VINs and home as JSON text)."""
    periods = [
        {
            "days": list(p.days),
            "start": p.start,
            "end": p.end,
            "price_per_kwh": p.price_per_kwh,
            "price_per_minute": p.price_per_minute,
        }
        for p in tariff.periods
    ]
    home = tariff.home
    return (
        tariff.name, tariff.currency, tariff.timezone, tariff.price_per_kwh,
        tariff.price_per_minute, tariff.price_per_session, orjson.dumps(periods).decode(),
        orjson.dumps(list(tariff.vins)).decode(),
        orjson.dumps({"lat": home.lat, "lon": home.lon, "radius_m": home.radius_m}).decode()
        if home is not None else None,
        tariff.created_at, tariff.updated_at, tariff.geofence_id,
    )  # fmt: skip


def tariff_of(tariff_id: str, brand: str, values: Sequence[Any]) -> Tariff:
    """A tariff from its id, brand and TARIFF_FIELDS values."""
    v = list(values)
    home = orjson.loads(v[8]) if v[8] is not None else None
    return Tariff(
        id=tariff_id, brand=brand, name=v[0], currency=v[1], timezone=v[2],
        price_per_kwh=float(v[3]), price_per_minute=float(v[4]), price_per_session=float(v[5]),
        periods=tuple(
            TariffPeriod(tuple(p["days"]), p["start"], p["end"], p["price_per_kwh"],
                         p["price_per_minute"])
            for p in orjson.loads(v[6])
        ),
        vins=tuple(orjson.loads(v[7])),
        home=Place(home["lat"], home["lon"], home["radius_m"]) if home is not None else None,
        created_at=int(v[9]), updated_at=int(v[10]), geofence_id=v[11],
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Plan(Generic[D]):
    """What a replacement does to the stored items: rows to delete and to write, what
    changed, and the events of it (removals first), to be written in the same transaction."""

    delete: tuple[str, ...]
    write: tuple[D, ...]
    changes: Changes
    events: tuple[NewEvent, ...]


def plan(stored: Sequence[D], replacement: Replacement[D]) -> Plan[D]:
    """How to make `stored` (the items from the replacement's start on) its items."""
    emit = replacement.emit
    before = {item.id: item for item in stored}
    after = {item.id: item for item in replacement.items}
    events: list[NewEvent] = []
    removed = tuple(item_id for item_id in before if item_id not in after)
    for item_id in removed:
        if emit is not None:
            events += emit(before[item_id], None)
    created: list[str] = []
    updated: list[str] = []
    completed: list[str] = []
    written: list[D] = []
    for item_id, item in after.items():
        was = before.get(item_id)
        if was == item:
            continue
        written.append(item)
        (created if was is None else updated).append(item_id)
        if item.completed and (was is None or not was.completed):
            completed.append(item_id)
        if emit is not None:
            events += emit(was, item)
    changes = Changes(tuple(created), tuple(updated), removed, tuple(completed))
    return Plan(removed, tuple(written), changes, tuple(events))
