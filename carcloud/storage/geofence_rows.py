"""Rows of the geofence tables, shared by both backends: one encoding, one decoding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from carcloud.events.models import NewEvent
from carcloud.geofences.models import Geofence, Visit
from carcloud.geofences.store import EmitVisit, VisitChanges
from carcloud.telematics.timeline import Position

# Fence fields in table order (after id and brand_id); the brand slug comes from the join.
GEOFENCE_FIELDS = (
    "name", "shape", "points", "radius_m", "width_m", "margin_m", "min_dwell_s",
    "created_at", "updated_at",
)  # fmt: skip
# Visit fields after id, geofence_id and vehicle_id; the vin comes from the join.
VISIT_FIELDS = ("enter_ts", "exit_ts", "last_ts")
# The SELECT heads of both backends' reads (a WHERE clause follows).
FENCE_SELECT = (
    f"SELECT g.id, b.slug, {', '.join('g.' + f for f in GEOFENCE_FIELDS)} "
    "FROM geofences g JOIN brands b ON b.id = g.brand_id "
)
VISIT_SELECT = (
    f"SELECT s.id, s.geofence_id, v.vin, {', '.join('s.' + f for f in VISIT_FIELDS)} "
    "FROM geofence_visits s JOIN vehicles v ON v.id = s.vehicle_id "
)


def geofence_values(fence: Geofence) -> tuple[Any, ...]:
    """A fence's GEOFENCE_FIELDS values (points as JSON [[lat, lon], ...])."""
    points = orjson.dumps([[p.lat, p.lon] for p in fence.points]).decode()
    return (
        fence.name, fence.shape, points, fence.radius_m, fence.width_m, fence.margin_m,
        fence.min_dwell_s, fence.created_at, fence.updated_at,
    )  # fmt: skip


def geofence_of(geofence_id: str, brand: str, values: Sequence[Any]) -> Geofence:
    """A fence from its id, brand and GEOFENCE_FIELDS values."""
    v = list(values)
    return Geofence(
        id=geofence_id, brand=brand, name=v[0], shape=v[1],
        points=tuple(Position(lat, lon) for lat, lon in orjson.loads(v[2])),
        radius_m=v[3], width_m=v[4], margin_m=float(v[5]), min_dwell_s=float(v[6]),
        created_at=int(v[7]), updated_at=int(v[8]),
    )  # fmt: skip


def visit_values(visit: Visit) -> tuple[Any, ...]:
    """A visit's VISIT_FIELDS values."""
    return visit.enter_ts, visit.exit_ts, visit.last_ts


def visit_of(visit_id: str, geofence_id: str, vin: str, values: Sequence[Any]) -> Visit:
    """A visit from its id, fence, vin and VISIT_FIELDS values."""
    enter_ts, exit_ts, last_ts = values
    return Visit(
        visit_id, geofence_id, vin, int(enter_ts),
        int(exit_ts) if exit_ts is not None else None, int(last_ts),
    )  # fmt: skip


def diff_visits(
    old: Sequence[Visit], new: Sequence[Visit], emit: EmitVisit | None
) -> tuple[list[str], list[Visit], VisitChanges, list[NewEvent]]:
    """What replacing `old` by `new` takes: ids to delete, visits to write, the changes
    and their events (removals first, then by enter time)."""
    before = {visit.id: visit for visit in old}
    after = {visit.id: visit for visit in new}
    events: list[NewEvent] = []
    removed = [visit_id for visit_id in before if visit_id not in after]
    for visit_id in removed:
        events += emit(before[visit_id], None) if emit is not None else []
    written: list[Visit] = []
    created: list[str] = []
    updated: list[str] = []
    for visit in sorted(after.values(), key=lambda v: (v.enter_ts, v.id)):
        was = before.get(visit.id)
        if was == visit:
            continue
        written.append(visit)
        (created if was is None else updated).append(visit.id)
        events += emit(was, visit) if emit is not None else []
    changes = VisitChanges(tuple(created), tuple(updated), tuple(removed))
    return removed, written, changes, events
