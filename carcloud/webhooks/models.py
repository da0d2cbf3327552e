"""Webhook endpoints and their deliveries: what an app subscribed to, and what it was sent.

An endpoint is a URL an app subscribed to some event types, for one brand (a
brand-scoped key) or every brand (an operator key), optionally for some VINs only.
A delivery is one event for one endpoint: its id is the `webhook-id` header and
stays the same on every attempt, so a receiver can drop a second copy.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from carcloud.errors import ValidationError
from carcloud.events.models import DomainEvent, check_event_type
from carcloud.timeutil import format_us
from carcloud.vin import Vin

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION = 200


class DeliveryStatus(StrEnum):
    """Where a delivery is: waiting for (another) attempt, answered 2xx, or given up."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def new_secret() -> str:
    """A signing secret as Standard Webhooks serialises it: whsec_ + base64 of the key."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_endpoint_id() -> str:
    """A webhook endpoint id."""
    return f"whk_{secrets.token_hex(8)}"


def new_delivery_id() -> str:
    """A delivery id: the webhook-id header, the same on every attempt."""
    return f"msg_{secrets.token_hex(12)}"


def check_url(raw: str) -> str:
    """An http(s) URL with a host; ValidationError naming the `url` field otherwise."""
    url = raw.strip()
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"url: longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        _ = parts.port  # urlsplit checks the port only when it is read
    except ValueError as exc:
        raise ValidationError(f"url: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError(
            f"url: must be an http:// or https:// URL, got {parts.scheme or 'no'} scheme"
        )
    if not parts.hostname:
        raise ValidationError("url: has no host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("url: must not hold credentials; deliveries are signed instead")
    if parts.fragment:
        raise ValidationError("url: must not have a #fragment")
    return url


def check_event_types(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """At least one known type or group (`trip`, `vehicle.*`); ValidationError naming the field."""
    if not names:
        raise ValidationError("event_types: name at least one event type (or a group like trip)")
    checked = []
    for name in names:
        try:
            checked.append(check_event_type(name))
        except ValidationError as exc:
            raise ValidationError(f"event_types: {exc}") from None
    return tuple(dict.fromkeys(checked))


def check_vins(raw: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Valid VINs, each once; ValidationError naming the `vins` field."""
    vins = []
    for text in raw:
        try:
            vins.append(str(Vin.parse(text)))
        except ValidationError as exc:
            raise ValidationError(f"vins: {exc}") from None
    return tuple(dict.fromkeys(vins))


def type_matches(pattern: str, event_type: str) -> bool:
    """An exact type, or a group prefix (`trip`, `trip.*`) covering `event_type`."""
    prefix = pattern.removesuffix(".*")
    return event_type == prefix or event_type.startswith(prefix + ".")


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """A URL subscribed to event types, for one brand (None: every brand), maybe some VINs."""

    id: str
    brand: str | None
    url: str
    event_types: tuple[str, ...]
    vins: tuple[str, ...]
    description: str
    secret: str
    created_at: int

    def __post_init__(self) -> None:
        check_url(self.url)
        if len(self.description) > MAX_DESCRIPTION:
            raise ValidationError(f"description: longer than {MAX_DESCRIPTION} characters")
        if not self.secret.startswith(SECRET_PREFIX):
            raise ValueError("a webhook secret starts with whsec_")

    def wants(self, event: DomainEvent) -> bool:
        """Whether this endpoint gets `event`: its type, its brand, its VIN, after creation.

        A brand's endpoint never gets another brand's events, nor events of no brand.
        """
        if self.brand is not None and event.brand != self.brand:
            return False
        if self.vins and event.vin not in self.vins:
            return False
        if event.at < self.created_at:
            return False  # committed before the subscription existed
        return any(type_matches(pattern, event.type) for pattern in self.event_types)

    def document(self) -> dict[str, Any]:
        """The endpoint's public shape (never its secret: that is shown once, at creation)."""
        return {
            "id": self.id,
            "brand": self.brand,
            "url": self.url,
            "event_types": list(self.event_types),
            "vins": list(self.vins),
            "description": self.description,
            "created_at": format_us(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one endpoint, and how sending it went so far."""

    id: str
    endpoint_id: str
    event_id: int
    event_type: str
    payload: str  # the exact body sent on every attempt (the signature covers it)
    status: DeliveryStatus
    attempts: int  # since it was (re)queued
    created_at: int
    next_attempt_at: int | None  # pending: due (or leased to a sender until) then
    retry_until: int  # the last failure after this time marks it failed
    last_attempt_at: int | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    completed_at: int | None = None

    def document(self) -> dict[str, Any]:
        """The delivery's public shape, for GET /webhooks/{id}/deliveries."""

        def time(us: int | None) -> str | None:
            return None if us is None else format_us(us)

        return {
            "id": self.id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": str(self.status),
            "attempts": self.attempts,
            "created_at": time(self.created_at),
            "next_attempt_at": time(self.next_attempt_at)
            if self.status is DeliveryStatus.PENDING
            else None,
            "retry_until": time(self.retry_until),
            "last_attempt_at": time(self.last_attempt_at),
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "completed_at": time(self.completed_at),
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt of a delivery led to: the delivery's next state."""

    status: DeliveryStatus
    attempts: int
    at: int
    next_attempt_at: int | None
    status_code: int | None
    error: str | None
