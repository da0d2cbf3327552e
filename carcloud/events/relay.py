"""The relay: publishes committed events from the outbox to the JetStream stream EVENTS.

Every process that writes runs one. A commit that wrote events wakes the relay of
its own process at once (so command waiters hear of a change within a
millisecond or two); a slower sweep also picks up events that another process
committed but did not relay (it crashed or was killed between its commit and its
publish). Each event is published with its id as the JetStream message id
(`Nats-Msg-Id`), so the stream drops a second publish of the same event within
its duplicate window; an event is marked relayed only after the stream
acknowledged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import nats.errors
import orjson
from nats.aio.client import Client as NatsClient
from nats.js.client import JetStreamContext

from carcloud.errors import CarcloudError
from carcloud.events.models import DomainEvent
from carcloud.events.store import EventStore
from carcloud.timeutil import now_us

log = logging.getLogger(__name__)

BATCH = 500
# How long another process may take to relay its own events before we take them over.
SWEEP_S = 2.0
# Relayed events are kept this long for `GET /events` and resuming streams.
RETENTION_US = 7 * 86_400 * 1_000_000
PRUNE_EVERY_S = 3600.0
# Published events are recorded as relayed at most this often (see EventRelay._mark).
MARK_EVERY_S = 0.5


def event_message(event: DomainEvent) -> bytes:
    """The JSON an event is published as (the same shape `GET /api/v1/events` returns)."""
    return orjson.dumps(event.to_json())


class EventRelay:
    """Moves events from the outbox into the EVENTS stream, each exactly once."""

    def __init__(self, nc: NatsClient, store: EventStore, sweep_s: float = SWEEP_S) -> None:
        self.nc = nc
        self.store = store
        self.sweep_s = sweep_s
        self.published = 0
        self._wake = asyncio.Event()
        # A wake-up is on its way to the loop: a commit meanwhile needs no other.
        self._wake_asked = False
        self._to_mark: list[int] = []
        self._confirming: set[asyncio.Future[None]] = set()
        self._marked_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def _committed(self) -> None:
        """Called in the writer thread after a commit with events (they wait for
        `take_committed`): a wake-up of the loop unless one is already on its way (each
        is a system call, and under load commits come faster than the loop wakes)."""
        loop = self._loop
        if loop is not None and not self._wake_asked:
            self._wake_asked = True
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        self._wake_asked = False
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; what is committed before then is relayed first."""
        self._loop = asyncio.get_running_loop()
        self.store.on_commit(self._committed)
        js = self.nc.jetstream()
        failing = False
        last_prune = 0.0
        log.info("events: relaying the outbox to the EVENTS stream")
        sweep_before: int | None = None  # the first pass takes everything left unrelayed
        sweep = True
        while True:
            # Cleared before reading: a commit during this pass wakes the next one at once.
            self._wake.clear()
            try:
                await self._relay_own(js)
                if sweep:
                    await self._sweep(js, sweep_before)
                if failing:
                    log.info("events: relaying again")
                    failing = False
            except (nats.errors.Error, CarcloudError, TimeoutError) as exc:
                if not failing:
                    log.warning("events: cannot relay (will retry): %s", exc)
                    failing = True
            if stop.is_set():
                with contextlib.suppress(CarcloudError):
                    await self._settle()
                return
            now = asyncio.get_running_loop().time()
            if now - last_prune > PRUNE_EVERY_S:
                last_prune = now
                with contextlib.suppress(CarcloudError):
                    await self.store.prune(now_us() - RETENTION_US)
            with contextlib.suppress(CarcloudError):
                await self._mark(force=False)
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait(
                [waiter, stopper],
                timeout=MARK_EVERY_S if self._to_mark else self.sweep_s if not failing else 1.0,
                return_when=asyncio.FIRST_COMPLETED,
            )
            waiter.cancel()
            stopper.cancel()
            # Woken by our own commit: relay those. Quiet for a while (or stopping): also
            # take over events another process committed but has not relayed by now.
            sweep = not done or failing or stop.is_set()
            sweep_before = now_us() - int(self.sweep_s * 1e6) if not stop.is_set() else None

    async def _relay_own(self, js: JetStreamContext) -> None:
        """The events this process committed: published at once, straight from memory."""
        own = self.store.take_committed()
        for start in range(0, len(own), BATCH):
            await self._publish(js, own[start : start + BATCH])

    async def _sweep(self, js: JetStreamContext, before: int | None) -> None:
        """Unrelayed events committed before `before` (every one when None)."""
        await self._settle()  # what we published is not taken again
        while True:
            events = await self.store.unrelayed(BATCH, before=before)
            await self._publish(js, events)
            await self._settle()
            if len(events) < BATCH:
                return

    async def _publish(self, js: JetStreamContext, events: list[DomainEvent]) -> None:
        """Hand events to the stream; their acknowledgements are awaited beside the next
        pass, so a slow acknowledgement never holds back the next events (subscribers
        get each event when it is published, not when the stream acknowledges it)."""
        if not events:
            return
        futures = [
            await js.publish_async(
                event.subject, event_message(event), headers={"Nats-Msg-Id": event.message_id}
            )
            for event in events
        ]
        confirm = asyncio.ensure_future(self._confirm(events, futures))
        self._confirming.add(confirm)
        confirm.add_done_callback(self._confirming.discard)

    async def _confirm(self, events: list[DomainEvent], futures: list[asyncio.Future[Any]]) -> None:
        """Once the stream has every event of a batch, it may be recorded as relayed."""
        try:
            acks = await asyncio.wait_for(asyncio.gather(*futures), 10.0)
        except (nats.errors.Error, TimeoutError) as exc:
            # Not recorded: the sweep publishes them again, and the stream keeps one.
            log.warning("events: %d event(s) not acknowledged by the stream: %s", len(events), exc)
            return
        self.published += sum(1 for ack in acks if not ack.duplicate)
        self._to_mark += [event.id for event in events]

    async def _settle(self) -> None:
        """Wait for every acknowledgement under way, and record what was relayed."""
        if self._confirming:
            await asyncio.gather(*self._confirming, return_exceptions=True)
        await self._mark(force=True)

    async def _mark(self, force: bool) -> None:
        """Record published events as relayed, a few times a second rather than per pass.

        Each mark is a write transaction; under load, one per pass would compete with
        the writes that matter. Until marked, an event is only ever taken again by a
        sweep, which waits `sweep_s` (longer than MARK_EVERY_S) or by a restart, whose
        second publish the stream drops as a duplicate.
        """
        now = asyncio.get_running_loop().time()
        if not self._to_mark or (
            not force and len(self._to_mark) < BATCH and now - self._marked_at < MARK_EVERY_S
        ):
            return
        ids, self._to_mark = self._to_mark, []
        self._marked_at = now
        try:
            await self.store.mark_relayed(ids, now_us())
        except CarcloudError:
            self._to_mark = ids + self._to_mark
            raise
