"""Charging tariffs: a price per kWh, per minute and per session, with time-of-use periods.

A tariff belongs to a brand and applies to the VINs it lists (none: every vehicle
of the brand), and, when it is attached to a place, only to sessions there: a
`home` circle, or one of the brand's geofences (`geofence_id`). The most specific
tariff that fits a session prices it (`applies_to`, `choose_tariff`; the precedence
is in docs/telematics.md). Period boundaries are local times in the
tariff's time zone. Cost is computed per power sample: each sample's energy is
priced by the period it falls in, split at a boundary that falls inside it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carcloud.errors import ValidationError
from carcloud.telematics.timeline import Position, distance_km
from carcloud.vin import describe_invalid_vin, is_valid_vin

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")
_CURRENCY = re.compile(r"[A-Z]{3}")

# (start ts, end ts, kWh added): one power sample held until the next.
EnergyInterval = tuple[int, int, float]


def _price(value: float | None, name: str, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValidationError(f"{name} must be a number >= 0, not {value!r}")


def clock_minutes(text: str, name: str) -> int:
    """Minutes after local midnight of "HH:MM" (24:00 is the end of the day)."""
    if not isinstance(text, str) or not _CLOCK.fullmatch(text):
        raise ValidationError(f"{name} must be a time of day HH:MM (00:00 to 24:00), not {text!r}")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True, slots=True)
class TariffPeriod:
    """Prices that replace the base ones on some days between two local times."""

    days: tuple[str, ...]
    start: str
    end: str
    price_per_kwh: float | None = None
    price_per_minute: float | None = None

    def check(self, where: str) -> None:
        """ValidationError naming the field, e.g. periods[1].start."""
        if not self.days or any(day not in DAYS for day in self.days):
            raise ValidationError(f"{where}.days must list some of {', '.join(DAYS)}")
        start = clock_minutes(self.start, f"{where}.start")
        end = clock_minutes(self.end, f"{where}.end")
        if start == end:
            raise ValidationError(f"{where}.end must differ from {where}.start")
        _price(self.price_per_kwh, f"{where}.price_per_kwh", optional=True)
        _price(self.price_per_minute, f"{where}.price_per_minute", optional=True)

    def covers(self, local: datetime) -> bool:
        """Whether a local time falls in this period (a period may run past midnight)."""
        minute = local.hour * 60 + local.minute
        start, end = clock_minutes(self.start, "start"), clock_minutes(self.end, "end")
        if start < end:
            return DAYS[local.weekday()] in self.days and start <= minute < end
        if minute >= start:
            return DAYS[local.weekday()] in self.days
        # After midnight: the period belongs to the day it started on.
        return DAYS[(local.weekday() - 1) % 7] in self.days and minute < end


@dataclass(frozen=True, slots=True)
class Place:
    """A circle: a vehicle's home."""

    lat: float
    lon: float
    radius_m: float

    def contains(self, position: Position) -> bool:
        return distance_km(Position(self.lat, self.lon), position) * 1000 <= self.radius_m


@dataclass(frozen=True, slots=True)
class Tariff:
    """A brand's price for charging, validated on creation."""

    id: str
    brand: str
    name: str
    currency: str
    timezone: str = "UTC"
    price_per_kwh: float = 0.0
    price_per_minute: float = 0.0
    price_per_session: float = 0.0
    periods: tuple[TariffPeriod, ...] = ()
    vins: tuple[str, ...] = ()
    home: Place | None = None
    geofence_id: str | None = None
    created_at: int = 0
    updated_at: int = 0
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > 100:
            raise ValidationError("name must be 1 to 100 characters")
        if not isinstance(self.currency, str) or not _CURRENCY.fullmatch(self.currency):
            raise ValidationError(
                f"currency must be an ISO 4217 code such as EUR, not {self.currency!r}"
            )
        try:
            object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValidationError(
                f"timezone must be an IANA time zone such as Europe/Berlin, not {self.timezone!r}"
            ) from exc
        _price(self.price_per_kwh, "price_per_kwh")
        _price(self.price_per_minute, "price_per_minute")
        _price(self.price_per_session, "price_per_session")
        for index, period in enumerate(self.periods):
            period.check(f"periods[{index}]")
        for index, vin in enumerate(self.vins):
            if not is_valid_vin(vin):
                raise ValidationError(f"vins[{index}]: {describe_invalid_vin(vin)}")
        if self.home is not None:
            if not (-90 <= self.home.lat <= 90 and -180 <= self.home.lon <= 180):
                raise ValidationError("home.lat/home.lon must be WGS84 degrees")
            if not 0 < self.home.radius_m <= 100_000:
                raise ValidationError("home.radius_m must be > 0 and <= 100000")
        if self.geofence_id is not None:
            if not isinstance(self.geofence_id, str) or not 0 < len(self.geofence_id) <= 100:
                raise ValidationError("geofence_id must be a geofence's id")
            if self.home is not None:
                raise ValidationError(
                    "geofence_id: a tariff is attached to a geofence or to a home, not both"
                )

    def local(self, ts: int) -> datetime:
        """A timestamp as the tariff's local time."""
        return datetime.fromtimestamp(ts / 1e6, UTC).astimezone(self._zone)

    def prices_at(self, ts: int) -> tuple[float, float]:
        """(per kWh, per minute) in force at `ts`: the first period that covers it, else base."""
        local = self.local(ts)
        for period in self.periods:
            if period.covers(local):
                return (
                    self.price_per_kwh if period.price_per_kwh is None else period.price_per_kwh,
                    self.price_per_minute
                    if period.price_per_minute is None
                    else period.price_per_minute,
                )
        return self.price_per_kwh, self.price_per_minute

    def next_change(self, ts: int) -> int:
        """The first period boundary after `ts` (at most a day ahead)."""
        local = self.local(ts)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        marks = {0}
        for period in self.periods:
            marks.add(clock_minutes(period.start, "start"))
            marks.add(clock_minutes(period.end, "end"))
        best: int | None = None
        for day in (0, 1):
            for minute in marks:
                wall = midnight + timedelta(days=day, minutes=minute)
                at = int(wall.replace(tzinfo=self._zone).timestamp() * 1_000_000)
                if at > ts and (best is None or at < best):
                    best = at
        assert best is not None  # tomorrow's midnight is always ahead
        return best

    def applies_to(
        self, vin: str, position: Position | None, fences: Collection[str] = ()
    ) -> int | None:
        """How specifically this tariff fits a session (higher wins); None if it does not.

        `fences`: the ids of the brand's geofences that contain the session's position.
        A place (home or geofence) counts 2, listed VINs 1: a tariff for these cars at
        this place beats one for this place, which beats one for these cars anywhere,
        which beats the brand's default.
        """
        if self.vins and vin not in self.vins:
            return None
        if self.home is not None and (position is None or not self.home.contains(position)):
            return None
        if self.geofence_id is not None and self.geofence_id not in fences:
            return None
        placed = self.home is not None or self.geofence_id is not None
        return (2 if placed else 0) + (1 if self.vins else 0)


def choose_tariff(
    tariffs: Sequence[Tariff], vin: str, position: Position | None, fences: Collection[str] = ()
) -> Tariff | None:
    """The most specific tariff for a session of `vin` at `position`, inside the geofences
    `fences` (ids); ties: the oldest."""
    fitting = [
        (score, tariff.created_at, tariff.id, tariff)
        for tariff in tariffs
        if (score := tariff.applies_to(vin, position, fences)) is not None
    ]
    if not fitting:
        return None
    fitting.sort(key=lambda item: (-item[0], item[1], item[2]))
    return fitting[0][3]


def session_cost(tariff: Tariff, intervals: Sequence[EnergyInterval]) -> float:
    """The price of a session: per-session fee, and each sample's kWh and minutes."""
    cost = tariff.price_per_session
    for interval in intervals:
        cost = add_cost(tariff, cost, interval)
    return round(cost, 2)


def add_cost(tariff: Tariff, cost: float, interval: EnergyInterval) -> float:
    """`cost` plus one sample's kWh and minutes, split at period boundaries (unrounded)."""
    start, end, kwh = interval
    moment = start
    while moment < end:
        cut = min(end, tariff.next_change(moment))
        share = (cut - moment) / (end - start)
        per_kwh, per_minute = tariff.prices_at(moment)
        cost += kwh * share * per_kwh + (cut - moment) / 60e6 * per_minute
        moment = cut
    return cost
