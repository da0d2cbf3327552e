"""What the webhooks slice needs persisted: endpoints, and deliveries with their retry state.

Every delivery's state lives in the database, not in a worker's memory, so retries
survive a restart. A sender claims due deliveries with a lease (their next attempt
moves to the lease's end): a sender that dies mid-attempt leaves them due again
when the lease ends, and two senders never claim the same delivery at once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from carcloud.webhooks.models import Delivery, DeliveryStatus, Outcome, WebhookEndpoint


class WebhookStore(Protocol):
    """Webhook endpoints and deliveries."""

    async def create_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        """Store a new endpoint; NotFoundError if its brand does not exist."""
        ...

    async def list_endpoints(self, brand: str | None) -> list[WebhookEndpoint]:
        """A brand's endpoints (None: every endpoint), oldest first."""
        ...

    async def get_endpoint(self, endpoint_id: str, brand: str | None) -> WebhookEndpoint:
        """One endpoint; NotFoundError if it is not there for the caller."""
        ...

    async def delete_endpoint(self, endpoint_id: str, brand: str | None) -> None:
        """Remove an endpoint and its deliveries; NotFoundError if not there for the caller."""
        ...

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """Queue deliveries; one per (endpoint, event) whatever is repeated; how many new."""
        ...

    async def claim_due(
        self,
        now: int,
        lease_until: int,
        limit: int,
        per_endpoint: int,
        skip_endpoints: Collection[str] = (),
    ) -> list[Delivery]:
        """Pending deliveries due at `now`, at most `per_endpoint` of each endpoint, leased
        until `lease_until` (their `next_attempt_at`); none of `skip_endpoints`."""
        ...

    async def record_outcome(self, delivery_id: str, outcome: Outcome) -> None:
        """Store what an attempt led to (a delivery deleted meanwhile is ignored)."""
        ...

    async def list_deliveries(
        self,
        endpoint_id: str,
        brand: str | None,
        status: DeliveryStatus | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest event first, of events with id < `before`."""
        ...

    async def prune(self, succeeded_before: int, failed_before: int) -> int:
        """Delete deliveries that succeeded or failed before these times; how many."""
        ...

    async def redeliver(
        self, endpoint_id: str, delivery_id: str, brand: str | None, now: int, retry_until: int
    ) -> Delivery:
        """Queue a delivery again, due now, retried until `retry_until`; same id and body."""
        ...
