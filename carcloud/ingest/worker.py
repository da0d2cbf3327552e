"""The ingest worker: pulls telemetry from JetStream in batches, stores, then acks.

Several workers (in one process or many) share one durable pull consumer, so
JetStream spreads the work. Nothing is acknowledged before its transaction has
committed; a crash between commit and ack only causes a redelivery, which the
(vin, seq) key turns into a no-op. After each commit the worker publishes a commit
notice for the derivers (`notices.py`) and waits for JetStream to hold it before it
acknowledges, and tells the cars what it stored (commit receipts, `receipts.py`): a
car's PUBACK is no proof of storage, the receipt is.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from carcloud.catalog import SignalCatalog
from carcloud.errors import CarcloudError, ValidationError
from carcloud.events.models import NewEvent
from carcloud.ingest.models import DeadLetter, TelemetryMessage
from carcloud.ingest.notices import COMMITTED_SUBJECT, notice_of
from carcloud.ingest.protocol import DEFAULT_MAX_MESSAGE_BYTES, decode_telemetry
from carcloud.ingest.receipts import DEFAULT_EVERY_S, ReceiptSender
from carcloud.ingest.store import TelemetryStore
from carcloud.messaging import topics
from carcloud.messaging.puller import BatchPuller
from carcloud.messaging.streams import TELEMETRY_STREAM
from carcloud.timeutil import now_us

log = logging.getLogger(__name__)

INGEST_CONSUMER = "ingest"
# Messages decoded between two turns of the event loop (`IngestWorker.decode_in_turns`).
DECODE_TURN = 100


class IngestPolicy:
    """What ingest decides inside the write: dead letters for unknown VINs, and their events."""

    def unknown_vin(self, message: TelemetryMessage) -> DeadLetter:
        """A message of a VIN nobody registered is kept as a dead letter, not dropped."""
        return DeadLetter(
            received_at=message.received_at,
            subject=topics.nats_subject(message.vin, topics.TELEMETRY),
            vin=message.vin,
            reason=f"unknown VIN {message.vin}: no registered vehicle",
            payload=b"",
        )

    def dead_letter_events(self, letter: DeadLetter) -> tuple[NewEvent, ...]:
        """Every stored dead letter is a `dead_letter.recorded` event."""
        data = {"id": letter.id, "subject": letter.subject, "reason": letter.reason}
        return (NewEvent("dead_letter.recorded", vin=letter.vin, data=data),)


INGEST_POLICY = IngestPolicy()


@dataclass
class IngestStats:
    """Counters a worker keeps; `carcloud status` and the benchmark read them."""

    batches: int = 0
    messages: int = 0
    samples: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    failures: int = 0
    last_error: str | None = None
    receipts: int = 0
    notices: int = 0


# (vin, seq, backlog): a committed message that a receipt will name.
Receipted = tuple[str, int, bool]


def consumer_config() -> ConsumerConfig:
    """The durable pull consumer every ingest worker shares."""
    return ConsumerConfig(
        durable_name=INGEST_CONSUMER,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        # A crashed worker's messages come back after this; a batch commits in far less.
        ack_wait=10.0,
        max_deliver=-1,
        max_ack_pending=50_000,
        max_waiting=512,
        filter_subject=topics.ALL_TELEMETRY,
    )


class IngestWorker:
    """One ingest loop; run several for more throughput."""

    def __init__(
        self,
        nc: NatsClient,
        storage: TelemetryStore,
        catalog: SignalCatalog,
        batch_size: int = 1000,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        name: str = "ingest",
        receipt_every_s: float | None = DEFAULT_EVERY_S,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.storage = storage
        self.catalog = catalog
        self.batch_size = batch_size
        self.max_message_bytes = max_message_bytes
        self.name = name
        self.stats = IngestStats()
        self._failing = False
        # None: no receipts (the benchmark's comparison; cars then rely on PUBACK alone).
        self.receipts = (
            ReceiptSender(self._publish_receipt, receipt_every_s)
            if receipt_every_s is not None
            else None
        )

    async def _publish_receipt(self, subject: str, payload: bytes) -> None:
        await self.nc.publish(subject, payload)
        self.stats.receipts += 1

    async def _flush_receipts(self) -> None:
        if self.receipts is None:
            return
        try:
            await self.receipts.flush()
        except nats.errors.Error as exc:
            # A receipt that cannot go out costs the car a resend, nothing more.
            self._failed(f"cannot send receipts: {exc}")

    async def run(self, stop: asyncio.Event) -> None:
        """Pull, store and ack until `stop` is set.

        Two batches are in flight at most: while one commits on the storage thread, the
        next is fetched and decoded, so the event loop and the database work at once.
        """
        puller = BatchPuller(self.nc, TELEMETRY_STREAM, INGEST_CONSUMER, self.batch_size)
        await puller.start()
        log.info("%s: pulling from %s/%s", self.name, TELEMETRY_STREAM, INGEST_CONSUMER)
        storing: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                try:
                    batch = await puller.next_batch(wait_s=0.5)
                except nats.errors.Error as exc:
                    # Connection trouble: the client reconnects by itself; wait and pull again.
                    self._failed(f"cannot pull from JetStream: {exc}")
                    await asyncio.sleep(0.5)
                    continue
                await self._flush_receipts()
                if not batch:
                    if storing is not None:
                        await storing
                        storing = None
                    continue
                decoded = await self.decode_in_turns(batch)
                if storing is not None:
                    await storing
                storing = asyncio.create_task(self.store_batch(batch, *decoded))
        finally:
            if storing is not None:
                await storing
            await puller.stop()

    def _failed(self, problem: str) -> None:
        self.stats.failures += 1
        self.stats.last_error = problem
        if not self._failing:
            log.error("%s: %s; retrying", self.name, problem)
            self._failing = True

    async def decode_in_turns(
        self, batch: list[Msg]
    ) -> tuple[list[TelemetryMessage], list[DeadLetter], list[Receipted]]:
        """`decode_batch`, giving the event loop back every DECODE_TURN messages.

        Decoding a batch of 1,000 messages at once holds the loop for 10-20 ms here; every
        task of the process waiting on it (a derivation between two reads, a command, an
        API request) would wait that long at each of its steps.
        """
        received_at = now_us()
        decoded: tuple[list[TelemetryMessage], list[DeadLetter], list[Receipted]] = ([], [], [])
        for start in range(0, len(batch), DECODE_TURN):
            if start:
                await asyncio.sleep(0)
            self.decode_batch(batch[start : start + DECODE_TURN], received_at, decoded)
        return decoded

    def decode_batch(
        self,
        batch: list[Msg],
        received_at: int | None = None,
        into: tuple[list[TelemetryMessage], list[DeadLetter], list[Receipted]] | None = None,
    ) -> tuple[list[TelemetryMessage], list[DeadLetter], list[Receipted]]:
        """Decode and validate every message of a batch; what its receipts will name
        (added to `into` if given)."""
        received_at = now_us() if received_at is None else received_at
        messages, letters, receipted = into if into is not None else ([], [], [])
        for msg in batch:
            try:
                vin = topics.vin_from_subject(msg.subject)
            except ValidationError as exc:
                letters.append(DeadLetter(received_at, msg.subject, None, str(exc), msg.data))
                continue
            decoded = decode_telemetry(
                vin, msg.subject, msg.data, received_at, self.catalog, self.max_message_bytes
            )
            if decoded.message is not None:
                messages.append(decoded.message)
            if decoded.dead_letter is not None:
                letters.append(decoded.dead_letter)
            if decoded.seq is not None:
                receipted.append((vin, decoded.seq, decoded.batch))
        return messages, letters, receipted

    async def store_batch(
        self,
        batch: list[Msg],
        messages: list[TelemetryMessage],
        letters: list[DeadLetter],
        receipted: list[Receipted] | None = None,
    ) -> None:
        """Store in one transaction, publish its commit notice, then ack every message; on
        failure let them redeliver (the notice of data stored before is published again).

        The receipts name what the commit holds, so they are noted right after it,
        before the acks (an ack that fails does not undo the commit).
        """
        try:
            result = await self.storage.write_telemetry(messages, letters, INGEST_POLICY)
            notice = notice_of(messages, result.unknown_vins)
            if notice.vehicles:
                for part in notice.parts():
                    await self.js.publish(COMMITTED_SUBJECT, part.encode())
                    self.stats.notices += 1
            if self.receipts is not None and receipted:
                unknown = set(result.unknown_vins)
                for vin, seq, backlog in receipted:
                    if vin not in unknown:
                        self.receipts.note(vin, seq, backlog)
            for msg in batch:
                await msg.ack()
        except (CarcloudError, nats.errors.Error) as exc:
            self._failed(f"cannot store a batch of {len(batch)}: {exc}")
            await _nak_all(batch, delay=1.0)
            return
        if self._failing:
            log.info("%s: storing again", self.name)
            self._failing = False
        self.stats.batches += 1
        self.stats.messages += result.messages_stored
        self.stats.samples += result.samples_stored
        self.stats.duplicates += result.duplicates
        self.stats.dead_letters += result.dead_letters
        await self._flush_receipts()


async def _nak_all(batch: list[Msg], delay: float) -> None:
    for msg in batch:
        try:
            await msg.nak(delay=delay)
        except nats.errors.Error:
            return
