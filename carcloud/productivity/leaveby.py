"""Leave-by: when the driver must set off to be at a meeting on time.

    leave_by = start − travel − charging stop (if the range does not cover the trip) − buffer

Travel is from the car's live position (its latest committed location) by road; the
lateness is what leaving now would give: `late_by_min` > 0 once the ETA passes the start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carcloud.calendars.agenda import AgendaEntry
from carcloud.ingest.models import LatestState
from carcloud.productivity.energy import (
    ChargingStop,
    ModelEnergy,
    RangePolicy,
    charging_stop,
    range_km,
)
from carcloud.productivity.routing import Point, Travel
from carcloud.timeutil import datetime_to_us, format_us

LATITUDE = "Vehicle.CurrentLocation.Latitude"
LONGITUDE = "Vehicle.CurrentLocation.Longitude"
SECOND_US = 1_000_000
_CHARGING = "Vehicle.Powertrain.TractionBattery.Charging."
CABLE = _CHARGING + "ChargingPort.AnyPosition.IsChargingCableConnected"
CHARGING = _CHARGING + "IsCharging"
CHARGE_LIMIT = _CHARGING + "ChargeLimit"


@dataclass(frozen=True, slots=True)
class CarSituation:
    """Where the car is and what it has, from its latest committed telemetry."""

    position: Point | None
    position_at: int | None
    range_km: float | None
    model: ModelEnergy | None
    cabin_c: float | None = None
    plugged_in: bool | None = None
    charging: bool | None = None
    charge_limit_percent: float | None = None


def situation_of(latest: LatestState, model: ModelEnergy | None) -> CarSituation:
    """The car's situation from its latest state (no position: no leave-by can be made)."""
    values: dict[str, object] = {value.path: value.value for value in latest.values}
    times = {value.path: value.ts for value in latest.values}
    lat, lon = values.get(LATITUDE), values.get(LONGITUDE)
    position = None
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        position = Point(float(lat), float(lon))
    cabin = values.get("Vehicle.Cabin.HVAC.AmbientAirTemperature")
    plugged, charging, limit = values.get(CABLE), values.get(CHARGING), values.get(CHARGE_LIMIT)
    return CarSituation(
        position=position,
        position_at=times.get(LATITUDE),
        range_km=range_km(values, model),
        model=model,
        cabin_c=float(cabin) if isinstance(cabin, int | float) else None,
        plugged_in=plugged if isinstance(plugged, bool) else None,
        charging=charging if isinstance(charging, bool) else None,
        charge_limit_percent=float(limit)
        if isinstance(limit, int | float) and not isinstance(limit, bool)
        else None,
    )


@dataclass(frozen=True, slots=True)
class LeaveBy:
    """One meeting's plan: when to leave, why, and how late leaving now would be."""

    meeting_id: str
    title: str
    start: int
    location: str | None
    destination: Point
    travel: Travel
    buffer_min: int
    charging: ChargingStop | None
    leave_by: int
    eta_if_now: int
    late_by_min: int
    range_km: float | None

    @property
    def drive_s(self) -> float:
        """Travel plus the charging stop."""
        return self.travel.duration_s + (self.charging.minutes * 60 if self.charging else 0.0)

    def document(self) -> dict[str, Any]:
        """The JSON form of the API."""
        return {
            "meeting_id": self.meeting_id,
            "title": self.title,
            "start_at": format_us(self.start),
            "location": self.location,
            "destination": {"lat": self.destination.lat, "lon": self.destination.lon},
            "travel": {
                "minutes": round(self.travel.duration_s / 60, 1),
                "distance_km": round(self.travel.distance_m / 1000, 2),
                "source": self.travel.source,
            },
            "buffer_min": self.buffer_min,
            "charging_stop": self.charging.document() if self.charging else None,
            "range_km": round(self.range_km, 1) if self.range_km is not None else None,
            "leave_by": format_us(self.leave_by),
            "eta_if_leaving_now": format_us(self.eta_if_now),
            "late_by_min": self.late_by_min,
        }


def plan_meeting(
    entry: AgendaEntry,
    travel: Travel,
    car: CarSituation,
    buffer_min: int,
    now: int,
    policy: RangePolicy,
) -> LeaveBy:
    """The leave-by plan of one meeting with coordinates, for a car in `car`'s situation."""
    assert entry.coordinates is not None
    stop = charging_stop(travel.distance_m / 1000, car.range_km, car.model, policy)
    start = datetime_to_us(entry.start)
    drive_us = round(travel.duration_s * SECOND_US) + (
        round(stop.minutes * 60 * SECOND_US) if stop else 0
    )
    eta = now + drive_us
    late = math.ceil((eta - start) / (60 * SECOND_US)) if eta > start else 0
    return LeaveBy(
        meeting_id=entry.id,
        title=entry.title,
        start=start,
        location=entry.location,
        destination=Point(entry.coordinates.lat, entry.coordinates.lon),
        travel=travel,
        buffer_min=buffer_min,
        charging=stop,
        leave_by=start - drive_us - buffer_min * 60 * SECOND_US,
        eta_if_now=eta,
        late_by_min=late,
        range_km=car.range_km,
    )


def model_energy(models: Mapping[str, ModelEnergy], model: str) -> ModelEnergy | None:
    """A model's energy figures, by name (case ignored)."""
    return models.get(model) or next(
        (energy for name, energy in models.items() if name.casefold() == model.casefold()), None
    )
