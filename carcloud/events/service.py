"""Reading and following events: pages by id, and a live follow that resumes by id.

Followers read from the outbox table, scoped by brand in the query, so a brand's
app never sees another brand's events and resumes exactly after the last id it
saw. They wake when a commit in this process wrote events, when the relay of any
process publishes one (a core subscription on the event subjects), and at least
every second otherwise. The subscription is held only while someone follows:
every command makes two events, and a process nobody follows need not receive them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from carcloud.events.models import DomainEvent, check_event_type, events_subject
from carcloud.events.store import EventStore

POLL_S = 1.0
PAGE = 200


class EventService:
    """The events slice: list and follow, for the API."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nc: NatsClient | None = None
        self._subscription: Subscription | None = None
        self._subscribing = asyncio.Lock()
        self._followers = 0

    async def start(self, nc: NatsClient | None) -> None:
        """Wake followers on local commits and on events relayed by any process."""
        self._loop = asyncio.get_running_loop()
        self._nc = nc
        self.store.on_commit(self._committed)

    async def stop(self) -> None:
        """Stop following NATS."""
        self._nc = None
        await self._unsubscribe()

    async def _join(self) -> None:
        """A follower starts: subscribed (at the server) before its first read."""
        self._followers += 1
        async with self._subscribing:
            if self._subscription is None and self._nc is not None:
                with contextlib.suppress(nats.errors.Error):
                    self._subscription = await self._nc.subscribe(
                        events_subject(), cb=self._on_message
                    )
                    await self._nc.flush()

    async def _leave(self) -> None:
        self._followers -= 1
        if self._followers == 0:
            await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        async with self._subscribing:
            subscription, self._subscription = self._subscription, None
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    def _committed(self) -> None:
        loop = self._loop
        if loop is not None and self._followers:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._notify)

    async def _on_message(self, msg: Msg) -> None:
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def list_events(
        self,
        after: int,
        brand: str | None,
        types: Sequence[str] = (),
        vin: str | None = None,
        limit: int = 100,
    ) -> list[DomainEvent]:
        """A page of events after `after`, oldest first, as the caller may see them."""
        for name in types:
            check_event_type(name)
        return await self.store.list_events(after, brand, types, vin, limit)

    async def last_id(self) -> int:
        """The newest event id: where a follower that wants only new events starts."""
        return await self.store.last_id()

    async def follow(
        self,
        after: int | None,
        brand: str | None,
        types: Sequence[str] = (),
        vin: str | None = None,
        heartbeat_s: float = 15.0,
    ) -> AsyncIterator[DomainEvent | None]:
        """Events after `after` (None: from now on) as they commit; None as a heartbeat."""
        for name in types:
            check_event_type(name)
        await self._join()
        try:
            last = await self.store.last_id() if after is None else after
            quiet = 0.0
            while True:
                changed = self._changed
                page = await self.store.list_events(last, brand, types, vin, PAGE)
                for event in page:
                    yield event
                    last = event.id
                if len(page) == PAGE:
                    continue
                if page:
                    quiet = 0.0
                try:
                    await asyncio.wait_for(changed.wait(), POLL_S)
                except TimeoutError:
                    quiet += POLL_S
                    if quiet >= heartbeat_s:
                        quiet = 0.0
                        yield None
        finally:
            await self._leave()
