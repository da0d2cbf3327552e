"""Twins (tags, desired and reported properties) and fleet-wide configurations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response, status
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.security import CurrentPrincipal, CurrentServices, Principal
from carcloud.errors import ValidationError
from carcloud.services import Services
from carcloud.timeutil import format_us
from carcloud.twins.documents import pending
from carcloud.twins.models import Configuration, Twin
from carcloud.vin import Vin

router = APIRouter()


class DesiredOut(BaseModel):
    version: int
    properties: dict[str, Any] = Field(description="What the car gets: configurations + own")
    own: dict[str, Any] = Field(description="What was set for this vehicle itself")
    updated_at: str | None


class ReportedOut(BaseModel):
    properties: dict[str, Any]
    desired_version: int | None = Field(description="The desired version the car last applied")
    updated_at: str | None


class TwinOut(BaseModel):
    vin: str
    tags: list[str]
    desired: DesiredOut
    reported: ReportedOut
    pending: dict[str, Any] = Field(description="Desired values the car has not reported yet")
    in_sync: bool


class DesiredIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    properties: dict[str, Any]


def _twin_out(twin: Twin, tags: tuple[str, ...]) -> TwinOut:
    missing = pending(twin.desired, twin.reported)
    return TwinOut(
        vin=twin.vin,
        tags=list(tags),
        desired=DesiredOut(
            version=twin.desired_version,
            properties=twin.desired,
            own=twin.desired_own,
            updated_at=format_us(twin.desired_updated_at),
        ),
        reported=ReportedOut(
            properties=twin.reported,
            desired_version=twin.reported_desired_version,
            updated_at=format_us(twin.reported_updated_at),
        ),
        pending=missing,
        in_sync=not missing,
    )


def _if_match(raw: str | None) -> int | None:
    if raw is None or raw.strip() == "*":
        return None
    text = raw.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise ValidationError(f'If-Match {raw!r} is not a version number such as "3"')
    return int(text)


async def _twin_response(twin: Twin, who: Principal, svc: Services, response: Response) -> TwinOut:
    vehicle = await svc.registry.get_vehicle(twin.vin, who.brand)
    response.headers["ETag"] = f'"{twin.desired_version}"'
    return _twin_out(twin, vehicle.tags)


@router.get("/vehicles/{vin}/twin", tags=["twins"])
async def get_twin(
    vin: str, response: Response, who: CurrentPrincipal, svc: CurrentServices
) -> TwinOut:
    """Tags, desired and reported properties, and what the car has not applied yet."""
    twin = await svc.twins.get(str(Vin.parse(vin)), who.brand)
    return await _twin_response(twin, who, svc, response)


@router.put("/vehicles/{vin}/twin/desired", tags=["twins"])
async def replace_desired(
    vin: str,
    body: DesiredIn,
    response: Response,
    who: CurrentPrincipal,
    svc: CurrentServices,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> TwinOut:
    """Replace this vehicle's own desired properties (If-Match: the version you read)."""
    twin = await svc.twins.set_desired(
        str(Vin.parse(vin)), who.brand, body.properties, _if_match(if_match)
    )
    return await _twin_response(twin, who, svc, response)


@router.patch("/vehicles/{vin}/twin/desired", tags=["twins"])
async def patch_desired(
    vin: str,
    body: DesiredIn,
    response: Response,
    who: CurrentPrincipal,
    svc: CurrentServices,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> TwinOut:
    """Merge-patch this vehicle's own desired properties (RFC 7386: null removes a key)."""
    twin = await svc.twins.patch_desired(
        str(Vin.parse(vin)), who.brand, body.properties, _if_match(if_match)
    )
    return await _twin_response(twin, who, svc, response)


# ---- fleet-wide configurations ------------------------------------------------------------


class ConfigurationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["winter-preconditioning"])
    target: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"brand": "volta", "model_year_min": 2024, "tags": ["fleet:berlin"]}],
        description="brand, model, model_year_min, model_year_max, tags: all must hold",
    )
    priority: int = Field(default=0, ge=-1000, le=1000, description="Higher wins on conflicts")
    desired: dict[str, Any]


class ConfigurationStatus(BaseModel):
    targeted: int = Field(description="Vehicles the target matches now")
    applied: int = Field(description="Of those, reporting every property of their desired document")
    failed: int = Field(description="Of those, reporting an error for one of these properties")
    pending: int


class ConfigurationOut(BaseModel):
    id: str
    name: str
    target: dict[str, Any]
    priority: int
    desired: dict[str, Any]
    created_at: str | None
    updated_at: str | None
    status: ConfigurationStatus


async def _configuration_out(svc: Services, configuration: Configuration) -> ConfigurationOut:
    progress = await svc.twins.configuration_status(configuration)
    return ConfigurationOut(
        id=configuration.id,
        name=configuration.name,
        target=configuration.target,
        priority=configuration.priority,
        desired=configuration.desired,
        created_at=format_us(configuration.created_at),
        updated_at=format_us(configuration.updated_at),
        status=ConfigurationStatus(
            targeted=progress.targeted,
            applied=progress.applied,
            failed=progress.failed,
            pending=progress.pending,
        ),
    )


@router.get("/configurations", tags=["configurations"])
async def list_configurations(
    who: CurrentPrincipal, svc: CurrentServices
) -> list[ConfigurationOut]:
    """Fleet-wide settings with how many vehicles each targets, has applied and failed."""
    return [
        await _configuration_out(svc, c) for c in await svc.twins.list_configurations(who.brand)
    ]


@router.post("/configurations", status_code=status.HTTP_201_CREATED, tags=["configurations"])
async def create_configuration(
    body: ConfigurationIn, who: CurrentPrincipal, svc: CurrentServices
) -> ConfigurationOut:
    """Desired properties for every vehicle the target matches, now and later."""
    configuration = await svc.twins.save_configuration(
        who.brand, body.name, body.target, body.priority, body.desired
    )
    return await _configuration_out(svc, configuration)


@router.get("/configurations/{configuration_id}", tags=["configurations"])
async def get_configuration(
    configuration_id: str, who: CurrentPrincipal, svc: CurrentServices
) -> ConfigurationOut:
    """One configuration and its status."""
    configuration = await svc.twins.get_configuration(configuration_id, who.brand)
    return await _configuration_out(svc, configuration)


@router.put("/configurations/{configuration_id}", tags=["configurations"])
async def update_configuration(
    configuration_id: str, body: ConfigurationIn, who: CurrentPrincipal, svc: CurrentServices
) -> ConfigurationOut:
    """Change a configuration; vehicles get the new desired properties."""
    configuration = await svc.twins.save_configuration(
        who.brand,
        body.name,
        body.target,
        body.priority,
        body.desired,
        configuration_id=configuration_id,
    )
    return await _configuration_out(svc, configuration)


@router.delete(
    "/configurations/{configuration_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["configurations"],
)
async def delete_configuration(
    configuration_id: str, who: CurrentPrincipal, svc: CurrentServices
) -> Response:
    """Remove a configuration; its properties leave the vehicles' desired documents."""
    await svc.twins.delete_configuration(configuration_id, who.brand)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
