"""Drivers over REST, scoped by brand: a brand key sees and changes only its drivers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.security import CurrentPrincipal, CurrentServices, Principal
from carcloud.drivers.models import Driver, Place, Preferences
from carcloud.errors import ValidationError
from carcloud.vin import Vin

router = APIRouter()


class PlaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, examples=["Gym"], description="Not for home/work")
    lat: float
    lon: float
    address: str | None = Field(default=None, examples=["Friedrichstraße 43, Berlin"])


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reminder_lead_min: int = Field(default=10, description="Minutes before leave-by to remind")
    buffer_min: int = Field(default=5, description="Minutes to arrive early")
    precondition: bool = Field(default=False, description="Warm or cool the cabin before trips")
    precondition_target_c: float = 21.0


class DriverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=["Ada Lovelace"])
    brand: str | None = Field(default=None, description="Required with an operator key")
    timezone: str = Field(default="UTC", examples=["Europe/Berlin"], description="IANA zone")
    home: PlaceIn | None = None
    work: PlaceIn | None = None
    places: list[PlaceIn] = Field(default_factory=list, description="Other named places")
    preferences: PreferencesIn = Field(default_factory=PreferencesIn)


class VehicleDriverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver_id: str | None = Field(description="None: the vehicle has no driver now")


def _place(body: PlaceIn, name: str | None, where: str) -> Place:
    label = name or body.name
    if not label:
        raise ValidationError(f"{where}.name is required")
    return Place(label, body.lat, body.lon, body.address)


def _draft(body: DriverIn, brand: str) -> Driver:
    places = [
        _place(place, name, name)
        for name, place in (("home", body.home), ("work", body.work))
        if place is not None
    ]
    places += [_place(p, None, f"places[{i}]") for i, p in enumerate(body.places)]
    prefs = body.preferences
    return Driver(
        id="",
        brand=brand,
        name=body.name,
        timezone=body.timezone,
        places=tuple(places),
        preferences=Preferences(
            prefs.reminder_lead_min, prefs.buffer_min, prefs.precondition,
            prefs.precondition_target_c,
        ),
    )  # fmt: skip


def _brand(body: DriverIn, who: Principal) -> str:
    brand = body.brand or who.brand
    if brand is None:
        raise ValidationError("brand: an operator key must name the driver's brand")
    who.check_brand(brand)
    return brand


@router.post("/drivers", status_code=status.HTTP_201_CREATED, tags=["drivers"])
async def create_driver(body: DriverIn, who: CurrentPrincipal, svc: CurrentServices) -> Any:
    """A driver profile of a brand: time zone, home and work, preferences."""
    driver = await svc.drivers.create(_draft(body, _brand(body, who)))
    return driver.document()


@router.get("/drivers", tags=["drivers"])
async def list_drivers(who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """The drivers the caller may see, by name."""
    return {"drivers": [driver.document() for driver in await svc.drivers.list(who.brand)]}


@router.get("/drivers/{driver_id}", tags=["drivers"])
async def get_driver(driver_id: str, who: CurrentPrincipal, svc: CurrentServices) -> Any:
    """One driver."""
    return (await svc.drivers.get(driver_id, who.brand)).document()


@router.put("/drivers/{driver_id}", tags=["drivers"])
async def replace_driver(
    driver_id: str, body: DriverIn, who: CurrentPrincipal, svc: CurrentServices
) -> Any:
    """Replace a driver's profile (its brand never changes)."""
    current = await svc.drivers.get(driver_id, who.brand)
    if body.brand is not None and body.brand != current.brand:
        raise ValidationError("brand: a driver's brand cannot change")
    driver = await svc.drivers.update(driver_id, who.brand, _draft(body, current.brand))
    return driver.document()


@router.delete("/drivers/{driver_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["drivers"])
async def delete_driver(driver_id: str, who: CurrentPrincipal, svc: CurrentServices) -> None:
    """Remove a driver with their calendar accounts."""
    await svc.drivers.delete(driver_id, who.brand)


@router.put("/vehicles/{vin}/driver", tags=["drivers"])
async def set_vehicle_driver(
    vin: str, body: VehicleDriverIn, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Choose who drives the vehicle now (a driver of its brand), or nobody."""
    number = str(Vin.parse(vin))
    await svc.drivers.set_vehicle_driver(number, who.brand, body.driver_id)
    driver = await svc.drivers.vehicle_driver(number, who.brand)
    return {"vin": number, "driver": driver.document() if driver else None}


@router.get("/vehicles/{vin}/driver", tags=["drivers"])
async def get_vehicle_driver(vin: str, who: CurrentPrincipal, svc: CurrentServices) -> Any:
    """Who drives the vehicle now."""
    number = str(Vin.parse(vin))
    driver = await svc.drivers.vehicle_driver(number, who.brand)
    return {"vin": number, "driver": driver.document() if driver else None}
