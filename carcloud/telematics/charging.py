"""Charging-session detection: a pure function of a vehicle's timeline.

One session per plug-in (cable connected until removed); inside it, a segment
for each stretch of charging (charging may pause and resume: solar, a charge
limit, a remote stop). Energy is counted per sample of power x time, each
sample in exactly one segment, so a pause never counts energy twice. A car that
does not report its cable has a session per charging segment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from carcloud.telematics.energy import interval_energy_kwh
from carcloud.telematics.models import (
    SECOND,
    SESSION_COMPLETED,
    SESSION_PLUGGED_IN,
    ChargingSegment,
    ChargingSession,
    DetectionSettings,
    derived_id,
)
from carcloud.telematics.places import Fence
from carcloud.telematics.tariffs import EnergyInterval, Tariff, add_cost, choose_tariff
from carcloud.telematics.timeline import Moment, Position


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


# The tariff that prices a session at a position (None: the session is not priced).
PriceFor = Callable[[Position | None], Tariff | None]


def _unpriced(position: Position | None) -> Tariff | None:
    return None


@dataclass(slots=True)
class SegmentTotals:
    """One stretch of charging so far: from `start_ts` over `intervals` power samples."""

    start_ts: int
    end_ts: int
    energy_kwh: float = 0.0
    peak_kw: float = 0.0
    intervals: int = 0

    def segment(self) -> ChargingSegment:
        return ChargingSegment(
            self.start_ts, self.end_ts, round(self.energy_kwh, 4), round(self.peak_kw, 3)
        )


@dataclass(slots=True)
class SessionTotals:
    """A plug-in's figures so far, from its first moment to `last`."""

    first: Moment
    last: Moment
    position: Position | None
    segments: list[ChargingSegment] = field(default_factory=list)
    charging: SegmentTotals | None = None  # the stretch of charging under way
    max_power_kw: float | None = None  # over the finished segments
    dc: bool = False
    ac: bool = False
    priced: bool = False  # the tariff is chosen (the session's position is known)
    tariff: Tariff | None = None
    cost: float = 0.0
    unpriced: list[EnergyInterval] = field(default_factory=list)  # before it was chosen

    def add_interval(
        self, here: Moment, there: Moment, settings: DetectionSettings, usable_kwh: float | None
    ) -> None:
        """One power sample of the segment under way, held from `here` to `there`."""
        segment = self.charging
        assert segment is not None
        seconds = (there.ts - here.ts) / SECOND
        added = max(
            0.0, interval_energy_kwh(here, there, seconds, settings.gap_s, usable_kwh) or 0.0
        )
        segment.energy_kwh += added
        segment.intervals += 1
        segment.end_ts = there.ts
        if self.priced:
            if self.tariff is not None:
                self.cost = add_cost(self.tariff, self.cost, (here.ts, there.ts, added))
        else:
            self.unpriced.append((here.ts, there.ts, added))
        segment.peak_kw = max(segment.peak_kw, (here.battery_power_w or 0.0) / 1000)
        self.dc = self.dc or (here.dc_current_a or 0.0) > 0
        self.ac = self.ac or (here.ac_current_a or 0.0) > 0

    def close_segment(self) -> None:
        segment = self.charging
        assert segment is not None
        self.segments.append(segment.segment())
        peak = segment.peak_kw
        self.max_power_kw = peak if self.max_power_kw is None else max(self.max_power_kw, peak)
        self.charging = None

    def price(self, tariff: Tariff | None) -> None:
        """Choose the tariff (once the position is known) and price what came before."""
        self.priced, self.tariff = True, tariff
        if tariff is not None:
            self.cost = tariff.price_per_session
            for interval in self.unpriced:
                self.cost = add_cost(tariff, self.cost, interval)
        self.unpriced = []

    def copy(self) -> SessionTotals:
        charging = dataclasses.replace(self.charging) if self.charging is not None else None
        return dataclasses.replace(
            self, segments=list(self.segments), charging=charging, unpriced=list(self.unpriced)
        )

    def session(self, vin: str, completed: bool, price_for: PriceFor) -> ChargingSession:
        """The session these figures make (an open one with its segment under way)."""
        totals = self
        if self.charging is not None and self.charging.intervals > 0 or not self.priced:
            totals = self.copy()
            if totals.charging is not None and totals.charging.intervals > 0:
                totals.close_segment()
            if not totals.priced:
                totals.price(price_for(None))
        first, last, tariff, max_power = self.first, self.last, totals.tariff, totals.max_power_kw
        return ChargingSession(
            id=derived_id("chg", vin, first.ts),
            vin=vin,
            status=SESSION_COMPLETED if completed else SESSION_PLUGGED_IN,
            start_ts=first.ts,
            end_ts=last.ts,
            segments=tuple(totals.segments),
            max_power_kw=round(max_power, 3) if max_power is not None else None,
            current_type="DC" if totals.dc else "AC" if totals.ac else None,
            start_soc=first.soc,
            end_soc=last.soc,
            position=self.position,
            cost=round(totals.cost, 2) if tariff is not None else None,
            currency=tariff.currency if tariff is not None else None,
            tariff_id=tariff.id if tariff is not None else None,
        )


@dataclass(slots=True)
class SessionScan:
    """Session detection moment by moment, resumable like `TripScan`: one session per
    plug-in, a segment per stretch of charging inside it, each power sample counted in
    exactly one segment and priced by the tariff for the session's position (its first
    known one) as it comes."""

    settings: DetectionSettings
    usable_kwh: float | None = None
    price_for: PriceFor = _unpriced
    open: SessionTotals | None = None

    def feed(self, moment: Moment, vin: str) -> ChargingSession | None:
        """Scan the next moment; the session it completes (the cable was removed)."""
        totals = self.open
        if totals is None:
            if not is_plugged(moment):
                return None
            totals = self.open = SessionTotals(moment, moment, moment.position)
        else:
            if totals.charging is not None:
                totals.add_interval(totals.last, moment, self.settings, self.usable_kwh)
            totals.last = moment
            if totals.position is None:
                totals.position = moment.position
        if not totals.priced and totals.position is not None:
            totals.price(self.price_for(totals.position))
        charging = is_charging(moment) and is_plugged(moment)
        if charging and totals.charging is None:
            totals.charging = SegmentTotals(moment.ts, moment.ts)
        elif not charging and totals.charging is not None:
            totals.close_segment()
        if is_plugged(moment):
            return None
        self.open = None
        return totals.session(vin, True, self.price_for)

    def open_session(self, vin: str) -> ChargingSession | None:
        """The session still plugged in at the last moment scanned."""
        return self.open.session(vin, False, self.price_for) if self.open is not None else None


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
    scan = SessionScan(settings, usable_kwh, pricing(vin, tariffs, fences))
    sessions = [session for moment in moments if (session := scan.feed(moment, vin))]
    still_open = scan.open_session(vin)
    return sessions if still_open is None else [*sessions, still_open]


def pricing(vin: str, tariffs: Sequence[Tariff], fences: Sequence[Fence]) -> PriceFor:
    """The tariff for a session of `vin` at a position: `choose_tariff` among `tariffs`."""

    def price_for(position: Position | None) -> Tariff | None:
        inside = [f.id for f in fences if position is not None and f.contains(position)]
        return choose_tariff(tariffs, vin, position, inside)

    return price_for
