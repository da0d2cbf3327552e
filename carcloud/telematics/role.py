"""The derive worker: follows committed telemetry and re-derives what it changed.

It reads ingest's commit notices (`carcloud.ingest.notices`) through a durable
consumer of its own (`derive`) on the TELEMETRY_COMMITTED stream: each names the
vehicles a committed batch held data of, from which vehicle time to which. A notice
is published only after its commit, so the data is in the database when it arrives.
The worker asks each deriver to re-derive that vehicle from that time on, from the
committed history, and acknowledges the notice. A crash before the acknowledgement
redelivers it; re-deriving is idempotent. Live data and a backlog take the same path.

Pulling and deriving overlap, and work is per vehicle, not per notice: see
`DeriveWorker`.

Derivers are declared once (`Deriver`): trips and charging sessions, geofences, alert
rules and the calls' motion policy, all on the same committed-data feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from carcloud.catalog import SignalCatalog
from carcloud.errors import CarcloudError, MessagingError, ValidationError
from carcloud.ingest.notices import (
    COMMITTED_SUBJECT,
    CommitNotice,
    VehicleTimes,
    decode_notice,
    widen,
)
from carcloud.ingest.worker import INGEST_CONSUMER
from carcloud.messaging import topics
from carcloud.messaging.puller import BatchPuller
from carcloud.messaging.streams import (
    TELEMETRY_COMMITTED_STREAM,
    TELEMETRY_STREAM,
    ensure_consumer,
)
from carcloud_agent.protocol.telemetry import decode_envelope, decode_sample

log = logging.getLogger(__name__)

DERIVE_CONSUMER = "derive"
# Vehicles derived side by side. A derivation mostly waits (for the database's reader
# threads, for its turn at the writer), so more of them overlap than there are cores:
# with 500 cars each sending every 0.42 s, 64 took the trip lag p99 from 4.9 s (16) to
# 2.2 s, and 128 was no better (3.0 s; docs/benchmarks.md).
DERIVE_CONCURRENCY = 64
# A backlog (data older than what the vehicle sent before) waits until none of it has
# come for this long, for the rest to join it (ingest commits a backlog in batches
# tenths of a second apart), but no longer than BACKLOG_MAX_LINGER_S: the wait adds to
# the lag of what the backlog completes, and a longer backlog is derived in parts.
BACKLOG_LINGER_S = 0.5
BACKLOG_MAX_LINGER_S = 2.0
# Data counts as a backlog when it is older than this (vehicle time) than the newest
# data of the vehicle seen before. Less is the ordinary disorder of several ingest
# workers committing the same car's messages in parallel batches: derived at once.
BACKLOG_MIN_AGE_US = 60 * 1_000_000
# Telemetry messages that pulled notices cover and that are not yet derived, at most
# (then pulling waits for derivation).
MAX_IN_FLIGHT = 20_000
# Notices pulled at once (each covers up to one ingest batch).
NOTICE_BATCH = 64
# Carrying over the consumer derive had on TELEMETRY before commit notices: telemetry
# messages per notice it publishes for them; how long to wait for ingest to commit them;
# how long a read may bring nothing before the attempt is given up (and made again).
CARRY_OVER_CHUNK = 1_000
CARRY_OVER_INGEST_WAIT_S = 30.0
CARRY_OVER_STALL_S = 30.0
CARRY_OVER_RETRY_S = 5.0
# Notices held longer than this (a vehicle slow or failing to derive) are told to
# JetStream as still in progress, so that they are not delivered again meanwhile.
IN_PROGRESS_EVERY_S = 20.0
# Every derive worker answers a request here with its backlog (`DeriveWorker.backlog`).
BACKLOG_SUBJECT = "carcloud.derive.backlog"
# Gathering the workers' answers: the first within this, the rest until this quiet gap.
BACKLOG_FIRST_S = 0.5
BACKLOG_QUIET_S = 0.05


class Deriver(Protocol):
    """Something derived from committed telemetry, re-derived from a vehicle time on."""

    async def derive(self, vin: str, since: int) -> object:
        """Re-derive vehicle `vin` from vehicle time `since` (epoch microseconds) on."""
        ...


def consumer_config() -> ConsumerConfig:
    """The durable pull consumer of commit notices derive workers share."""
    return ConsumerConfig(
        durable_name=DERIVE_CONSUMER,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=60.0,
        max_deliver=-1,
        max_ack_pending=10_000,
        max_waiting=512,
        filter_subject=COMMITTED_SUBJECT,
    )


def vehicle_times(batch: Sequence[Msg]) -> VehicleTimes:
    """VIN -> (oldest, newest) vehicle time of raw telemetry messages (undecodable: skipped);
    what `carry_over` makes notices of.

    Only the envelope and the samples' times are read: a sample ingest rejected only
    makes the derivation start a little earlier (deriving from an earlier time gives the
    same result).
    """
    times: VehicleTimes = {}
    for msg in batch:
        try:
            vin = topics.vin_from_subject(msg.subject)
            samples = decode_envelope(msg.data).samples
        except ValidationError:  # a bad subject or envelope (ProtocolError is one)
            continue
        stamps = []
        for raw in samples:
            try:
                stamps.append(decode_sample(raw)[0])
            except ValidationError:
                continue
        if stamps:
            widen(times, vin, min(stamps), max(stamps))
    return times


def merged_times(notices: Sequence[CommitNotice]) -> VehicleTimes:
    """The vehicles of several notices, each from its oldest time to its newest."""
    times: VehicleTimes = {}
    for notice in notices:
        for vin, (oldest, newest) in notice.vehicles.items():
            widen(times, vin, oldest, newest)
    return times


async def carry_over(nc: NatsClient) -> int:
    """Hand what derive's old consumer had not finished to the commit notices; how many
    telemetry messages that was.

    Before commit notices, derive followed the TELEMETRY stream itself through a durable
    consumer `derive`. If that consumer is still there (the first start after an
    upgrade), the telemetry after its acknowledgement floor is read once more and
    published as notices, then the old consumer is deleted. It first waits (at most
    CARRY_OVER_INGEST_WAIT_S) until ingest has acknowledged that telemetry, so that the
    notices name committed data, as the old derive did. Ingest workers must run the new
    version first: an old one publishes no notices for what it commits later. A read
    that stops short (NATS reconnecting) raises MessagingError and keeps the old
    consumer, so that the next attempt starts again; several workers starting at once
    may each carry it over, which only derives twice.
    """
    js = nc.jetstream()
    try:
        old = await js.consumer_info(TELEMETRY_STREAM, DERIVE_CONSUMER)
    except nats.js.errors.NotFoundError:
        return 0
    first = (old.ack_floor.stream_seq or 0) + 1 if old.ack_floor is not None else 1
    last = (await js.stream_info(TELEMETRY_STREAM)).state.last_seq
    carried = 0
    if last >= first:
        await _ingest_reaches(js, last)
        reader = await js.add_consumer(
            TELEMETRY_STREAM,
            ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=first,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=60.0,
                filter_subject=topics.ALL_TELEMETRY,
            ),
        )
        puller = BatchPuller(nc, TELEMETRY_STREAM, reader.name, CARRY_OVER_CHUNK)
        await puller.start()
        try:
            seen = first - 1
            stalled_since = time.monotonic()
            while seen < last:
                batch = await puller.next_batch(wait_s=1.0)
                if not batch:
                    if (await js.stream_info(TELEMETRY_STREAM)).state.first_seq > last:
                        break  # the rest was removed from the stream meanwhile (its limits)
                    if time.monotonic() - stalled_since > CARRY_OVER_STALL_S:
                        raise MessagingError(
                            f"carrying over derive's old consumer stopped at stream sequence "
                            f"{seen} of {last}; it is kept and carried over again"
                        )
                    continue
                stalled_since = time.monotonic()
                seen = max(msg.metadata.sequence.stream for msg in batch)
                times = vehicle_times(batch)
                if times:
                    notice = CommitNotice(times, len(batch))
                    for part in notice.parts():
                        await js.publish(COMMITTED_SUBJECT, part.encode())
                carried += len(batch)
        finally:
            await puller.stop()
            with contextlib.suppress(nats.errors.Error):
                await js.delete_consumer(TELEMETRY_STREAM, reader.name)
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_consumer(TELEMETRY_STREAM, DERIVE_CONSUMER)
    log.info(
        "derive: carried %d telemetry messages over from the consumer on %s, now removed",
        carried,
        TELEMETRY_STREAM,
    )
    return carried


async def _ingest_reaches(js: JetStreamContext, stream_seq: int) -> None:
    """Wait until ingest has acknowledged (committed) the telemetry up to `stream_seq`, at
    most CARRY_OVER_INGEST_WAIT_S (no ingest running: go on, deriving early is harmless)."""
    deadline = time.monotonic() + CARRY_OVER_INGEST_WAIT_S
    while time.monotonic() < deadline:
        try:
            info = await js.consumer_info(TELEMETRY_STREAM, INGEST_CONSUMER)
        except nats.js.errors.NotFoundError:
            return
        floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
        if (floor or 0) >= stream_seq:
            return
        await asyncio.sleep(0.5)
    log.warning(
        "derive: ingest has not committed the telemetry up to sequence %d within %.0f s; "
        "carrying the old consumer over anyway",
        stream_seq,
        CARRY_OVER_INGEST_WAIT_S,
    )


@dataclass(eq=False, slots=True)
class _Pulled:
    """Pulled notices, acknowledged once each vehicle they name is derived; `covers`: the
    telemetry messages they stand for."""

    messages: list[Msg]
    waiting_for: set[str]
    covers: int
    touched: float = field(default_factory=time.monotonic)  # pulled, or last told in progress


@dataclass(slots=True)
class _Dirty:
    """A vehicle to derive: from which time on, since when (monotonic), and the batches
    that wait for it."""

    since: int
    marked_at: float = field(default_factory=time.monotonic)
    batches: list[_Pulled] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DeriveBacklog:
    """What waits to be derived: vehicles whose committed data is not derived yet (some
    being derived now) and how long the oldest has waited; telemetry messages whose
    notices were pulled and not yet acknowledged. Summed over the derive workers that
    answered (`workers`)."""

    workers: int = 0
    vehicles_waiting: int = 0
    vehicles_deriving: int = 0
    oldest_waiting_s: float = 0.0
    messages_in_flight: int = 0

    def document(self) -> dict[str, int | float]:
        return {
            "workers": self.workers,
            "vehicles_waiting": self.vehicles_waiting,
            "vehicles_deriving": self.vehicles_deriving,
            "oldest_waiting_s": round(self.oldest_waiting_s, 3),
            "messages_in_flight": self.messages_in_flight,
        }

    def __add__(self, other: DeriveBacklog) -> DeriveBacklog:
        return DeriveBacklog(
            self.workers + other.workers,
            self.vehicles_waiting + other.vehicles_waiting,
            self.vehicles_deriving + other.vehicles_deriving,
            max(self.oldest_waiting_s, other.oldest_waiting_s),
            self.messages_in_flight + other.messages_in_flight,
        )


async def gather_backlog(nc: NatsClient) -> DeriveBacklog:
    """The derive backlog of every derive worker reachable on `nc` (in any process): each
    answers a request on BACKLOG_SUBJECT; answers are gathered until BACKLOG_QUIET_S passes
    without one (none at all within BACKLOG_FIRST_S: no worker runs)."""
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox)
    total = DeriveBacklog()
    try:
        await nc.publish(BACKLOG_SUBJECT, b"", reply=inbox)
        wait = BACKLOG_FIRST_S
        while True:
            try:
                answer = await subscription.next_msg(timeout=wait)
            except nats.errors.TimeoutError:
                return total
            total += DeriveBacklog(**orjson.loads(answer.data))
            wait = BACKLOG_QUIET_S
    finally:
        await subscription.unsubscribe()


class DeriveWorker:
    """One derive loop over the committed-telemetry feed.

    Pulling and deriving overlap: while the vehicles of some notices are derived, the
    next notices are pulled. Pulled notices mark their vehicles dirty, each from its
    oldest time; up to `concurrency` tasks take dirty vehicles in the order they became
    dirty and derive them, one derivation of a vehicle at a time. A vehicle marked
    again while it is being derived (or while it waits) is derived once more, from the
    oldest time marked: a vehicle many notices name is derived once for all of them,
    and a slow vehicle (a long plug-in) holds up only itself, not the others. Notices
    are acknowledged when every vehicle they name has been derived after they arrived;
    until then they count against `max_in_flight` (by the telemetry messages they
    cover), and if the worker stops or dies first they are redelivered.
    """

    def __init__(
        self,
        nc: NatsClient,
        derivers: Sequence[Deriver],
        catalog: SignalCatalog,
        batch_size: int = NOTICE_BATCH,
        name: str = "derive",
        concurrency: int = DERIVE_CONCURRENCY,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.derivers = tuple(derivers)
        self.catalog = catalog
        self.batch_size = batch_size
        self.name = name
        self.concurrency = concurrency
        self.max_in_flight = max_in_flight
        self.derived = 0  # vehicle derivations done
        self._failing = False
        self._dirty: dict[str, _Dirty] = {}
        self._ready: deque[str] = deque()  # dirty vehicles not being derived, oldest first
        self._running: dict[str, float] = {}  # vehicles being derived, since when marked
        # Dirty with a backlog, waiting for the rest of it: since when, and until when.
        self._held: dict[str, tuple[float, float]] = {}
        self._newest: dict[str, int] = {}  # per vehicle, the newest vehicle time marked
        self._wake = asyncio.Event()
        self._in_flight = 0  # messages pulled and not yet acknowledged
        self._room = asyncio.Event()
        self._room.set()
        self._acks: set[asyncio.Task[None]] = set()
        self._unacked: set[_Pulled] = set()  # pulled notices waiting for derivations

    async def run(self, stop: asyncio.Event) -> None:
        """Pull commit notices, derive, ack; until `stop` is set."""
        await ensure_consumer(self.js, TELEMETRY_COMMITTED_STREAM, consumer_config())
        puller = BatchPuller(self.nc, TELEMETRY_COMMITTED_STREAM, DERIVE_CONSUMER, self.batch_size)
        await puller.start()
        answering = await self.nc.subscribe(BACKLOG_SUBJECT, cb=self._answer_backlog)
        log.info("%s: following committed telemetry", self.name)
        done = asyncio.Event()  # this worker stops (not the process's `stop`)
        workers = [asyncio.create_task(self._derive_loop(done)) for _ in range(self.concurrency)]
        workers.append(asyncio.create_task(self._keep_in_progress(done)))
        workers.append(asyncio.create_task(self._carry_over(done)))
        try:
            while not stop.is_set():
                if not self._room.is_set():
                    await _wait_either(self._room, stop)
                    continue
                try:
                    batch = await puller.next_batch(wait_s=0.5)
                except nats.errors.Error as exc:
                    self._failed(f"cannot pull from JetStream: {exc}")
                    await asyncio.sleep(0.5)
                    continue
                if batch:
                    self._mark(batch)
        finally:
            done.set()
            self._wake.set()
            await asyncio.gather(*workers, *self._acks, return_exceptions=True)
            await puller.stop()
            await answering.unsubscribe()

    async def _carry_over(self, done: asyncio.Event) -> None:
        """Carry derive's old consumer over (`carry_over`), beside deriving; again after a
        failure until it is done or the worker stops."""
        while not done.is_set():
            try:
                await carry_over(self.nc)
                return
            except (CarcloudError, nats.errors.Error) as exc:
                log.error("%s: carrying the old consumer over failed: %s; again", self.name, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), CARRY_OVER_RETRY_S)

    async def _keep_in_progress(self, done: asyncio.Event) -> None:
        """Tell JetStream that notices held long (a vehicle slow or failing to derive) are
        still being worked on: not delivered again, and not counted in flight twice."""
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), IN_PROGRESS_EVERY_S / 2)
            now = time.monotonic()
            for pulled in list(self._unacked):
                if now - pulled.touched < IN_PROGRESS_EVERY_S:
                    continue
                pulled.touched = now
                for msg in pulled.messages:
                    try:
                        await msg.in_progress()
                    except nats.errors.Error:
                        break  # redelivered after ack_wait: derived again, nothing lost

    def backlog(self) -> DeriveBacklog:
        """This worker's backlog now."""
        marks = [dirty.marked_at for dirty in self._dirty.values()]
        marks += self._running.values()
        return DeriveBacklog(
            workers=1,
            vehicles_waiting=len(self._dirty.keys() | self._running.keys()),
            vehicles_deriving=len(self._running),
            oldest_waiting_s=time.monotonic() - min(marks) if marks else 0.0,
            messages_in_flight=self._in_flight,
        )

    async def _answer_backlog(self, msg: Msg) -> None:
        if msg.reply:
            await self.nc.publish(msg.reply, orjson.dumps(dataclasses.asdict(self.backlog())))

    def _mark(self, batch: list[Msg]) -> None:
        """Mark the notices' vehicles dirty; notices naming none are acknowledged at once.

        Data older than what a vehicle already sent, by more than BACKLOG_MIN_AGE_US (a
        backlog after reconnecting, sent in many messages and committed in several
        batches), waits until no more of it has
        come for BACKLOG_LINGER_S before it is derived, so that the rest of the backlog
        joins it: one re-derivation from the backlog's start, not one per batch, each
        emitting a `trip.updated` of its own.
        """
        notices = []
        for msg in batch:
            try:
                notices.append(decode_notice(msg.data))
            except ValidationError as exc:
                log.error("%s: ignoring a message on %s: %s", self.name, msg.subject, exc)
        times = merged_times(notices)
        pulled = _Pulled(batch, set(times), sum(notice.messages for notice in notices))
        self._in_flight += pulled.covers
        self._unacked.add(pulled)
        if self._in_flight >= self.max_in_flight:
            self._room.clear()
        if not times:
            self._acknowledge(pulled)
            return
        for vin, (since, newest) in times.items():
            late = vin in self._newest and since < self._newest[vin] - BACKLOG_MIN_AGE_US
            self._newest[vin] = max(newest, self._newest.get(vin, newest))
            dirty = self._dirty.get(vin)
            if dirty is None:
                dirty = self._dirty[vin] = _Dirty(since)
                if late:
                    self._hold(vin)
                elif vin not in self._running:
                    self._ready.append(vin)
            elif late and vin in self._held:
                self._hold(vin)
            dirty.since = min(dirty.since, since)
            dirty.batches.append(pulled)
        self._wake.set()

    def _hold(self, vin: str) -> None:
        """Hold (or go on holding) a vehicle's backlog for the rest of it."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        since = self._held[vin][0] if vin in self._held else now
        if vin not in self._held:
            loop.call_later(BACKLOG_LINGER_S, self._release, vin)
        self._held[vin] = (since, min(now + BACKLOG_LINGER_S, since + BACKLOG_MAX_LINGER_S))

    def _release(self, vin: str) -> None:
        """A held backlog's linger is over (or was made longer by more of it): derive it."""
        if vin not in self._held:
            return
        left = self._held[vin][1] - asyncio.get_running_loop().time()
        if left > 0.001:
            asyncio.get_running_loop().call_later(left, self._release, vin)
            return
        del self._held[vin]
        if vin in self._dirty and vin not in self._running and vin not in self._ready:
            self._ready.append(vin)
            self._wake.set()

    async def _derive_loop(self, done: asyncio.Event) -> None:
        """One of `concurrency` tasks: derive dirty vehicles until the worker stops."""
        while not done.is_set():
            if not self._ready:
                self._wake.clear()
                await self._wake.wait()
                continue
            vin = self._ready.popleft()
            dirty = self._dirty.pop(vin)
            self._running[vin] = dirty.marked_at
            try:
                for deriver in self.derivers:
                    await deriver.derive(vin, dirty.since)
            except Exception as exc:  # noqa: BLE001 - any failure: derived again, never lost
                if isinstance(exc, CarcloudError | nats.errors.Error):
                    self._failed(f"cannot derive {vin}: {exc}")
                else:
                    log.exception("%s: deriving %s failed; retrying", self.name, vin)
                    self._failing = True
                self._running.pop(vin, None)
                await asyncio.sleep(1.0)  # then again, with whatever was marked meanwhile
                self._requeue(vin, dirty)
                continue
            self._running.pop(vin, None)
            self.derived += 1
            if vin in self._dirty and vin not in self._held:  # marked again meanwhile
                self._ready.append(vin)
                self._wake.set()
            for pulled in dirty.batches:
                pulled.waiting_for.discard(vin)
                if not pulled.waiting_for:
                    self._acknowledge(pulled)
            if self._failing:
                log.info("%s: deriving again", self.name)
                self._failing = False

    def _requeue(self, vin: str, failed: _Dirty) -> None:
        dirty = self._dirty.get(vin)
        if dirty is None:
            self._dirty[vin] = failed
        else:
            dirty.since = min(dirty.since, failed.since)
            dirty.marked_at = min(dirty.marked_at, failed.marked_at)
            dirty.batches[:0] = failed.batches
        if vin not in self._running and vin not in self._ready and vin not in self._held:
            self._ready.append(vin)
        self._wake.set()

    def _acknowledge(self, pulled: _Pulled) -> None:
        self._unacked.discard(pulled)
        self._in_flight -= pulled.covers
        if self._in_flight < self.max_in_flight:
            self._room.set()
        task = asyncio.create_task(_ack_all(pulled.messages))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    def _failed(self, problem: str) -> None:
        if not self._failing:
            log.error("%s: %s; retrying", self.name, problem)
            self._failing = True


async def _wait_either(first: asyncio.Event, second: asyncio.Event) -> None:
    waits = [asyncio.create_task(first.wait()), asyncio.create_task(second.wait())]
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()


async def _ack_all(batch: list[Msg]) -> None:
    for msg in batch:
        try:
            await msg.ack()  # a publish: no answer is awaited
        except nats.errors.Error:
            return  # not acknowledged: redelivered after ack_wait, derived again
