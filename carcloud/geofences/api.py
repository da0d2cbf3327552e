"""Geofences and their visits over REST, scoped by brand like every read."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.security import CurrentPrincipal, CurrentServices, Principal
from carcloud.errors import ValidationError
from carcloud.geofences.models import Geofence, check_position, geofence_document, visit_document
from carcloud.telematics.timeline import Position
from carcloud.timeutil import parse_rfc3339_us
from carcloud.vin import Vin

router = APIRouter()


class PointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float
    lon: float


class GeofenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=["depot"])
    brand: str | None = Field(default=None, description="Required with an operator key")
    shape: Literal["circle", "polygon", "corridor"]
    center: PointIn | None = Field(default=None, description="circle")
    radius_m: float | None = Field(default=None, description="circle")
    points: list[PointIn] | None = Field(
        default=None, description="polygon: its ring (3+ points); corridor: its line (2+)"
    )
    width_m: float | None = Field(default=None, description="corridor: its whole width")
    margin_m: float = Field(default=25.0, description="out only beyond this far outside")
    min_dwell_s: float = Field(default=30.0, description="a change counts after this long")


def _draft(body: GeofenceIn, who: Principal) -> Geofence:
    brand = body.brand or who.brand
    if brand is None:
        raise ValidationError("brand: an operator key must name the geofence's brand")
    who.check_brand(brand)
    points: tuple[Position, ...]
    if body.shape == "circle":
        if body.points is not None:
            raise ValidationError("points: a circle has a center and a radius_m, not points")
        if body.center is None:
            raise ValidationError("center: a circle needs its center")
        points = (check_position(body.center.lat, body.center.lon, "center"),)
    else:
        if body.center is not None:
            raise ValidationError(f"center: a {body.shape} has points, not a center")
        points = tuple(
            check_position(p.lat, p.lon, f"points[{index}]")
            for index, p in enumerate(body.points or ())
        )
    return Geofence(
        id="new",
        brand=brand,
        name=body.name,
        shape=body.shape,
        points=points,
        radius_m=body.radius_m,
        width_m=body.width_m,
        margin_m=body.margin_m,
        min_dwell_s=body.min_dwell_s,
    )


@router.get("/geofences", tags=["geofences"])
async def list_geofences(who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """Geofences the caller may see, oldest first."""
    fences = await svc.geofences.list_geofences(who.brand)
    return {"geofences": [geofence_document(fence) for fence in fences]}


@router.post("/geofences", tags=["geofences"], status_code=status.HTTP_201_CREATED)
async def create_geofence(
    body: GeofenceIn, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Create a geofence: a circle, a polygon or a corridor (a line with a width)."""
    return geofence_document(await svc.geofences.create_geofence(_draft(body, who)))


@router.get("/geofences/{geofence_id}", tags=["geofences"])
async def get_geofence(
    geofence_id: str, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """One geofence."""
    return geofence_document(await svc.geofences.get_geofence(geofence_id, who.brand))


@router.put("/geofences/{geofence_id}", tags=["geofences"])
async def replace_geofence(
    geofence_id: str, body: GeofenceIn, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Replace a geofence (its id, brand and creation time stay)."""
    fence = await svc.geofences.replace_geofence(geofence_id, who.brand, _draft(body, who))
    return geofence_document(fence)


@router.delete("/geofences/{geofence_id}", tags=["geofences"])
async def delete_geofence(
    geofence_id: str, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Delete a geofence and its visits."""
    return geofence_document(await svc.geofences.delete_geofence(geofence_id, who.brand))


@router.get("/geofences/{geofence_id}/visits", tags=["geofences"])
async def list_visits(
    geofence_id: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    vin: str | None = None,
    before: Annotated[str | None, Query(description="RFC 3339: entered before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """Visits to a geofence, newest first, with their dwell time (`exited_at` null: inside)."""
    fence = await svc.geofences.get_geofence(geofence_id, who.brand)
    visits = await svc.geofences.list_visits(
        who.brand,
        geofence_id,
        str(Vin.parse(vin)) if vin is not None else None,
        parse_rfc3339_us(before, "before") if before is not None else None,
        limit,
    )
    return {"visits": [visit_document(visit, fence) for visit in visits]}
