"""WebhookStore for SQLite: endpoints, and deliveries claimed with a lease."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

from carcloud.storage import registry_rows
from carcloud.storage import webhook_rows as sql
from carcloud.storage.sqlite.engine import SqliteStore
from carcloud.storage.webhook_rows import (
    DELIVERY_COLUMNS,
    DELIVERY_FIELDS,
    delivery_of,
    delivery_values,
    endpoint_of,
)
from carcloud.webhooks.models import Delivery, DeliveryStatus, Outcome, WebhookEndpoint

_PENDING = str(DeliveryStatus.PENDING)


def _visible(conn: sqlite3.Connection, endpoint_id: str, brand: str | None) -> WebhookEndpoint:
    where, params = sql.endpoint_where(endpoint_id, brand)
    row = conn.execute(sql.ENDPOINT_SELECT + where, params).fetchone()
    if row is None:
        raise sql.endpoint_missing(endpoint_id)
    return endpoint_of(row)


class SqliteWebhookStore(SqliteStore, sql.WebhookReads):
    """WebhookStore over the shared SQLite engine."""

    async def create_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        def insert(conn: sqlite3.Connection) -> WebhookEndpoint:
            brand_id = None
            if endpoint.brand is not None:
                row = conn.execute(registry_rows.BRAND_ID, (endpoint.brand,)).fetchone()
                if row is None:
                    raise registry_rows.brand_missing(endpoint.brand)
                brand_id = row[0]
            conn.execute(sql.INSERT_ENDPOINT, (*sql.endpoint_values(endpoint), brand_id))
            return endpoint

        return await self.engine.write(insert)

    async def delete_endpoint(self, endpoint_id: str, brand: str | None) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            _visible(conn, endpoint_id, brand)
            conn.execute(sql.DELETE_ENDPOINT, (endpoint_id,))

        await self.engine.write(delete)

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        marks = ", ".join("?" * len(DELIVERY_FIELDS))
        # An endpoint deleted since the events were matched takes no delivery.
        insert_sql = (
            f"INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) SELECT {marks} "
            "WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ?) "
            "ON CONFLICT (endpoint_id, event_id) DO NOTHING"
        )

        def insert(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            for delivery in deliveries:
                conn.execute(insert_sql, (*delivery_values(delivery), delivery.endpoint_id))
            return conn.total_changes - before

        return await self.engine.write(insert)

    async def claim_due(
        self,
        now: int,
        lease_until: int,
        limit: int,
        per_endpoint: int,
        skip_endpoints: Collection[str] = (),
    ) -> list[Delivery]:
        skip = list(skip_endpoints)
        not_skipped = f"AND endpoint_id NOT IN ({', '.join('?' * len(skip))})" if skip else ""
        claim_sql = (
            "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN ("
            " SELECT id FROM (SELECT id, next_attempt_at, ROW_NUMBER() OVER ("
            "  PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS n"
            f"  FROM webhook_deliveries WHERE status = ? AND next_attempt_at <= ? {not_skipped})"
            " WHERE n <= ? ORDER BY next_attempt_at LIMIT ?)"
            f" RETURNING {DELIVERY_COLUMNS}"
        )
        params = [lease_until, _PENDING, now, *skip, per_endpoint, limit]

        def claim(conn: sqlite3.Connection) -> list[Delivery]:
            return [delivery_of(row) for row in conn.execute(claim_sql, params).fetchall()]

        return await self.engine.write(claim)

    async def record_outcome(self, delivery_id: str, outcome: Outcome) -> None:
        await self.engine.write(
            lambda conn: conn.execute(
                sql.RECORD_OUTCOME, (*sql.outcome_values(outcome), delivery_id)
            )
        )

    async def list_deliveries(
        self,
        endpoint_id: str,
        brand: str | None,
        status: DeliveryStatus | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        def query(conn: sqlite3.Connection) -> list[Delivery]:
            _visible(conn, endpoint_id, brand)
            query = f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ?"
            params: list[Any] = [endpoint_id]
            if status is not None:
                query += " AND status = ?"
                params.append(str(status))
            if before is not None:
                query += " AND event_id < ?"
                params.append(before)
            query += " ORDER BY event_id DESC LIMIT ?"
            params.append(limit)
            return [delivery_of(row) for row in conn.execute(query, params)]

        return await self.engine.read(query)

    async def prune(self, succeeded_before: int, failed_before: int) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            cur = conn.execute(sql.PRUNE, sql.prune_values(succeeded_before, failed_before))
            return cur.rowcount

        return await self.engine.write(delete)

    async def redeliver(
        self, endpoint_id: str, delivery_id: str, brand: str | None, now: int, retry_until: int
    ) -> Delivery:
        def requeue(conn: sqlite3.Connection) -> Delivery:
            _visible(conn, endpoint_id, brand)
            row = conn.execute(
                sql.REDELIVER, sql.redeliver_values(endpoint_id, delivery_id, now, retry_until)
            ).fetchone()
            if row is None:
                raise sql.delivery_missing(endpoint_id, delivery_id)
            return delivery_of(row)

        return await self.engine.write(requeue)
