"""What the commands slice needs persisted: commands and their transitions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from carcloud.commands.models import CommandRecord, CommandTransition
from carcloud.events.models import NewEvent

# Given a command's current status, the transitions to record (() = not allowed).
Plan = Callable[[str], Sequence[CommandTransition]]
# Given the command as it now is, the events to write in the same transaction.
EmitCommand = Callable[[CommandRecord], Sequence[NewEvent]]


class CommandStore(Protocol):
    """Durable commands. The lifecycle rules come from the service as a `Plan`."""

    async def create_command(
        self,
        command_id: str,
        vin: str,
        brand: str | None,
        kind: str,
        params: dict[str, object],
        expires_at: int,
        idempotency_key: str | None,
        emit: EmitCommand | None = None,
    ) -> tuple[CommandRecord, bool]:
        """Queue a command; with a known idempotency key, the earlier one and False."""
        ...

    async def get_command(self, vin: str, command_id: str, brand: str | None) -> CommandRecord:
        """One command of one vehicle, with its transitions; NotFoundError otherwise."""
        ...

    async def list_commands(
        self, vin: str, brand: str | None, status: str | None, limit: int
    ) -> list[CommandRecord]:
        """A vehicle's commands, newest first."""
        ...

    async def transition_command(
        self,
        command_id: str,
        plan: Plan,
        vin: str | None = None,
        emit: EmitCommand | None = None,
    ) -> CommandRecord | None:
        """Record `plan`'s transitions (compare-and-set on the status read in the same
        transaction); None if the command is unknown, not `vin`'s, or the plan is empty."""
        ...

    async def open_commands(
        self, vin: str | None = None, ids: Sequence[str] | None = None
    ) -> list[CommandRecord]:
        """Queued or delivered commands (of one vehicle or all; among `ids` if given) still
        alive, oldest first."""
        ...

    async def expire_commands(
        self, now: int, plan: Plan, emit: EmitCommand | None = None
    ) -> list[CommandRecord]:
        """Apply `plan` to open commands whose time to live has passed; returns them."""
        ...
