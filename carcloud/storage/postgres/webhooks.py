"""WebhookStore for PostgreSQL: endpoints, and deliveries claimed with a lease.

Two senders never claim one delivery: the claim's UPDATE re-checks that the row
is still due after waiting for another claim's lock, and by then it is not.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from carcloud.errors import NotFoundError
from carcloud.storage.postgres.engine import Conn, PostgresEngine, Tx
from carcloud.storage.webhook_rows import (
    DELIVERY_COLUMNS,
    DELIVERY_FIELDS,
    ENDPOINT_COLUMNS,
    ENDPOINT_FROM,
    OUTCOME_FIELDS,
    delivery_of,
    delivery_values,
    endpoint_of,
    endpoint_values,
    outcome_values,
)
from carcloud.webhooks.models import Delivery, DeliveryStatus, Outcome, WebhookEndpoint

_PENDING = str(DeliveryStatus.PENDING)
_RETURNING = ", ".join(f"d.{name}" for name in DELIVERY_FIELDS)


async def _visible(conn: Conn, endpoint_id: str, brand: str | None) -> WebhookEndpoint:
    sql = f"SELECT {ENDPOINT_COLUMNS} {ENDPOINT_FROM} WHERE e.id = $1"
    params: list[Any] = [endpoint_id]
    if brand is not None:
        sql += " AND b.slug = $2"
        params.append(brand)
    row = await conn.fetchrow(sql, *params)
    if row is None:
        raise NotFoundError(f"webhook {endpoint_id} not found")
    return endpoint_of(row)


class PostgresWebhookStore:
    """WebhookStore over the shared PostgreSQL engine."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    async def create_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        async def insert(tx: Tx) -> WebhookEndpoint:
            brand_id = None
            if endpoint.brand is not None:
                brand_id = await tx.conn.fetchval(
                    "SELECT id FROM brands WHERE slug = $1", endpoint.brand
                )
                if brand_id is None:
                    raise NotFoundError(f"brand {endpoint.brand!r} not found")
            await tx.conn.execute(
                "INSERT INTO webhook_endpoints (id, url, event_types, vins, description, "
                "secret, created_at, brand_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                *endpoint_values(endpoint),
                brand_id,
            )
            return endpoint

        return await self.engine.write(insert)

    async def list_endpoints(self, brand: str | None) -> list[WebhookEndpoint]:
        sql = f"SELECT {ENDPOINT_COLUMNS} {ENDPOINT_FROM}"
        params: list[Any] = []
        if brand is not None:
            sql += " WHERE b.slug = $1"
            params.append(brand)
        sql += " ORDER BY e.created_at, e.id"
        rows = await self.engine.read(lambda conn: conn.fetch(sql, *params))
        return [endpoint_of(row) for row in rows]

    async def get_endpoint(self, endpoint_id: str, brand: str | None) -> WebhookEndpoint:
        return await self.engine.read(lambda conn: _visible(conn, endpoint_id, brand))

    async def delete_endpoint(self, endpoint_id: str, brand: str | None) -> None:
        async def delete(tx: Tx) -> None:
            await _visible(tx.conn, endpoint_id, brand)
            await tx.conn.execute("DELETE FROM webhook_endpoints WHERE id = $1", endpoint_id)

        await self.engine.write(delete)

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        columns = list(zip(*(delivery_values(d) for d in deliveries), strict=True))
        types = (
            "text[]", "text[]", "bigint[]", "text[]", "text[]", "text[]", "int[]", "bigint[]",
            "bigint[]", "bigint[]", "bigint[]", "int[]", "text[]", "bigint[]",
        )  # fmt: skip
        arrays = ", ".join(f"${i + 1}::{kind}" for i, kind in enumerate(types))
        # An endpoint deleted since the events were matched takes no delivery.
        sql = (
            f"INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) "
            f"SELECT u.* FROM unnest({arrays}) AS u({DELIVERY_COLUMNS}) "
            "JOIN webhook_endpoints e ON e.id = u.endpoint_id "
            "ON CONFLICT (endpoint_id, event_id) DO NOTHING"
        )

        async def insert(tx: Tx) -> int:
            status = await tx.conn.execute(sql, *(list(column) for column in columns))
            return int(status.rsplit(" ", 1)[1])

        return await self.engine.write(insert)

    async def claim_due(
        self,
        now: int,
        lease_until: int,
        limit: int,
        per_endpoint: int,
        skip_endpoints: Collection[str] = (),
    ) -> list[Delivery]:
        sql = (
            "WITH due AS (SELECT id, next_attempt_at, ROW_NUMBER() OVER ("
            "  PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS n"
            "  FROM webhook_deliveries WHERE status = $1 AND next_attempt_at <= $2"
            "  AND NOT (endpoint_id = ANY($3::text[]))),"
            " picked AS (SELECT id FROM due WHERE n <= $4 ORDER BY next_attempt_at LIMIT $5)"
            " UPDATE webhook_deliveries d SET next_attempt_at = $6 FROM picked"
            " WHERE d.id = picked.id AND d.status = $1 AND d.next_attempt_at <= $2"
            f" RETURNING {_RETURNING}"
        )

        async def claim(tx: Tx) -> list[Delivery]:
            rows = await tx.conn.fetch(
                sql, _PENDING, now, list(skip_endpoints), per_endpoint, limit, lease_until
            )
            return [delivery_of(row) for row in rows]

        return await self.engine.write(claim)

    async def record_outcome(self, delivery_id: str, outcome: Outcome) -> None:
        assignments = ", ".join(f"{name} = ${i + 1}" for i, name in enumerate(OUTCOME_FIELDS))
        sql = f"UPDATE webhook_deliveries SET {assignments} WHERE id = ${len(OUTCOME_FIELDS) + 1}"

        async def update(tx: Tx) -> None:
            await tx.conn.execute(sql, *outcome_values(outcome), delivery_id)

        await self.engine.write(update)

    async def list_deliveries(
        self,
        endpoint_id: str,
        brand: str | None,
        status: DeliveryStatus | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        async def query(conn: Conn) -> list[Delivery]:
            await _visible(conn, endpoint_id, brand)
            rows = await conn.fetch(
                f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 "
                "AND ($2::text IS NULL OR status = $2) AND ($3::bigint IS NULL OR event_id < $3) "
                "ORDER BY event_id DESC LIMIT $4",
                endpoint_id,
                None if status is None else str(status),
                before,
                limit,
            )
            return [delivery_of(row) for row in rows]

        return await self.engine.read(query)

    async def prune(self, succeeded_before: int, failed_before: int) -> int:
        async def delete(tx: Tx) -> int:
            status = await tx.conn.execute(
                "DELETE FROM webhook_deliveries WHERE (status = $1 AND completed_at < $2) "
                "OR (status = $3 AND completed_at < $4)",
                str(DeliveryStatus.SUCCEEDED), succeeded_before,
                str(DeliveryStatus.FAILED), failed_before,
            )  # fmt: skip
            return int(status.rsplit(" ", 1)[1])

        return await self.engine.write(delete)

    async def redeliver(
        self, endpoint_id: str, delivery_id: str, brand: str | None, now: int, retry_until: int
    ) -> Delivery:
        async def requeue(tx: Tx) -> Delivery:
            await _visible(tx.conn, endpoint_id, brand)
            row = await tx.conn.fetchrow(
                "UPDATE webhook_deliveries SET status = $1, attempts = 0, next_attempt_at = $2, "
                "retry_until = $3, completed_at = NULL WHERE id = $4 AND endpoint_id = $5 "
                f"RETURNING {DELIVERY_COLUMNS}",
                _PENDING,
                now,
                retry_until,
                delivery_id,
                endpoint_id,
            )
            if row is None:
                raise NotFoundError(f"delivery {delivery_id} of webhook {endpoint_id} not found")
            return delivery_of(row)

        return await self.engine.write(requeue)
