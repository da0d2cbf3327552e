"""WebhookStore for SQLite: endpoints, and deliveries claimed with a lease."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

from carcloud.errors import NotFoundError
from carcloud.storage.sqlite.engine import SqliteEngine
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


def _visible(conn: sqlite3.Connection, endpoint_id: str, brand: str | None) -> WebhookEndpoint:
    sql = f"SELECT {ENDPOINT_COLUMNS} {ENDPOINT_FROM} WHERE e.id = ?"
    params: list[Any] = [endpoint_id]
    if brand is not None:
        sql += " AND b.slug = ?"
        params.append(brand)
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise NotFoundError(f"webhook {endpoint_id} not found")
    return endpoint_of(row)


class SqliteWebhookStore:
    """WebhookStore over the shared SQLite engine."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    async def create_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        def insert(conn: sqlite3.Connection) -> WebhookEndpoint:
            brand_id = None
            if endpoint.brand is not None:
                row = conn.execute(
                    "SELECT id FROM brands WHERE slug = ?", (endpoint.brand,)
                ).fetchone()
                if row is None:
                    raise NotFoundError(f"brand {endpoint.brand!r} not found")
                brand_id = row[0]
            conn.execute(
                "INSERT INTO webhook_endpoints (id, url, event_types, vins, description, "
                "secret, created_at, brand_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*endpoint_values(endpoint), brand_id),
            )
            return endpoint

        return await self.engine.write(insert)

    async def list_endpoints(self, brand: str | None) -> list[WebhookEndpoint]:
        sql = f"SELECT {ENDPOINT_COLUMNS} {ENDPOINT_FROM}"
        params: list[Any] = []
        if brand is not None:
            sql += " WHERE b.slug = ?"
            params.append(brand)
        sql += " ORDER BY e.created_at, e.id"
        rows = await self.engine.read(lambda conn: conn.execute(sql, params).fetchall())
        return [endpoint_of(row) for row in rows]

    async def get_endpoint(self, endpoint_id: str, brand: str | None) -> WebhookEndpoint:
        return await self.engine.read(lambda conn: _visible(conn, endpoint_id, brand))

    async def delete_endpoint(self, endpoint_id: str, brand: str | None) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            _visible(conn, endpoint_id, brand)
            conn.execute("DELETE FROM webhook_endpoints WHERE id = ?", (endpoint_id,))

        await self.engine.write(delete)

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        marks = ", ".join("?" * len(DELIVERY_FIELDS))
        # An endpoint deleted since the events were matched takes no delivery.
        sql = (
            f"INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) SELECT {marks} "
            "WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ?) "
            "ON CONFLICT (endpoint_id, event_id) DO NOTHING"
        )

        def insert(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            for delivery in deliveries:
                conn.execute(sql, (*delivery_values(delivery), delivery.endpoint_id))
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
        sql = (
            "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN ("
            " SELECT id FROM (SELECT id, next_attempt_at, ROW_NUMBER() OVER ("
            "  PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS n"
            f"  FROM webhook_deliveries WHERE status = ? AND next_attempt_at <= ? {not_skipped})"
            " WHERE n <= ? ORDER BY next_attempt_at LIMIT ?)"
            f" RETURNING {DELIVERY_COLUMNS}"
        )
        params = [lease_until, _PENDING, now, *skip, per_endpoint, limit]

        def claim(conn: sqlite3.Connection) -> list[Delivery]:
            return [delivery_of(row) for row in conn.execute(sql, params).fetchall()]

        return await self.engine.write(claim)

    async def record_outcome(self, delivery_id: str, outcome: Outcome) -> None:
        assignments = ", ".join(f"{name} = ?" for name in OUTCOME_FIELDS)
        sql = f"UPDATE webhook_deliveries SET {assignments} WHERE id = ?"
        await self.engine.write(
            lambda conn: conn.execute(sql, (*outcome_values(outcome), delivery_id))
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
            sql = f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ?"
            params: list[Any] = [endpoint_id]
            if status is not None:
                sql += " AND status = ?"
                params.append(str(status))
            if before is not None:
                sql += " AND event_id < ?"
                params.append(before)
            sql += " ORDER BY event_id DESC LIMIT ?"
            params.append(limit)
            return [delivery_of(row) for row in conn.execute(sql, params)]

        return await self.engine.read(query)

    async def prune(self, succeeded_before: int, failed_before: int) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "DELETE FROM webhook_deliveries WHERE (status = ? AND completed_at < ?) "
                "OR (status = ? AND completed_at < ?)",
                (str(DeliveryStatus.SUCCEEDED), succeeded_before,
                 str(DeliveryStatus.FAILED), failed_before),
            )  # fmt: skip
            return cur.rowcount

        return await self.engine.write(delete)

    async def redeliver(
        self, endpoint_id: str, delivery_id: str, brand: str | None, now: int, retry_until: int
    ) -> Delivery:
        def requeue(conn: sqlite3.Connection) -> Delivery:
            _visible(conn, endpoint_id, brand)
            row = conn.execute(
                "UPDATE webhook_deliveries SET status = ?, attempts = 0, next_attempt_at = ?, "
                "retry_until = ?, completed_at = NULL WHERE id = ? AND endpoint_id = ? "
                f"RETURNING {DELIVERY_COLUMNS}",
                (_PENDING, now, retry_until, delivery_id, endpoint_id),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"delivery {delivery_id} of webhook {endpoint_id} not found")
            return delivery_of(row)

        return await self.engine.write(requeue)
