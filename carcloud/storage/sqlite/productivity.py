"""ProductivityStore for SQLite: cards sent to cars and pre-conditioning."""

from __future__ import annotations

import sqlite3

from carcloud.productivity.models import Precondition, PreconditionStatus, SentCard
from carcloud.storage.productivity_rows import (
    CARD_COLUMNS,
    PRECONDITION_COLUMNS,
    card_of,
    card_values,
    params_json,
    precondition_of,
)
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.storage.sqlite.vehicles import visible_vehicle_id


class SqliteProductivityStore:
    """ProductivityStore over the shared SQLite engine."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    async def driven_vehicles(self) -> list[str]:
        return await self.engine.read(
            lambda conn: [
                row[0]
                for row in conn.execute(
                    "SELECT v.vin FROM vehicle_drivers vd JOIN vehicles v ON v.id = vd.vehicle_id "
                    "WHERE v.revoked_at IS NULL ORDER BY v.vin"
                )
            ]
        )

    async def record_card(self, card: SentCard) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            vehicle_id = visible_vehicle_id(conn, card.vin, None)
            cursor = conn.execute(
                "INSERT INTO car_cards (vehicle_id, key, id, purpose, meeting_id, fingerprint, "
                "card, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (vehicle_id, key) DO NOTHING",
                (vehicle_id, *card_values(card)),
            )
            return cursor.rowcount == 1

        return await self.engine.write(write)

    async def list_cards(self, vin: str, brand: str | None, limit: int) -> list[SentCard]:
        def query(conn: sqlite3.Connection) -> list[SentCard]:
            vehicle_id = visible_vehicle_id(conn, vin, brand)
            rows = conn.execute(
                f"SELECT {CARD_COLUMNS} FROM car_cards c WHERE c.vehicle_id = ? "
                "ORDER BY c.sent_at DESC, c.key DESC LIMIT ?",
                (vehicle_id, limit),
            )
            return [card_of(vin, row) for row in rows]

        return await self.engine.read(query)

    async def meeting_cards(self, vin: str) -> list[SentCard]:
        def query(conn: sqlite3.Connection) -> list[SentCard]:
            vehicle_id = visible_vehicle_id(conn, vin, None)
            rows = conn.execute(
                f"SELECT {CARD_COLUMNS} FROM car_cards c WHERE c.vehicle_id = ? "
                "AND c.meeting_id IS NOT NULL AND c.sent_at = ("
                "SELECT MAX(o.sent_at) FROM car_cards o WHERE o.vehicle_id = c.vehicle_id "
                "AND o.meeting_id = c.meeting_id AND o.purpose = c.purpose) "
                "ORDER BY c.sent_at, c.key",
                (vehicle_id,),
            )
            return [card_of(vin, row) for row in rows]

        return await self.engine.read(query)

    async def schedule(self, precondition: Precondition) -> Precondition:
        p = precondition

        def write(conn: sqlite3.Connection) -> Precondition:
            vehicle_id = visible_vehicle_id(conn, p.vin, None)
            conn.execute(
                "INSERT INTO preconditions (id, vehicle_id, meeting_id, kind, params, due_at, "
                "reason, status, command_id, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (vehicle_id, meeting_id, kind) DO UPDATE SET "
                "params = excluded.params, due_at = excluded.due_at, reason = excluded.reason, "
                "updated_at = excluded.updated_at WHERE preconditions.status = 'scheduled' "
                "AND (preconditions.due_at != excluded.due_at "
                "OR preconditions.reason != excluded.reason "
                "OR preconditions.params != excluded.params)",
                (p.id, vehicle_id, p.meeting_id, p.kind, params_json(p), p.due_at, p.reason,
                 p.status, p.command_id, p.created_at, p.updated_at),
            )  # fmt: skip
            row = conn.execute(
                f"SELECT {PRECONDITION_COLUMNS} FROM preconditions p "
                "WHERE p.vehicle_id = ? AND p.meeting_id = ? AND p.kind = ?",
                (vehicle_id, p.meeting_id, p.kind),
            ).fetchone()
            return precondition_of(p.vin, row)

        return await self.engine.write(write)

    async def preconditions(
        self, vin: str, brand: str | None, statuses: tuple[PreconditionStatus, ...] | None
    ) -> list[Precondition]:
        def query(conn: sqlite3.Connection) -> list[Precondition]:
            vehicle_id = visible_vehicle_id(conn, vin, brand)
            sql = f"SELECT {PRECONDITION_COLUMNS} FROM preconditions p WHERE p.vehicle_id = ?"
            params: list[object] = [vehicle_id]
            if statuses is not None:
                sql += f" AND p.status IN ({', '.join('?' * len(statuses))})"
                params.extend(statuses)
            rows = conn.execute(sql + " ORDER BY p.due_at, p.kind", params)
            return [precondition_of(vin, row) for row in rows]

        return await self.engine.read(query)

    async def set_precondition_status(
        self, precondition_id: str, status: PreconditionStatus, command_id: str | None, at: int
    ) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE preconditions SET status = ?, command_id = COALESCE(?, command_id), "
                "updated_at = ? WHERE id = ?",
                (status, command_id, at, precondition_id),
            )

        await self.engine.write(write)
