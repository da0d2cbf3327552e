"""Command status changes: their one public shape, and following them for waiting requests.

Every change of a command (created, delivered, answered, expired, cancelled) is a
durable `command.status_changed` event written with the change and relayed to the
EVENTS stream on `carcloud.events.{brand}.{vin}.command.status_changed`. Its
payload is the whole command in the shape the API returns, so an API request
waiting for a command to finish answers straight from it, without reading the
database again.

Each API process follows every command event with one subscription
(`CommandWatch`); a waiting request registers for its command id. No
subscription per request, no round trip to the server before the command is
created.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from carcloud.commands.models import FINAL_STATUSES, CommandRecord
from carcloud.events.models import events_subject
from carcloud.timeutil import format_us

COMMAND_CHANGED = "command.status_changed"


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


class CommandWaiter:
    """One request waiting for one command; fed by `CommandWatch`."""

    def __init__(self) -> None:
        self.final: dict[str, Any] | None = None
        self._done = asyncio.Event()

    def offer(self, command: dict[str, Any]) -> None:
        """An event of this command arrived (the command as the API shows it)."""
        if self.final is None and command.get("status") in FINAL_STATUSES:
            self.final = command
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
            events_subject(event_type=COMMAND_CHANGED), cb=self._on_event
        )
        await self.nc.flush()

    async def _on_event(self, msg: Msg) -> None:
        if not self._waiters:
            return
        try:
            command = orjson.loads(msg.data).get("data")
        except (orjson.JSONDecodeError, AttributeError):
            return
        if not isinstance(command, dict):
            return
        for waiter in self._waiters.get(str(command.get("id")), ()):
            waiter.offer(command)

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
