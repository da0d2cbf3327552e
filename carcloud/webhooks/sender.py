"""The sender: attempts due deliveries over HTTP, each endpoint in its own lane.

Isolation between endpoints: the sender claims due deliveries in rounds, at most
`per_endpoint` of one endpoint at a time, and claims none of an endpoint that
still has attempts in flight; every attempt runs as its own task with a timeout.
A slow or dead endpoint therefore holds at most its own `per_endpoint` attempts
for at most `timeout_s`, while every other endpoint's deliveries go out as soon
as they are due. A claim is a lease in the database: a sender that dies mid-way
leaves its deliveries due again when the lease ends, and they are retried with
the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter

import httpx

from carcloud.errors import CarcloudError
from carcloud.outbound import RefusedTarget, TargetPolicy
from carcloud.timeutil import now_us
from carcloud.webhooks.models import Delivery, DeliveryStatus, Outcome, WebhookEndpoint
from carcloud.webhooks.retries import RetryPolicy
from carcloud.webhooks.service import WebhookService
from carcloud.webhooks.signing import signed_headers

log = logging.getLogger(__name__)

POLL_S = 0.5
PRUNE_EVERY_S = 3600.0
USER_AGENT = "carcloud-webhooks"


class DeliverySender:
    """Sends due deliveries, signed, with per-endpoint lanes and retries from the database."""

    def __init__(
        self,
        service: WebhookService,
        targets: TargetPolicy,
        retries: RetryPolicy | None = None,
        timeout_s: float = 10.0,
        per_endpoint: int = 8,
        max_in_flight: int = 256,
    ) -> None:
        self.service = service
        self.targets = targets
        self.retries = retries or service.retries
        self.timeout_s = timeout_s
        self.per_endpoint = per_endpoint
        self.max_in_flight = max_in_flight
        self.lease_s = timeout_s + 30.0  # longer than any attempt can take
        self.in_flight: Counter[str] = Counter()
        self.sent = 0
        self._wake = asyncio.Event()
        self._failing_endpoints: set[str] = set()
        self._store_failing = False

    def wake(self) -> None:
        """New deliveries were queued: look for due ones now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and attempt due deliveries until `stop` is set; let attempts finish."""
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        timeout = httpx.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s))
        async with (
            httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False) as client,
            asyncio.TaskGroup() as attempts,
        ):
            pruned_at = 0.0
            while not stop.is_set():
                if time.monotonic() - pruned_at >= PRUNE_EVERY_S:
                    pruned_at = time.monotonic()
                    await self._prune()
                self._wake.clear()  # before the claim: a wake-up during it is not lost
                claimed = await self._claim()
                for endpoint, delivery in claimed:
                    self.in_flight[endpoint.id] += 1
                    attempts.create_task(self._attempt(client, endpoint, delivery))
                if claimed:
                    continue  # more may be due
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)

    async def _prune(self) -> None:
        try:
            await self.service.prune()
        except CarcloudError as exc:
            log.error("webhooks: cannot prune old deliveries: %s", exc)  # again in an hour

    async def _claim(self) -> list[tuple[WebhookEndpoint, Delivery]]:
        free = self.max_in_flight - sum(self.in_flight.values())
        if free <= 0:
            return []
        busy = {endpoint_id for endpoint_id, count in self.in_flight.items() if count > 0}
        try:
            due = await self.service.claim_due(free, self.per_endpoint, self.lease_s, busy)
            endpoints = {e.id: e for e in await self.service.list_endpoints(None)} if due else {}
        except CarcloudError as exc:
            if not self._store_failing:
                log.error("webhooks: cannot read due deliveries: %s; retrying", exc)
                self._store_failing = True
            return []
        if self._store_failing:
            log.info("webhooks: reading due deliveries again")
            self._store_failing = False
        # A delivery whose endpoint was deleted meanwhile is gone with it.
        return [(endpoints[d.endpoint_id], d) for d in due if d.endpoint_id in endpoints]

    async def _attempt(
        self, client: httpx.AsyncClient, endpoint: WebhookEndpoint, delivery: Delivery
    ) -> None:
        try:
            outcome = await self.attempt(client, endpoint, delivery)
            await self.service.record_outcome(delivery.id, outcome)
            self._note(endpoint, outcome)
        except CarcloudError as exc:
            # Not recorded: the lease ends and the delivery is attempted again, same id.
            log.error("webhooks: cannot record delivery %s: %s", delivery.id, exc)
        finally:
            self.in_flight[endpoint.id] -= 1
            if self.in_flight[endpoint.id] <= 0:
                del self.in_flight[endpoint.id]
            self._wake.set()

    async def attempt(
        self, client: httpx.AsyncClient, endpoint: WebhookEndpoint, delivery: Delivery
    ) -> Outcome:
        """One signed POST of `delivery` to `endpoint`; the delivery's next state."""
        body = delivery.payload.encode()
        try:
            await self.targets.check(endpoint.url)
        except RefusedTarget as exc:
            return self.retries.failed(delivery, now_us(), None, str(exc), final=True)
        except OSError as exc:
            return self.retries.failed(delivery, now_us(), None, f"cannot resolve: {exc}")
        at = now_us()
        headers = signed_headers(endpoint.secret, delivery.id, at // 1_000_000, body)
        headers["user-agent"] = USER_AGENT
        try:
            async with client.stream("POST", endpoint.url, content=body, headers=headers) as answer:
                code = answer.status_code  # the body is not read: only the status counts
        except httpx.TimeoutException:
            return self.retries.failed(delivery, now_us(), None, f"no answer in {self.timeout_s} s")
        except (httpx.HTTPError, OSError) as exc:
            problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
            return self.retries.failed(delivery, now_us(), None, problem)
        if 200 <= code < 300:
            self.sent += 1
            return self.retries.succeeded(delivery, now_us(), code)
        return self.retries.failed(delivery, now_us(), code, f"answered HTTP {code}")

    def _note(self, endpoint: WebhookEndpoint, outcome: Outcome) -> None:
        """Log an endpoint's failure once when it starts and once when it recovers."""
        if outcome.status is DeliveryStatus.SUCCEEDED:
            if endpoint.id in self._failing_endpoints:
                self._failing_endpoints.discard(endpoint.id)
                log.info("webhooks: %s (%s) receives again", endpoint.id, endpoint.url)
        elif endpoint.id not in self._failing_endpoints:
            self._failing_endpoints.add(endpoint.id)
            log.warning(
                "webhooks: %s (%s) failed: %s; retrying with backoff",
                endpoint.id,
                endpoint.url,
                outcome.error,
            )
