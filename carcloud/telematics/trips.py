"""Trip detection: a pure function of a vehicle's timeline, in the car's own time.

A trip starts at the first moment the car moves (speed where the brand reports
it, else a driving gear, else power ON) and ends when it has stood still for
`stop_s` (the trip ends where it came to rest) or the power goes off. A gap in
the data (the car was offline) does not end a trip when the odometer or the
position shows the car kept driving through it. Because the result depends only
on the committed history, data that arrives late re-derives the same trips as
data that arrived live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from carcloud.telematics.energy import counted_kwh, interval_energy_kwh, power_intervals
from carcloud.telematics.models import (
    SECOND,
    TRIP_COMPLETED,
    TRIP_DRIVING,
    DetectionSettings,
    Trip,
    derived_id,
)
from carcloud.telematics.timeline import Moment, distance_km

# VSS CurrentGear: 0 neutral, 126 park; anything else is a driving gear.
_NOT_DRIVING_GEARS = (0, 126)


def is_moving(moment: Moment, settings: DetectionSettings) -> bool:
    """Whether the car moves, by the best signal it reports."""
    if moment.powered_off:
        return False
    if moment.speed_kmh is not None:
        return moment.speed_kmh >= settings.moving_kmh
    if moment.gear is not None:
        return moment.gear not in _NOT_DRIVING_GEARS
    return moment.power_state in ("ON", "START")


def moved_km(before: Moment, after: Moment) -> float | None:
    """How far the car went between two moments: odometer, else straight line."""
    if before.odometer_km is not None and after.odometer_km is not None:
        return max(0.0, after.odometer_km - before.odometer_km)
    if before.position is not None and after.position is not None:
        return distance_km(before.position, after.position)
    return None


def kept_driving(before: Moment, after: Moment, settings: DetectionSettings) -> bool:
    """Across a data gap: did the car drive on (far enough, at a plausible speed)?"""
    moved = moved_km(before, after)
    hours = (after.ts - before.ts) / SECOND / 3600
    if moved is None or hours <= 0:
        return False
    return moved >= settings.gap_min_km and moved / hours >= settings.gap_min_speed_kmh


@dataclass(frozen=True, slots=True)
class TripSpan:
    """Where a trip lies in the timeline: indexes of its first and last moment."""

    first: int
    last: int
    completed: bool


def find_trips(moments: Sequence[Moment], settings: DetectionSettings) -> list[TripSpan]:
    """The spans of every trip in the timeline, the last perhaps still open."""
    spans: list[TripSpan] = []
    start: int | None = None
    rest: int | None = None  # the moment the car came to rest inside the current trip
    gap_us = settings.gap_s * SECOND
    stop_us = settings.stop_s * SECOND
    for index, moment in enumerate(moments):
        moving = is_moving(moment, settings)
        if start is not None and index > 0:
            before = moments[index - 1]
            if moment.ts - before.ts > gap_us and not kept_driving(before, moment, settings):
                # Offline without driving on: the car stood still through the gap.
                if rest is None:
                    rest = index - 1
                if moment.ts - moments[rest].ts >= stop_us:
                    spans.append(TripSpan(start, rest, True))
                    start = rest = None
        if start is not None:
            if moment.powered_off:
                spans.append(TripSpan(start, index, True))
                start = rest = None
                continue
            if moving:
                rest = None
                continue
            if rest is None:
                rest = index
            if moment.ts - moments[rest].ts >= stop_us:
                spans.append(TripSpan(start, rest, True))
                start = rest = None
            continue
        if moving:
            floor = spans[-1].last + 1 if spans else 0
            start = max(floor, _anchor(moments, index, gap_us))
            rest = None
    if start is not None:
        spans.append(TripSpan(start, len(moments) - 1, False))
    return spans


def _anchor(moments: Sequence[Moment], index: int, gap_us: float) -> int:
    """A trip starts at the moment at rest just before the first movement, if close."""
    if index > 0 and moments[index].ts - moments[index - 1].ts <= gap_us:
        return index - 1
    return index


def build_trip(
    vin: str,
    moments: Sequence[Moment],
    span: TripSpan,
    settings: DetectionSettings,
    usable_kwh: float | None = None,
) -> Trip:
    """A trip's figures from the moments of its span."""
    first, last = moments[span.first], moments[span.last]
    inside = moments[span.first : span.last + 1]
    gap_us = settings.gap_s * SECOND
    if first.odometer_km is not None and last.odometer_km is not None:
        distance, source = max(0.0, last.odometer_km - first.odometer_km), "odometer"
    else:
        distance, source = _gps_km(inside), "gps"
    driving_s = 0.0
    for here, there, seconds in power_intervals(moments, span.first, span.last):
        across_gap = there.ts - here.ts > gap_us
        if is_moving(here, settings) or (across_gap and kept_driving(here, there, settings)):
            driving_s += seconds
    speeds = [m.speed_kmh for m in inside if m.speed_kmh is not None]
    temps = [m.outside_temp_c for m in inside if m.outside_temp_c is not None]
    energy, energy_source = _energy_used(moments, span, settings, usable_kwh)
    return Trip(
        id=derived_id("trp", vin, first.ts),
        vin=vin,
        status=TRIP_COMPLETED if span.completed else TRIP_DRIVING,
        start_ts=first.ts,
        end_ts=last.ts,
        start_position=first.position,
        end_position=last.position,
        distance_km=round(distance, 3),
        distance_source=source,
        driving_s=driving_s,
        max_speed_kmh=max(speeds) if speeds else None,
        energy_kwh=round(energy, 4) if energy is not None else None,
        energy_source=energy_source,
        start_soc=first.soc,
        end_soc=last.soc,
        start_fuel_level=first.fuel_level,
        end_fuel_level=last.fuel_level,
        outside_temp_c=round(sum(temps) / len(temps), 1) if temps else None,
        positions=sum(1 for m in inside if m.reported_position),
    )


def _gps_km(moments: Sequence[Moment]) -> float:
    total = 0.0
    previous = None
    for moment in moments:
        if moment.reported_position and moment.position is not None:
            if previous is not None:
                total += distance_km(previous, moment.position)
            previous = moment.position
    return total


def _energy_used(
    moments: Sequence[Moment],
    span: TripSpan,
    settings: DetectionSettings,
    usable_kwh: float | None,
) -> tuple[float | None, str | None]:
    """Measured by the battery's energy counters or from its power where reported, else
    state of charge x capacity."""
    counted = counted_kwh(moments[span.first], moments[span.last])
    if counted is not None:
        return -counted, "energy_counters"
    measured = [
        interval_energy_kwh(here, there, seconds, settings.gap_s, usable_kwh)
        for here, there, seconds in power_intervals(moments, span.first, span.last)
    ]
    known = [value for value in measured if value is not None]
    if known and any(m.battery_power_w is not None for m in moments[span.first : span.last + 1]):
        return -sum(known), "battery_power"
    first, last = moments[span.first], moments[span.last]
    if usable_kwh and first.soc is not None and last.soc is not None:
        return (first.soc - last.soc) / 100.0 * usable_kwh, "state_of_charge"
    return None, None


def is_trip(trip: Trip, settings: DetectionSettings) -> bool:
    """A completed drive shorter than the minimum or with too few positions is not a trip."""
    return trip.distance_km >= settings.min_distance_km and trip.positions >= settings.min_positions


def detect_trips(
    vin: str,
    moments: Sequence[Moment],
    settings: DetectionSettings,
    usable_kwh: float | None = None,
) -> list[Trip]:
    """Every trip of the timeline; an open one last, whatever its length so far."""
    trips = []
    for span in find_trips(moments, settings):
        trip = build_trip(vin, moments, span, settings, usable_kwh)
        if not span.completed or is_trip(trip, settings):
            trips.append(trip)
    return trips
