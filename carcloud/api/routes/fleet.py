"""The whole fleet at a glance: what the live page and dashboards poll."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from carcloud.api.schemas import VehicleOut
from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.timeutil import format_us, now_us

router = APIRouter()

SPEED = "Vehicle.Speed"
LATITUDE = "Vehicle.CurrentLocation.Latitude"
LONGITUDE = "Vehicle.CurrentLocation.Longitude"
HEADING = "Vehicle.CurrentLocation.Heading"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
FUEL = "Vehicle.Powertrain.FuelSystem.RelativeLevel"
RANGE = "Vehicle.Powertrain.Range"
CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
MOVING = "Vehicle.IsMoving"
LOCKED = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
OVERVIEW_SIGNALS = (SPEED, LATITUDE, LONGITUDE, HEADING, SOC, FUEL, RANGE, CHARGING, MOVING, LOCKED)


class FleetVehicle(VehicleOut):
    signals: dict[str, Any]
    signals_at: str | None


class FleetSummary(BaseModel):
    vehicles: int
    online: int
    driving: int
    charging: int
    average_soc: float | None


class FleetOverview(BaseModel):
    generated_at: str | None
    summary: FleetSummary
    vehicles: list[FleetVehicle]


@router.get("/fleet", tags=["fleet"])
async def fleet_overview(
    who: CurrentPrincipal,
    svc: CurrentServices,
    brand: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> FleetOverview:
    """Every vehicle with its position, speed, charge or fuel and status, plus totals."""
    if brand is not None:
        who.check_brand(brand)
    rows = await svc.stores.telemetry.fleet_overview(
        who.brand or brand, OVERVIEW_SIGNALS, limit, offset
    )
    vehicles = []
    for vehicle, latest in rows:
        newest = max((value.ts for value in latest.values), default=None)
        seen = max(vehicle.last_seen_at or 0, latest.received_at or 0) or None
        listed = VehicleOut.of(vehicle).model_dump() | {"last_seen_at": format_us(seen)}
        vehicles.append(
            FleetVehicle(
                **listed,
                signals={value.path: value.value for value in latest.values},
                signals_at=format_us(newest),
            )
        )
    socs = [float(v.signals[SOC]) for v in vehicles if SOC in v.signals]
    summary = FleetSummary(
        vehicles=len(vehicles),
        online=sum(v.online for v in vehicles),
        driving=sum(bool(v.online and v.signals.get(MOVING)) for v in vehicles),
        charging=sum(bool(v.signals.get(CHARGING)) for v in vehicles),
        average_soc=round(sum(socs) / len(socs), 1) if socs else None,
    )
    return FleetOverview(generated_at=format_us(now_us()), summary=summary, vehicles=vehicles)
