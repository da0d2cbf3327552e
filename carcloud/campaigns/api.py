"""The campaigns router: define data-collection campaigns and follow their status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.campaigns.service import Campaign
from carcloud.timeutil import format_us

router = APIRouter()


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

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignOut:
        return cls(
            name=campaign.name,
            target=campaign.configuration.target,
            definition=campaign.definition,
            active=campaign.active,
            created_at=format_us(campaign.configuration.created_at),
            updated_at=format_us(campaign.configuration.updated_at),
            status=CampaignStatus(
                targeted=campaign.targeted, running=campaign.running, failed=campaign.failed
            ),
        )


@router.get("/campaigns", tags=["campaigns"])
async def list_campaigns(who: CurrentPrincipal, svc: CurrentServices) -> list[CampaignOut]:
    """Campaigns with how many vehicles each targets, runs and failed."""
    return [CampaignOut.of(campaign) for campaign in await svc.campaigns.list(who.brand)]


@router.post("/campaigns", status_code=status.HTTP_201_CREATED, tags=["campaigns"])
async def create_campaign(
    body: CampaignIn, who: CurrentPrincipal, svc: CurrentServices
) -> CampaignOut:
    """Start collecting: the targeted agents get the campaign through their twin."""
    definition = body.model_dump(exclude={"name", "target"})
    return CampaignOut.of(await svc.campaigns.create(who.brand, body.name, body.target, definition))


@router.get("/campaigns/{name}", tags=["campaigns"])
async def get_campaign(name: str, who: CurrentPrincipal, svc: CurrentServices) -> CampaignOut:
    """One campaign and its status."""
    return CampaignOut.of(await svc.campaigns.get(who.brand, name))


@router.post("/campaigns/{name}/pause", tags=["campaigns"])
async def pause_campaign(name: str, who: CurrentPrincipal, svc: CurrentServices) -> CampaignOut:
    """Stop collecting on every agent (the definition stays)."""
    return CampaignOut.of(await svc.campaigns.set_active(who.brand, name, False))


@router.post("/campaigns/{name}/resume", tags=["campaigns"])
async def resume_campaign(name: str, who: CurrentPrincipal, svc: CurrentServices) -> CampaignOut:
    """Collect again."""
    return CampaignOut.of(await svc.campaigns.set_active(who.brand, name, True))


@router.delete("/campaigns/{name}", status_code=status.HTTP_204_NO_CONTENT, tags=["campaigns"])
async def delete_campaign(name: str, who: CurrentPrincipal, svc: CurrentServices) -> Response:
    """Remove a campaign from every agent."""
    await svc.campaigns.delete(who.brand, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
