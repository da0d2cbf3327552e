"""Data-collection campaigns: defined here, delivered to agents in their desired twin.

A campaign is stored as a fleet configuration (name `campaign:<name>`) whose desired
properties are `{"campaigns": {<name>: <definition>}}`, so targeting, vehicles that
match later, and re-delivery after reconnect all come from the configuration
machinery. Agents report what they run under `campaign_status`.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.routes.twins import _apply, _scoped_target, _visible, targeted_twins
from carcloud.api.security import CurrentPrincipal, CurrentServices, Principal
from carcloud.campaigns import parse_campaign
from carcloud.errors import ConflictError, NotFoundError
from carcloud.services import Services
from carcloud.storage.models import Configuration, Vehicle
from carcloud.timeutil import format_us, now_us

router = APIRouter()
PREFIX = "campaign:"


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", examples=["overspeed"])
    target: dict[str, Any] = Field(default_factory=dict, examples=[{"brand": "volta"}])
    signals: list[str] = Field(examples=[["Vehicle.Speed", "Vehicle.CurrentLocation.Latitude"]])
    trigger: str = Field(default="time", description="time or condition")
    period_ms: int = 1000
    condition: str | None = Field(default=None, examples=["Vehicle.Speed > 130"])
    mode: str = Field(default="rising_edge", description="rising_edge or always")
    min_interval_ms: int = 0
    pre_trigger_ms: int = 0
    post_trigger_ms: int = 0


class CampaignStatus(BaseModel):
    targeted: int
    running: int = Field(description="Vehicles whose agent reports running it")
    failed: int


class CampaignOut(BaseModel):
    name: str
    target: dict[str, Any]
    definition: dict[str, Any]
    active: bool
    created_at: str | None
    updated_at: str | None
    status: CampaignStatus


async def _find(svc: Services, who: Principal, name: str) -> Configuration:
    for configuration in await svc.storage.list_configurations():
        if configuration.name == PREFIX + name and _visible(who, configuration):
            return configuration
    raise NotFoundError(f"campaign {name!r} not found")


async def _out(
    svc: Services, configuration: Configuration, fleet: list[Vehicle] | None = None
) -> CampaignOut:
    name = configuration.name.removeprefix(PREFIX)
    definition = dict(configuration.desired["campaigns"][name])  # type: ignore[index]
    twins = await targeted_twins(svc, configuration.target, fleet)
    running = failed = 0
    for twin in twins:
        statuses = twin.reported.get("campaign_status")
        state = statuses.get(name) if isinstance(statuses, dict) else None
        errors = twin.reported.get("errors") or {}
        if isinstance(errors, dict) and name in str(errors.get("campaigns", "")):
            failed += 1
        elif isinstance(state, dict) and state.get("running"):
            running += 1
    return CampaignOut(
        name=name,
        target=configuration.target,
        definition=definition,
        active=bool(definition.get("active", True)),
        created_at=format_us(configuration.created_at),
        updated_at=format_us(configuration.updated_at),
        status=CampaignStatus(targeted=len(twins), running=running, failed=failed),
    )


@router.get("/campaigns", tags=["campaigns"])
async def list_campaigns(who: CurrentPrincipal, svc: CurrentServices) -> list[CampaignOut]:
    """Campaigns with how many vehicles each targets, runs and failed."""
    fleet = await svc.storage.list_vehicles(limit=1_000_000)
    return [
        await _out(svc, c, fleet)
        for c in await svc.storage.list_configurations()
        if c.name.startswith(PREFIX) and _visible(who, c)
    ]


@router.post("/campaigns", status_code=status.HTTP_201_CREATED, tags=["campaigns"])
async def create_campaign(
    body: CampaignIn, who: CurrentPrincipal, svc: CurrentServices
) -> CampaignOut:
    """Start collecting: the targeted agents get the campaign through their twin."""
    definition = parse_campaign(body.name, body.model_dump(exclude={"name", "target"}))
    if any(c.name == PREFIX + body.name for c in await svc.storage.list_configurations()):
        raise ConflictError(f"campaign {body.name!r} already exists")
    now = now_us()
    configuration = await svc.storage.save_configuration(
        Configuration(
            id=f"cmp_{secrets.token_hex(6)}",
            name=PREFIX + body.name,
            target=_scoped_target(who, body.target),
            priority=100,
            desired={"campaigns": {body.name: definition.to_document()}},
            created_at=now,
            updated_at=now,
        )
    )
    await _apply(svc)
    return await _out(svc, configuration)


@router.get("/campaigns/{name}", tags=["campaigns"])
async def get_campaign(name: str, who: CurrentPrincipal, svc: CurrentServices) -> CampaignOut:
    """One campaign and its status."""
    return await _out(svc, await _find(svc, who, name))


async def _set_active(svc: Services, who: Principal, name: str, active: bool) -> CampaignOut:
    current = await _find(svc, who, name)
    document = dict(current.desired["campaigns"][name])  # type: ignore[index]
    document["active"] = active
    updated = await svc.storage.save_configuration(
        Configuration(
            id=current.id,
            name=current.name,
            target=current.target,
            priority=current.priority,
            desired={"campaigns": {name: document}},
            created_at=current.created_at,
            updated_at=now_us(),
        )
    )
    await _apply(svc)
    return await _out(svc, updated)


@router.post("/campaigns/{name}/pause", tags=["campaigns"])
async def pause_campaign(name: str, who: CurrentPrincipal, svc: CurrentServices) -> CampaignOut:
    """Stop collecting on every agent (the definition stays)."""
    return await _set_active(svc, who, name, False)


@router.post("/campaigns/{name}/resume", tags=["campaigns"])
async def resume_campaign(name: str, who: CurrentPrincipal, svc: CurrentServices) -> CampaignOut:
    """Collect again."""
    return await _set_active(svc, who, name, True)


@router.delete("/campaigns/{name}", status_code=status.HTTP_204_NO_CONTENT, tags=["campaigns"])
async def delete_campaign(name: str, who: CurrentPrincipal, svc: CurrentServices) -> Response:
    """Remove a campaign from every agent."""
    current = await _find(svc, who, name)
    await svc.storage.delete_configuration(current.id)
    await _apply(svc)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
