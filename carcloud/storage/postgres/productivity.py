"""ProductivityStore for PostgreSQL: cards sent to cars and pre-conditioning."""

from __future__ import annotations

from carcloud.productivity.models import Precondition, PreconditionStatus, SentCard
from carcloud.storage.postgres.engine import Conn, PostgresEngine, Tx
from carcloud.storage.postgres.vehicles import visible_vehicle_id
from carcloud.storage.productivity_rows import (
    CARD_COLUMNS,
    PRECONDITION_COLUMNS,
    card_of,
    card_values,
    params_json,
    precondition_of,
)


class PostgresProductivityStore:
    """ProductivityStore over the shared PostgreSQL engine."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    async def driven_vehicles(self) -> list[str]:
        async def query(conn: Conn) -> list[str]:
            rows = await conn.fetch(
                "SELECT v.vin FROM vehicle_drivers vd JOIN vehicles v ON v.id = vd.vehicle_id "
                "WHERE v.revoked_at IS NULL ORDER BY v.vin"
            )
            return [row[0] for row in rows]

        return await self.engine.read(query)

    async def record_card(self, card: SentCard) -> bool:
        async def write(tx: Tx) -> bool:
            vehicle_id = await visible_vehicle_id(tx.conn, card.vin, None)
            status = await tx.conn.execute(
                "INSERT INTO car_cards (vehicle_id, key, id, purpose, meeting_id, fingerprint, "
                "card, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                "ON CONFLICT (vehicle_id, key) DO NOTHING",
                vehicle_id,
                *card_values(card),
            )
            return bool(status.endswith(" 1"))

        return await self.engine.write(write)

    async def list_cards(self, vin: str, brand: str | None, limit: int) -> list[SentCard]:
        async def query(conn: Conn) -> list[SentCard]:
            vehicle_id = await visible_vehicle_id(conn, vin, brand)
            rows = await conn.fetch(
                f"SELECT {CARD_COLUMNS} FROM car_cards c WHERE c.vehicle_id = $1 "
                "ORDER BY c.sent_at DESC, c.key DESC LIMIT $2",
                vehicle_id,
                limit,
            )
            return [card_of(vin, list(row)) for row in rows]

        return await self.engine.read(query)

    async def meeting_cards(self, vin: str) -> list[SentCard]:
        async def query(conn: Conn) -> list[SentCard]:
            vehicle_id = await visible_vehicle_id(conn, vin, None)
            rows = await conn.fetch(
                f"SELECT {CARD_COLUMNS} FROM car_cards c WHERE c.vehicle_id = $1 "
                "AND c.meeting_id IS NOT NULL AND c.sent_at = ("
                "SELECT MAX(o.sent_at) FROM car_cards o WHERE o.vehicle_id = c.vehicle_id "
                "AND o.meeting_id = c.meeting_id AND o.purpose = c.purpose) "
                "ORDER BY c.sent_at, c.key",
                vehicle_id,
            )
            return [card_of(vin, list(row)) for row in rows]

        return await self.engine.read(query)

    async def schedule(self, precondition: Precondition) -> Precondition:
        p = precondition

        async def write(tx: Tx) -> Precondition:
            vehicle_id = await visible_vehicle_id(tx.conn, p.vin, None)
            await tx.conn.execute(
                "INSERT INTO preconditions (id, vehicle_id, meeting_id, kind, params, due_at, "
                "reason, status, command_id, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                "ON CONFLICT (vehicle_id, meeting_id, kind) DO UPDATE SET "
                "params = excluded.params, due_at = excluded.due_at, reason = excluded.reason, "
                "updated_at = excluded.updated_at WHERE preconditions.status = 'scheduled' "
                "AND (preconditions.due_at != excluded.due_at "
                "OR preconditions.reason != excluded.reason "
                "OR preconditions.params != excluded.params)",
                p.id, vehicle_id, p.meeting_id, p.kind, params_json(p), p.due_at, p.reason,
                p.status, p.command_id, p.created_at, p.updated_at,
            )  # fmt: skip
            row = await tx.conn.fetchrow(
                f"SELECT {PRECONDITION_COLUMNS} FROM preconditions p "
                "WHERE p.vehicle_id = $1 AND p.meeting_id = $2 AND p.kind = $3",
                vehicle_id,
                p.meeting_id,
                p.kind,
            )
            assert row is not None
            return precondition_of(p.vin, list(row))

        return await self.engine.write(write)

    async def preconditions(
        self, vin: str, brand: str | None, statuses: tuple[PreconditionStatus, ...] | None
    ) -> list[Precondition]:
        async def query(conn: Conn) -> list[Precondition]:
            vehicle_id = await visible_vehicle_id(conn, vin, brand)
            sql = f"SELECT {PRECONDITION_COLUMNS} FROM preconditions p WHERE p.vehicle_id = $1"
            args: list[object] = [vehicle_id]
            if statuses is not None:
                sql += " AND p.status = ANY($2::text[])"
                args.append(list(statuses))
            rows = await conn.fetch(sql + " ORDER BY p.due_at, p.kind", *args)
            return [precondition_of(vin, list(row)) for row in rows]

        return await self.engine.read(query)

    async def set_precondition_status(
        self, precondition_id: str, status: PreconditionStatus, command_id: str | None, at: int
    ) -> None:
        async def write(tx: Tx) -> None:
            await tx.conn.execute(
                "UPDATE preconditions SET status = $1, command_id = COALESCE($2, command_id), "
                "updated_at = $3 WHERE id = $4",
                status,
                command_id,
                at,
                precondition_id,
            )

        await self.engine.write(write)
