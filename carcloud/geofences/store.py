"""What the geofences slice needs persisted: fences, visits, and a read of committed history.

A re-derivation replaces a vehicle's visits from one time on, in one transaction
with the events of what changed; which events is the service's rule (`emit`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from carcloud.events.models import NewEvent
from carcloud.geofences.models import Geofence, Visit
from carcloud.telematics.timeline import HistoryRow

# (as stored before, as derived now): one of them may be None (new, or gone).
EmitVisit = Callable[[Visit | None, Visit | None], Sequence[NewEvent]]


@dataclass(frozen=True, slots=True)
class VisitChanges:
    """What one re-derivation changed in a vehicle's stored visits (ids)."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


class HistoryReader(Protocol):
    """Committed telemetry history (the telematics store answers this)."""

    async def history_rows(
        self, vin: str, paths: Sequence[str], start: int, end: int | None = None
    ) -> list[HistoryRow]:
        """Rows in [start, end) that carry any of `paths`, oldest first, only those paths."""
        ...


class GeofenceStore(Protocol):
    """Fences of each brand and the visits of each vehicle."""

    async def save_geofence(self, fence: Geofence) -> Geofence:
        """Create or replace a fence (by id); NotFoundError for an unknown brand."""
        ...

    async def get_geofence(self, geofence_id: str, brand: str | None) -> Geofence:
        """One fence; NotFoundError if it is not there for the caller."""
        ...

    async def list_geofences(self, brand: str | None) -> list[Geofence]:
        """Fences of a brand (every brand for None), oldest first."""
        ...

    async def delete_geofence(self, geofence_id: str, brand: str | None) -> Geofence:
        """Delete a fence and its visits; returns it as it was."""
        ...

    async def vehicle_brand(self, vin: str) -> str | None:
        """The brand of a registered vehicle; None if it is not registered."""
        ...

    async def visits_since(self, vin: str, since: int) -> list[Visit]:
        """The vehicle's visits still open or exited at or after `since`, by enter time."""
        ...

    async def replace_visits(
        self, vin: str, start: int, visits: Sequence[Visit], emit: EmitVisit | None = None
    ) -> VisitChanges:
        """Make the vehicle's visits that are open, entered at or after `start`, or are one
        of `visits` (by id), exactly `visits`."""
        ...

    async def list_visits(
        self,
        brand: str | None,
        geofence_id: str | None = None,
        vin: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[Visit]:
        """Visits newest first (entered before `before`), of fences the caller may see."""
        ...
