"""What both backends share: the columns they read, and turning rows into records.

The SQLite and PostgreSQL schemas keep the same columns for commands and events, so
each record is decoded once, here; statements shared by both are written with `?`
placeholders, which PostgreSQL runs through `numbered` ($1, $2, …).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from carcloud.commands.models import FINAL_STATUSES, CommandRecord, CommandTransition
from carcloud.errors import CarcloudError, ConflictError, NotFoundError
from carcloud.events.models import DomainEvent
from carcloud.registry.models import NewVehicle, Vehicle
from carcloud.twins.models import canonical


class Row(Protocol):
    """A result row of either driver, read by position."""

    def __getitem__(self, index: int, /) -> Any: ...


COMMAND_COLUMNS = (
    "c.id, v.vin, c.kind, c.params, c.status, c.reason, c.idempotency_key, c.created_at, "
    "c.expires_at, c.delivered_at, c.completed_at"
)
COMMAND_FROM = "FROM commands c JOIN vehicles v ON v.id = c.vehicle_id"
EVENT_COLUMNS = "id, type, brand, vin, at, data"

dumps = canonical


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


def step_times(steps: Sequence[CommandTransition]) -> tuple[int | None, int | None]:
    """(delivered_at, completed_at) that a command's new steps set, None where none does."""
    delivered = next((step.at for step in steps if step.status == "delivered"), None)
    completed = next((step.at for step in steps if step.status in FINAL_STATUSES), None)
    return delivered, completed


def event_of(row: Row) -> DomainEvent:
    """An event from a row of EVENT_COLUMNS."""
    return DomainEvent(row[0], row[1], row[2], row[3], row[4], orjson.loads(row[5]))


def numbered(sql: str) -> str:
    """The statement with PostgreSQL's numbered placeholders instead of `?`."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${index}{part}" for index, part in enumerate(parts[1:], 1))


def like_literal(text: str) -> str:
    """`text` for a LIKE pattern with ESCAPE '\\': its % and _ match only themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def sort_batch(
    vehicles: Sequence[NewVehicle], registered: set[str], brands: set[str]
) -> tuple[list[Vehicle | CarcloudError | None], dict[str, int]]:
    """Which rows of a batch registration can be stored.

    Returns one entry per row (an error for a row that cannot be stored, None for
    one to store) and the VINs to store with their row index.
    """
    outcome: list[Vehicle | CarcloudError | None] = [None] * len(vehicles)
    inserted: dict[str, int] = {}
    for index, new in enumerate(vehicles):
        if new.vin in registered:
            outcome[index] = ConflictError(f"vehicle {new.vin} is already registered")
        elif new.vin in inserted:
            outcome[index] = ConflictError(
                f"vehicle {new.vin} appears twice in the batch "
                f"(first at row {inserted[new.vin] + 1})"
            )
        elif new.brand not in brands:
            outcome[index] = NotFoundError(f"brand {new.brand!r} not found")
        else:
            inserted[new.vin] = index
    return outcome, inserted
