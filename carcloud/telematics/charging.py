"""Charging-session detection: a pure function of a vehicle's timeline.

One session per plug-in (cable connected until removed); inside it, a segment
for each stretch of charging (charging may pause and resume: solar, a charge
limit, a remote stop). Energy is counted per sample of power x time, each
sample in exactly one segment, so a pause never counts energy twice. A car that
does not report its cable has a session per charging segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from carcloud.telematics.energy import interval_energy_kwh, power_intervals
from carcloud.telematics.models import (
    SESSION_COMPLETED,
    SESSION_PLUGGED_IN,
    ChargingSegment,
    ChargingSession,
    DetectionSettings,
    derived_id,
)
from carcloud.telematics.places import Fence
from carcloud.telematics.tariffs import EnergyInterval, Tariff, choose_tariff, session_cost
from carcloud.telematics.timeline import Moment


def is_plugged(moment: Moment) -> bool:
    """The cable is in (or, for a car that does not report it, the car charges)."""
    if moment.cable is not None:
        return moment.cable
    return is_charging(moment)


def is_charging(moment: Moment) -> bool:
    """The car says it charges, or (if it does not say) power flows into the battery."""
    if moment.charging is not None:
        return moment.charging
    return (
        moment.battery_power_w is not None
        and moment.battery_power_w > 0
        and (moment.speed_kmh is None or moment.speed_kmh == 0)
    )


@dataclass(frozen=True, slots=True)
class SessionSpan:
    """Where a session lies in the timeline, and its charging stretches (index ranges)."""

    first: int
    last: int
    segments: tuple[tuple[int, int], ...]
    completed: bool


def find_sessions(moments: Sequence[Moment]) -> list[SessionSpan]:
    """Every plug-in of the timeline, the last perhaps still plugged in."""
    spans: list[SessionSpan] = []
    start: int | None = None
    segment_start: int | None = None
    segments: list[tuple[int, int]] = []
    for index, moment in enumerate(moments):
        if start is None:
            if not is_plugged(moment):
                continue
            start, segments, segment_start = index, [], None
        charging = is_charging(moment) and is_plugged(moment)
        if charging and segment_start is None:
            segment_start = index
        elif not charging and segment_start is not None:
            segments.append((segment_start, index))
            segment_start = None
        if not is_plugged(moment):
            spans.append(SessionSpan(start, index, tuple(segments), True))
            start = None
    if start is not None:
        last = len(moments) - 1
        if segment_start is not None and segment_start < last:
            segments.append((segment_start, last))
        spans.append(SessionSpan(start, last, tuple(segments), False))
    return spans


def build_session(
    vin: str,
    moments: Sequence[Moment],
    span: SessionSpan,
    settings: DetectionSettings,
    usable_kwh: float | None = None,
    tariff: Tariff | None = None,
) -> ChargingSession:
    """A session's figures from its moments, priced by `tariff` when one applies."""
    segments = []
    intervals: list[EnergyInterval] = []
    max_power = None
    dc = ac = False
    for first, last in span.segments:
        energy = 0.0
        peak = 0.0
        for here, there, seconds in power_intervals(moments, first, last):
            added = max(
                0.0, interval_energy_kwh(here, there, seconds, settings.gap_s, usable_kwh) or 0.0
            )
            energy += added
            intervals.append((here.ts, there.ts, added))
            peak = max(peak, (here.battery_power_w or 0.0) / 1000)
            dc = dc or (here.dc_current_a or 0.0) > 0
            ac = ac or (here.ac_current_a or 0.0) > 0
        segments.append(
            ChargingSegment(moments[first].ts, moments[last].ts, round(energy, 4), round(peak, 3))
        )
        max_power = peak if max_power is None else max(max_power, peak)
    first_moment, last_moment = moments[span.first], moments[span.last]
    position = next(
        (m.position for m in moments[span.first : span.last + 1] if m.position is not None),
        None,
    )
    return ChargingSession(
        id=derived_id("chg", vin, first_moment.ts),
        vin=vin,
        status=SESSION_COMPLETED if span.completed else SESSION_PLUGGED_IN,
        start_ts=first_moment.ts,
        end_ts=last_moment.ts,
        segments=tuple(segments),
        max_power_kw=round(max_power, 3) if max_power is not None else None,
        current_type="DC" if dc else "AC" if ac else None,
        start_soc=first_moment.soc,
        end_soc=last_moment.soc,
        position=position,
        cost=session_cost(tariff, intervals) if tariff is not None else None,
        currency=tariff.currency if tariff is not None else None,
        tariff_id=tariff.id if tariff is not None else None,
    )


def detect_sessions(
    vin: str,
    moments: Sequence[Moment],
    settings: DetectionSettings,
    usable_kwh: float | None = None,
    tariffs: Sequence[Tariff] = (),
    fences: Sequence[Fence] = (),
) -> list[ChargingSession]:
    """Every charging session of the timeline, priced by the tariff that fits (`fences`: the
    brand's geofences, for tariffs attached to one); an open one last."""
    sessions = []
    for span in find_sessions(moments):
        session = build_session(vin, moments, span, settings, usable_kwh)
        position = session.position
        inside = [f.id for f in fences if position is not None and f.contains(position)]
        tariff = choose_tariff(tariffs, vin, position, inside)
        if tariff is not None:
            session = build_session(vin, moments, span, settings, usable_kwh, tariff)
        sessions.append(session)
    return sessions
