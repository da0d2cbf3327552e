"""Records that cross the storage interface: plain frozen dataclasses, times in epoch µs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

SignalValue = float | int | bool | str | list[str]


@dataclass(frozen=True, slots=True)
class Brand:
    """A tenant: one car maker can own several brands."""

    id: int
    slug: str
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A registered vehicle with its presence."""

    id: int
    vin: str
    brand: str
    model: str
    model_year: int | None
    tags: tuple[str, ...]
    created_at: int
    revoked_at: int | None
    online: bool
    last_seen_at: int | None
    connected_at: int | None


@dataclass(frozen=True, slots=True)
class VehicleCredentials:
    """What the auth callout needs to check a connecting vehicle."""

    vin: str
    brand: str
    secret_hash: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored API key: only its hash is kept."""

    id: str
    name: str
    brand: str | None
    key_hash: str
    created_at: int
    revoked_at: int | None


SampleTuple = tuple[str, int, SignalValue]


class Sample(NamedTuple):
    """One value of one signal at one vehicle time (a tuple: ingest makes millions)."""

    path: str
    ts: int
    value: SignalValue


@dataclass(frozen=True, slots=True)
class TelemetryMessage:
    """One accepted telemetry message: (vin, seq) is its identity for deduplication."""

    vin: str
    seq: int
    ts: int
    received_at: int
    samples: tuple[SampleTuple, ...]  # (path, ts, value); Sample names the fields


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input that could not be stored whole, with the reason and the raw payload."""

    received_at: int
    subject: str
    vin: str | None
    reason: str
    payload: bytes
    id: int | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What a batch write did."""

    messages_stored: int = 0
    duplicates: int = 0
    samples_stored: int = 0
    dead_letters: int = 0
    unknown_vins: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class LatestValue:
    """The newest known value of one signal of one vehicle."""

    path: str
    ts: int
    value: SignalValue


@dataclass(frozen=True, slots=True)
class LatestState:
    """Every signal's newest value, and when the newest data of the vehicle arrived."""

    values: tuple[LatestValue, ...]
    received_at: int | None


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """A point of a history query; aggregated points carry the bucket's count."""

    ts: int
    value: SignalValue
    count: int = 1


# ---- remote control ---------------------------------------------------------------------

OPEN_STATUSES = ("queued", "delivered")
FINAL_STATUSES = ("succeeded", "failed", "expired", "cancelled")


@dataclass(frozen=True, slots=True)
class CommandTransition:
    """One step of a command's lifecycle."""

    status: str
    at: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command for one vehicle and where it stands."""

    id: str
    vin: str
    kind: str
    params: dict[str, object]
    status: str
    reason: str | None
    idempotency_key: str | None
    created_at: int
    expires_at: int
    delivered_at: int | None
    completed_at: int | None
    transitions: tuple[CommandTransition, ...] = ()

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True, slots=True)
class Twin:
    """A vehicle's twin: desired properties (own and effective, versioned) and reported ones."""

    vin: str
    desired_version: int
    desired_own: dict[str, object]
    desired: dict[str, object]
    desired_updated_at: int | None
    reported: dict[str, object]
    reported_desired_version: int | None
    reported_updated_at: int | None


@dataclass(frozen=True, slots=True)
class Configuration:
    """Desired properties for every vehicle matching a target, with a priority."""

    id: str
    name: str
    target: dict[str, object]
    priority: int
    desired: dict[str, object]
    created_at: int
    updated_at: int
