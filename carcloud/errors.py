"""Errors carcloud raises, translated at the boundary from drivers and libraries.

CarcloudError                 base of everything below (carcloud_agent.errors)
├── ConfigError               bad settings, a port in use, a data dir we cannot use
├── ValidationError           bad input from a caller (a VIN, a brand slug, a query)
│   ├── ProtocolError         a car↔cloud message that breaks the protocol
│   └── SourceError           an outside source (a calendar) that answers with something unusable
├── NotFoundError             a record that does not exist or that the caller may not see
├── ConflictError             a record that already exists
│   └── PreconditionFailed    an update based on a version that is no longer current
├── AuthError                 missing or wrong credentials
│   └── ForbiddenError        right credentials, not allowed to do this
├── MessagingError            NATS is unreachable or refused an operation
├── UnreachableError          an outside server (a calendar) that does not answer now
└── StorageError              the database failed

The first four live in the agent's distribution (the car raises them too) and are
the same classes here.
"""

from __future__ import annotations

from carcloud_agent.errors import CarcloudError, ConfigError, ProtocolError, ValidationError

__all__ = [
    "AuthError",
    "CarcloudError",
    "ConfigError",
    "ConflictError",
    "ForbiddenError",
    "MessagingError",
    "NotFoundError",
    "PreconditionFailed",
    "ProtocolError",
    "SourceError",
    "StorageError",
    "UnreachableError",
    "ValidationError",
]


class NotFoundError(CarcloudError):
    """A record that does not exist, or that the caller is not allowed to see."""


class ConflictError(CarcloudError):
    """A record that already exists."""


class PreconditionFailed(ConflictError):
    """An optimistic-concurrency update whose expected version is stale."""


class AuthError(CarcloudError):
    """Missing, unknown or wrong credentials."""


class ForbiddenError(AuthError):
    """Known credentials that are not allowed to do this."""


class MessagingError(CarcloudError):
    """NATS is unreachable or refused an operation."""


class StorageError(CarcloudError):
    """The database failed."""


class SourceError(ValidationError):
    """An outside source that answers with something unusable: a calendar URL that is not a
    calendar, content that does not parse, credentials it refuses."""


class UnreachableError(CarcloudError):
    """An outside server that does not answer now (refused, timed out, a 5xx): try later."""
