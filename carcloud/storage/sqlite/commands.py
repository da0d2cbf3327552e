"""CommandStore for SQLite: commands, their transitions, compare-and-set status changes."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from carcloud.commands.models import OPEN_STATUSES, CommandRecord, CommandTransition
from carcloud.commands.store import EmitCommand, Plan
from carcloud.storage import command_rows as sql
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.storage.sqlite.events import append_events
from carcloud.storage.sqlite.vehicles import visible_vehicle_id
from carcloud.timeutil import now_us

_OPEN = ", ".join(f"'{status}'" for status in OPEN_STATUSES)


def _transitions(conn: sqlite3.Connection, command_id: str) -> tuple[CommandTransition, ...]:
    rows = conn.execute(
        "SELECT status, at, reason FROM command_transitions WHERE command_id = ? "
        "ORDER BY at, rowid",
        (command_id,),
    )
    return tuple(CommandTransition(*row) for row in rows)


def _load(conn: sqlite3.Connection, command_id: str) -> CommandRecord:
    row = conn.execute(sql.COMMAND_BY_ID, (command_id,)).fetchone()
    if row is None:
        raise sql.command_missing(command_id)
    return sql.command_of(row, _transitions(conn, command_id))


class SqliteCommandStore:
    """CommandStore over the shared SQLite engine."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    def _emit(self, conn: sqlite3.Connection, emit: EmitCommand | None, cmd: CommandRecord) -> None:
        if emit is not None:
            append_events(self.engine, conn, emit(cmd))

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
        def insert(conn: sqlite3.Connection) -> tuple[CommandRecord, bool]:
            vehicle_id = visible_vehicle_id(conn, vin, brand)
            if idempotency_key is not None:
                row = conn.execute(sql.FIND_IDEMPOTENT, (vehicle_id, idempotency_key)).fetchone()
                if row is not None:
                    return _load(conn, row[0]), False
            record = sql.queued(
                command_id, vin, kind, params, expires_at, idempotency_key, now_us()
            )
            conn.execute(sql.INSERT_COMMAND, sql.insert_values(record, vehicle_id))
            conn.execute(sql.INSERT_QUEUED, (command_id, record.created_at))
            self._emit(conn, emit, record)
            return record, True

        return await self.engine.write(insert)

    async def get_command(self, vin: str, command_id: str, brand: str | None) -> CommandRecord:
        def query(conn: sqlite3.Connection) -> CommandRecord:
            if brand is not None:  # an operator sees every vehicle: the VIN check below suffices
                visible_vehicle_id(conn, vin, brand)
            return sql.of_vehicle(_load(conn, command_id), vin)

        return await self.engine.read(query)

    async def list_commands(
        self, vin: str, brand: str | None, status: str | None, limit: int
    ) -> list[CommandRecord]:
        def query(conn: sqlite3.Connection) -> list[CommandRecord]:
            query = f"SELECT {sql.COMMAND_COLUMNS} {sql.COMMAND_FROM} WHERE c.vehicle_id = ?"
            params: list[Any] = [visible_vehicle_id(conn, vin, brand)]
            if status is not None:
                query += " AND c.status = ?"
                params.append(status)
            query += " ORDER BY c.created_at DESC LIMIT ?"
            params.append(limit)
            return [
                sql.command_of(row, _transitions(conn, row[0]))
                for row in conn.execute(query, params).fetchall()
            ]

        return await self.engine.read(query)

    def _apply(
        self, conn: sqlite3.Connection, command_id: str, steps: Sequence[CommandTransition]
    ) -> None:
        """Record transitions and keep the command row's status and times in step."""
        conn.execute(sql.SET_STATUS, sql.status_values(command_id, steps))
        conn.executemany(sql.INSERT_TRANSITION, sql.transition_values(command_id, steps))

    async def transition_command(
        self,
        command_id: str,
        plan: Plan,
        vin: str | None = None,
        emit: EmitCommand | None = None,
    ) -> CommandRecord | None:
        def update(conn: sqlite3.Connection) -> CommandRecord | None:
            row = conn.execute(sql.COMMAND_STATUS, (command_id,)).fetchone()
            steps = sql.planned(row, vin, plan)
            if not steps:
                return None
            self._apply(conn, command_id, steps)
            command = _load(conn, command_id)
            self._emit(conn, emit, command)
            return command

        return await self.engine.write(update)

    async def open_commands(
        self, vin: str | None = None, ids: Sequence[str] | None = None
    ) -> list[CommandRecord]:
        if ids is not None and not ids:
            return []

        def query(conn: sqlite3.Connection) -> list[CommandRecord]:
            query = (
                f"SELECT {sql.COMMAND_COLUMNS} {sql.COMMAND_FROM} "
                f"WHERE c.status IN ({_OPEN}) AND c.expires_at > ?"
            )
            params: list[Any] = [now_us()]
            if vin is not None:
                query += " AND v.vin = ?"
                params.append(vin)
            if ids is not None:
                query += f" AND c.id IN ({','.join('?' * len(ids))})"
                params += ids
            query += " ORDER BY c.created_at, c.rowid"
            return [sql.command_of(row) for row in conn.execute(query, params).fetchall()]

        return await self.engine.read(query)

    async def expire_commands(
        self, now: int, plan: Plan, emit: EmitCommand | None = None
    ) -> list[CommandRecord]:
        def update(conn: sqlite3.Connection) -> list[CommandRecord]:
            rows = conn.execute(
                f"SELECT id, status FROM commands WHERE status IN ({_OPEN}) AND expires_at <= ?",
                (now,),
            ).fetchall()
            expired = []
            for command_id, status in rows:
                steps = plan(status)
                if not steps:
                    continue
                self._apply(conn, command_id, steps)
                command = _load(conn, command_id)
                self._emit(conn, emit, command)
                expired.append(command)
            return expired

        return await self.engine.write(update)
