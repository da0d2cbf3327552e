"""Trips, charging sessions and the settings that detect them. Times are epoch microseconds.

A trip or session is either still open (`driving`, `plugged_in`: the newest data is
inside it) or completed. Its id is derived from the vehicle and its start time, so
re-deriving it from the same history gives it the same id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from carcloud.errors import ValidationError
from carcloud.telematics.timeline import Position
from carcloud.timeutil import format_us

if TYPE_CHECKING:
    from carcloud.config import Settings

SECOND = 1_000_000

TRIP_DRIVING, TRIP_COMPLETED = "driving", "completed"
SESSION_PLUGGED_IN, SESSION_COMPLETED = "plugged_in", "completed"


def derived_id(prefix: str, vin: str, start_ts: int) -> str:
    """A stable id for what starts at `start_ts` on vehicle `vin`."""
    digest = hashlib.sha256(f"{vin}:{start_ts}".encode()).hexdigest()[:20]
    return f"{prefix}_{digest}"


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    """How trips and sessions are told apart; each value is a CARCLOUD_TRIP_* setting (`of`).

    `stop_s`: standing still this long ends a trip (power off ends it at once).
    `gap_s`: no data for longer than this is a gap (the car was offline), not sampling.
    `gap_min_speed_kmh`: across a gap, the car "kept driving" only if it covered at
    least `gap_min_km` at this average speed or more; otherwise the trip ended before it.
    """

    stop_s: float = 180.0
    gap_s: float = 60.0
    moving_kmh: float = 1.0
    min_distance_km: float = 0.1
    min_positions: int = 2
    gap_min_km: float = 0.2
    gap_min_speed_kmh: float = 3.0

    def __post_init__(self) -> None:
        for name in ("stop_s", "gap_s", "moving_kmh", "min_distance_km", "gap_min_km"):
            if not getattr(self, name) > 0:
                raise ValidationError(f"{name} must be > 0, not {getattr(self, name)!r}")
        if self.min_positions < 1:
            raise ValidationError(f"min_positions must be >= 1, not {self.min_positions}")

    @classmethod
    def of(cls, settings: Settings) -> DetectionSettings:
        """The detection settings of an installation (CARCLOUD_TRIP_* variables or flags)."""
        return cls(
            stop_s=settings.trip_stop_s,
            gap_s=settings.trip_gap_s,
            moving_kmh=settings.trip_moving_kmh,
            min_distance_km=settings.trip_min_distance_m / 1000,
            min_positions=settings.trip_min_positions,
            gap_min_km=settings.trip_gap_min_m / 1000,
            gap_min_speed_kmh=settings.trip_gap_min_kmh,
        )

    @property
    def lookback_us(self) -> int:
        """How far before a change re-derivation must look: the longest stop that matters."""
        return int(max(self.stop_s, self.gap_s) * SECOND)


GEOFENCE, DRIVER_PLACE = "geofence", "driver_place"


@dataclass(frozen=True, slots=True)
class PlaceRef:
    """The place at one end of a trip: a geofence (with its id) or a driver's named place."""

    kind: str  # GEOFENCE or DRIVER_PLACE
    name: str
    id: str | None = None

    def document(self) -> dict[str, str | None]:
        return {"kind": self.kind, "id": self.id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Trip:
    """A drive, from the first movement to standing still (or power off)."""

    id: str
    vin: str
    status: str
    start_ts: int
    end_ts: int
    start_position: Position | None
    end_position: Position | None
    distance_km: float
    distance_source: str  # "odometer" or "gps"
    driving_s: float
    max_speed_kmh: float | None
    energy_kwh: float | None
    energy_source: str | None  # "energy_counters", "battery_power", "state_of_charge" or None
    start_soc: float | None
    end_soc: float | None
    start_fuel_level: float | None
    end_fuel_level: float | None
    outside_temp_c: float | None
    positions: int
    start_place: PlaceRef | None = None  # the geofence or named place there (places.py)
    end_place: PlaceRef | None = None

    @property
    def duration_s(self) -> float:
        """From start to end, standing included."""
        return (self.end_ts - self.start_ts) / SECOND

    @property
    def avg_speed_kmh(self) -> float | None:
        """Distance over driving time."""
        return self.distance_km / (self.driving_s / 3600) if self.driving_s > 0 else None

    @property
    def consumption_kwh_per_100km(self) -> float | None:
        """Energy used per 100 km driven."""
        if self.energy_kwh is None or self.distance_km <= 0:
            return None
        return self.energy_kwh / self.distance_km * 100

    @property
    def completed(self) -> bool:
        return self.status == TRIP_COMPLETED


@dataclass(frozen=True, slots=True)
class ChargingSegment:
    """One stretch of charging inside a session (charging may pause and resume)."""

    start_ts: int
    end_ts: int
    energy_kwh: float
    max_power_kw: float

    @property
    def duration_s(self) -> float:
        return (self.end_ts - self.start_ts) / SECOND


@dataclass(frozen=True, slots=True)
class ChargingSession:
    """One plug-in: cable connected until removed, with its charging segments."""

    id: str
    vin: str
    status: str
    start_ts: int
    end_ts: int
    segments: tuple[ChargingSegment, ...]
    max_power_kw: float | None
    current_type: str | None  # "AC", "DC" or None when the car does not say
    start_soc: float | None
    end_soc: float | None
    position: Position | None
    cost: float | None = None
    currency: str | None = None
    tariff_id: str | None = None

    @property
    def energy_kwh(self) -> float:
        """Energy added: the sum of the segments, each sample counted once."""
        return sum(segment.energy_kwh for segment in self.segments)

    @property
    def charging_s(self) -> float:
        """Time spent charging (pauses excluded)."""
        return sum(segment.duration_s for segment in self.segments)

    @property
    def avg_power_kw(self) -> float | None:
        """Energy over charging time."""
        seconds = self.charging_s
        return self.energy_kwh / (seconds / 3600) if seconds > 0 else None

    @property
    def completed(self) -> bool:
        return self.status == SESSION_COMPLETED


@dataclass(frozen=True, slots=True)
class Changes:
    """What a re-derivation changed in the stored trips or sessions of one vehicle."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    completed: tuple[str, ...] = field(default_factory=tuple)


def _position_json(position: Position | None) -> dict[str, float] | None:
    return {"lat": position.lat, "lon": position.lon} if position is not None else None


def trip_document(trip: Trip) -> dict[str, object]:
    """A trip's one public shape: in the API and in its events."""
    return {
        "id": trip.id,
        "vin": trip.vin,
        "status": trip.status,
        "start_at": format_us(trip.start_ts),
        "end_at": format_us(trip.end_ts),
        "start_position": _position_json(trip.start_position),
        "end_position": _position_json(trip.end_position),
        "start_place": trip.start_place.document() if trip.start_place else None,
        "end_place": trip.end_place.document() if trip.end_place else None,
        "distance_km": trip.distance_km,
        "distance_source": trip.distance_source,
        "duration_s": round(trip.duration_s, 1),
        "driving_s": round(trip.driving_s, 1),
        "max_speed_kmh": trip.max_speed_kmh,
        "avg_speed_kmh": _round(trip.avg_speed_kmh, 1),
        "energy_kwh": trip.energy_kwh,
        "energy_source": trip.energy_source,
        "consumption_kwh_per_100km": _round(trip.consumption_kwh_per_100km, 2),
        "start_soc": trip.start_soc,
        "end_soc": trip.end_soc,
        "start_fuel_level": trip.start_fuel_level,
        "end_fuel_level": trip.end_fuel_level,
        "outside_temp_c": trip.outside_temp_c,
        "positions": trip.positions,
    }


def session_document(session: ChargingSession) -> dict[str, object]:
    """A charging session's one public shape: in the API and in its events."""
    return {
        "id": session.id,
        "vin": session.vin,
        "status": session.status,
        "start_at": format_us(session.start_ts),
        "end_at": format_us(session.end_ts),
        "energy_kwh": round(session.energy_kwh, 4),
        "charging_s": round(session.charging_s, 1),
        "max_power_kw": session.max_power_kw,
        "avg_power_kw": _round(session.avg_power_kw, 3),
        "current_type": session.current_type,
        "start_soc": session.start_soc,
        "end_soc": session.end_soc,
        "position": _position_json(session.position),
        "cost": session.cost,
        "currency": session.currency,
        "tariff_id": session.tariff_id,
        "segments": [
            {
                "start_at": format_us(segment.start_ts),
                "end_at": format_us(segment.end_ts),
                "energy_kwh": segment.energy_kwh,
                "max_power_kw": segment.max_power_kw,
                "duration_s": round(segment.duration_s, 1),
            }
            for segment in session.segments
        ],
    }


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None
