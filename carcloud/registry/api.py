"""Brands, vehicles and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from carcloud.api.schemas import (
    ApiKeyIn,
    ApiKeyOut,
    BrandIn,
    BrandOut,
    VehicleBatchIn,
    VehicleBatchOut,
    VehicleBatchResult,
    VehicleCredentialsOut,
    VehicleIn,
    VehicleList,
    VehicleOut,
    VehiclePatch,
)
from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.registry.models import VehicleRegistration
from carcloud.timeutil import format_us
from carcloud.vin import Vin

router = APIRouter()


def _vin(raw: str) -> str:
    return str(Vin.parse(raw))


@router.get("/brands", tags=["brands"])
async def list_brands(who: CurrentPrincipal, svc: CurrentServices) -> list[BrandOut]:
    """Brands the caller can see (a brand key sees its own)."""
    return [BrandOut.of(b) for b in await svc.registry.list_brands(who.brand)]


@router.post("/brands", status_code=status.HTTP_201_CREATED, tags=["brands"])
async def create_brand(body: BrandIn, who: CurrentPrincipal, svc: CurrentServices) -> BrandOut:
    """Create a brand (operator keys only)."""
    who.require_operator()
    return BrandOut.of(await svc.registry.create_brand(body.slug, body.name))


@router.get("/brands/{slug}", tags=["brands"])
async def get_brand(slug: str, who: CurrentPrincipal, svc: CurrentServices) -> BrandOut:
    """One brand."""
    who.check_brand(slug)
    return BrandOut.of(await svc.registry.get_brand(slug))


@router.get("/vehicles", tags=["vehicles"])
async def list_vehicles(
    who: CurrentPrincipal,
    svc: CurrentServices,
    brand: str | None = None,
    tag: str | None = None,
    online: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> VehicleList:
    """Vehicles, filtered by brand, tag or online status."""
    if brand is not None:
        who.check_brand(brand)
    vehicles = await svc.registry.list_vehicles(
        brand=who.brand or brand, tag=tag, online=online, limit=limit, offset=offset
    )
    return VehicleList(vehicles=[VehicleOut.of(v) for v in vehicles], limit=limit, offset=offset)


@router.post("/vehicles", status_code=status.HTTP_201_CREATED, tags=["vehicles"])
async def create_vehicle(
    body: VehicleIn, who: CurrentPrincipal, svc: CurrentServices
) -> VehicleCredentialsOut:
    """Register a vehicle; the response holds its MQTT password, shown only this once."""
    who.check_brand(body.brand)
    vehicle, secret = await svc.registry.register_vehicle(
        body.vin, body.brand, body.model, body.model_year, body.tags
    )
    return VehicleCredentialsOut.of(vehicle, secret)


@router.post("/vehicles/batch", tags=["vehicles"])
async def create_vehicles(
    body: VehicleBatchIn, who: CurrentPrincipal, svc: CurrentServices
) -> VehicleBatchOut:
    """Register up to 1,000 vehicles in one transaction; a result per row, in order.

    Bad rows (invalid VIN or field, unknown brand, a VIN twice in the request or
    already registered) are reported and the others are registered. A brand key
    registers only its own brand's vehicles. Passwords are shown only this once.
    """
    rows = [
        VehicleRegistration(r.vin, r.brand, r.model, r.model_year, tuple(r.tags))
        for r in body.vehicles
    ]
    results = await svc.registry.register_vehicles(rows, who.brand)
    out = [
        VehicleBatchResult(
            row=r.index,
            vin=r.vin,
            registered=r.vehicle is not None,
            mqtt_password=r.secret,
            error=r.error,
            message=r.message,
        )
        for r in results
    ]
    registered = sum(1 for r in out if r.registered)
    return VehicleBatchOut(registered=registered, failed=len(out) - registered, results=out)


@router.get("/vehicles/{vin}", tags=["vehicles"])
async def get_vehicle(vin: str, who: CurrentPrincipal, svc: CurrentServices) -> VehicleOut:
    """One vehicle with its online status."""
    return VehicleOut.of(await svc.registry.get_vehicle(_vin(vin), who.brand))


@router.patch("/vehicles/{vin}", tags=["vehicles"])
async def update_vehicle(
    vin: str, body: VehiclePatch, who: CurrentPrincipal, svc: CurrentServices
) -> VehicleOut:
    """Replace tags, or change model and model year."""
    vehicle = await svc.registry.update_vehicle(
        _vin(vin), who.brand, tags=body.tags, model=body.model, model_year=body.model_year
    )
    return VehicleOut.of(vehicle)


@router.delete("/vehicles/{vin}", status_code=status.HTTP_204_NO_CONTENT, tags=["vehicles"])
async def delete_vehicle(vin: str, who: CurrentPrincipal, svc: CurrentServices) -> Response:
    """Delete a vehicle, its credentials and its data; a live connection is dropped."""
    await svc.registry.delete_vehicle(_vin(vin), who.brand)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/vehicles/{vin}/rotate-secret", tags=["vehicles"])
async def rotate_secret(
    vin: str, who: CurrentPrincipal, svc: CurrentServices
) -> VehicleCredentialsOut:
    """Issue a new MQTT password; the old one stops working at the next connect."""
    vehicle, secret = await svc.registry.rotate_secret(_vin(vin), who.brand)
    return VehicleCredentialsOut.of(vehicle, secret)


@router.post("/vehicles/{vin}/revoke", tags=["vehicles"])
async def revoke_vehicle(vin: str, who: CurrentPrincipal, svc: CurrentServices) -> VehicleOut:
    """Revoke the vehicle's credentials and drop its live connection."""
    return VehicleOut.of(await svc.registry.revoke(_vin(vin), who.brand))


@router.get("/api-keys", tags=["api keys"])
async def list_api_keys(who: CurrentPrincipal, svc: CurrentServices) -> list[ApiKeyOut]:
    """API keys (operator keys only); secrets are never shown again."""
    who.require_operator()
    return [
        ApiKeyOut(id=k.id, name=k.name, brand=k.brand, created_at=format_us(k.created_at))
        for k in await svc.registry.list_api_keys()
    ]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, tags=["api keys"])
async def create_api_key(body: ApiKeyIn, who: CurrentPrincipal, svc: CurrentServices) -> ApiKeyOut:
    """Create an API key, operator-wide or scoped to one brand; the key is shown once."""
    who.require_operator()
    record, made = await svc.registry.create_api_key(body.name, body.brand)
    return ApiKeyOut(
        id=record.id,
        name=record.name,
        brand=record.brand,
        created_at=format_us(record.created_at),
        key=made.token,
    )
