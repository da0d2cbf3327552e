"""Batched pulls from a durable JetStream consumer, without a task per message.

nats-py's `fetch` awaits every message of a batch separately (a timer and a task
each); at ten thousand messages a second that bookkeeping costs more than
decoding them. Here one subscription collects deliveries into a list, and a
batch is handed over when the server says there is no more (status 404/408) or
the batch is full.

Requests: first a `no_wait` pull (returns what is stored now, then 404); when
nothing was there, a lingering pull with `expires`, which hands over as soon as
the first messages arrive. A lingering pull may deliver more after that: those
messages wait in the buffer for the next call, and no new pull is made while it
is open, so requests never pile up.
"""

from __future__ import annotations

import asyncio
import json
import time

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

_END_STATUSES = {"404", "408", "409"}
_LINGER_S = 0.002


class BatchPuller:
    """Pulls batches of messages for one durable consumer."""

    def __init__(
        self, nc: NatsClient, stream: str, consumer: str, batch: int, linger_s: float = _LINGER_S
    ) -> None:
        self.nc = nc
        # After the first message of a batch arrives, how long more may join it.
        self.linger_s = linger_s
        self.subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self.batch = batch
        self.inbox = nc.new_inbox()
        self._buffer: list[Msg] = []
        self._arrived = asyncio.Event()
        self._ended = asyncio.Event()
        self._open_until = 0.0
        self._owed = 0
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Subscribe to the inbox the server delivers into."""
        self._sub = await self.nc.subscribe(
            self.inbox, cb=self._on_msg, pending_msgs_limit=self.batch * 8
        )

    async def stop(self) -> None:
        """Stop receiving; unacknowledged messages are redelivered by the server."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers
        if headers and not msg.data and headers.get("Status"):
            if headers["Status"] in _END_STATUSES:
                self._open_until = 0.0
                self._ended.set()
            return  # 100: heartbeats and flow control carry nothing to store
        self._buffer.append(msg)
        self._arrived.set()
        self._owed -= 1
        if self._owed <= 0:
            # The open request has delivered all it asked for: it is closed.
            self._open_until = 0.0
            self._ended.set()

    def _take(self) -> list[Msg]:
        taken, self._buffer = self._buffer[: self.batch], self._buffer[self.batch :]
        if not self._buffer:
            self._arrived.clear()
        return taken

    async def _request(self, body: dict[str, object]) -> None:
        self._ended.clear()
        self._owed = self.batch
        await self.nc.publish(self.subject, json.dumps(body).encode(), reply=self.inbox)

    async def next_batch(self, wait_s: float) -> list[Msg]:
        """Up to `batch` messages; an empty list if none arrived within `wait_s`."""
        if self._buffer:
            return self._take()
        now = time.monotonic()
        if self._open_until <= now:
            await self._request({"batch": self.batch, "no_wait": True})
            await _wait(self._ended, 5.0)
            if self._buffer:
                return self._take()
            self._open_until = time.monotonic() + wait_s
            await self._request({"batch": self.batch, "expires": int(wait_s * 1e9)})
        if await _wait(self._arrived, max(0.0, self._open_until - time.monotonic()) + 0.1):
            await asyncio.sleep(self.linger_s)
        return self._take()


async def _wait(event: asyncio.Event, limit_s: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), limit_s)
    except TimeoutError:
        return False
    return True
