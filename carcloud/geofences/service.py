"""The geofences slice's rules: fences per brand, and visits derived from committed history.

`derive(vin, since)` is called by the derive worker with the oldest vehicle time
(`ts`) of newly committed data. Visits are a function of the committed positions
only, never of arrival order, so a backlog that arrives late gives the visits it
would have given live. A car still inside a fence resumes from its open visit,
so a car parked in a fence for days does not make every derivation re-read days.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Sequence

from carcloud.errors import ValidationError
from carcloud.events.models import NewEvent
from carcloud.geofences.models import SECOND, Geofence, Visit, visit_document
from carcloud.geofences.store import EmitVisit, GeofenceStore, HistoryReader, VisitChanges
from carcloud.geofences.visits import Fix, detect_visits
from carcloud.telematics.timeline import LATITUDE, LONGITUDE, Position
from carcloud.timeutil import now_us

# Re-derivation looks this far before new data (on top of the longest dwell), so that
# a change of side that began just before it is seen whole.
LOOKBACK_US = 120 * SECOND
# Fences changed by another process are seen after at most this long.
FENCE_CACHE_S = 5.0


def visit_events(
    fences: dict[str, Geofence],
) -> EmitVisit:
    """The events of a visit change: entered when it first appears, exited when it ends."""

    def emit(before: Visit | None, after: Visit | None) -> list[NewEvent]:
        if after is None:
            return []  # late data showed it was no visit: nothing to tell
        fence = fences.get(after.geofence_id)
        data = visit_document(after, fence)
        events = []
        if before is None:
            entered = {**data, "exited_at": None, "inside": True, "dwell_s": 0.0}
            events.append(NewEvent("geofence.entered", vin=after.vin, data=entered))
        if after.exit_ts is not None and (before is None or before.exit_ts is None):
            events.append(NewEvent("geofence.exited", vin=after.vin, data=data))
        return events

    return emit


def keep_ids(stored: Sequence[Visit], derived: Sequence[Visit]) -> list[Visit]:
    """Derived visits, each taking the id of the stored visit of its fence it overlaps.

    Late data can move a visit's enter earlier (the car was offline when it came in):
    it is still the same stay, so it keeps its id and gets no second `geofence.entered`.
    """
    free = {visit.id: visit for visit in stored}
    kept: list[Visit] = []
    for visit in derived:
        end = visit.exit_ts if visit.exit_ts is not None else 2**62
        for old in free.values():
            old_end = old.exit_ts if old.exit_ts is not None else 2**62
            if (
                old.geofence_id == visit.geofence_id
                and old.enter_ts <= end
                and visit.enter_ts <= old_end
            ):
                visit = dataclasses.replace(visit, id=old.id)
                del free[old.id]
                break
        kept.append(visit)
    return kept


def fixes_of(rows: Sequence[tuple[int, object]]) -> list[Fix]:
    """Reported positions of history rows (rows without both coordinates are skipped)."""
    fixes: list[Fix] = []
    for ts, values in rows:
        lat, lon = values.get(LATITUDE), values.get(LONGITUDE)  # type: ignore[attr-defined]
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            try:
                fixes.append((ts, Position(float(lat), float(lon))))
            except ValueError:
                continue  # outside WGS84: ingest's bounds should have kept it out
    return fixes


class GeofenceService:
    """Fences and visits."""

    def __init__(self, store: GeofenceStore, history: HistoryReader) -> None:
        self.store = store
        self.history = history
        self._brands: dict[str, str] = {}
        self._fences: dict[str, tuple[float, list[Geofence]]] = {}

    # ---- derivation ------------------------------------------------------------------------

    async def derive(self, vin: str, since: int) -> VisitChanges:
        """Re-derive the vehicle's visits that committed data from `since` on can change."""
        brand = self._brands.get(vin)
        if brand is None:
            brand = await self.store.vehicle_brand(vin)
            if brand is None:
                return VisitChanges()
            self._brands[vin] = brand
        fences = await self._fences_of(brand)
        if not fences:
            return VisitChanges()
        lookback = LOOKBACK_US + int(max(f.min_dwell_s for f in fences) * SECOND)
        touched = await self.store.visits_since(vin, since - lookback)
        # An open visit with nothing new inside it resumes; any other visit the new
        # data can touch is derived again from its enter on.
        resume = {v.geofence_id: v for v in touched if v.inside and v.last_ts < since}
        start = min([since - lookback] + [v.enter_ts for v in touched if v not in resume.values()])
        read_from = min([start] + [v.last_ts + 1 for v in resume.values()])
        fixes = fixes_of(await self.history.history_rows(vin, (LATITUDE, LONGITUDE), read_from))
        positions = {position for _, position in fixes}  # a parked car: one
        visits: list[Visit] = []
        for fence in fences:
            open_visit = resume.get(fence.id)
            if open_visit is not None:
                after = [fix for fix in fixes if fix[0] > open_visit.last_ts]
                visits += detect_visits(vin, fence, after, open_visit)
            elif any(fence.area.side(p, fence.margin_m) != -1 for p in positions):
                visits += detect_visits(vin, fence, [fix for fix in fixes if fix[0] >= start])
            # else: every position is clearly out of it, so no visit starts (detection
            # starts outside and a position out only cancels a candidate enter)
        if not visits and not touched:
            # Nothing derived and nothing stored to replace: every stored visit ended
            # before `start` (touched has those that did not), so the replacement would
            # change nothing. A car outside every fence costs no write transaction.
            return VisitChanges()
        by_id = {fence.id: fence for fence in fences}
        visits = keep_ids(touched, visits)
        return await self.store.replace_visits(vin, start, visits, visit_events(by_id))

    async def _fences_of(self, brand: str) -> list[Geofence]:
        cached = self._fences.get(brand)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        fences = await self.store.list_geofences(brand)
        self._fences[brand] = (time.monotonic() + FENCE_CACHE_S, fences)
        return fences

    def forget(self, vin: str) -> None:
        """Drop what is cached about a vehicle (it was deleted or changed brand)."""
        self._brands.pop(vin, None)

    # ---- fences ----------------------------------------------------------------------------

    async def create_geofence(self, draft: Geofence) -> Geofence:
        """Store a new fence (the draft's id and times are replaced)."""
        now = now_us()
        fence = _with(draft, id=f"gfn_{secrets.token_hex(8)}", created_at=now, updated_at=now)
        saved = await self.store.save_geofence(fence)
        self._fences.pop(saved.brand, None)
        return saved

    async def replace_geofence(
        self, geofence_id: str, brand: str | None, draft: Geofence
    ) -> Geofence:
        """Replace a fence the caller may see; it keeps its id, brand and creation time.

        Visits already derived keep the old shape; visits derived from now on use the new.
        """
        current = await self.store.get_geofence(geofence_id, brand)
        if draft.brand != current.brand:
            raise ValidationError(f"brand: a geofence keeps its brand ({current.brand})")
        fence = _with(draft, id=current.id, created_at=current.created_at, updated_at=now_us())
        saved = await self.store.save_geofence(fence)
        self._fences.pop(saved.brand, None)
        return saved

    async def delete_geofence(self, geofence_id: str, brand: str | None) -> Geofence:
        """Delete a fence the caller may see, and its visits."""
        deleted = await self.store.delete_geofence(geofence_id, brand)
        self._fences.pop(deleted.brand, None)
        return deleted

    async def get_geofence(self, geofence_id: str, brand: str | None) -> Geofence:
        """One fence the caller may see."""
        return await self.store.get_geofence(geofence_id, brand)

    async def list_geofences(self, brand: str | None) -> list[Geofence]:
        """Fences of a brand, or every fence for None."""
        return await self.store.list_geofences(brand)

    async def list_visits(
        self,
        brand: str | None,
        geofence_id: str | None = None,
        vin: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[Visit]:
        """Visits newest first, with their dwell time; only of fences the caller may see."""
        if not 1 <= limit <= 1000:
            raise ValidationError(f"limit must be 1 to 1000, not {limit}")
        if geofence_id is not None:
            await self.store.get_geofence(geofence_id, brand)  # NotFound for another brand's
        return await self.store.list_visits(brand, geofence_id, vin, before, limit)

    async def brand_fences(self, brand: str) -> list[Geofence]:
        """The brand's fences, oldest first: this process's own changes at once, other
        processes' after at most FENCE_CACHE_S (trips and tariffs read them when derived)."""
        return await self._fences_of(brand)

    async def containing(self, brand: str, position: Position) -> list[Geofence]:
        """The brand's fences that contain a position (no margin), oldest first."""
        return [fence for fence in await self._fences_of(brand) if fence.contains(position)]


def _with(fence: Geofence, **changes: object) -> Geofence:
    return dataclasses.replace(fence, **changes)  # type: ignore[arg-type]
