"""Rows of the commands and command_transitions tables, shared by both backends: one SQL,
one encoding and decoding, one wording of the errors.

The statements are written with `?` placeholders; PostgreSQL runs them through
`rows.numbered` ($1, $2, …).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from carcloud.commands.models import FINAL_STATUSES, CommandRecord, CommandTransition
from carcloud.commands.store import Plan
from carcloud.errors import NotFoundError
from carcloud.storage.rows import Row, dumps

COMMAND_COLUMNS = (
    "c.id, v.vin, c.kind, c.params, c.status, c.reason, c.idempotency_key, c.created_at, "
    "c.expires_at, c.delivered_at, c.completed_at"
)
COMMAND_FROM = "FROM commands c JOIN vehicles v ON v.id = c.vehicle_id"
COMMAND_BY_ID = f"SELECT {COMMAND_COLUMNS} {COMMAND_FROM} WHERE c.id = ?"
FIND_IDEMPOTENT = "SELECT id FROM commands WHERE vehicle_id = ? AND idempotency_key = ?"
INSERT_COMMAND = (
    "INSERT INTO commands (id, vehicle_id, kind, params, status, idempotency_key, "
    "created_at, expires_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)"
)
INSERT_QUEUED = "INSERT INTO command_transitions (command_id, status, at) VALUES (?, 'queued', ?)"
COMMAND_STATUS = (
    "SELECT c.status, v.vin FROM commands c JOIN vehicles v ON v.id = c.vehicle_id WHERE c.id = ?"
)
SET_STATUS = (
    "UPDATE commands SET status = ?, reason = ?, delivered_at = COALESCE(delivered_at, ?), "
    "completed_at = COALESCE(?, completed_at) WHERE id = ?"
)
INSERT_TRANSITION = (
    "INSERT INTO command_transitions (command_id, status, at, reason) VALUES (?, ?, ?, ?)"
)


def command_of(row: Row, transitions: tuple[CommandTransition, ...] = ()) -> CommandRecord:
    """A command from a row of COMMAND_COLUMNS."""
    return CommandRecord(
        id=row[0],
        vin=row[1],
        kind=row[2],
        params=json.loads(row[3]),
        status=row[4],
        reason=row[5],
        idempotency_key=row[6],
        created_at=row[7],
        expires_at=row[8],
        delivered_at=row[9],
        completed_at=row[10],
        transitions=transitions,
    )


def command_missing(command_id: str) -> NotFoundError:
    """The error for a command that is not there (or not the caller's)."""
    return NotFoundError(f"command {command_id} not found")


def of_vehicle(command: CommandRecord, vin: str) -> CommandRecord:
    """The command if it is `vin`'s, NotFoundError otherwise."""
    if command.vin != vin:
        raise command_missing(command.id)
    return command


def queued(
    command_id: str,
    vin: str,
    kind: str,
    params: dict[str, object],
    expires_at: int,
    idempotency_key: str | None,
    created: int,
) -> CommandRecord:
    """A command just queued (built rather than read back: this is on every command's path)."""
    return CommandRecord(
        id=command_id,
        vin=vin,
        kind=kind,
        params=params,
        status="queued",
        reason=None,
        idempotency_key=idempotency_key,
        created_at=created,
        expires_at=expires_at,
        delivered_at=None,
        completed_at=None,
        transitions=(CommandTransition("queued", created),),
    )


def insert_values(command: CommandRecord, vehicle_id: int) -> tuple[Any, ...]:
    """The parameters of INSERT_COMMAND for a queued command."""
    return (
        command.id,
        vehicle_id,
        command.kind,
        dumps(command.params),
        command.idempotency_key,
        command.created_at,
        command.expires_at,
    )


def planned(row: Row | None, vin: str | None, plan: Plan) -> Sequence[CommandTransition]:
    """The steps `plan` makes from a row of COMMAND_STATUS; none for a missing command or
    one of another vehicle than `vin` (None: any)."""
    if row is None or (vin is not None and row[1] != vin):
        return ()
    return plan(row[0])


def step_times(steps: Sequence[CommandTransition]) -> tuple[int | None, int | None]:
    """(delivered_at, completed_at) that a command's new steps set, None where none does."""
    delivered = next((step.at for step in steps if step.status == "delivered"), None)
    completed = next((step.at for step in steps if step.status in FINAL_STATUSES), None)
    return delivered, completed


def status_values(command_id: str, steps: Sequence[CommandTransition]) -> tuple[Any, ...]:
    """The parameters of SET_STATUS: the last step's status and reason, the times set."""
    delivered, completed = step_times(steps)
    return steps[-1].status, steps[-1].reason, delivered, completed, command_id


def transition_values(command_id: str, steps: Sequence[CommandTransition]) -> list[tuple[Any, ...]]:
    """The parameters of INSERT_TRANSITION, one tuple a step."""
    return [(command_id, step.status, step.at, step.reason) for step in steps]
