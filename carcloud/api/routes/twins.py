"""Twins (tags, desired and reported properties) and fleet-wide configurations."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response, status
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.security import CurrentPrincipal, CurrentServices, Principal
from carcloud.commands.dispatcher import request_dispatch
from carcloud.errors import NotFoundError, ValidationError
from carcloud.services import Services
from carcloud.storage.models import Configuration, Twin, Vehicle
from carcloud.timeutil import format_us, now_us
from carcloud.twins.documents import check_document, check_target, matches, merge_patch, pending
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


async def _twin_response(vin: str, who: Principal, svc: Services, response: Response) -> TwinOut:
    vehicle = await svc.storage.get_vehicle(vin, who.brand)
    twin = await svc.storage.get_twin(vin, who.brand)
    response.headers["ETag"] = f'"{twin.desired_version}"'
    return _twin_out(twin, vehicle.tags)


@router.get("/vehicles/{vin}/twin", tags=["twins"])
async def get_twin(
    vin: str, response: Response, who: CurrentPrincipal, svc: CurrentServices
) -> TwinOut:
    """Tags, desired and reported properties, and what the car has not applied yet."""
    return await _twin_response(str(Vin.parse(vin)), who, svc, response)


async def _store_desired(
    vin: str,
    own: dict[str, Any],
    if_match: str | None,
    who: Principal,
    svc: Services,
    response: Response,
) -> TwinOut:
    check_document(own)
    await svc.storage.set_desired(vin, who.brand, own, _if_match(if_match))
    if svc.nats is not None:
        await request_dispatch(svc.nats, vin)
    return await _twin_response(vin, who, svc, response)


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
    vin = str(Vin.parse(vin))
    return await _store_desired(vin, body.properties, if_match, who, svc, response)


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
    vin = str(Vin.parse(vin))
    current = await svc.storage.get_twin(vin, who.brand)
    own = merge_patch(current.desired_own, check_document(body.properties))
    return await _store_desired(vin, own, if_match, who, svc, response)


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


async def targeted_twins(
    svc: Services, target: dict[str, Any], fleet: list[Vehicle] | None = None
) -> list[Twin]:
    """Twins of the vehicles a target matches now; `fleet` saves re-reading all vehicles."""
    if fleet is None:
        fleet = await svc.storage.list_vehicles(limit=1_000_000)
    vins = [vehicle.vin for vehicle in fleet if matches(target, vehicle)]
    return await svc.storage.twins_for(vins)


async def _configuration_out(
    svc: Services, configuration: Configuration, fleet: list[Vehicle] | None = None
) -> ConfigurationOut:
    twins = await targeted_twins(svc, configuration.target, fleet)
    applied = failed = 0
    for twin in twins:
        errors = twin.reported.get("errors")
        if isinstance(errors, dict) and set(errors) & set(configuration.desired):
            failed += 1
        elif not pending(configuration.desired, twin.reported) or not pending(
            twin.desired, twin.reported
        ):
            applied += 1
    return ConfigurationOut(
        id=configuration.id,
        name=configuration.name,
        target=configuration.target,
        priority=configuration.priority,
        desired=configuration.desired,
        created_at=format_us(configuration.created_at),
        updated_at=format_us(configuration.updated_at),
        status=ConfigurationStatus(
            targeted=len(twins),
            applied=applied,
            failed=failed,
            pending=len(twins) - applied - failed,
        ),
    )


def _scoped_target(who: Principal, target: dict[str, Any]) -> dict[str, Any]:
    check_target(target)
    if who.brand is not None:
        if target.get("brand", who.brand) != who.brand:
            raise ValidationError(f"a key of brand {who.brand!r} can only target that brand")
        target = {**target, "brand": who.brand}
    return target


async def _apply(svc: Services) -> None:
    """Recompute every vehicle's desired document and send the ones that changed."""
    for twin in await svc.storage.refresh_desired():
        if svc.nats is not None:
            await request_dispatch(svc.nats, twin.vin)


def _visible(who: Principal, configuration: Configuration) -> bool:
    return who.brand is None or configuration.target.get("brand") == who.brand


@router.get("/configurations", tags=["configurations"])
async def list_configurations(
    who: CurrentPrincipal, svc: CurrentServices
) -> list[ConfigurationOut]:
    """Fleet-wide settings with how many vehicles each targets, has applied and failed."""
    fleet = await svc.storage.list_vehicles(limit=1_000_000)
    return [
        await _configuration_out(svc, c, fleet)
        for c in await svc.storage.list_configurations()
        if _visible(who, c)
    ]


@router.post("/configurations", status_code=status.HTTP_201_CREATED, tags=["configurations"])
async def create_configuration(
    body: ConfigurationIn, who: CurrentPrincipal, svc: CurrentServices
) -> ConfigurationOut:
    """Desired properties for every vehicle the target matches, now and later."""
    now = now_us()
    configuration = await svc.storage.save_configuration(
        Configuration(
            id=f"cfg_{secrets.token_hex(6)}",
            name=body.name,
            target=_scoped_target(who, body.target),
            priority=body.priority,
            desired=check_document(body.desired, "desired"),
            created_at=now,
            updated_at=now,
        )
    )
    await _apply(svc)
    return await _configuration_out(svc, configuration)


@router.get("/configurations/{configuration_id}", tags=["configurations"])
async def get_configuration(
    configuration_id: str, who: CurrentPrincipal, svc: CurrentServices
) -> ConfigurationOut:
    """One configuration and its status."""
    configuration = await svc.storage.get_configuration(configuration_id)
    if not _visible(who, configuration):
        raise NotFoundError(f"configuration {configuration_id} not found")
    return await _configuration_out(svc, configuration)


@router.put("/configurations/{configuration_id}", tags=["configurations"])
async def update_configuration(
    configuration_id: str, body: ConfigurationIn, who: CurrentPrincipal, svc: CurrentServices
) -> ConfigurationOut:
    """Change a configuration; vehicles get the new desired properties."""
    current = await svc.storage.get_configuration(configuration_id)
    if not _visible(who, current):
        raise NotFoundError(f"configuration {configuration_id} not found")
    configuration = await svc.storage.save_configuration(
        Configuration(
            id=current.id,
            name=body.name,
            target=_scoped_target(who, body.target),
            priority=body.priority,
            desired=check_document(body.desired, "desired"),
            created_at=current.created_at,
            updated_at=now_us(),
        )
    )
    await _apply(svc)
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
    current = await svc.storage.get_configuration(configuration_id)
    if not _visible(who, current):
        raise NotFoundError(f"configuration {configuration_id} not found")
    await svc.storage.delete_configuration(configuration_id)
    await _apply(svc)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def refresh_vehicle(svc: Services, vin: str) -> None:
    """A vehicle was registered or changed: give it the configurations that now match."""
    for twin in await svc.storage.refresh_desired([vin]):
        if svc.nats is not None:
            await request_dispatch(svc.nats, twin.vin)
