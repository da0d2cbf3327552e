"""The telematics slice's rules: derive trips and sessions from committed history, price
sessions, and answer reads.

`derive(vin, since)` is called with the oldest vehicle time (`ts`) of newly committed
data. It re-reads the history from the start of every trip or session that data can
touch, detects again, and replaces what is stored from there on, with the events of
what changed, in one transaction. Derivation is a function of the committed history
only, never of arrival order, so a backlog that arrives late gives exactly the trips
it would have given live.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from carcloud.errors import ValidationError
from carcloud.events.models import NewEvent
from carcloud.telematics.charging import detect_sessions, is_plugged
from carcloud.telematics.models import (
    Changes,
    ChargingSession,
    DetectionSettings,
    Trip,
    session_document,
    trip_document,
)
from carcloud.telematics.places import (
    PlaceSource,
    check_tariff_place,
    name_trip_ends,
    tariff_fences,
)
from carcloud.telematics.store import TelematicsStore
from carcloud.telematics.tariffs import Tariff
from carcloud.telematics.timeline import LATITUDE, LONGITUDE, PATHS, Position, Timeline
from carcloud.telematics.trips import detect_trips
from carcloud.timeutil import now_us

T = TypeVar("T", Trip, ChargingSession)

# How far back forward-fill looks for a signal's value before the derivation window.
SEED_WINDOW_US = 24 * 3600 * 1_000_000
MAX_ROUTE_POINTS = 500
# Timelines kept between derivations (an open trip is not read again every time).
MAX_KEPT_TIMELINES = 2_000
MAX_KEPT_MOMENTS = 20_000


@dataclass(frozen=True, slots=True)
class _Stored:
    """A vehicle's stored trips and sessions that a derivation from `since` can touch:
    those that end at or after `since` - lookback, or are still open.

    Always read from the store, never kept between derivations: with several derive
    processes (`carcloud worker derive` on more hosts) another process may have written
    since, and a derivation that trusted an older copy would leave that process's trip
    beside its own. A derivation writes nothing when it derives exactly what is stored.
    """

    since: int
    trips: tuple[Trip, ...]
    sessions: tuple[ChargingSession, ...]


def _same(stored: Sequence[T], start: int, derived: Sequence[T]) -> bool:
    """Whether the stored items from `start` on are exactly `derived` (nothing to write)."""
    return [item for item in stored if item.start_ts >= start] == list(derived)


@dataclass(frozen=True, slots=True)
class Derived:
    """What one derivation changed."""

    trips: Changes
    sessions: Changes


def trip_events(before: Trip | None, after: Trip | None) -> list[NewEvent]:
    """Events of a trip change: completed, updated by late data, or removed by it."""
    if after is not None and after.completed:
        kind = "trip.updated" if before is not None and before.completed else "trip.completed"
        return [NewEvent(kind, vin=after.vin, data=trip_document(after))]
    if after is None and before is not None and before.completed:
        return [NewEvent("trip.removed", vin=before.vin, data=trip_document(before))]
    return []  # an open trip moving on is not an event


def session_events(before: ChargingSession | None, after: ChargingSession | None) -> list[NewEvent]:
    """Events of a charging-session change, like `trip_events`."""
    if after is not None and after.completed:
        done = before is not None and before.completed
        kind = "charging.session_updated" if done else "charging.session_completed"
        return [NewEvent(kind, vin=after.vin, data=session_document(after))]
    if after is None and before is not None and before.completed:
        return [NewEvent("charging.session_removed", vin=before.vin, data=session_document(before))]
    return []


def known_capacities() -> dict[str, float]:
    """Usable battery capacity (kWh) of the models carcloud knows: the demo fleet's.

    Only the fallback for cars that report state of charge but no battery power;
    a deployment with other models passes its own table to the service.
    """
    from carcloud.sim.fleet import BRANDS  # the simulator's model table, read once at start

    return {
        line.spec.model: line.spec.battery_kwh
        for brand in BRANDS.values()
        for line in brand.models
        if line.spec.battery_kwh > 0
    }


def downsample(points: Sequence[tuple[int, Position]], limit: int) -> list[tuple[int, Position]]:
    """At most `limit` points, evenly spread, first and last always kept."""
    if len(points) <= limit:
        return list(points)
    step = (len(points) - 1) / (limit - 1)
    return [points[round(index * step)] for index in range(limit)]


class TelematicsService:
    """Trips, charging sessions and tariffs."""

    def __init__(
        self,
        store: TelematicsStore,
        settings: DetectionSettings | None = None,
        usable_kwh: Mapping[str, float] | None = None,
        places: PlaceSource | None = None,
    ) -> None:
        self.store = store
        # Geofences and drivers' places: trip ends by name, tariffs attached to a geofence.
        self.places = places
        self.settings = settings or DetectionSettings()
        # Usable battery capacity per model: the fallback when a car reports no power.
        self.usable_kwh = dict(usable_kwh or {})
        self._profiles: dict[str, tuple[str, str]] = {}
        self._timelines: dict[str, Timeline] = {}

    # ---- derivation ------------------------------------------------------------------------

    async def derive(self, vin: str, since: int) -> Derived:
        """Re-derive what committed data from vehicle time `since` on can have changed."""
        profile = self._profiles.get(vin)
        if profile is None:
            found = await self.store.vehicle_profile(vin)
            if found is None:
                return Derived(Changes(), Changes())
            profile = self._profiles[vin] = found
        brand, model = profile
        lookback = self.settings.lookback_us
        horizon = since - lookback
        stored = _Stored(
            since,
            tuple(await self.store.trips_since(vin, horizon)),
            tuple(await self.store.sessions_since(vin, horizon)),
        )
        touched_trips = [t for t in stored.trips if t.end_ts >= horizon or not t.completed]
        touched_sessions = [s for s in stored.sessions if s.end_ts >= horizon or not s.completed]
        # Trips and sessions are detected each over its own window: a car plugged in for
        # hours is not searched for trips over those hours.
        trip_read = min([since] + [t.start_ts for t in touched_trips]) - lookback
        session_read = min([since] + [s.start_ts for s in touched_sessions]) - lookback
        read_from = min(trip_read, session_read)
        timeline = await self._timeline(vin, since, read_from)
        usable = self.usable_kwh.get(model)

        trips = [
            trip
            for trip in detect_trips(vin, timeline.since(trip_read), self.settings, usable)
            if trip.end_ts >= horizon or not trip.completed
        ]
        trips = await name_trip_ends(self.places, vin, brand, trips)
        trip_from = min([since] + [t.start_ts for t in (*trips, *touched_trips)])
        if _same(stored.trips, trip_from, trips):
            trip_changes = Changes()
        else:
            trip_changes = await self.store.replace_trips(vin, trip_from, trips, trip_events)

        moments = timeline.since(session_read)
        sessions: list[ChargingSession] = []
        if touched_sessions or any(is_plugged(moment) for moment in moments):
            tariffs = await self.store.list_tariffs(brand)
            fences = await tariff_fences(self.places, brand, tariffs)
            sessions = [
                session
                for session in detect_sessions(vin, moments, self.settings, usable, tariffs, fences)
                if session.end_ts >= horizon or not session.completed
            ]
        session_from = min([since] + [s.start_ts for s in (*sessions, *touched_sessions)])
        if _same(stored.sessions, session_from, sessions):
            session_changes = Changes()
        else:
            session_changes = await self.store.replace_sessions(
                vin, session_from, sessions, session_events
            )
        timeline.trim(read_from)
        self._keep(vin, timeline)
        return Derived(trip_changes, session_changes)

    async def _timeline(self, vin: str, since: int, read_from: int) -> Timeline:
        """The vehicle's timeline from `read_from` on: the kept one plus what is newer,
        or (after late data) read again from the committed history."""
        kept = self._timelines.pop(vin, None)
        if kept is not None and kept.start <= read_from and await self._holds(kept, vin, since):
            kept.extend(await self.store.history_rows(vin, PATHS, kept.last_ts + 1))
            return kept
        seed = await self.store.last_values(vin, PATHS, read_from, SEED_WINDOW_US)
        timeline = Timeline(read_from, seed)
        timeline.extend(await self.store.history_rows(vin, PATHS, read_from))
        return timeline

    async def _holds(self, kept: Timeline, vin: str, since: int) -> bool:
        """Whether the kept timeline already holds every committed row from `since` to its end.

        Ingest commits while a derivation runs, so the rows a batch names are often
        already in the timeline, read by the derivation before; only rows it never saw
        (a backlog from before its end) make it read the history again.
        """
        if since > kept.last_ts:
            return True
        rows = await self.store.history_rows(vin, PATHS, since, kept.last_ts + 1)
        return [ts for ts, _ in rows] == [moment.ts for moment in kept.since(since)]

    def _keep(self, vin: str, timeline: Timeline) -> None:
        if len(timeline.moments) > MAX_KEPT_MOMENTS:
            return
        self._timelines[vin] = timeline  # most recently derived last
        while len(self._timelines) > MAX_KEPT_TIMELINES:
            self._timelines.pop(next(iter(self._timelines)))

    def forget(self, vin: str) -> None:
        """Drop what is cached about a vehicle (its model changed, or it was deleted)."""
        self._profiles.pop(vin, None)
        self._timelines.pop(vin, None)

    # ---- reads -----------------------------------------------------------------------------

    async def list_trips(
        self, vin: str, brand: str | None, before: int | None = None, limit: int = 50
    ) -> list[Trip]:
        """A vehicle's trips, newest first."""
        _check_limit(limit)
        return await self.store.list_trips(vin, brand, before, limit)

    async def get_trip(self, vin: str, brand: str | None, trip_id: str) -> Trip:
        """One trip of a vehicle the caller may see."""
        return await self.store.get_trip(vin, brand, trip_id)

    async def route(
        self, trip: Trip, max_points: int = MAX_ROUTE_POINTS
    ) -> list[tuple[int, Position]]:
        """The positions the car reported during a trip, downsampled to `max_points`."""
        if not 2 <= max_points <= 10_000:
            raise ValidationError(f"max_points must be 2 to 10000, not {max_points}")
        rows = await self.store.history_rows(
            trip.vin, (LATITUDE, LONGITUDE), trip.start_ts, trip.end_ts + 1
        )
        points = [
            (ts, Position(float(values[LATITUDE]), float(values[LONGITUDE])))  # type: ignore[arg-type]
            for ts, values in rows
            if LATITUDE in values and LONGITUDE in values
        ]
        return downsample(points, max_points)

    async def list_sessions(
        self, vin: str, brand: str | None, before: int | None = None, limit: int = 50
    ) -> list[ChargingSession]:
        """A vehicle's charging sessions, newest first."""
        _check_limit(limit)
        return await self.store.list_sessions(vin, brand, before, limit)

    # ---- tariffs ---------------------------------------------------------------------------

    async def create_tariff(self, draft: Tariff) -> Tariff:
        """Store a new tariff (the draft's id and times are replaced)."""
        await check_tariff_place(self.places, draft)
        now = now_us()
        tariff = _with(draft, id=f"trf_{secrets.token_hex(8)}", created_at=now, updated_at=now)
        return await self.store.save_tariff(tariff)

    async def replace_tariff(self, tariff_id: str, brand: str | None, draft: Tariff) -> Tariff:
        """Replace a tariff the caller may see; it keeps its id, brand and creation time.

        Sessions are priced when they are derived: a changed tariff prices sessions
        derived from now on, not those already stored.
        """
        current = await self.store.get_tariff(tariff_id, brand)
        tariff = _with(
            draft,
            id=current.id,
            brand=current.brand,
            created_at=current.created_at,
            updated_at=now_us(),
        )
        await check_tariff_place(self.places, tariff)
        return await self.store.save_tariff(tariff)

    async def get_tariff(self, tariff_id: str, brand: str | None) -> Tariff:
        """One tariff the caller may see."""
        return await self.store.get_tariff(tariff_id, brand)

    async def list_tariffs(self, brand: str | None) -> list[Tariff]:
        """Tariffs of a brand, or every tariff for None."""
        return await self.store.list_tariffs(brand)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= 1000:
        raise ValidationError(f"limit must be 1 to 1000, not {limit}")


def _with(tariff: Tariff, **changes: object) -> Tariff:
    return dataclasses.replace(tariff, **changes)  # type: ignore[arg-type]
