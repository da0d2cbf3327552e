"""The webhooks slice's rules: who may subscribe to what, which events become deliveries,
and how an attempt's result moves a delivery on.

Deliveries are made from events read from the EVENTS stream (`record_events`):
one per endpoint that wants the event, written before the stream message is
acknowledged, and idempotent, so a redelivered message queues nothing twice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import orjson

from carcloud.events.models import DomainEvent
from carcloud.timeutil import now_us
from carcloud.webhooks.models import (
    Delivery,
    DeliveryStatus,
    Outcome,
    WebhookEndpoint,
    check_event_types,
    check_url,
    check_vins,
    new_delivery_id,
    new_endpoint_id,
    new_secret,
)
from carcloud.webhooks.retries import RetryPolicy
from carcloud.webhooks.store import WebhookStore

DAY_US = 86_400 * 1_000_000
# How long finished deliveries stay readable (and redeliverable) in the API.
KEEP_SUCCEEDED_US = 7 * DAY_US  # as long as the events themselves
KEEP_FAILED_US = 30 * DAY_US  # long enough for someone to notice and redeliver


class WebhookService:
    """Subscriptions, deliveries and redelivery."""

    def __init__(self, store: WebhookStore, retries: RetryPolicy | None = None) -> None:
        self.store = store
        self.retries = retries or RetryPolicy()

    async def create_endpoint(
        self,
        brand: str | None,
        url: str,
        event_types: Sequence[str],
        vins: Sequence[str] = (),
        description: str = "",
    ) -> WebhookEndpoint:
        """Subscribe `url`; the result holds the secret, which is never shown again."""
        endpoint = WebhookEndpoint(
            id=new_endpoint_id(),
            brand=brand,
            url=check_url(url),
            event_types=check_event_types(tuple(event_types)),
            vins=check_vins(tuple(vins)),
            description=description.strip(),
            secret=new_secret(),
            created_at=now_us(),
        )
        return await self.store.create_endpoint(endpoint)

    async def list_endpoints(self, brand: str | None) -> list[WebhookEndpoint]:
        """Endpoints the caller may see."""
        return await self.store.list_endpoints(brand)

    async def get_endpoint(self, endpoint_id: str, brand: str | None) -> WebhookEndpoint:
        """One endpoint the caller may see."""
        return await self.store.get_endpoint(endpoint_id, brand)

    async def delete_endpoint(self, endpoint_id: str, brand: str | None) -> None:
        """Unsubscribe: no more deliveries, pending ones included."""
        await self.store.delete_endpoint(endpoint_id, brand)

    async def record_events(self, events: Iterable[DomainEvent]) -> int:
        """Queue a delivery for every endpoint that wants each event; how many new.

        `events` is only iterated when some endpoint exists.
        """
        endpoints = await self.store.list_endpoints(None)
        if not endpoints:
            return 0
        now = now_us()
        deliveries = [
            Delivery(
                id=new_delivery_id(),
                endpoint_id=endpoint.id,
                event_id=event.id,
                event_type=event.type,
                payload=orjson.dumps(event.to_json()).decode(),
                status=DeliveryStatus.PENDING,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
                retry_until=now + self.retries.window_us,
            )
            for event in events
            for endpoint in endpoints
            if endpoint.wants(event)
        ]
        return await self.store.add_deliveries(deliveries)

    async def claim_due(
        self, limit: int, per_endpoint: int, lease_s: float, busy: Collection[str] = ()
    ) -> list[Delivery]:
        """Due deliveries for a sender, leased for `lease_s`; none of the `busy` endpoints."""
        now = now_us()
        return await self.store.claim_due(
            now, now + int(lease_s * 1_000_000), limit, per_endpoint, busy
        )

    async def record_outcome(self, delivery_id: str, outcome: Outcome) -> None:
        """Store an attempt's result."""
        await self.store.record_outcome(delivery_id, outcome)

    async def list_deliveries(
        self,
        endpoint_id: str,
        brand: str | None,
        status: DeliveryStatus | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest first."""
        return await self.store.list_deliveries(endpoint_id, brand, status, before, limit)

    async def prune(self) -> int:
        """Forget finished deliveries: succeeded after 7 days, failed after 30; how many."""
        now = now_us()
        return await self.store.prune(now - KEEP_SUCCEEDED_US, now - KEEP_FAILED_US)

    async def redeliver(self, endpoint_id: str, delivery_id: str, brand: str | None) -> Delivery:
        """Send a delivery again now, with the same id and body, retried like a new one."""
        now = now_us()
        return await self.store.redeliver(
            endpoint_id, delivery_id, brand, now, now + self.retries.window_us
        )
