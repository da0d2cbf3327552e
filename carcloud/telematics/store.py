"""What the telematics slice needs persisted: derived trips and sessions, tariffs, and a
read of committed history.

A re-derivation replaces a vehicle's trips (or sessions) from one time on, in one
transaction with the events of what changed; which events a change produces is
the service's rule (`emit`), the store only calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from carcloud.events.models import NewEvent
from carcloud.ingest.models import SignalValue
from carcloud.telematics.models import Changes, ChargingSession, Trip
from carcloud.telematics.tariffs import Tariff
from carcloud.telematics.timeline import HistoryRow

# (as stored before, as derived now): one of them may be None (new, or gone).
EmitTrip = Callable[[Trip | None, Trip | None], Sequence[NewEvent]]
EmitSession = Callable[[ChargingSession | None, ChargingSession | None], Sequence[NewEvent]]


class TelematicsStore(Protocol):
    """Trips, charging sessions and tariffs, over the committed telemetry history."""

    async def history_rows(
        self, vin: str, paths: Sequence[str], start: int, end: int | None = None
    ) -> list[HistoryRow]:
        """Rows in [start, end) that carry any of `paths`, oldest first, only those paths."""
        ...

    async def count_rows(
        self, vin: str, paths: Sequence[str], start: int, end: int | None = None
    ) -> int:
        """How many rows `history_rows` would return for the same arguments."""
        ...

    async def last_values(
        self, vin: str, paths: Sequence[str], before: int, within_us: int
    ) -> dict[str, SignalValue]:
        """Each path's newest value in [before - within_us, before), where there is one."""
        ...

    async def trips_since(self, vin: str, since: int) -> list[Trip]:
        """The vehicle's trips that end at or after `since` (an open trip always), by start."""
        ...

    async def replace_trips(
        self, vin: str, start: int, trips: Sequence[Trip], emit: EmitTrip | None = None
    ) -> Changes:
        """Make the vehicle's trips that start at or after `start` exactly `trips`."""
        ...

    async def list_trips(
        self, vin: str, brand: str | None, before: int | None = None, limit: int = 50
    ) -> list[Trip]:
        """Trips newest first, starting before `before`; NotFoundError for an unseen vehicle."""
        ...

    async def get_trip(self, vin: str, brand: str | None, trip_id: str) -> Trip:
        """One trip; NotFoundError if it (or the vehicle) is not there for the caller."""
        ...

    async def sessions_since(self, vin: str, since: int) -> list[ChargingSession]:
        """Sessions that end at or after `since` (an open one always), by start."""
        ...

    async def replace_sessions(
        self,
        vin: str,
        start: int,
        sessions: Sequence[ChargingSession],
        emit: EmitSession | None = None,
    ) -> Changes:
        """Make the vehicle's sessions that start at or after `start` exactly `sessions`."""
        ...

    async def list_sessions(
        self, vin: str, brand: str | None, before: int | None = None, limit: int = 50
    ) -> list[ChargingSession]:
        """Sessions newest first, starting before `before`."""
        ...

    async def derive_checkpoint(self, vin: str) -> tuple[int, str] | None:
        """(version, state) of where the vehicle's derivation stopped; None if none is saved."""
        ...

    async def save_derive_checkpoint(self, vin: str, version: int, state: str) -> bool:
        """Save a derivation's checkpoint as version `version` + 1 if the stored one is still
        `version` (0: none); False (nothing saved) if another was saved since."""
        ...

    async def save_tariff(self, tariff: Tariff) -> Tariff:
        """Create or replace a tariff (by id)."""
        ...

    async def get_tariff(self, tariff_id: str, brand: str | None) -> Tariff:
        """One tariff; NotFoundError if it is not there for the caller."""
        ...

    async def list_tariffs(self, brand: str | None) -> list[Tariff]:
        """Tariffs of a brand (every brand for None), oldest first."""
        ...

    async def vehicle_profile(self, vin: str) -> tuple[str, str] | None:
        """(brand, model) of a vehicle; None if it is not registered."""
        ...
