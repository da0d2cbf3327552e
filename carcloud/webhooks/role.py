"""The webhooks worker: follows the EVENTS stream into deliveries, and sends them.

The feed reads EVENTS through a durable consumer of its own (`webhooks`), queues a
delivery per endpoint that wants each event (one row per endpoint and event, so a
message seen twice queues nothing twice), and acknowledges only after that
commit. Sending is the sender's job (`sender.py`), driven by the database, so an
endpoint that is down never holds up the feed, and retries survive a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from carcloud.errors import CarcloudError
from carcloud.events.models import SUBJECT_PREFIX, DomainEvent
from carcloud.messaging.puller import BatchPuller
from carcloud.messaging.streams import EVENTS_STREAM, ensure_consumer
from carcloud.outbound import TargetPolicy
from carcloud.timeutil import parse_rfc3339_us
from carcloud.webhooks.retries import RetryPolicy
from carcloud.webhooks.sender import DeliverySender
from carcloud.webhooks.service import WebhookService

log = logging.getLogger(__name__)

WEBHOOKS_CONSUMER = "webhooks"
# Events that arrive this close together are queued as one batch: one read of the
# endpoints and one write per batch, not per event (every command makes two events).
FEED_LINGER_S = 0.05


def consumer_config() -> ConsumerConfig:
    """The durable pull consumer webhook workers share.

    From the start of the stream: an endpoint gets only events committed after it
    was created (`WebhookEndpoint.wants`), so reading old events queues nothing.
    """
    return ConsumerConfig(
        durable_name=WEBHOOKS_CONSUMER,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=60.0,
        max_deliver=-1,
        max_ack_pending=20_000,
        max_waiting=512,
        filter_subject=f"{SUBJECT_PREFIX}.>",
    )


def event_of(data: bytes) -> DomainEvent | None:
    """The event of an EVENTS message (the relay's JSON); None if it is not one."""
    try:
        body: dict[str, Any] = orjson.loads(data)
        return DomainEvent(
            id=int(body["id"]),
            type=str(body["type"]),
            brand=body.get("brand"),
            vin=body.get("vin"),
            at=parse_rfc3339_us(str(body["at"]), "at"),
            data=dict(body.get("data") or {}),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, CarcloudError):
        return None


class EventFeed:
    """EVENTS → queued deliveries, acknowledged after they are stored."""

    def __init__(
        self,
        nc: NatsClient,
        service: WebhookService,
        queued: Callable[[], None],
        batch_size: int = 500,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.service = service
        self.queued = queued
        self.batch_size = batch_size
        self.events_read = 0
        self._failing = False

    async def run(self, stop: asyncio.Event) -> None:
        """Pull, queue deliveries, ack; until `stop` is set."""
        await ensure_consumer(self.js, EVENTS_STREAM, consumer_config())
        puller = BatchPuller(
            self.nc, EVENTS_STREAM, WEBHOOKS_CONSUMER, self.batch_size, linger_s=FEED_LINGER_S
        )
        await puller.start()
        try:
            while not stop.is_set():
                try:
                    batch = await puller.next_batch(wait_s=0.5)
                except nats.errors.Error as exc:
                    self._failed(f"cannot pull from JetStream: {exc}")
                    await asyncio.sleep(0.5)
                    continue
                if batch:
                    await self._queue(batch)
        finally:
            await puller.stop()

    async def _queue(self, batch: list[Msg]) -> None:
        # Parsed only if some endpoint exists (record_events looks first): on most
        # platforms none does, and every command makes two events.
        events = (event for event in map(event_of, (m.data for m in batch)) if event is not None)
        try:
            new = await self.service.record_events(events)
            for msg in batch:
                await msg.ack()
        except (CarcloudError, nats.errors.Error) as exc:
            self._failed(f"cannot queue deliveries of {len(batch)} events: {exc}")
            for msg in batch:
                try:
                    await msg.nak(delay=1.0)
                except nats.errors.Error:
                    break
            return
        self.events_read += len(batch)
        if new:
            self.queued()
        if self._failing:
            log.info("webhooks: queueing deliveries again")
            self._failing = False

    def _failed(self, problem: str) -> None:
        if not self._failing:
            log.error("webhooks: %s; retrying", problem)
            self._failing = True


def webhook_runners(
    nc: NatsClient,
    service: WebhookService,
    allow_private: bool,
    retries: RetryPolicy | None = None,
) -> list[Callable[[asyncio.Event], Awaitable[None]]]:
    """The role's loops: the feed and the sender, the feed waking the sender."""
    sender = DeliverySender(service, TargetPolicy(allow_private), retries)
    feed = EventFeed(nc, service, sender.wake)
    return [feed.run, sender.run]
