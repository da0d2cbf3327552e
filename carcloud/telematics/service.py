"""The telematics slice's rules: derive trips and sessions from committed history, price
sessions, and answer reads.

`derive(vin, since)` is called with the oldest vehicle time (`ts`) of newly committed
data. Live data goes on from the checkpoint the vehicle's last derivation saved in the
store (checkpoint.py): only the rows after it are read and scanned, however long the
open trip or plug-in. Data older than the checkpoint (a backlog) re-reads the history
from the start of every trip or session it can touch, detects again, and saves a new
checkpoint. Either way what is stored from there on is replaced, with the events of
what changed, in one transaction with the new checkpoint, and only if no other
derivation of the vehicle saved one meanwhile (else it derives again, from history).
Derivation is a function of the committed history only, never of arrival order or of
which process derived before, so a backlog that arrives late gives exactly the trips
it would have given live.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from carcloud.errors import ConflictError, ValidationError
from carcloud.events.models import NewEvent
from carcloud.telematics import checkpoint
from carcloud.telematics.charging import PriceFor, SessionScan, is_plugged, pricing
from carcloud.telematics.checkpoint import RECENT_ROWS, Checkpoint
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
from carcloud.telematics.store import Replacement, TelematicsStore
from carcloud.telematics.tariffs import Tariff
from carcloud.telematics.timeline import LATITUDE, LONGITUDE, PATHS, Moment, Position, Timeline
from carcloud.telematics.trips import TripScan
from carcloud.timeutil import now_us

T = TypeVar("T", Trip, ChargingSession)

# How far back forward-fill looks for a signal's value before the derivation window.
SEED_WINDOW_US = 24 * 3600 * 1_000_000
MAX_ROUTE_POINTS = 500
# A derivation whose checkpoint another derivation replaced meanwhile is done again (from
# its history) at most this many times, then left to the worker's retry.
MAX_ATTEMPTS = 3
# A derivation that writes nothing (no trip or session open, none found) does not save a
# checkpoint that moves on by fewer rows and less vehicle time than these: the next one
# goes on from the saved checkpoint and reads those rows again (with the same result).
# A parked car's data then costs no write per derivation. Safe with several derive
# processes: a derivation that skips its save wrote nothing another one could overwrite.
CHECKPOINT_ROWS = 32
CHECKPOINT_SPAN_US = 300 * 1_000_000


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


@dataclass(slots=True)
class _Scanned:
    """What one derivation detected, from which times on it replaces what is stored."""

    trips: list[Trip]
    trip_from: int
    sessions: list[ChargingSession]
    session_from: int
    checkpoint: Checkpoint | None  # where it stopped (None: it read no row)
    # Resumed with no trip (session) open and none found: nothing of it to compare or write.
    no_trips: bool = False
    no_sessions: bool = False
    resumed_from: int | None = None  # the saved checkpoint's covered_ts it went on from

    def checkpoint_due(self) -> bool:
        """Whether to save its checkpoint (see CHECKPOINT_ROWS)."""
        if self.checkpoint is None:
            return False
        if self.resumed_from is None or not (self.no_trips and self.no_sessions):
            return True
        newer = sum(1 for ts in self.checkpoint.recent if ts > self.resumed_from)
        span = self.checkpoint.covered_ts - self.resumed_from
        return newer >= CHECKPOINT_ROWS or span >= CHECKPOINT_SPAN_US


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


class _Pricing:
    """The tariff for a session of one vehicle at a position, once its brand's tariffs (and
    the geofences they are attached to) are read; unpriced before."""

    def __init__(self, service: TelematicsService, vin: str, brand: str) -> None:
        self._service, self._vin, self._brand = service, vin, brand
        self._price: PriceFor | None = None

    @property
    def loaded(self) -> bool:
        return self._price is not None

    async def load(self) -> None:
        tariffs = await self._service.store.list_tariffs(self._brand)
        fences = await tariff_fences(self._service.places, self._brand, tariffs)
        self._price = pricing(self._vin, tariffs, fences)

    def __call__(self, position: Position | None) -> Tariff | None:
        return self._price(position) if self._price is not None else None


def _scan(
    vin: str,
    trips: TripScan,
    trip_moments: Sequence[Moment],
    sessions: SessionScan,
    session_moments: Sequence[Moment],
) -> tuple[list[Trip], list[ChargingSession]]:
    """Feed the scans; the trips and sessions they complete, and the open ones last."""
    found_trips = [trip for moment in trip_moments for trip in trips.feed(moment, vin)]
    found_sessions = [s for moment in session_moments if (s := sessions.feed(moment, vin))]
    open_trip, open_session = trips.open_trip(vin), sessions.open_session(vin)
    return (
        found_trips if open_trip is None else [*found_trips, open_trip],
        found_sessions if open_session is None else [*found_sessions, open_session],
    )


def _checkpoint(
    timeline: Timeline,
    trips: TripScan,
    sessions: SessionScan,
    recent: Sequence[int],
    counted: tuple[int, int],
) -> Checkpoint:
    """Where the scans stopped: after the timeline's last moment (one a row). `counted`:
    from when the rows before the timeline were counted, and how many (the timeline's
    own are added)."""
    times = [*recent, *(moment.ts for moment in timeline.moments)]
    counted_from, count = counted
    return Checkpoint(
        timeline.last_ts,
        tuple(times[-RECENT_ROWS:]),
        timeline.latest(),
        trips,
        sessions,
        counted_from,
        count + len(timeline.moments),
    )


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
        usable = self.usable_kwh.get(model)
        resume = True
        for _ in range(MAX_ATTEMPTS):
            saved = await self.store.derive_checkpoint(vin)
            version = saved[0] if saved is not None else 0
            scanned = None
            if resume and saved is not None:
                scanned = await self._resume(vin, brand, usable, since, saved[1])
            if scanned is None:
                scanned = await self._from_history(vin, brand, usable, since)
            trips, sessions = await self._replacements(vin, brand, scanned)
            text = None
            if scanned.checkpoint is not None and scanned.checkpoint_due():
                text = checkpoint.encode(scanned.checkpoint)
            if trips is None and sessions is None and text is None:
                return Derived(Changes(), Changes())  # nothing to write: no transaction
            changes = await self.store.save_derivation(vin, version, trips, sessions, text)
            if changes is not None:
                return Derived(*changes)
            # Another derivation of this vehicle (another process) saved its checkpoint while
            # this one worked, and this one wrote nothing: either may have read less of the
            # history than the other. Derive again from the history, from what this one
            # would have replaced on, and save it with a checkpoint of the whole (or lose to
            # the next one, which does the same).
            since = min(since, scanned.trip_from, scanned.session_from)
            resume = False
        raise ConflictError(f"deriving {vin}: its checkpoint kept changing under it")

    async def _resume(
        self, vin: str, brand: str, usable: float | None, since: int, text: str
    ) -> _Scanned | None:
        """Go on from the saved checkpoint with the rows after it; None if it cannot be
        resumed (data older than it added rows, other settings, a tariff changed)."""
        price_for = _Pricing(self, vin, brand)
        data = checkpoint.parse(text)
        if checkpoint.plugged_in(data):
            await price_for.load()  # the open session's tariff must still be the one for it
        saved = checkpoint.decode(data, self.settings, usable, price_for)
        if saved is None:
            return None
        holds = saved.holds(since)
        if holds is None:
            rows = await self.store.history_rows(vin, PATHS, since, saved.covered_ts + 1)
            holds = saved.unchanged(since, [ts for ts, _ in rows])
        elif not holds and saved.countable(since):
            stored = await self.store.count_rows(
                vin, PATHS, saved.counted_from, saved.covered_ts + 1
            )
            holds = stored == saved.count
        if not holds:
            return None
        timeline = Timeline(saved.covered_ts + 1, saved.current)
        timeline.extend(await self.store.history_rows(vin, PATHS, saved.covered_ts + 1))
        moments = timeline.moments
        if not price_for.loaded and any(is_plugged(moment) for moment in moments):
            await price_for.load()
        trips, sessions = saved.trips, saved.sessions
        # What the scans can change: the open trip (or one anchored at the last moment read)
        # and the open session on.
        trip_from = trips.open.first.ts if trips.open is not None else saved.covered_ts
        session_from = sessions.open.first.ts if sessions.open is not None else saved.covered_ts + 1
        trips_were_open, sessions_were_open = trips.open is not None, sessions.open is not None
        found_trips, found_sessions = _scan(vin, trips, moments, sessions, moments)
        return _Scanned(
            found_trips,
            trip_from,
            found_sessions,
            session_from,
            _checkpoint(timeline, trips, sessions, saved.recent, (saved.counted_from, saved.count))
            if moments
            else None,
            no_trips=not trips_were_open and not found_trips,
            no_sessions=not sessions_were_open and not found_sessions,
            resumed_from=saved.covered_ts,
        )

    async def _from_history(
        self, vin: str, brand: str, usable: float | None, since: int
    ) -> _Scanned:
        """Detect again from the start of every stored trip or session that data from
        `since` on can touch (and a lookback before), reading the committed history."""
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
        touched_from = min([since] + [t.start_ts for t in touched_trips])
        trip_read = touched_from - lookback
        session_read = min([since] + [s.start_ts for s in touched_sessions]) - lookback
        read_from = min(trip_read, session_read)
        seed = await self.store.last_values(vin, PATHS, read_from, SEED_WINDOW_US)
        timeline = Timeline(read_from, seed)
        timeline.extend(await self.store.history_rows(vin, PATHS, read_from))
        trip_moments, session_moments = timeline.since(trip_read), timeline.since(session_read)
        price_for = _Pricing(self, vin, brand)
        if touched_sessions or any(is_plugged(moment) for moment in session_moments):
            await price_for.load()
        trips, sessions = TripScan(self.settings, usable), SessionScan(self.settings, usable)
        sessions.price_for = price_for
        found_trips, found_sessions = _scan(vin, trips, trip_moments, sessions, session_moments)
        # A trip that ends before the horizon is stored as it is, unless it is one the data
        # touched (an open trip that the first data after a long gap completes).
        found_trips = [
            trip
            for trip in found_trips
            if trip.end_ts >= horizon or not trip.completed or trip.start_ts >= touched_from
        ]
        found_sessions = [s for s in found_sessions if s.end_ts >= horizon or not s.completed]
        trip_from = min([since] + [t.start_ts for t in (*found_trips, *touched_trips)])
        session_from = min([since] + [s.start_ts for s in (*found_sessions, *touched_sessions)])
        return _Scanned(
            found_trips,
            trip_from,
            found_sessions,
            session_from,
            _checkpoint(timeline, trips, sessions, (), (read_from, 0))
            if timeline.moments
            else None,
        )

    async def _replacements(
        self, vin: str, brand: str, scanned: _Scanned
    ) -> tuple[Replacement[Trip] | None, Replacement[ChargingSession] | None]:
        """What a derivation replaces of the stored trips and sessions: None for those it
        found exactly as stored."""
        trips = await name_trip_ends(self.places, vin, brand, scanned.trips)
        start = min(scanned.trip_from, scanned.session_from)
        trip_replacement: Replacement[Trip] | None = None
        session_replacement: Replacement[ChargingSession] | None = None
        if not scanned.no_trips and not _same(
            await self.store.trips_since(vin, start), scanned.trip_from, trips
        ):
            trip_replacement = Replacement(scanned.trip_from, trips, trip_events)
        if not scanned.no_sessions and not _same(
            await self.store.sessions_since(vin, start), scanned.session_from, scanned.sessions
        ):
            session_replacement = Replacement(
                scanned.session_from, scanned.sessions, session_events
            )
        return trip_replacement, session_replacement

    def forget(self, vin: str) -> None:
        """Drop what is cached about a vehicle (its model changed, or it was deleted)."""
        self._profiles.pop(vin, None)

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
