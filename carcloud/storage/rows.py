"""What both backends share across domains: the row type, events' columns and decoding,
the JSON encoding, and `numbered`; each domain's rows are in its own *_rows module.

Statements shared by both backends are written with `?` placeholders, which PostgreSQL
runs through `numbered` ($1, $2, …).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from carcloud.errors import CarcloudError, ConflictError, NotFoundError
from carcloud.events.models import DomainEvent
from carcloud.registry.models import NewVehicle, Vehicle
from carcloud.twins.models import canonical


class Row(Protocol):
    """A result row of either driver, read by position."""

    def __getitem__(self, index: int, /) -> Any: ...


EVENT_COLUMNS = "id, type, brand, vin, at, data"

dumps = canonical


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
