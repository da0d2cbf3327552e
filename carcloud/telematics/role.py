"""The derive worker: follows committed telemetry and re-derives what it changed.

It reads the TELEMETRY stream through a durable consumer of its own (`derive`),
but only as a list of what arrived: which vehicle, from which vehicle time. It
waits until ingest has acknowledged those messages (ingest acknowledges only
after its commit, so the data is in the database, or was a dead letter), then
asks each deriver to re-derive that vehicle from that time on, from the committed
history, and acknowledges. A crash before the acknowledgement redelivers the
batch; re-deriving is idempotent. Live data and a backlog take the same path.

Derivers are declared once (`Deriver`): trips and charging sessions today; geofences
and alert rules can be more derivers on the same committed-data feed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from carcloud.catalog import SignalCatalog
from carcloud.errors import CarcloudError, ValidationError
from carcloud.ingest.protocol import decode_telemetry
from carcloud.ingest.worker import INGEST_CONSUMER
from carcloud.messaging import topics
from carcloud.messaging.puller import BatchPuller
from carcloud.messaging.streams import TELEMETRY_STREAM, ensure_consumer

log = logging.getLogger(__name__)

DERIVE_CONSUMER = "derive"
# How often to ask whether ingest has committed what this worker is about to derive.
COMMIT_POLL_S = 0.1
# Vehicles of one batch derived side by side.
DERIVE_CONCURRENCY = 16


class Deriver(Protocol):
    """Something derived from committed telemetry, re-derived from a vehicle time on."""

    async def derive(self, vin: str, since: int) -> object:
        """Re-derive vehicle `vin` from vehicle time `since` (epoch microseconds) on."""
        ...


def consumer_config() -> ConsumerConfig:
    """The durable pull consumer derive workers share."""
    return ConsumerConfig(
        durable_name=DERIVE_CONSUMER,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=60.0,
        max_deliver=-1,
        max_ack_pending=50_000,
        max_waiting=512,
        filter_subject=topics.ALL_TELEMETRY,
    )


def oldest_times(batch: Sequence[Msg], catalog: SignalCatalog) -> dict[str, int]:
    """VIN -> the oldest vehicle time of its messages in the batch (undecodable: skipped)."""
    oldest: dict[str, int] = {}
    for msg in batch:
        try:
            vin = topics.vin_from_subject(msg.subject)
        except ValidationError:
            continue
        decoded = decode_telemetry(vin, msg.subject, msg.data, 0, catalog)
        if decoded.message is None:
            continue
        ts = min(sample[1] for sample in decoded.message.samples)
        if vin not in oldest or ts < oldest[vin]:
            oldest[vin] = ts
    return oldest


async def derive_vehicles(
    derivers: Sequence[Deriver], oldest: dict[str, int], concurrency: int = DERIVE_CONCURRENCY
) -> int:
    """Derive each vehicle from its time on, up to `concurrency` vehicles at once.

    One vehicle's derivers run in order; different vehicles run side by side, so
    their reads overlap and their writes share the store's group commits instead of
    each waiting for a commit of its own behind ingest's. If any vehicle fails, the
    others still finish, then the first error is raised (the batch is derived again).
    """
    limit = asyncio.Semaphore(concurrency)

    async def one(vin: str, since: int) -> None:
        async with limit:
            for deriver in derivers:
                await deriver.derive(vin, since)

    outcomes = await asyncio.gather(
        *(one(vin, since) for vin, since in oldest.items()), return_exceptions=True
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return len(oldest)


class DeriveWorker:
    """One derive loop over the committed-telemetry feed."""

    def __init__(
        self,
        nc: NatsClient,
        derivers: Sequence[Deriver],
        catalog: SignalCatalog,
        batch_size: int = 1000,
        name: str = "derive",
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.derivers = tuple(derivers)
        self.catalog = catalog
        self.batch_size = batch_size
        self.name = name
        self.derived = 0
        self._failing = False

    async def run(self, stop: asyncio.Event) -> None:
        """Pull, wait for ingest's commit, derive, ack; until `stop` is set."""
        await ensure_consumer(self.js, TELEMETRY_STREAM, consumer_config())
        puller = BatchPuller(self.nc, TELEMETRY_STREAM, DERIVE_CONSUMER, self.batch_size)
        await puller.start()
        log.info("%s: following committed telemetry", self.name)
        try:
            while not stop.is_set():
                try:
                    batch = await puller.next_batch(wait_s=0.5)
                except nats.errors.Error as exc:
                    self._failed(f"cannot pull from JetStream: {exc}")
                    await asyncio.sleep(0.5)
                    continue
                if not batch:
                    continue
                try:
                    await self._derive_batch(batch, stop)
                except (CarcloudError, nats.errors.Error) as exc:
                    self._failed(f"cannot derive a batch of {len(batch)}: {exc}")
                    await _nak_all(batch, delay=1.0)
        finally:
            await puller.stop()

    async def _derive_batch(self, batch: list[Msg], stop: asyncio.Event) -> None:
        newest = max(msg.metadata.sequence.stream for msg in batch)
        if not await self._committed(newest, stop):
            return  # stopping: the batch is redelivered to the next worker
        self.derived += await derive_vehicles(self.derivers, oldest_times(batch, self.catalog))
        for msg in batch:
            await msg.ack()
        if self._failing:
            log.info("%s: deriving again", self.name)
            self._failing = False

    async def _committed(self, stream_seq: int, stop: asyncio.Event) -> bool:
        """Wait until ingest has acknowledged every message up to `stream_seq`."""
        while not stop.is_set():
            info = await self.js.consumer_info(TELEMETRY_STREAM, INGEST_CONSUMER)
            floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
            if floor is not None and floor >= stream_seq:
                return True
            await asyncio.sleep(COMMIT_POLL_S)
        return False

    def _failed(self, problem: str) -> None:
        if not self._failing:
            log.error("%s: %s; retrying", self.name, problem)
            self._failing = True


async def _nak_all(batch: list[Msg], delay: float) -> None:
    for msg in batch:
        try:
            await msg.nak(delay=delay)
        except nats.errors.Error:
            return
