"""Continuous minute rollups: which minutes are folded, and how a bucketed query reads them.

The maintenance pass keeps per-minute aggregates (`telemetry_minutes`) up to date for
closed minutes, per vehicle, behind a watermark `folded_to`: every minute before it
has been folded from the full-rate rows. A row written later into a folded minute
(a car's backlog, a late batch) marks its vehicle dirty from that minute
(`dirty_from`), in the transaction that writes the row; the next pass folds again from
there. So for one vehicle the aggregates equal a computation over the raw rows for
every minute before `clean_to = min(folded_to, dirty_from)`, and a bucketed query reads
them there and the raw rows after (the tail). A backend supplies the mechanics; the
rules are here, one copy for both.

That is SQLite's way. PostgreSQL folds every write's rows into their minutes inside
the write (`TelemetryStore.folds_at_write`, `carcloud.storage.postgres.rollup`): every
vehicle is clean everywhere, its pass has nothing to do, and a bucketed query reads
whole minutes from the aggregates and only partial minutes from the raw rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from carcloud.ingest.models import HistoryPoint
from carcloud.ingest.retention import MINUTE_US, join_buckets

# The pass runs this often, and folds minutes that closed at least one minute ago, so
# that the usual few seconds of delivery delay land before their minute is folded.
ROLLUP_EVERY_S = 60.0
ROLLUP_LAG_US = MINUTE_US
# At most this much of one vehicle's history per fold statement (a first pass over a
# long history, or a car's week-long backlog, goes in several transactions).
ROLLUP_SPAN_US = 3600 * 1_000_000


def minute_floor(ts_us: int) -> int:
    """The start of the minute holding `ts_us`."""
    return ts_us - ts_us % MINUTE_US


def rollup_until(now_us: int) -> int:
    """The watermark a pass at `now_us` folds up to: minutes closed `ROLLUP_LAG_US` ago."""
    return minute_floor(now_us) - ROLLUP_LAG_US


@dataclass(frozen=True)
class RollupState:
    """One vehicle's watermark: minutes before `folded_to` were folded; from
    `dirty_from` on (if set) rows arrived after their minute was folded."""

    folded_to: int
    dirty_from: int | None = None

    @property
    def clean_to(self) -> int:
        """Minutes before this answer from the aggregates exactly as from the raw rows."""
        return self.folded_to if self.dirty_from is None else min(self.folded_to, self.dirty_from)


def fold_start(state: RollupState | None, boundary: int | None) -> int | None:
    """Where a vehicle's next fold starts (None: from its first full-rate row).

    Before the retention boundary the raw rows are gone, so nothing is folded again there.
    """
    if state is None:
        return boundary
    start = state.clean_to
    return start if boundary is None else max(start, boundary)


def after_fold(state: RollupState | None, folded_to: int) -> RollupState:
    """The watermark once [fold_start, folded_to) has been folded."""
    if state is None or folded_to >= state.folded_to:
        return RollupState(folded_to)
    # A dirty stretch folded only in part: it stays dirty from where the fold stopped.
    return RollupState(state.folded_to, folded_to)


@dataclass(frozen=True)
class RollupReport:
    """What one rollup pass did."""

    until: int
    vehicles: int = 0
    folds: int = 0  # vehicle windows folded
    minutes_written: int = 0


@dataclass(frozen=True)
class Segment:
    """A stretch of a bucketed query, read from the aggregates or from the raw rows."""

    minutes: bool
    lower: int
    upper: int


def history_segments(
    lower: int, upper: int, bucket_us: int, boundary: int | None, clean_to: int | None
) -> list[Segment]:
    """The stretches of [lower, upper) a bucketed query reads, oldest first.

    Before the retention boundary only the aggregates exist. After it, whole minutes
    before `clean_to` come from the aggregates when each bucket is made of whole minutes;
    the partial minutes at the ends and the tail after `clean_to` come from the raw rows.
    """
    segments: list[Segment] = []
    start = lower
    if boundary is not None and start < boundary:
        segments.append(Segment(True, start, min(upper, boundary)))
        start = boundary
    if start >= upper:
        return segments
    if clean_to is not None and bucket_us % MINUTE_US == 0:
        first_whole = -(-start // MINUTE_US) * MINUTE_US
        last_whole = min(minute_floor(upper), clean_to)
        if first_whole < last_whole:
            if start < first_whole:
                segments.append(Segment(False, start, first_whole))
            segments.append(Segment(True, first_whole, last_whole))
            start = last_whole
    if start < upper:
        segments.append(Segment(False, start, upper))
    return segments


def join_segments(parts: Sequence[Sequence[HistoryPoint]], numeric: bool) -> list[HistoryPoint]:
    """The buckets of consecutive segments as one answer (a bucket across two is one point)."""
    joined: list[HistoryPoint] = []
    for part in parts:
        joined = join_buckets(joined, part, numeric)
    return joined
