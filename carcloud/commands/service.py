"""The commands slice's rules: queue, deliver, answer, expire, cancel, and wait for the end.

Every change of a command is written together with its `command.status_changed`
event (carrying the whole command as the API shows it); the event is what
waiting requests, the per-vehicle event stream and apps hear.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from nats.aio.client import Client as NatsClient

from carcloud.commands.events import COMMAND_CHANGED, CommandWaiter, CommandWatch, command_json
from carcloud.commands.kinds import parse_command
from carcloud.commands.models import CommandRecord, CommandTransition, lifecycle_steps
from carcloud.commands.store import CommandStore, Plan
from carcloud.errors import ValidationError
from carcloud.events.models import NewEvent
from carcloud.messaging.dispatch import request_dispatch
from carcloud.timeutil import now_us

MAX_TTL_US = 30 * 86_400 * 1_000_000
MAX_WAIT_US = 120 * 1_000_000
IDEMPOTENCY_KEY_MAX = 200
MAX_REASON = 500
EXPIRED_REASON = "time to live passed before the vehicle answered"

# Seeded from the OS once. Ids only need to be unique (80 random bits): reading a
# command always checks its vehicle and brand. Not os.urandom per request: that
# syscall gives up the GIL, and under load the event loop waits to get it back.
_ids = random.Random()

CommandView = CommandRecord | dict[str, Any]


def new_command_id() -> str:
    """A new command id, e.g. cmd_3f9a0c12d4e5b6a7c8d9."""
    return f"cmd_{_ids.getrandbits(80):020x}"


def changed_event(command: CommandRecord) -> Sequence[NewEvent]:
    """The event of a command's new state."""
    return (NewEvent(COMMAND_CHANGED, vin=command.vin, data=command_json(command)),)


def plan(status: str, at: int, reason: str | None = None) -> Plan:
    """The lifecycle's answer for a move into `status`, given the current status."""

    def steps(current: str) -> Sequence[CommandTransition]:
        return lifecycle_steps(current, status, at, reason)

    return steps


class CommandService:
    """Commands for one process: the API's side and the control role's side."""

    def __init__(
        self,
        store: CommandStore,
        nats: NatsClient | None = None,
        watch: CommandWatch | None = None,
    ) -> None:
        self.store = store
        self.nats = nats
        self.watch = watch

    # ---- the API's side ----------------------------------------------------------------

    async def send(
        self,
        vin: str,
        brand: str | None,
        kind_name: str,
        params: dict[str, Any],
        ttl_us: int | None = None,
        idempotency_key: str | None = None,
        wait_us: int | None = None,
    ) -> tuple[CommandView, bool]:
        """Queue a command and ask for its delivery; (command, created).

        With `wait_us`, the command once final (or as it is when the wait is over).
        """
        kind, checked = parse_command(kind_name, params)
        ttl = kind.default_ttl_s * 10**6 if ttl_us is None else ttl_us
        if ttl > MAX_TTL_US:
            raise ValidationError("ttl is longer than the maximum of 30d")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
            raise ValidationError(
                f"Idempotency-Key must have 1 to {IDEMPOTENCY_KEY_MAX} characters"
            )
        check_wait(wait_us)
        command_id = new_command_id()

        async def create() -> tuple[CommandRecord, bool]:
            command, created = await self.store.create_command(
                command_id,
                vin,
                brand,
                kind.name,
                dict(checked),
                now_us() + ttl,
                idempotency_key,
                emit=changed_event,
            )
            if created and self.nats is not None:
                await request_dispatch(self.nats, vin, command)
            return command, created

        if wait_us is None or self.watch is None:
            return await create()
        deadline = _deadline(wait_us)
        with self.watch.waiting_for(command_id) as waiter:
            command, created = await create()
            if created:
                return await self._await_final(waiter, command, brand, deadline), True
        # The same Idempotency-Key as an earlier command: that command, once final.
        return await self._wait_for(vin, command.id, brand, deadline), False

    async def get(
        self, vin: str, command_id: str, brand: str | None, wait_us: int | None = None
    ) -> CommandView:
        """A command; with `wait_us`, once it is final (or the wait is over)."""
        check_wait(wait_us)
        if wait_us is None or self.watch is None:
            return await self.store.get_command(vin, command_id, brand)
        return await self._wait_for(vin, command_id, brand, _deadline(wait_us))

    async def record(self, vin: str, command_id: str) -> CommandRecord:
        """A command as stored (the control role's look-up)."""
        return await self.store.get_command(vin, command_id, None)

    async def list_commands(
        self, vin: str, brand: str | None, status: str | None, limit: int
    ) -> list[CommandRecord]:
        """A vehicle's commands, newest first."""
        return await self.store.list_commands(vin, brand, status, limit)

    async def cancel(self, vin: str, command_id: str, brand: str | None, by: str) -> CommandRecord:
        """Cancel a command that is not final yet."""
        command = await self.store.get_command(vin, command_id, brand)
        if command.is_final:
            raise ValidationError(f"command {command_id} is already {command.status}")
        updated = await self.store.transition_command(
            command_id, plan("cancelled", now_us(), f"cancelled by {by}"), emit=changed_event
        )
        # None: the car's answer came first; show the command as it ended.
        return updated or await self.store.get_command(vin, command_id, brand)

    async def _await_final(
        self, waiter: CommandWaiter, command: CommandRecord, brand: str | None, deadline: float
    ) -> CommandView:
        """The command once final; `command` was read after `waiter` was registered."""
        if command.is_final:
            return command
        announced = await waiter.wait(deadline - asyncio.get_running_loop().time())
        if announced is not None:
            return announced
        return await self.store.get_command(command.vin, command.id, brand)

    async def _wait_for(
        self, vin: str, command_id: str, brand: str | None, deadline: float
    ) -> CommandView:
        assert self.watch is not None
        with self.watch.waiting_for(command_id) as waiter:
            command = await self.store.get_command(vin, command_id, brand)
            return await self._await_final(waiter, command, brand, deadline)

    # ---- the control role's side -------------------------------------------------------

    async def record_answer(
        self, vin: str, command_id: str, status: str, reason: str | None
    ) -> CommandRecord | None:
        """A car's answer (delivered, succeeded, failed); None if it changes nothing.

        The VIN is part of the update: a car can only answer its own commands.
        """
        if status == "failed" and not reason:
            reason = "the vehicle gave no reason"
        text = reason[:MAX_REASON] if reason is not None else None
        return await self.store.transition_command(
            command_id, plan(status, now_us(), text), vin=vin, emit=changed_event
        )

    async def expire_due(self, now: int | None = None) -> list[CommandRecord]:
        """Expire open commands past their time to live."""
        at = now_us() if now is None else now
        return await self.store.expire_commands(at, plan("expired", at, EXPIRED_REASON),
                                                emit=changed_event)  # fmt: skip

    async def open_commands(
        self, vin: str | None = None, ids: Sequence[str] | None = None
    ) -> list[CommandRecord]:
        """What a car (or every car; of `ids` if given) should still get, oldest first."""
        return await self.store.open_commands(vin, ids)


def check_wait(wait_us: int | None) -> None:
    """A wait is at most two minutes."""
    if wait_us is not None and wait_us > MAX_WAIT_US:
        raise ValidationError("wait may be at most 120s")


def _deadline(wait_us: int) -> float:
    return asyncio.get_running_loop().time() + wait_us / 1e6
