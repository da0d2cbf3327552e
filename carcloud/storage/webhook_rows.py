"""Rows of the webhook tables, shared by both backends: one encoding, one decoding."""

from __future__ import annotations

from typing import Any

import orjson

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
