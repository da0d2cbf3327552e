"""Minute rollups and retention on SQLite: the mechanics, not the rules
(`carcloud.ingest.rollup`, `carcloud.ingest.retention`).

The rollup folds each vehicle's closed minutes into per-minute aggregates, at most a
vehicle-hour per write transaction. SQLite has no partitions: expired full-rate rows
are deleted one vehicle-hour at a time (folding first only what the rollup has not),
each chunk in its own short write transaction, so that ingest keeps committing
between chunks. SQLite has one writer: a rollup never races a write.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable

from carcloud.ingest.retention import MINUTE_US, RetentionPlan, RetentionReport
from carcloud.ingest.rollup import (
    ROLLUP_SPAN_US,
    RollupReport,
    RollupState,
    after_fold,
    fold_start,
    minute_floor,
)
from carcloud.storage.codec import decode
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.timeutil import now_us

CHUNK_US = 3600 * 1_000_000  # one vehicle-hour of rows per write transaction
# A rollup write transaction folds vehicles until it has held the writer this long.
WRITE_BUDGET_S = 0.05

# The minute row merged with an existing one (late rows of a minute already folded).
_MERGE_MINUTE = (
    "INSERT INTO telemetry_minutes (vehicle_id, path, minute, average, count, last) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vehicle_id, path, minute) DO UPDATE SET "
    "average = CASE WHEN excluded.average IS NULL THEN telemetry_minutes.average "
    "WHEN telemetry_minutes.average IS NULL THEN excluded.average "
    "ELSE (telemetry_minutes.average * telemetry_minutes.count "
    "+ excluded.average * excluded.count) / (telemetry_minutes.count + excluded.count) END, "
    "count = telemetry_minutes.count + excluded.count, "
    "last = COALESCE(excluded.last, telemetry_minutes.last)"
)
# The minute row replaced (the fold saw every row of the minute).
_REPLACE_MINUTE = (
    "INSERT INTO telemetry_minutes (vehicle_id, path, minute, average, count, last) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vehicle_id, path, minute) DO UPDATE SET "
    "average = excluded.average, count = excluded.count, last = excluded.last"
)


def rollup_state(conn: sqlite3.Connection, vehicle_id: int) -> RollupState | None:
    """A vehicle's rollup watermark (None: never rolled up)."""
    row = conn.execute(
        "SELECT folded_to, dirty_from FROM telemetry_rollup WHERE vehicle_id = ?", (vehicle_id,)
    ).fetchone()
    return None if row is None else RollupState(int(row[0]), row[1])


def mark_dirty(conn: sqlite3.Connection, first_ts: dict[int, int]) -> None:
    """Mark each vehicle dirty from the minute of its oldest row just written, if that
    minute was folded already (in the write's transaction)."""
    conn.executemany(
        "UPDATE telemetry_rollup SET dirty_from = MIN(COALESCE(dirty_from, ?1), ?1) "
        "WHERE vehicle_id = ?2 AND folded_to > ?3",
        [(minute_floor(ts), vehicle_id, ts) for vehicle_id, ts in first_ts.items()],
    )


class SqliteHistory:
    """Retention and the downsampled history of one SQLite file."""

    def __init__(
        self, engine: SqliteEngine, columns: Callable[[], dict[str, tuple[str, str]]]
    ) -> None:
        self.engine = engine
        self._columns = columns  # path -> (column, kind), known after the schema sync

    async def roll_up(self, until: int) -> RollupReport:
        """Fold every vehicle up to `until`: a vehicle-hour per fold, as many folds per
        write transaction as fit in WRITE_BUDGET_S (one commit for a minute's pass)."""
        vehicle_ids = await self.engine.read(
            lambda conn: [row[0] for row in conn.execute("SELECT id FROM vehicles ORDER BY id")]
        )
        pending = list(reversed(vehicle_ids))
        folds = written = 0

        def fold(conn: sqlite3.Connection) -> tuple[int, int]:
            began, chunk_folds, chunk_written = time.perf_counter(), 0, 0
            while pending:
                done, minutes = self._roll_up_chunk(conn, pending[-1], until)
                chunk_folds += minutes > 0
                chunk_written += minutes
                if done:
                    pending.pop()
                if time.perf_counter() - began >= WRITE_BUDGET_S:
                    break
            return chunk_folds, chunk_written

        while pending:
            chunk_folds, chunk_written = await self.engine.write(fold, bulk=True)
            folds += chunk_folds
            written += chunk_written
        return RollupReport(until, len(vehicle_ids), folds, written)

    def _roll_up_chunk(
        self, conn: sqlite3.Connection, vehicle_id: int, until: int
    ) -> tuple[bool, int]:
        """Fold the next stretch of one vehicle: (caught up to `until`, minutes written)."""
        state = rollup_state(conn, vehicle_id)
        start = fold_start(state, self.boundary(conn))
        if start is not None and start >= until:
            return True, 0
        first = conn.execute(
            "SELECT MIN(ts) FROM telemetry WHERE vehicle_id = ? AND ts >= ? AND ts < ?",
            (vehicle_id, -(2**62) if start is None else start, until),
        ).fetchone()[0]
        upper, minutes = until, 0
        if first is not None:
            lower = minute_floor(first)
            upper = min(until, lower + ROLLUP_SPAN_US)
            minutes = self._fold(conn, vehicle_id, lower, upper, replace=True)
        new = after_fold(state, upper)
        conn.execute(
            "INSERT INTO telemetry_rollup (vehicle_id, folded_to, dirty_from) VALUES (?, ?, ?) "
            "ON CONFLICT (vehicle_id) DO UPDATE SET folded_to = excluded.folded_to, "
            "dirty_from = excluded.dirty_from",
            (vehicle_id, new.folded_to, new.dirty_from),
        )
        return upper >= until, minutes

    async def expire(self, plan: RetentionPlan) -> RetentionReport:
        """Fold and delete expired rows vehicle-hour by vehicle-hour, then old minutes."""
        deleted = written = minutes_deleted = messages_deleted = 0
        if plan.full_rate_from is not None:
            cutoff = plan.full_rate_from
            vehicle_ids = await self.engine.read(
                lambda conn: [row[0] for row in conn.execute("SELECT id FROM vehicles")]
            )
            for vehicle_id in vehicle_ids:

                def fold(conn: sqlite3.Connection, vehicle_id: int = vehicle_id) -> tuple[int, int]:
                    return self._fold_chunk(conn, vehicle_id, cutoff, plan)

                while True:
                    rows, minutes = await self.engine.write(fold, bulk=True)
                    if rows == 0:
                        break
                    deleted += rows
                    written += minutes

            def mark(conn: sqlite3.Connection) -> None:
                conn.execute(
                    "INSERT INTO telemetry_retention (id, full_rate_from, applied_at) "
                    "VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET full_rate_from = "
                    "MAX(COALESCE(telemetry_retention.full_rate_from, 0), "
                    "excluded.full_rate_from), applied_at = excluded.applied_at",
                    (cutoff, now_us()),
                )

            await self.engine.write(mark)
            # A message older than full-rate history can no longer be deduplicated.
            while gone := await self.engine.write(
                lambda conn: _delete_messages(conn, cutoff), bulk=True
            ):
                messages_deleted += gone
        if plan.downsampled_from is not None:
            before = plan.downsampled_from
            minutes_deleted = await self.engine.write(
                lambda conn: (
                    conn.execute(
                        "DELETE FROM telemetry_minutes WHERE minute < ?", (before,)
                    ).rowcount
                )
            )
        return RetentionReport(cutoff if plan.full_rate_from else None, 0, deleted, written,
                               minutes_deleted, messages_deleted)  # fmt: skip

    def _fold_chunk(
        self, conn: sqlite3.Connection, vehicle_id: int, cutoff: int, plan: RetentionPlan
    ) -> tuple[int, int]:
        """Fold and delete the oldest expired hour of one vehicle: (rows, minutes written)."""
        first = conn.execute(
            "SELECT MIN(ts) FROM telemetry WHERE vehicle_id = ? AND ts < ?", (vehicle_id, cutoff)
        ).fetchone()[0]
        if first is None:
            return 0, 0
        end = min(first - first % MINUTE_US + CHUNK_US, cutoff)
        minutes = 0
        if plan.downsample:
            last = self.boundary(conn)
            if last is not None and first < last:
                # Rows that came after their minute's other rows were deleted: merged.
                minutes += self._fold(conn, vehicle_id, first, min(end, last), replace=False)
            # The rollup folded the rest already, but for rows it has not seen yet.
            state = rollup_state(conn, vehicle_id)
            lower = max(first, last or first, first if state is None else state.clean_to)
            if lower < end:
                minutes += self._fold(conn, vehicle_id, lower, end, replace=True)
        gone = conn.execute(
            "DELETE FROM telemetry WHERE vehicle_id = ? AND ts >= ? AND ts < ?",
            (vehicle_id, first, end),
        ).rowcount
        return gone, minutes

    def _fold(
        self, conn: sqlite3.Connection, vehicle_id: int, first: int, end: int, replace: bool
    ) -> int:
        """Write the minutes of [first, end) of one vehicle (replaced, or merged into
        existing ones); how many.

        Averages and counts come from SQL (one GROUP BY over every column); the last value
        of each signal in a minute from the rows in time order.
        """
        columns = self._columns()
        span = (vehicle_id, first, end)
        where = "WHERE vehicle_id = ? AND ts >= ? AND ts < ?"
        paths = list(columns)
        picks = ", ".join(
            f"AVG({columns[path][0]}), COUNT({columns[path][0]})"
            if columns[path][1] in ("num", "int")
            else f"NULL, COUNT({columns[path][0]})"
            for path in paths
        )
        folded: dict[tuple[str, int], list[float | int | str | None]] = {}
        for row in conn.execute(
            f"SELECT ts - ts % {MINUTE_US} AS minute, {picks} FROM telemetry {where} "
            "GROUP BY minute",
            span,
        ):
            for index, path in enumerate(paths):
                average, count = row[1 + 2 * index], row[2 + 2 * index]
                if count:
                    folded[(path, row[0])] = [average, count, None]
        # Numeric signals show their average per bucket: only the others need a last value.
        others = [path for path in paths if columns[path][1] not in ("num", "int")]
        names = ", ".join(columns[path][0] for path in others)
        for row in conn.execute(f"SELECT ts, {names} FROM telemetry {where} ORDER BY ts", span):
            minute = row[0] - row[0] % MINUTE_US
            for path, raw in zip(others, row[1:], strict=True):
                if raw is not None:
                    folded[(path, minute)][2] = raw
        conn.executemany(
            _REPLACE_MINUTE if replace else _MERGE_MINUTE,
            [
                (
                    vehicle_id,
                    path,
                    minute,
                    average,
                    count,
                    None if last is None else json.dumps(decode(columns[path][1], last)),
                )
                for (path, minute), (average, count, last) in folded.items()
            ],
        )
        return len(folded)

    def boundary(self, conn: sqlite3.Connection) -> int | None:
        """Where full-rate history starts (None: nothing was ever expired)."""
        row = conn.execute("SELECT full_rate_from FROM telemetry_retention").fetchone()
        return None if row is None or row[0] is None else int(row[0])


MESSAGES_PER_DELETE = 10_000  # identities trimmed per write transaction


def _delete_messages(conn: sqlite3.Connection, before: int) -> int:
    return conn.execute(
        "DELETE FROM telemetry_messages WHERE (vehicle_id, seq) IN (SELECT vehicle_id, seq "
        "FROM telemetry_messages WHERE ts < ? LIMIT ?)",
        (before, MESSAGES_PER_DELETE),
    ).rowcount


def minute_buckets(
    conn: sqlite3.Connection,
    vehicle_id: int,
    path: str,
    numeric: bool,
    lower: int,
    upper: int,
    bucket_us: int,
    limit: int,
) -> list[tuple[int, float | str, int]]:
    """Buckets of the downsampled history in [lower, upper): (bucket, value, count).

    Numeric: the count-weighted average; otherwise the last value as JSON text.
    """
    where = "WHERE vehicle_id = ? AND path = ? AND minute >= ? AND minute < ?"
    if numeric:
        sql = (
            "SELECT (minute / ?) * ? AS bucket, SUM(average * count) / SUM(count), SUM(count) "
            f"FROM telemetry_minutes {where} GROUP BY bucket ORDER BY bucket LIMIT ?"
        )
    else:
        # SQLite takes the bare column from the row that holds MAX(minute).
        sql = (
            "SELECT bucket, last, total FROM (SELECT (minute / ?) * ? AS bucket, MAX(minute), "
            f"last, SUM(count) AS total FROM telemetry_minutes {where} GROUP BY bucket) "
            "ORDER BY bucket LIMIT ?"
        )
    rows = conn.execute(sql, (bucket_us, bucket_us, vehicle_id, path, lower, upper, limit))
    return [(int(bucket), value, int(count)) for bucket, value, count in rows]
