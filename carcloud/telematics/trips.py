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

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from carcloud.telematics.energy import counted_kwh, interval_energy_kwh
from carcloud.telematics.models import (
    SECOND,
    TRIP_COMPLETED,
    TRIP_DRIVING,
    DetectionSettings,
    Trip,
    derived_id,
)
from carcloud.telematics.timeline import Moment, Position, distance_km

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


@dataclass(slots=True)
class TripTotals:
    """A trip's figures so far, from its first moment to `last`: what `TripScan` carries
    between moments instead of the moments themselves."""

    first: Moment
    last: Moment
    gps_km: float = 0.0
    gps_last: Position | None = None  # the last position the car reported inside
    driving_s: float = 0.0
    max_speed_kmh: float | None = None
    temp_sum: float = 0.0
    temps: int = 0
    power_kwh: float = 0.0  # energy into the battery by power samples (known intervals)
    power_known: bool = False  # some interval's energy is known
    power_reported: bool = False  # some moment inside reports battery power
    positions: int = 0

    @classmethod
    def begin(cls, moment: Moment) -> TripTotals:
        totals = cls(moment, moment)
        totals._count(moment)
        return totals

    def add(self, moment: Moment, settings: DetectionSettings, usable_kwh: float | None) -> None:
        """Extend the trip by the next moment (and the interval that leads to it)."""
        here, seconds = self.last, (moment.ts - self.last.ts) / SECOND
        across_gap = moment.ts - here.ts > settings.gap_s * SECOND
        if is_moving(here, settings) or (across_gap and kept_driving(here, moment, settings)):
            self.driving_s += seconds
        energy = interval_energy_kwh(here, moment, seconds, settings.gap_s, usable_kwh)
        if energy is not None:
            self.power_kwh += energy
            self.power_known = True
        self.last = moment
        self._count(moment)

    def _count(self, moment: Moment) -> None:
        if moment.speed_kmh is not None:
            speed = self.max_speed_kmh
            self.max_speed_kmh = moment.speed_kmh if speed is None else max(speed, moment.speed_kmh)
        if moment.outside_temp_c is not None:
            self.temp_sum += moment.outside_temp_c
            self.temps += 1
        if moment.battery_power_w is not None:
            self.power_reported = True
        if moment.reported_position:
            self.positions += 1
            if moment.position is not None:
                if self.gps_last is not None:
                    self.gps_km += distance_km(self.gps_last, moment.position)
                self.gps_last = moment.position

    def copy(self) -> TripTotals:
        return dataclasses.replace(self)

    def trip(self, vin: str, completed: bool, usable_kwh: float | None) -> Trip:
        """The trip these figures make."""
        first, last = self.first, self.last
        if first.odometer_km is not None and last.odometer_km is not None:
            distance, source = max(0.0, last.odometer_km - first.odometer_km), "odometer"
        else:
            distance, source = self.gps_km, "gps"
        energy, energy_source = self._energy_used(usable_kwh)
        return Trip(
            id=derived_id("trp", vin, first.ts),
            vin=vin,
            status=TRIP_COMPLETED if completed else TRIP_DRIVING,
            start_ts=first.ts,
            end_ts=last.ts,
            start_position=first.position,
            end_position=last.position,
            distance_km=round(distance, 3),
            distance_source=source,
            driving_s=self.driving_s,
            max_speed_kmh=self.max_speed_kmh,
            energy_kwh=round(energy, 4) if energy is not None else None,
            energy_source=energy_source,
            start_soc=first.soc,
            end_soc=last.soc,
            start_fuel_level=first.fuel_level,
            end_fuel_level=last.fuel_level,
            outside_temp_c=round(self.temp_sum / self.temps, 1) if self.temps else None,
            positions=self.positions,
        )

    def _energy_used(self, usable_kwh: float | None) -> tuple[float | None, str | None]:
        """Measured by the battery's energy counters or from its power where reported, else
        state of charge x capacity."""
        first, last = self.first, self.last
        counted = counted_kwh(first, last)
        if counted is not None:
            return -counted, "energy_counters"
        if self.power_known and self.power_reported:
            return -self.power_kwh, "battery_power"
        if usable_kwh and first.soc is not None and last.soc is not None:
            return (first.soc - last.soc) / 100.0 * usable_kwh, "state_of_charge"
        return None, None


@dataclass(slots=True)
class TripScan:
    """Trip detection moment by moment, resumable: its state is small (the last moment,
    the open trip's figures, where the car came to rest) whatever the trip's length, so a
    derivation can go on from a saved scan with only the newer moments.

    A trip starts at the first moment the car moves (at the moment at rest just before
    it, if close and not the end of the trip before) and ends when it has stood still
    for `stop_s` (where it came to rest) or the power goes off; across a data gap it
    goes on only if the car kept driving.
    """

    settings: DetectionSettings
    usable_kwh: float | None = None
    prev: Moment | None = None  # the last moment scanned
    last_end_ts: int | None = None  # where the last trip (or too short a drive) ended
    open: TripTotals | None = None  # the trip under way, through `prev`
    rest: TripTotals | None = None  # the open trip up to where the car came to rest

    def feed(self, moment: Moment, vin: str) -> list[Trip]:
        """Scan the next moment; the trips it completes (drives too short are dropped)."""
        settings = self.settings
        done: list[Trip] = []
        prev = self.prev
        gap = prev is not None and moment.ts - prev.ts > settings.gap_s * SECOND
        if (
            self.open is not None
            and prev is not None
            and gap
            and not kept_driving(prev, moment, settings)
        ):
            # Offline without driving on: the car stood still through the gap.
            if self.rest is None:
                self.rest = self.open.copy()
            if moment.ts - self.rest.last.ts >= settings.stop_s * SECOND:
                self._complete(self.rest, vin, done)
        if self.open is not None:
            self.open.add(moment, settings, self.usable_kwh)
            if moment.powered_off:
                self._complete(self.open, vin, done)
            elif is_moving(moment, settings):
                self.rest = None
            else:
                if self.rest is None:
                    self.rest = self.open.copy()
                if moment.ts - self.rest.last.ts >= settings.stop_s * SECOND:
                    self._complete(self.rest, vin, done)
        elif is_moving(moment, settings):
            self.rest = None
            if (
                prev is not None
                and moment.ts - prev.ts <= settings.gap_s * SECOND
                and (self.last_end_ts is None or prev.ts > self.last_end_ts)
            ):
                self.open = TripTotals.begin(prev)
                self.open.add(moment, settings, self.usable_kwh)
            else:
                self.open = TripTotals.begin(moment)
        self.prev = moment
        return done

    def _complete(self, totals: TripTotals, vin: str, done: list[Trip]) -> None:
        trip = totals.trip(vin, True, self.usable_kwh)
        if is_trip(trip, self.settings):
            done.append(trip)
        self.last_end_ts = totals.last.ts
        self.open = self.rest = None

    def open_trip(self, vin: str) -> Trip | None:
        """The trip still under way at the last moment scanned, whatever its length so far."""
        return self.open.trip(vin, False, self.usable_kwh) if self.open is not None else None


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
    scan = TripScan(settings, usable_kwh)
    trips = [trip for moment in moments for trip in scan.feed(moment, vin)]
    still_open = scan.open_trip(vin)
    return trips if still_open is None else [*trips, still_open]
