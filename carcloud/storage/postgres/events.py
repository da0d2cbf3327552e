"""The event outbox in PostgreSQL: appended inside other stores' transactions, relayed once."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from carcloud.events.models import DomainEvent, NewEvent
from carcloud.storage.postgres.engine import Conn, Params, PostgresEngine, Tx
from carcloud.storage.rows import EVENT_COLUMNS, event_of, like_literal
from carcloud.timeutil import now_us

# Taken by every transaction that writes events, held to its commit: ids in commit order.
EVENTS_LOCK = 7_431_002


async def append_events(tx: Tx, events: Sequence[NewEvent]) -> list[DomainEvent]:
    """Write events in the caller's transaction; their brand from the VIN when not given."""
    if not events:
        return []
    if not tx.locked_events:
        await tx.conn.execute("SELECT pg_advisory_xact_lock($1)", EVENTS_LOCK)
        tx.locked_events = True
    stored = []
    at = now_us()
    for event in events:
        brand = event.brand
        if brand is None and event.vin is not None:
            brand = await tx.conn.fetchval(
                "SELECT b.slug FROM vehicles v JOIN brands b ON b.id = v.brand_id WHERE v.vin = $1",
                event.vin,
            )
        event_id = await tx.conn.fetchval(
            "INSERT INTO events (type, brand, vin, at, data) VALUES ($1, $2, $3, $4, $5) "
            "RETURNING id",
            event.type,
            brand,
            event.vin,
            at,
            orjson.dumps(event.data).decode(),
        )
        stored.append(DomainEvent(int(event_id), event.type, brand, event.vin, at, event.data))
    tx.events += stored
    return stored


class PostgresEventStore:
    """EventStore over the shared PostgreSQL engine."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    async def append(self, events: Sequence[NewEvent]) -> list[DomainEvent]:
        return await self.engine.write(lambda tx: append_events(tx, events))

    async def list_events(
        self,
        after: int,
        brand: str | None,
        types: Sequence[str] = (),
        vin: str | None = None,
        limit: int = 100,
    ) -> list[DomainEvent]:
        params = Params()
        where = [f"id > {params.add(after)}"]
        if brand is not None:
            where.append(f"brand = {params.add(brand)}")
        if vin is not None:
            where.append(f"vin = {params.add(vin)}")
        if types:
            clauses = []
            for name in types:
                prefix = name.removesuffix(".*")
                exact, group = params.add(prefix), params.add(like_literal(prefix) + ".%")
                clauses.append(f"(type = {exact} OR type LIKE {group} ESCAPE '\\')")
            where.append("(" + " OR ".join(clauses) + ")")
        sql = (
            f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} "
            f"ORDER BY id LIMIT {params.add(limit)}"
        )

        async def query(conn: Conn) -> list[DomainEvent]:
            return [event_of(row) for row in await conn.fetch(sql, *params.values)]

        return await self.engine.read(query)

    async def last_id(self) -> int:
        return int(
            await self.engine.read(
                lambda conn: conn.fetchval("SELECT COALESCE(MAX(id), 0) FROM events")
            )
        )

    async def unrelayed(
        self, limit: int, ids: Sequence[int] | None = None, before: int | None = None
    ) -> list[DomainEvent]:
        params = Params()
        where = "relayed_at IS NULL"
        if ids is not None:
            where += f" AND id = ANY({params.add(list(ids))}::bigint[])"
        if before is not None:
            where += f" AND at < {params.add(before)}"
        limit_param = params.add(limit)
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE {where} ORDER BY id LIMIT {limit_param}"

        async def query(conn: Conn) -> list[DomainEvent]:
            return [event_of(row) for row in await conn.fetch(sql, *params.values)]

        return await self.engine.read(query)

    def take_committed(self) -> list[DomainEvent]:
        return self.engine.take_committed_events()

    async def mark_relayed(self, ids: Sequence[int], at: int) -> None:
        async def update(tx: Tx) -> None:
            await tx.conn.execute(
                "UPDATE events SET relayed_at = $1 WHERE id = ANY($2::bigint[]) "
                "AND relayed_at IS NULL",
                at,
                list(ids),
            )

        await self.engine.write(update)

    async def prune(self, before: int) -> int:
        async def delete(tx: Tx) -> int:
            status = await tx.conn.execute(
                "DELETE FROM events WHERE at < $1 AND relayed_at IS NOT NULL", before
            )
            return int(status.split()[-1])

        return await self.engine.write(delete)

    def on_commit(self, listener: Callable[[], None]) -> None:
        self.engine.on_commit(listener)
