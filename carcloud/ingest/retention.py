"""How long telemetry history is kept: the rule, in one place, for every backend.

Full-rate history is kept for `full_rate_days` whole UTC days before today; older
days are first folded into per-minute aggregates per vehicle and signal (the
downsampled history, kept for `downsampled_days`), then removed. A backend only
supplies the mechanics (PostgreSQL drops a day's partition, SQLite deletes rows
in chunks); which days go, and where the two histories meet, is decided here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from carcloud.errors import ConfigError
from carcloud.ingest.models import HistoryPoint

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
DAY_US = 86_400 * SECOND_US
# Days of history partitions made ahead of time, so that ingest never waits for one.
DAYS_AHEAD = 7


def day_start(ts_us: int) -> int:
    """The start (UTC midnight, in microseconds) of the day holding `ts_us`."""
    return ts_us - ts_us % DAY_US


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep `full_rate_days` of full-rate history and `downsampled_days` of minutes.

    0 means "forever" for either. Days are whole UTC days before today's start.
    """

    full_rate_days: int = 0
    downsampled_days: int = 0

    def __post_init__(self) -> None:
        if self.full_rate_days < 0 or self.downsampled_days < 0:
            raise ConfigError("retention days must be >= 0 (0 keeps history forever)")
        if self.full_rate_days and 0 < self.downsampled_days < self.full_rate_days:
            raise ConfigError(
                f"downsampled history ({self.downsampled_days} days) must be kept at "
                f"least as long as full-rate history ({self.full_rate_days} days)"
            )

    def plan(self, now_us: int) -> RetentionPlan:
        """Where full-rate and downsampled history start, as of `now_us`."""
        today = day_start(now_us)
        full_rate_from = today - self.full_rate_days * DAY_US if self.full_rate_days else None
        downsampled_from = today - self.downsampled_days * DAY_US if self.downsampled_days else None
        return RetentionPlan(full_rate_from, downsampled_from)


@dataclass(frozen=True)
class RetentionPlan:
    """Full-rate history before `full_rate_from` becomes minutes; minutes before
    `downsampled_from` go. None: keep that history."""

    full_rate_from: int | None
    downsampled_from: int | None

    @property
    def downsample(self) -> bool:
        """Whether the days that leave full rate are worth folding into minutes."""
        if self.full_rate_from is None:
            return False
        return self.downsampled_from is None or self.downsampled_from < self.full_rate_from


@dataclass(frozen=True)
class RetentionReport:
    """What one retention pass did."""

    full_rate_from: int | None
    days_dropped: int = 0
    rows_deleted: int = 0
    minutes_written: int = 0
    minutes_deleted: int = 0
    messages_deleted: int = 0  # (vehicle, seq) identities older than full-rate history


def days_to_prepare(now_us: int, ahead: int = DAYS_AHEAD) -> list[int]:
    """The day starts that must have a history partition: yesterday to today + `ahead`."""
    today = day_start(now_us)
    return [today + offset * DAY_US for offset in range(-1, ahead + 1)]


def expired_days(days: Sequence[int], full_rate_from: int) -> list[int]:
    """The days (day starts) entirely before `full_rate_from`, oldest first."""
    return sorted(day for day in days if day + DAY_US <= full_rate_from)


def join_buckets(
    older: Sequence[HistoryPoint], newer: Sequence[HistoryPoint], numeric: bool
) -> list[HistoryPoint]:
    """Buckets from the downsampled history followed by buckets from full-rate history.

    A bucket that straddles the boundary is one point: its averages weighted by
    their counts (numeric), or the newer side's last value.
    """
    if not older or not newer or older[-1].ts != newer[0].ts:
        return [*older, *newer]
    left, right = older[-1], newer[0]
    count = left.count + right.count
    if numeric:
        value = (float(left.value) * left.count + float(right.value) * right.count) / count  # type: ignore[arg-type]
        joined = HistoryPoint(left.ts, value, count)
    else:
        joined = HistoryPoint(left.ts, right.value, count)
    return [*older[:-1], joined, *newer[1:]]
