"""Command status changes: their one public shape, their announcement, and following them.

Whoever moves a command on (the API on create and cancel, the control role on a
car's answer, the expiry sweep) announces the command as it now is on
`carcloud.events.commands.<vin>.<id>`. The announcement carries the whole command
in the shape the API returns, so an API request waiting for a command to finish
answers straight from it, without reading the database again.

Each API process follows every announcement with one subscription
(`CommandWatch`); a waiting request registers for its command id. No
subscription per request, no round trip to the server before the command is
created.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import nats.errors
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from carcloud.messaging import topics
from carcloud.storage.models import FINAL_STATUSES, CommandRecord
from carcloud.timeutil import format_us, now_us


def command_json(command: CommandRecord) -> dict[str, Any]:
    """A command as the API shows it (the `CommandOut` schema)."""
    return {
        "id": command.id,
        "vin": command.vin,
        "kind": command.kind,
        "params": command.params,
        "status": command.status,
        "reason": command.reason,
        "idempotency_key": command.idempotency_key,
        "created_at": format_us(command.created_at),
        "expires_at": format_us(command.expires_at),
        "delivered_at": format_us(command.delivered_at),
        "completed_at": format_us(command.completed_at),
        "transitions": [
            {"status": t.status, "at": format_us(t.at), "reason": t.reason}
            for t in command.transitions
        ],
    }


def command_event(command: CommandRecord) -> bytes:
    """The announcement of a command's new status: the command plus when it was sent."""
    return orjson.dumps({**command_json(command), "at": format_us(now_us())})


async def announce(nc: NatsClient, command: CommandRecord) -> None:
    """Tell waiters and event streams that a command moved on."""
    with contextlib.suppress(nats.errors.Error):
        await nc.publish(
            topics.command_events_subject(command.vin, command.id), command_event(command)
        )


class CommandWaiter:
    """One request waiting for one command; fed by `CommandWatch`."""

    def __init__(self) -> None:
        self.final: dict[str, Any] | None = None
        self._done = asyncio.Event()

    def offer(self, data: bytes) -> None:
        """An announcement for this command arrived."""
        if self.final is not None:
            return
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if isinstance(event, dict) and event.get("status") in FINAL_STATUSES:
            event.pop("at", None)
            self.final = event
            self._done.set()

    async def wait(self, timeout_s: float) -> dict[str, Any] | None:
        """The command once final, as announced; None if the time runs out first."""
        if self.final is None and timeout_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), timeout_s)
        return self.final


class CommandWatch:
    """Every command announcement of the platform, handed to the requests that wait for it."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self._waiters: dict[str, list[CommandWaiter]] = {}
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        """Subscribe (for the life of the NATS connection); waits register after this."""
        self._subscription = await self.nc.subscribe(
            topics.command_events_subject("*", "*"), cb=self._on_event
        )
        await self.nc.flush()

    async def _on_event(self, msg: Msg) -> None:
        waiters = self._waiters.get(msg.subject.rpartition(".")[2])
        for waiter in waiters or ():
            waiter.offer(msg.data)

    @contextlib.contextmanager
    def waiting_for(self, command_id: str) -> Iterator[CommandWaiter]:
        """Register before the command's state is read, so no change falls in between."""
        waiter = CommandWaiter()
        self._waiters.setdefault(command_id, []).append(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters[command_id]
            waiters.remove(waiter)
            if not waiters:
                del self._waiters[command_id]
