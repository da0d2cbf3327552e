"""Visits detected from a car's positions in its own time: a pure function of history.

Each position is *in* (inside the shape), *out* (more than the fence's margin
outside it) or in the band between, which changes nothing. A change from out to
in (or back) is a candidate from its first position on; it becomes an enter (or
an exit) once it has lasted `min_dwell_s`, and a position on the other side
before that cancels it. The enter time is the first position inside; the exit
time the first position clearly outside. So GPS jitter at the edge, in the band
or shorter than the dwell, gives one enter and one exit, not a flapping series.
"""

from __future__ import annotations

from collections.abc import Sequence

from carcloud.geofences.models import SECOND, Geofence, Visit, visit_id
from carcloud.telematics.timeline import Position

# One reported position in the car's time.
Fix = tuple[int, Position]


def detect_visits(
    vin: str, fence: Geofence, fixes: Sequence[Fix], resume: Visit | None = None
) -> list[Visit]:
    """The visits of `vin` to `fence` in `fixes` (time order), starting outside, or inside
    the open visit `resume` (then `fixes` are those after its `last_ts`)."""
    dwell_us = int(fence.min_dwell_s * SECOND)
    visits: list[Visit] = []
    inside = resume is not None
    entered = resume.enter_ts if resume is not None else 0
    last = resume.last_ts if resume is not None else 0
    candidate: int | None = None  # since when the car seems to have changed side
    previous: Position | None = None
    side = 0
    for ts, position in fixes:
        if position != previous:  # a parked car repeats its position: its side too
            side, previous = fence.area.side(position, fence.margin_m), position
        is_in, is_out = side == 1, side == -1
        if inside:
            if is_out and candidate is None:
                candidate = ts
            elif is_in:
                candidate = None
        elif is_in and candidate is None:
            candidate = ts
        elif is_out:
            candidate = None
        if candidate is not None and ts - candidate >= dwell_us:
            if inside:
                visits.append(Visit(visit_id(vin, fence.id, entered), fence.id, vin, entered,
                                    candidate, candidate))  # fmt: skip
            else:
                entered = last = candidate
            inside, candidate = not inside, None
        if inside and candidate is None:
            last = ts  # still there (a position in the band counts as there)
    if inside:
        visits.append(Visit(visit_id(vin, fence.id, entered), fence.id, vin, entered, None, last))
    return visits
