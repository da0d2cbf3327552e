"""What the telematics slice needs persisted: derived trips and sessions, tariffs, and a
read of committed history.

A derivation saves what it found in one transaction (`save_derivation`): the vehicle's
trips and sessions replaced from one time on, with the events of what changed, and the
checkpoint it stopped at, only if no other derivation of the vehicle saved since it read
its checkpoint. Which events a change produces is the service's rule (`emit`), the store
only calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from carcloud.events.models import NewEvent
from carcloud.ingest.models import SignalValue
from carcloud.telematics.models import Changes, ChargingSession, Trip
from carcloud.telematics.tariffs import Tariff
from carcloud.telematics.timeline import HistoryRow

D = TypeVar("D", Trip, ChargingSession)


@dataclass(frozen=True, slots=True)
class Replacement(Generic[D]):
    """Make the vehicle's trips (or sessions) that start at or after `start` exactly
    `items`; `emit` gives the events of each change (as stored before, as derived now)."""

    start: int
    items: Sequence[D]
    emit: Callable[[D | None, D | None], Sequence[NewEvent]] | None = None


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

    async def list_sessions(
        self, vin: str, brand: str | None, before: int | None = None, limit: int = 50
    ) -> list[ChargingSession]:
        """Sessions newest first, starting before `before`."""
        ...

    async def derive_checkpoint(self, vin: str) -> tuple[int, str] | None:
        """(version, state) of where the vehicle's derivation stopped; None if none is saved."""
        ...

    async def save_derivation(
        self,
        vin: str,
        version: int,
        trips: Replacement[Trip] | None,
        sessions: Replacement[ChargingSession] | None,
        checkpoint: str | None,
    ) -> tuple[Changes, Changes] | None:
        """In one transaction, if the vehicle's stored checkpoint is still version `version`
        (0: none): replace its trips and its sessions (None: leave them), with their events,
        and save `checkpoint` as version `version` + 1 (None: keep the stored one and its
        version). The trips' and the sessions' changes; None, and nothing written, if
        another checkpoint was saved since. NotFoundError for an unknown vehicle."""
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
