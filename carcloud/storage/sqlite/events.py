"""The event outbox in SQLite: appended inside other stores' transactions, relayed once."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from carcloud.events.models import DomainEvent, NewEvent
from carcloud.storage.rows import EVENT_COLUMNS, event_of, like_literal
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.timeutil import now_us


def append_events(
    engine: SqliteEngine, conn: sqlite3.Connection, events: Sequence[NewEvent]
) -> list[DomainEvent]:
    """Write events in the caller's transaction (writer thread); their brand from the VIN."""
    stored = []
    at = now_us()
    for event in events:
        brand = event.brand
        if brand is None and event.vin is not None:
            ids = engine.vehicle_id(conn, event.vin)
            brand = engine.brand_slug(conn, ids[1]) if ids is not None else None
        data = orjson.dumps(event.data).decode()
        cur = conn.execute(
            "INSERT INTO events (type, brand, vin, at, data) VALUES (?, ?, ?, ?, ?)",
            (event.type, brand, event.vin, at, data),
        )
        stored.append(DomainEvent(int(cur.lastrowid or 0), event.type, brand, event.vin, at,
                                  event.data))  # fmt: skip
    engine.staged_events += stored
    return stored


def first_id_at(conn: sqlite3.Connection, at: int) -> int:
    """The id of the first event at or after `at` (one past the last id if none is).

    Found by bisecting ids, without an index on `at` (one more index to update with
    every event, for an hourly prune): ids and times grow together, as both are
    given in the writer's transaction, one transaction at a time on the file.
    """
    low, high = conn.execute("SELECT MIN(id), MAX(id) FROM events").fetchone()
    if low is None:
        return 0
    high += 1
    while low < high:
        middle = (low + high) // 2
        found, found_at = conn.execute(
            "SELECT id, at FROM events WHERE id >= ? ORDER BY id LIMIT 1", (middle,)
        ).fetchone()
        if found_at < at:
            low = found + 1
        else:
            high = middle
    return int(low)


def type_filter(types: Sequence[str]) -> tuple[str, list[Any]]:
    """SQL matching event types: exact names, or prefixes such as `command` / `vehicle.*`."""
    clauses: list[str] = []
    params: list[Any] = []
    for name in types:
        prefix = name.removesuffix(".*")
        clauses.append("(type = ? OR type LIKE ? ESCAPE '\\')")
        params += [prefix, like_literal(prefix) + ".%"]
    return "(" + " OR ".join(clauses) + ")", params


class SqliteEventStore:
    """EventStore over the shared SQLite engine."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    async def append(self, events: Sequence[NewEvent]) -> list[DomainEvent]:
        return await self.engine.write(lambda conn: append_events(self.engine, conn, events))

    async def list_events(
        self,
        after: int,
        brand: str | None,
        types: Sequence[str] = (),
        vin: str | None = None,
        limit: int = 100,
    ) -> list[DomainEvent]:
        where = ["id > ?"]
        params: list[Any] = [after]
        if brand is not None:
            where.append("brand = ?")
            params.append(brand)
        if vin is not None:
            where.append("vin = ?")
            params.append(vin)
        if types:
            clause, values = type_filter(types)
            where.append(clause)
            params += values
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"
        params.append(limit)

        def query(conn: sqlite3.Connection) -> list[DomainEvent]:
            return [event_of(row) for row in conn.execute(sql, params)]

        return await self.engine.read(query)

    async def last_id(self) -> int:
        def query(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])

        return await self.engine.read(query)

    async def unrelayed(
        self, limit: int, ids: Sequence[int] | None = None, before: int | None = None
    ) -> list[DomainEvent]:
        def query(conn: sqlite3.Connection) -> list[DomainEvent]:
            where, params = "relayed_at IS NULL", []
            if ids is not None:
                where += f" AND id IN ({','.join('?' * len(ids))})"
                params += list(ids)
            if before is not None:
                where += " AND at < ?"
                params.append(before)
            rows = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE {where} ORDER BY id LIMIT ?",
                (*params, limit),
            )
            return [event_of(row) for row in rows]

        return await self.engine.read(query)

    def take_committed(self) -> list[DomainEvent]:
        return self.engine.take_committed_events()

    async def mark_relayed(self, ids: Sequence[int], at: int) -> None:
        def update(conn: sqlite3.Connection) -> None:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                conn.execute(
                    f"UPDATE events SET relayed_at = ? WHERE id IN ({marks}) "
                    "AND relayed_at IS NULL",
                    (at, *chunk),
                )

        await self.engine.write(update)

    async def prune(self, before: int) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "DELETE FROM events WHERE id < ? AND relayed_at IS NOT NULL",
                (first_id_at(conn, before),),
            )
            return cur.rowcount

        return await self.engine.write(delete)

    def on_commit(self, listener: Callable[[], None]) -> None:
        self.engine.on_commit(listener)
