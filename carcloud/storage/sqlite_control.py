"""SQLite side of the control store: commands, twins and configurations.

A mixin of SqliteStorage: it uses the same writer thread and read pool.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from carcloud.errors import NotFoundError, PreconditionFailed
from carcloud.storage.control import ControlStore
from carcloud.storage.models import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    CommandRecord,
    CommandTransition,
    Configuration,
    Twin,
    Vehicle,
)
from carcloud.timeutil import now_us
from carcloud.twins.documents import matches, merge_patch

T = TypeVar("T")

_COMMAND_COLUMNS = (
    "c.id, v.vin, c.kind, c.params, c.status, c.reason, c.idempotency_key, c.created_at, "
    "c.expires_at, c.delivered_at, c.completed_at"
)
_COMMAND_FROM = (
    "FROM commands c JOIN vehicles v ON v.id = c.vehicle_id JOIN brands b ON b.id = v.brand_id"
)

# Which status may follow which: a final status never changes again.
_ALLOWED = {
    "delivered": ("queued",),
    "succeeded": OPEN_STATUSES,
    "failed": OPEN_STATUSES,
    "expired": OPEN_STATUSES,
    "cancelled": OPEN_STATUSES,
}


def _command(row: Sequence[Any], transitions: tuple[CommandTransition, ...] = ()) -> CommandRecord:
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


def _dumps(document: object) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


class SqliteControl(ControlStore):
    """Commands, twins and configurations in the SQLite file."""

    # Provided by SqliteStorage.
    _write: Callable[..., Any]
    _read: Callable[..., Any]
    _fetch_vehicle: Callable[[sqlite3.Connection, str, str | None], Vehicle]
    _vehicle_rows: Callable[[sqlite3.Connection, Any], list[Vehicle]]

    # ---- commands ----------------------------------------------------------------------

    @staticmethod
    def _visible_vehicle_id(conn: sqlite3.Connection, vin: str, brand: str | None) -> int:
        """The id of a vehicle the caller may see (no tags: commands need only the id)."""
        sql = "SELECT v.id FROM vehicles v JOIN brands b ON b.id = v.brand_id WHERE v.vin = ?"
        params: list[Any] = [vin]
        if brand is not None:
            sql += " AND b.slug = ?"
            params.append(brand)
        row = conn.execute(sql, params).fetchone()
        if row is None:
            raise NotFoundError(f"vehicle {vin} not found")
        return int(row[0])

    @staticmethod
    def _transitions(conn: sqlite3.Connection, command_id: str) -> tuple[CommandTransition, ...]:
        rows = conn.execute(
            "SELECT status, at, reason FROM command_transitions WHERE command_id = ? "
            "ORDER BY at, rowid",
            (command_id,),
        )
        return tuple(CommandTransition(*row) for row in rows)

    def _load_command(self, conn: sqlite3.Connection, command_id: str) -> CommandRecord:
        row = conn.execute(
            f"SELECT {_COMMAND_COLUMNS} {_COMMAND_FROM} WHERE c.id = ?", (command_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"command {command_id} not found")
        return _command(row, self._transitions(conn, command_id))

    async def create_command(
        self,
        command_id: str,
        vin: str,
        brand: str | None,
        kind: str,
        params: dict[str, object],
        expires_at: int,
        idempotency_key: str | None,
    ) -> tuple[CommandRecord, bool]:
        def insert(conn: sqlite3.Connection) -> tuple[CommandRecord, bool]:
            vehicle_id = self._visible_vehicle_id(conn, vin, brand)
            if idempotency_key is not None:
                row = conn.execute(
                    "SELECT id FROM commands WHERE vehicle_id = ? AND idempotency_key = ?",
                    (vehicle_id, idempotency_key),
                ).fetchone()
                if row is not None:
                    return self._load_command(conn, row[0]), False
            created = now_us()
            conn.execute(
                "INSERT INTO commands (id, vehicle_id, kind, params, status, idempotency_key, "
                "created_at, expires_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    command_id,
                    vehicle_id,
                    kind,
                    _dumps(params),
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
            return record, True

        result: tuple[CommandRecord, bool] = await self._write(insert)
        return result

    async def get_command(self, vin: str, command_id: str, brand: str | None) -> CommandRecord:
        def query(conn: sqlite3.Connection) -> CommandRecord:
            if brand is not None:  # an operator sees every vehicle: the VIN check below suffices
                self._visible_vehicle_id(conn, vin, brand)
            command = self._load_command(conn, command_id)
            if command.vin != vin:
                raise NotFoundError(f"command {command_id} not found")
            return command

        result: CommandRecord = await self._read(query)
        return result

    async def list_commands(
        self, vin: str, brand: str | None, status: str | None, limit: int
    ) -> list[CommandRecord]:
        def query(conn: sqlite3.Connection) -> list[CommandRecord]:
            sql = f"SELECT {_COMMAND_COLUMNS} {_COMMAND_FROM} WHERE c.vehicle_id = ?"
            params: list[Any] = [self._visible_vehicle_id(conn, vin, brand)]
            if status is not None:
                sql += " AND c.status = ?"
                params.append(status)
            sql += " ORDER BY c.created_at DESC LIMIT ?"
            params.append(limit)
            return [
                _command(row, self._transitions(conn, row[0]))
                for row in conn.execute(sql, params).fetchall()
            ]

        result: list[CommandRecord] = await self._read(query)
        return result

    async def transition_command(
        self,
        command_id: str,
        status: str,
        at: int,
        reason: str | None = None,
        vin: str | None = None,
    ) -> CommandRecord | None:
        allowed_from = _ALLOWED.get(status)
        if allowed_from is None:
            raise ValueError(f"no transition into {status!r}")

        def update(conn: sqlite3.Connection) -> CommandRecord | None:
            row = conn.execute(
                "SELECT c.status, v.vin FROM commands c JOIN vehicles v ON v.id = c.vehicle_id "
                "WHERE c.id = ?",
                (command_id,),
            ).fetchone()
            if row is None or row[0] not in allowed_from or (vin is not None and row[1] != vin):
                return None
            sets: list[str] = ["status = ?", "reason = ?"]
            values: list[object] = [status, reason]
            if status in ("delivered", "succeeded", "failed"):
                sets.append("delivered_at = COALESCE(delivered_at, ?)")
                values.append(at)
            if status in FINAL_STATUSES:
                sets.append("completed_at = ?")
                values.append(at)
            if status in ("succeeded", "failed") and row[0] == "queued":
                # A result proves delivery even when no 'received' came first.
                conn.execute(
                    "INSERT INTO command_transitions (command_id, status, at) "
                    "VALUES (?, 'delivered', ?)",
                    (command_id, at),
                )
            conn.execute(
                f"UPDATE commands SET {', '.join(sets)} WHERE id = ?", (*values, command_id)
            )
            conn.execute(
                "INSERT INTO command_transitions (command_id, status, at, reason) "
                "VALUES (?, ?, ?, ?)",
                (command_id, status, at, reason),
            )
            return self._load_command(conn, command_id)

        result: CommandRecord | None = await self._write(update)
        return result

    async def open_commands(self, vin: str | None = None) -> list[CommandRecord]:
        def query(conn: sqlite3.Connection) -> list[CommandRecord]:
            sql = (
                f"SELECT {_COMMAND_COLUMNS} {_COMMAND_FROM} "
                "WHERE c.status IN ('queued', 'delivered') AND c.expires_at > ?"
            )
            params: list[Any] = [now_us()]
            if vin is not None:
                sql += " AND v.vin = ?"
                params.append(vin)
            sql += " ORDER BY c.created_at, c.rowid"
            return [_command(row) for row in conn.execute(sql, params).fetchall()]

        result: list[CommandRecord] = await self._read(query)
        return result

    async def expire_commands(self, now: int) -> list[CommandRecord]:
        def update(conn: sqlite3.Connection) -> list[CommandRecord]:
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM commands WHERE status IN ('queued', 'delivered') "
                    "AND expires_at <= ?",
                    (now,),
                )
            ]
            for command_id in ids:
                conn.execute(
                    "UPDATE commands SET status = 'expired', reason = ?, completed_at = ? "
                    "WHERE id = ?",
                    ("time to live passed before the vehicle answered", now, command_id),
                )
                conn.execute(
                    "INSERT INTO command_transitions (command_id, status, at, reason) "
                    "VALUES (?, 'expired', ?, ?)",
                    (command_id, now, "time to live passed before the vehicle answered"),
                )
            return [self._load_command(conn, command_id) for command_id in ids]

        result: list[CommandRecord] = await self._write(update)
        return result

    # ---- twins -------------------------------------------------------------------------

    @staticmethod
    def _twin(conn: sqlite3.Connection, vehicle: Vehicle) -> Twin:
        desired = conn.execute(
            "SELECT version, own, effective, updated_at FROM twin_desired WHERE vehicle_id = ?",
            (vehicle.id,),
        ).fetchone()
        reported = conn.execute(
            "SELECT document, desired_version, updated_at FROM twin_reported WHERE vehicle_id = ?",
            (vehicle.id,),
        ).fetchone()
        return Twin(
            vin=vehicle.vin,
            desired_version=desired[0] if desired else 0,
            desired_own=json.loads(desired[1]) if desired else {},
            desired=json.loads(desired[2]) if desired else {},
            desired_updated_at=desired[3] if desired else None,
            reported=json.loads(reported[0]) if reported else {},
            reported_desired_version=reported[1] if reported else None,
            reported_updated_at=reported[2] if reported else None,
        )

    @staticmethod
    def _configurations(conn: sqlite3.Connection) -> list[Configuration]:
        rows = conn.execute(
            "SELECT id, name, target, priority, desired, created_at, updated_at "
            "FROM configurations ORDER BY priority, name"
        ).fetchall()
        return [
            Configuration(r[0], r[1], json.loads(r[2]), r[3], json.loads(r[4]), r[5], r[6])
            for r in rows
        ]

    def _store_effective(
        self,
        conn: sqlite3.Connection,
        vehicle: Vehicle,
        own: dict[str, object],
        configurations: list[Configuration],
    ) -> bool:
        """Write own + matching configurations (by priority; own wins last); True if changed."""
        effective: dict[str, Any] = {}
        for configuration in configurations:
            if matches(configuration.target, vehicle):
                effective = merge_patch(effective, configuration.desired)
        effective = merge_patch(effective, own)
        row = conn.execute(
            "SELECT version, own, effective FROM twin_desired WHERE vehicle_id = ?", (vehicle.id,)
        ).fetchone()
        own_text, effective_text = _dumps(own), _dumps(effective)
        if row is not None and row[1] == own_text and row[2] == effective_text:
            return False
        if row is None and not own and not effective:
            return False
        version = (row[0] if row else 0) + (0 if row and row[2] == effective_text else 1)
        conn.execute(
            "INSERT INTO twin_desired (vehicle_id, version, own, effective, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (vehicle_id) DO UPDATE SET "
            "version = excluded.version, own = excluded.own, effective = excluded.effective, "
            "updated_at = excluded.updated_at",
            (vehicle.id, version, own_text, effective_text, now_us()),
        )
        return row is None or row[2] != effective_text

    async def get_twin(self, vin: str, brand: str | None) -> Twin:
        def query(conn: sqlite3.Connection) -> Twin:
            return self._twin(conn, self._fetch_vehicle(conn, vin, brand))

        result: Twin = await self._read(query)
        return result

    async def set_desired(
        self, vin: str, brand: str | None, own: dict[str, object], if_version: int | None
    ) -> Twin:
        def update(conn: sqlite3.Connection) -> Twin:
            vehicle = self._fetch_vehicle(conn, vin, brand)
            current = self._twin(conn, vehicle)
            if if_version is not None and if_version != current.desired_version:
                raise PreconditionFailed(
                    f"desired properties of {vin} are at version {current.desired_version}, "
                    f"not {if_version}: read them again and retry"
                )
            self._store_effective(conn, vehicle, own, self._configurations(conn))
            return self._twin(conn, vehicle)

        result: Twin = await self._write(update)
        return result

    async def set_reported(
        self, vin: str, patch: dict[str, object], desired_version: int | None, at: int
    ) -> Twin | None:
        def update(conn: sqlite3.Connection) -> Twin | None:
            try:
                vehicle = self._fetch_vehicle(conn, vin, None)
            except NotFoundError:
                return None
            current = self._twin(conn, vehicle)
            document = merge_patch(current.reported, patch)
            conn.execute(
                "INSERT INTO twin_reported (vehicle_id, document, desired_version, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (vehicle_id) DO UPDATE SET "
                "document = excluded.document, updated_at = excluded.updated_at, "
                "desired_version = "
                "COALESCE(excluded.desired_version, twin_reported.desired_version)",
                (vehicle.id, _dumps(document), desired_version, at),
            )
            return self._twin(conn, vehicle)

        result: Twin | None = await self._write(update)
        return result

    # ---- configurations ----------------------------------------------------------------

    async def save_configuration(self, configuration: Configuration) -> Configuration:
        def upsert(conn: sqlite3.Connection) -> Configuration:
            conn.execute(
                "INSERT INTO configurations (id, name, target, priority, desired, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "name = excluded.name, target = excluded.target, priority = excluded.priority, "
                "desired = excluded.desired, updated_at = excluded.updated_at",
                (
                    configuration.id,
                    configuration.name,
                    _dumps(configuration.target),
                    configuration.priority,
                    _dumps(configuration.desired),
                    configuration.created_at,
                    configuration.updated_at,
                ),
            )
            return next(c for c in self._configurations(conn) if c.id == configuration.id)

        try:
            result: Configuration = await self._write(upsert)
        except sqlite3.IntegrityError as exc:  # pragma: no cover - translated below
            raise NotFoundError(str(exc)) from exc
        return result

    async def list_configurations(self) -> list[Configuration]:
        result: list[Configuration] = await self._read(self._configurations)
        return result

    async def get_configuration(self, configuration_id: str) -> Configuration:
        for configuration in await self.list_configurations():
            if configuration.id == configuration_id:
                return configuration
        raise NotFoundError(f"configuration {configuration_id} not found")

    async def delete_configuration(self, configuration_id: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            cur = conn.execute("DELETE FROM configurations WHERE id = ?", (configuration_id,))
            if cur.rowcount == 0:
                raise NotFoundError(f"configuration {configuration_id} not found")

        await self._write(delete)

    async def refresh_desired(self, vins: Sequence[str] | None = None) -> list[Twin]:
        def refresh(conn: sqlite3.Connection) -> list[Twin]:
            configurations = self._configurations(conn)
            sql = (
                "SELECT v.id, v.vin, b.slug, v.model, v.model_year, v.created_at, v.revoked_at, "
                "v.online, v.last_seen_at, v.connected_at FROM vehicles v "
                "JOIN brands b ON b.id = v.brand_id"
            )
            rows = conn.execute(sql).fetchall()
            if vins is not None:
                wanted = set(vins)
                rows = [row for row in rows if row[1] in wanted]
            changed = []
            for vehicle in self._vehicle_rows(conn, rows):
                own_row = conn.execute(
                    "SELECT own FROM twin_desired WHERE vehicle_id = ?", (vehicle.id,)
                ).fetchone()
                own = json.loads(own_row[0]) if own_row else {}
                if self._store_effective(conn, vehicle, own, configurations):
                    changed.append(self._twin(conn, vehicle))
            return changed

        result: list[Twin] = await self._write(refresh)
        return result

    async def unsynced_twins(self) -> list[Twin]:
        def query(conn: sqlite3.Connection) -> list[Twin]:
            vins = [
                row[0]
                for row in conn.execute(
                    "SELECT v.vin FROM twin_desired d JOIN vehicles v ON v.id = d.vehicle_id "
                    "LEFT JOIN twin_reported r ON r.vehicle_id = d.vehicle_id "
                    "WHERE d.version > COALESCE(r.desired_version, 0)"
                )
            ]
            return [self._twin(conn, self._fetch_vehicle(conn, vin, None)) for vin in vins]

        result: list[Twin] = await self._read(query)
        return result

    async def twins_for(self, vins: Sequence[str]) -> list[Twin]:
        def query(conn: sqlite3.Connection) -> list[Twin]:
            return [self._twin(conn, self._fetch_vehicle(conn, vin, None)) for vin in vins]

        result: list[Twin] = await self._read(query)
        return result
