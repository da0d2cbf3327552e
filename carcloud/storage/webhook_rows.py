"""Rows of the webhook tables, shared by both backends: one SQL, one encoding, one decoding.

The statements are written with `?` placeholders; PostgreSQL runs them through
`rows.numbered` ($1, $2, …).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import orjson

from carcloud.errors import NotFoundError
from carcloud.storage.rows import Row
from carcloud.webhooks.models import Delivery, DeliveryStatus, Outcome, WebhookEndpoint

# With the brand's slug from a join on brands b.
ENDPOINT_COLUMNS = (
    "e.id, b.slug, e.url, e.event_types, e.vins, e.description, e.secret, e.created_at"
)
ENDPOINT_FROM = "FROM webhook_endpoints e LEFT JOIN brands b ON b.id = e.brand_id"
DELIVERY_FIELDS = (
    "id", "endpoint_id", "event_id", "event_type", "payload", "status", "attempts",
    "created_at", "next_attempt_at", "retry_until", "last_attempt_at", "last_status_code",
    "last_error", "completed_at",
)  # fmt: skip
DELIVERY_COLUMNS = ", ".join(DELIVERY_FIELDS)
OUTCOME_FIELDS = (
    "status", "attempts", "last_attempt_at", "next_attempt_at", "last_status_code",
    "last_error", "completed_at",
)  # fmt: skip
ENDPOINT_SELECT = f"SELECT {ENDPOINT_COLUMNS} {ENDPOINT_FROM}"
INSERT_ENDPOINT = (
    "INSERT INTO webhook_endpoints (id, url, event_types, vins, description, secret, "
    "created_at, brand_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
DELETE_ENDPOINT = "DELETE FROM webhook_endpoints WHERE id = ?"
# The outcome's fields, then the delivery's id.
RECORD_OUTCOME = (
    f"UPDATE webhook_deliveries SET {', '.join(f'{name} = ?' for name in OUTCOME_FIELDS)} "
    "WHERE id = ?"
)
PRUNE = (
    "DELETE FROM webhook_deliveries WHERE (status = ? AND completed_at < ?) "
    "OR (status = ? AND completed_at < ?)"
)
REDELIVER = (
    "UPDATE webhook_deliveries SET status = ?, attempts = 0, next_attempt_at = ?, "
    "retry_until = ?, completed_at = NULL WHERE id = ? AND endpoint_id = ? "
    f"RETURNING {DELIVERY_COLUMNS}"
)


def endpoint_values(endpoint: WebhookEndpoint) -> tuple[Any, ...]:
    """(id, url, event_types, vins, description, secret, created_at) for an insert."""
    return (
        endpoint.id,
        endpoint.url,
        orjson.dumps(list(endpoint.event_types)).decode(),
        orjson.dumps(list(endpoint.vins)).decode(),
        endpoint.description,
        endpoint.secret,
        endpoint.created_at,
    )


def endpoint_of(row: Row) -> WebhookEndpoint:
    """An endpoint from a row of ENDPOINT_COLUMNS."""
    return WebhookEndpoint(
        id=row[0],
        brand=row[1],
        url=row[2],
        event_types=tuple(orjson.loads(row[3])),
        vins=tuple(orjson.loads(row[4])),
        description=row[5],
        secret=row[6],
        created_at=int(row[7]),
    )


def delivery_values(delivery: Delivery) -> tuple[Any, ...]:
    """A delivery's values in DELIVERY_FIELDS order."""
    return (
        delivery.id,
        delivery.endpoint_id,
        delivery.event_id,
        delivery.event_type,
        delivery.payload,
        str(delivery.status),
        delivery.attempts,
        delivery.created_at,
        delivery.next_attempt_at,
        delivery.retry_until,
        delivery.last_attempt_at,
        delivery.last_status_code,
        delivery.last_error,
        delivery.completed_at,
    )


def delivery_of(row: Row) -> Delivery:
    """A delivery from a row of DELIVERY_COLUMNS."""
    return Delivery(
        id=row[0],
        endpoint_id=row[1],
        event_id=int(row[2]),
        event_type=row[3],
        payload=row[4],
        status=DeliveryStatus(row[5]),
        attempts=int(row[6]),
        created_at=int(row[7]),
        next_attempt_at=row[8],
        retry_until=int(row[9]),
        last_attempt_at=row[10],
        last_status_code=row[11],
        last_error=row[12],
        completed_at=row[13],
    )


def outcome_values(outcome: Outcome) -> tuple[Any, ...]:
    """An attempt's result in OUTCOME_FIELDS order."""
    done = outcome.at if outcome.status is not DeliveryStatus.PENDING else None
    return (
        str(outcome.status),
        outcome.attempts,
        outcome.at,
        outcome.next_attempt_at,
        outcome.status_code,
        outcome.error,
        done,
    )


def endpoint_where(endpoint_id: str, brand: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause on ENDPOINT_SELECT for an endpoint, within `brand` unless None."""
    if brand is None:
        return " WHERE e.id = ?", [endpoint_id]
    return " WHERE e.id = ? AND b.slug = ?", [endpoint_id, brand]


def endpoint_missing(endpoint_id: str) -> NotFoundError:
    """The error for an endpoint that is not there (or not the caller's)."""
    return NotFoundError(f"webhook {endpoint_id} not found")


def delivery_missing(endpoint_id: str, delivery_id: str) -> NotFoundError:
    """The error for a delivery that is not there (or not of the endpoint)."""
    return NotFoundError(f"delivery {delivery_id} of webhook {endpoint_id} not found")


def prune_values(succeeded_before: int, failed_before: int) -> tuple[Any, ...]:
    """The parameters of PRUNE."""
    return (
        str(DeliveryStatus.SUCCEEDED), succeeded_before,
        str(DeliveryStatus.FAILED), failed_before,
    )  # fmt: skip


def redeliver_values(
    endpoint_id: str, delivery_id: str, now: int, retry_until: int
) -> tuple[Any, ...]:
    """The parameters of REDELIVER: pending again, due now."""
    return str(DeliveryStatus.PENDING), now, retry_until, delivery_id, endpoint_id


class WebhookReads(ABC):
    """The reads of a WebhookStore that are the same SQL on both backends, over the
    backend's query (`?` placeholders)."""

    @abstractmethod
    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def list_endpoints(self, brand: str | None) -> list[WebhookEndpoint]:
        where, params = ("", []) if brand is None else (" WHERE b.slug = ?", [brand])
        rows = await self._rows(f"{ENDPOINT_SELECT}{where} ORDER BY e.created_at, e.id", params)
        return [endpoint_of(row) for row in rows]

    async def get_endpoint(self, endpoint_id: str, brand: str | None) -> WebhookEndpoint:
        where, params = endpoint_where(endpoint_id, brand)
        rows = await self._rows(ENDPOINT_SELECT + where, params)
        if not rows:
            raise endpoint_missing(endpoint_id)
        return endpoint_of(rows[0])
