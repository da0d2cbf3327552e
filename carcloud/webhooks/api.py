"""Webhooks over REST: subscribe, list, unsubscribe, read deliveries, redeliver one.

Scoped by brand like every read: a brand key sees and creates only its brand's
webhooks; an operator key sees all, and a webhook it makes without a brand gets
the events of every brand.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.webhooks.models import DeliveryStatus

router = APIRouter()


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(examples=["https://app.example.com/carcloud/webhooks"])
    event_types: list[str] = Field(
        examples=[["trip.completed", "charging", "vehicle.*"]],
        description="Types or groups (`trip`, `vehicle.*`) of GET /event-types",
    )
    vins: list[str] = Field(default_factory=list, description="None listed: every vehicle")
    brand: str | None = Field(
        default=None,
        description="A brand key's webhooks are its brand's; an operator key may name a brand "
        "or leave it out for every brand's events",
    )
    description: str = ""


@router.get("/webhooks", tags=["webhooks"])
async def list_webhooks(who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """Webhooks the caller may see (their secrets are shown only at creation)."""
    endpoints = await svc.webhooks.list_endpoints(who.brand)
    return {"webhooks": [endpoint.document() for endpoint in endpoints]}


@router.post("/webhooks", tags=["webhooks"], status_code=status.HTTP_201_CREATED)
async def create_webhook(
    body: WebhookIn, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Subscribe a URL; the answer holds the signing `secret`, shown this once."""
    brand = body.brand or who.brand
    if brand is not None:
        who.check_brand(brand)
    endpoint = await svc.webhooks.create_endpoint(
        brand, body.url, body.event_types, body.vins, body.description
    )
    return {**endpoint.document(), "secret": endpoint.secret}


@router.get("/webhooks/{webhook_id}", tags=["webhooks"])
async def get_webhook(webhook_id: str, who: CurrentPrincipal, svc: CurrentServices) -> Any:
    """One webhook."""
    return (await svc.webhooks.get_endpoint(webhook_id, who.brand)).document()


@router.delete("/webhooks/{webhook_id}", tags=["webhooks"], status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: str, who: CurrentPrincipal, svc: CurrentServices) -> Response:
    """Unsubscribe: its pending deliveries are not sent, its delivery records go with it."""
    await svc.webhooks.delete_endpoint(webhook_id, who.brand)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/webhooks/{webhook_id}/deliveries", tags=["webhooks"])
async def list_deliveries(
    webhook_id: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    status_filter: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    before: Annotated[
        int | None, Query(ge=1, description="Only deliveries of events older than this event id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """A webhook's deliveries, newest event first, with their attempts and last answer."""
    deliveries = await svc.webhooks.list_deliveries(
        webhook_id, who.brand, status_filter, before, limit
    )
    return {
        "deliveries": [delivery.document() for delivery in deliveries],
        "next_before": deliveries[-1].event_id if len(deliveries) == limit else None,
    }


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    tags=["webhooks"],
    status_code=status.HTTP_202_ACCEPTED,
)
async def redeliver(
    webhook_id: str, delivery_id: str, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Send a delivery again now: the same webhook-id and body, retried like a new one."""
    delivery = await svc.webhooks.redeliver(webhook_id, delivery_id, who.brand)
    return delivery.document()
