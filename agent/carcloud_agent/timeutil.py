"""UTC time helpers: carcloud keeps instants as integer microseconds since the epoch."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from carcloud_agent.errors import ValidationError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    """The current time in microseconds since the epoch (UTC)."""
    return time.time_ns() // 1000


def parse_rfc3339_us(raw: object, field: str = "ts") -> int:
    """Parse an RFC 3339 timestamp with an explicit offset into epoch microseconds."""
    if not isinstance(raw, str):
        raise ValidationError(f"{field} must be an RFC 3339 string, got {type(raw).__name__}")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationError(f"{field} {raw!r} is not an RFC 3339 timestamp") from exc
    if moment.tzinfo is None:
        raise ValidationError(f"{field} {raw!r} has no UTC offset; use e.g. 2026-01-01T12:00:00Z")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_datetime(epoch_us: int) -> datetime:
    """Epoch microseconds to an aware UTC datetime."""
    return datetime.fromtimestamp(epoch_us / 1_000_000, tz=UTC)


def format_us(epoch_us: int | None) -> str | None:
    """Epoch microseconds to RFC 3339 UTC text with a Z suffix."""
    if epoch_us is None:
        return None
    return to_datetime(epoch_us).isoformat(timespec="microseconds").replace("+00:00", "Z")


def datetime_to_us(moment: datetime) -> int:
    """An aware datetime to epoch microseconds."""
    if moment.tzinfo is None:
        raise ValidationError(f"time {moment.isoformat()} has no UTC offset")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
