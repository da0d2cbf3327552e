"""CommandStore for PostgreSQL: commands, their transitions, compare-and-set status changes."""

from __future__ import annotations

from collections.abc import Sequence

from carcloud.commands.models import OPEN_STATUSES, CommandRecord, CommandTransition
from carcloud.commands.store import EmitCommand, Plan
from carcloud.storage import command_rows as sql
from carcloud.storage.postgres.engine import Conn, PostgresEngine, Tx
from carcloud.storage.postgres.events import append_events
from carcloud.storage.postgres.vehicles import visible_vehicle_id
from carcloud.storage.rows import numbered
from carcloud.timeutil import now_us

_OPEN = list(OPEN_STATUSES)


async def _transitions(conn: Conn, command_id: str) -> tuple[CommandTransition, ...]:
    rows = await conn.fetch(
        "SELECT status, at, reason FROM command_transitions WHERE command_id = $1 ORDER BY at, id",
        command_id,
    )
    return tuple(CommandTransition(*row) for row in rows)


async def _load(conn: Conn, command_id: str) -> CommandRecord:
    row = await conn.fetchrow(numbered(sql.COMMAND_BY_ID), command_id)
    if row is None:
        raise sql.command_missing(command_id)
    return sql.command_of(row, await _transitions(conn, command_id))


async def _apply(tx: Tx, command_id: str, steps: Sequence[CommandTransition]) -> None:
    """Record transitions and keep the command row's status and times in step."""
    await tx.conn.execute(numbered(sql.SET_STATUS), *sql.status_values(command_id, steps))
    await tx.conn.executemany(
        numbered(sql.INSERT_TRANSITION), sql.transition_values(command_id, steps)
    )


class PostgresCommandStore:
    """CommandStore over the shared PostgreSQL engine."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

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
        async def insert(tx: Tx) -> tuple[CommandRecord, bool]:
            vehicle_id = await visible_vehicle_id(tx.conn, vin, brand)
            if idempotency_key is not None:
                found = await tx.conn.fetchval(
                    numbered(sql.FIND_IDEMPOTENT), vehicle_id, idempotency_key
                )
                if found is not None:
                    return await _load(tx.conn, found), False
            record = sql.queued(
                command_id, vin, kind, params, expires_at, idempotency_key, now_us()
            )
            await tx.conn.execute(
                numbered(sql.INSERT_COMMAND), *sql.insert_values(record, vehicle_id)
            )
            await tx.conn.execute(numbered(sql.INSERT_QUEUED), command_id, record.created_at)
            if emit is not None:
                await append_events(tx, emit(record))
            return record, True

        return await self.engine.write(insert)

    async def get_command(self, vin: str, command_id: str, brand: str | None) -> CommandRecord:
        async def query(conn: Conn) -> CommandRecord:
            if brand is not None:
                await visible_vehicle_id(conn, vin, brand)
            return sql.of_vehicle(await _load(conn, command_id), vin)

        return await self.engine.read(query)

    async def list_commands(
        self, vin: str, brand: str | None, status: str | None, limit: int
    ) -> list[CommandRecord]:
        async def query(conn: Conn) -> list[CommandRecord]:
            vehicle_id = await visible_vehicle_id(conn, vin, brand)
            rows = await conn.fetch(
                f"SELECT {sql.COMMAND_COLUMNS} {sql.COMMAND_FROM} WHERE c.vehicle_id = $1 "
                "AND ($2::text IS NULL OR c.status = $2) ORDER BY c.created_at DESC, c.seq DESC "
                "LIMIT $3",
                vehicle_id,
                status,
                limit,
            )
            return [sql.command_of(row, await _transitions(conn, row[0])) for row in rows]

        return await self.engine.read(query)

    async def transition_command(
        self,
        command_id: str,
        plan: Plan,
        vin: str | None = None,
        emit: EmitCommand | None = None,
    ) -> CommandRecord | None:
        async def update(tx: Tx) -> CommandRecord | None:
            row = await tx.conn.fetchrow(
                numbered(sql.COMMAND_STATUS + " FOR UPDATE OF c"), command_id
            )
            steps = sql.planned(row, vin, plan)
            if not steps:
                return None
            await _apply(tx, command_id, steps)
            command = await _load(tx.conn, command_id)
            if emit is not None:
                await append_events(tx, emit(command))
            return command

        return await self.engine.write(update)

    async def open_commands(
        self, vin: str | None = None, ids: Sequence[str] | None = None
    ) -> list[CommandRecord]:
        if ids is not None and not ids:
            return []

        async def query(conn: Conn) -> list[CommandRecord]:
            rows = await conn.fetch(
                f"SELECT {sql.COMMAND_COLUMNS} {sql.COMMAND_FROM} WHERE c.status = ANY($1::text[]) "
                "AND c.expires_at > $2 AND ($3::text IS NULL OR v.vin = $3) "
                "AND ($4::text[] IS NULL OR c.id = ANY($4::text[])) "
                "ORDER BY c.created_at, c.seq",
                _OPEN,
                now_us(),
                vin,
                None if ids is None else list(ids),
            )
            return [sql.command_of(row) for row in rows]

        return await self.engine.read(query)

    async def expire_commands(
        self, now: int, plan: Plan, emit: EmitCommand | None = None
    ) -> list[CommandRecord]:
        async def update(tx: Tx) -> list[CommandRecord]:
            rows = await tx.conn.fetch(
                "SELECT id, status FROM commands WHERE status = ANY($1::text[]) "
                "AND expires_at <= $2 ORDER BY created_at FOR UPDATE SKIP LOCKED",
                _OPEN,
                now,
            )
            expired = []
            for command_id, status in rows:
                steps = plan(status)
                if not steps:
                    continue
                await _apply(tx, command_id, steps)
                command = await _load(tx.conn, command_id)
                if emit is not None:
                    await append_events(tx, emit(command))
                expired.append(command)
            return expired

        return await self.engine.write(update)
