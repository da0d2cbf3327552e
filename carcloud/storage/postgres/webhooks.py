"""WebhookStore for PostgreSQL: endpoints, and deliveries claimed with a lease.

Two senders never claim one delivery: the claim's UPDATE re-checks that the row
is still due after waiting for another claim's lock, and by then it is not.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from carcloud.storage import registry_rows
from carcloud.storage import webhook_rows as sql
from carcloud.storage.postgres.engine import Conn, PostgresStore, Tx
from carcloud.storage.rows import numbered
from carcloud.storage.webhook_rows import (
    DELIVERY_COLUMNS,
    DELIVERY_FIELDS,
    delivery_of,
    delivery_values,
)
from carcloud.webhooks.models import Delivery, DeliveryStatus, Outcome, WebhookEndpoint

_PENDING = str(DeliveryStatus.PENDING)
_RETURNING = ", ".join(f"d.{name}" for name in DELIVERY_FIELDS)


async def _visible(conn: Conn, endpoint_id: str, brand: str | None) -> None:
    where, params = sql.endpoint_where(endpoint_id, brand)
    if await conn.fetchrow(numbered(sql.ENDPOINT_SELECT + where), *params) is None:
        raise sql.endpoint_missing(endpoint_id)


class PostgresWebhookStore(PostgresStore, sql.WebhookReads):
    """WebhookStore over the shared PostgreSQL engine."""

    async def create_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        async def insert(tx: Tx) -> WebhookEndpoint:
            brand_id = None
            if endpoint.brand is not None:
                brand_id = await tx.conn.fetchval(numbered(registry_rows.BRAND_ID), endpoint.brand)
                if brand_id is None:
                    raise registry_rows.brand_missing(endpoint.brand)
            await tx.conn.execute(
                numbered(sql.INSERT_ENDPOINT), *sql.endpoint_values(endpoint), brand_id
            )
            return endpoint

        return await self.engine.write(insert)

    async def delete_endpoint(self, endpoint_id: str, brand: str | None) -> None:
        async def delete(tx: Tx) -> None:
            await _visible(tx.conn, endpoint_id, brand)
            await tx.conn.execute(numbered(sql.DELETE_ENDPOINT), endpoint_id)

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
        insert_sql = (
            f"INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) "
            f"SELECT u.* FROM unnest({arrays}) AS u({DELIVERY_COLUMNS}) "
            "JOIN webhook_endpoints e ON e.id = u.endpoint_id "
            "ON CONFLICT (endpoint_id, event_id) DO NOTHING"
        )

        async def insert(tx: Tx) -> int:
            status = await tx.conn.execute(insert_sql, *(list(column) for column in columns))
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
        claim_sql = (
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
                claim_sql, _PENDING, now, list(skip_endpoints), per_endpoint, limit, lease_until
            )
            return [delivery_of(row) for row in rows]

        return await self.engine.write(claim)

    async def record_outcome(self, delivery_id: str, outcome: Outcome) -> None:
        async def update(tx: Tx) -> None:
            await tx.conn.execute(
                numbered(sql.RECORD_OUTCOME), *sql.outcome_values(outcome), delivery_id
            )

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
                numbered(sql.PRUNE), *sql.prune_values(succeeded_before, failed_before)
            )
            return int(status.rsplit(" ", 1)[1])

        return await self.engine.write(delete)

    async def redeliver(
        self, endpoint_id: str, delivery_id: str, brand: str | None, now: int, retry_until: int
    ) -> Delivery:
        async def requeue(tx: Tx) -> Delivery:
            await _visible(tx.conn, endpoint_id, brand)
            row = await tx.conn.fetchrow(
                numbered(sql.REDELIVER),
                *sql.redeliver_values(endpoint_id, delivery_id, now, retry_until),
            )
            if row is None:
                raise sql.delivery_missing(endpoint_id, delivery_id)
            return delivery_of(row)

        return await self.engine.write(requeue)
