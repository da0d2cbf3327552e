"""Telemetry records: accepted messages, dead letters, latest state, history points.

Times are epoch microseconds (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

SignalValue = float | int | bool | str | list[str]
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
