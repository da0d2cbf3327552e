"""CommandStore for SQLite: commands, their transitions, compare-and-set status changes."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from carcloud.commands.models import (
    OPEN_STATUSES,
    CommandRecord,
    CommandTransition,
)
from carcloud.commands.store import EmitCommand, Plan
from carcloud.errors import NotFoundError
from carcloud.storage.rows import COMMAND_COLUMNS, COMMAND_FROM, command_of, dumps, step_times
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
    row = conn.execute(
        f"SELECT {COMMAND_COLUMNS} {COMMAND_FROM} WHERE c.id = ?", (command_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"command {command_id} not found")
    return command_of(row, _transitions(conn, command_id))


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
                row = conn.execute(
                    "SELECT id FROM commands WHERE vehicle_id = ? AND idempotency_key = ?",
                    (vehicle_id, idempotency_key),
                ).fetchone()
                if row is not None:
                    return _load(conn, row[0]), False
            created = now_us()
            conn.execute(
                "INSERT INTO commands (id, vehicle_id, kind, params, status, idempotency_key, "
                "created_at, expires_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    command_id,
                    vehicle_id,
                    kind,
                    dumps(params),
                    idempotency_key,
                    created,
                    expires_at,
                ),
            )
            conn.execute(
                "INSERT INTO command_transitions (command_id, status, at) VALUES (?, 'queued', ?)",
                (command_id, created),
            )
            # Built here rather than read back: this is on every command's path.
            record = CommandRecord(
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
            self._emit(conn, emit, record)
            return record, True

        return await self.engine.write(insert)

    async def get_command(self, vin: str, command_id: str, brand: str | None) -> CommandRecord:
        def query(conn: sqlite3.Connection) -> CommandRecord:
            if brand is not None:  # an operator sees every vehicle: the VIN check below suffices
                visible_vehicle_id(conn, vin, brand)
            command = _load(conn, command_id)
            if command.vin != vin:
                raise NotFoundError(f"command {command_id} not found")
            return command

        return await self.engine.read(query)

    async def list_commands(
        self, vin: str, brand: str | None, status: str | None, limit: int
    ) -> list[CommandRecord]:
        def query(conn: sqlite3.Connection) -> list[CommandRecord]:
            sql = f"SELECT {COMMAND_COLUMNS} {COMMAND_FROM} WHERE c.vehicle_id = ?"
            params: list[Any] = [visible_vehicle_id(conn, vin, brand)]
            if status is not None:
                sql += " AND c.status = ?"
                params.append(status)
            sql += " ORDER BY c.created_at DESC LIMIT ?"
            params.append(limit)
            return [
                command_of(row, _transitions(conn, row[0]))
                for row in conn.execute(sql, params).fetchall()
            ]

        return await self.engine.read(query)

    def _apply(
        self, conn: sqlite3.Connection, command_id: str, steps: Sequence[CommandTransition]
    ) -> None:
        """Record transitions and keep the command row's status and times in step."""
        last = steps[-1]
        delivered, completed = step_times(steps)
        conn.execute(
            "UPDATE commands SET status = ?, reason = ?, delivered_at = COALESCE(delivered_at, ?), "
            "completed_at = COALESCE(?, completed_at) WHERE id = ?",
            (last.status, last.reason, delivered, completed, command_id),
        )
        conn.executemany(
            "INSERT INTO command_transitions (command_id, status, at, reason) VALUES (?, ?, ?, ?)",
            [(command_id, step.status, step.at, step.reason) for step in steps],
        )

    async def transition_command(
        self,
        command_id: str,
        plan: Plan,
        vin: str | None = None,
        emit: EmitCommand | None = None,
    ) -> CommandRecord | None:
        def update(conn: sqlite3.Connection) -> CommandRecord | None:
            row = conn.execute(
                "SELECT c.status, v.vin FROM commands c JOIN vehicles v ON v.id = c.vehicle_id "
                "WHERE c.id = ?",
                (command_id,),
            ).fetchone()
            if row is None or (vin is not None and row[1] != vin):
                return None
            steps = plan(row[0])
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
            sql = (
                f"SELECT {COMMAND_COLUMNS} {COMMAND_FROM} "
                f"WHERE c.status IN ({_OPEN}) AND c.expires_at > ?"
            )
            params: list[Any] = [now_us()]
            if vin is not None:
                sql += " AND v.vin = ?"
                params.append(vin)
            if ids is not None:
                sql += f" AND c.id IN ({','.join('?' * len(ids))})"
                params += ids
            sql += " ORDER BY c.created_at, c.rowid"
            return [command_of(row) for row in conn.execute(sql, params).fetchall()]

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
