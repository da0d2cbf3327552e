"""Continuous minute rollups on PostgreSQL: the mechanics (the rules: `carcloud.ingest.rollup`).

A pass locks its vehicles' `latest_received` rows FOR SHARE (in vehicle order) before it
reads their watermarks and raw rows (each in a statement of its own, so with a snapshot
taken after the locks), and ingest's write updates those rows before it checks the
watermark to mark a late row dirty. So a write either committed before the fold read
the rows (the fold sees it), or waits for the pass to commit and then sees the new
watermark (and marks its minute dirty): no row is ever left out of a minute that
queries read from the aggregates.
"""

from __future__ import annotations

from collections.abc import Sequence

from carcloud.ingest.retention import MINUTE_US
from carcloud.ingest.rollup import (
    ROLLUP_SPAN_US,
    RollupReport,
    RollupState,
    after_fold,
    fold_start,
    minute_floor,
)
from carcloud.storage.postgres.engine import Conn, PostgresEngine, Tx

# Serialises partition changes, retention and rollup passes of several processes.
HISTORY_LOCK = 7_431_002
# Vehicles per rollup transaction: their ingest waits for it, so it stays short.
VEHICLES_PER_TX = 500
NO_LOWER = -(2**62)

Window = tuple[int, int, int]  # vehicle_id, from, to: one vehicle's stretch to fold

_MERGE = """
    average = CASE
        WHEN excluded.average IS NULL THEN telemetry_minutes.average
        WHEN telemetry_minutes.average IS NULL THEN excluded.average
        ELSE (telemetry_minutes.average * telemetry_minutes.count
              + excluded.average * excluded.count) / (telemetry_minutes.count + excluded.count)
    END,
    count = telemetry_minutes.count + excluded.count,
    last = excluded.last"""
_REPLACE = "average = excluded.average, count = excluded.count, last = excluded.last"


def fold_sql(source: str, windowed: bool, merge: bool) -> str:
    """Fold rows of `source` into minutes, per vehicle, signal and minute: the average of
    numeric values, how many, the last one.

    Windowed: $1..$3 are arrays of (vehicle, from, to) and $4..$5 bound the time (for
    partition pruning); otherwise $1..$2 bound the time of every vehicle. Averages and
    counts come from one hash aggregate over every (row, signal); the last values from
    merging each minute's signal objects in time order (jsonb_merge_agg, migration 0002).
    Merge: add to an existing minute weighted by counts (rows whose minute lost its
    other rows to retention); otherwise replace it (the fold saw all of the minute's rows).
    """
    if windowed:
        rows = (
            "unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS w(vehicle_id, lo, hi) "
            f"JOIN {source} t ON t.vehicle_id = w.vehicle_id AND t.ts >= w.lo AND t.ts < w.hi"
        )
        where = "t.ts >= $4 AND t.ts < $5"
    else:
        rows, where = f"{source} t", "t.ts >= $1 AND t.ts < $2"
    return f"""
INSERT INTO telemetry_minutes (vehicle_id, path, minute, average, count, last)
WITH sums AS (
    SELECT t.vehicle_id, t.ts - t.ts % {MINUTE_US} AS minute, s.key AS path,
           AVG((s.value #>> '{{}}')::float8) FILTER (WHERE jsonb_typeof(s.value) = 'number')
               AS average,
           COUNT(*) AS count
    FROM {rows} CROSS JOIN LATERAL jsonb_each(t.signals) s
    WHERE {where}
    GROUP BY 1, 2, 3
), lasts AS (
    SELECT t.vehicle_id, t.ts - t.ts % {MINUTE_US} AS minute,
           jsonb_merge_agg(t.signals ORDER BY t.ts) AS merged
    FROM {rows} WHERE {where}
    GROUP BY 1, 2
)
SELECT s.vehicle_id, s.path, s.minute, s.average, s.count, l.merged -> s.path
FROM sums s JOIN lasts l USING (vehicle_id, minute)
ON CONFLICT (vehicle_id, path, minute) DO UPDATE SET {_MERGE if merge else _REPLACE}
"""


# Folding a day is one big aggregate: in memory, and beyond the pool's 60 s command timeout.
FOLD_WORK_MEM = "256MB"
FOLD_TIMEOUT_S = 3600.0


def count_of(status: str) -> int:
    """The row count of an asyncpg command status such as 'INSERT 0 42'."""
    return int(status.rsplit(" ", 1)[-1])


async def fold_windows(conn: Conn, source: str, windows: Sequence[Window]) -> int:
    """Fold each vehicle's window of `source` into minutes, replacing them; minutes written."""
    if not windows:
        return 0
    await conn.execute(f"SET LOCAL work_mem = '{FOLD_WORK_MEM}'")
    status = await conn.execute(
        fold_sql(source, windowed=True, merge=False),
        [w[0] for w in windows],
        [w[1] for w in windows],
        [w[2] for w in windows],
        min(w[1] for w in windows),
        max(w[2] for w in windows),
        timeout=FOLD_TIMEOUT_S,
    )
    return count_of(status)


async def boundary(conn: Conn) -> int | None:
    """Where full-rate history starts (None: nothing was ever expired)."""
    value = await conn.fetchval("SELECT full_rate_from FROM telemetry_retention")
    return None if value is None else int(value)


def state_of(folded_to: int | None, dirty_from: int | None) -> RollupState | None:
    """A telemetry_rollup row as a state (None: the vehicle was never rolled up)."""
    return None if folded_to is None else RollupState(int(folded_to), dirty_from)


async def unclean_windows(conn: Conn, lower: int, upper: int) -> list[Window]:
    """Every vehicle's stretch of [lower, upper) that the aggregates do not hold yet."""
    rows = await conn.fetch(
        "SELECT v.id, r.folded_to, r.dirty_from FROM vehicles v "
        "LEFT JOIN telemetry_rollup r ON r.vehicle_id = v.id"
    )
    windows = []
    for vehicle_id, folded_to, dirty_from in rows:
        state = state_of(folded_to, dirty_from)
        start = lower if state is None else max(lower, state.clean_to)
        if start < upper:
            windows.append((int(vehicle_id), start, upper))
    return windows


async def mark_dirty(conn: Conn, first_ts: dict[int, int]) -> None:
    """Mark each vehicle dirty from the minute of its oldest row just written, if that
    minute was folded already (ingest's write, after it updated latest_received)."""
    vehicle_ids = sorted(first_ts)
    await conn.execute(
        "UPDATE telemetry_rollup r SET dirty_from = LEAST(COALESCE(r.dirty_from, w.minute), "
        "w.minute) FROM (SELECT vehicle_id, ts, ts - ts % $3 AS minute FROM "
        "unnest($1::bigint[], $2::bigint[]) AS u(vehicle_id, ts)) w "
        "WHERE r.vehicle_id = w.vehicle_id AND w.ts < r.folded_to",
        vehicle_ids,
        [first_ts[vehicle_id] for vehicle_id in vehicle_ids],
        MINUTE_US,
    )


class PostgresRollup:
    """The rollup pass over one database."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    async def roll_up(self, until: int) -> RollupReport:
        """Fold every vehicle up to `until`, VEHICLES_PER_TX vehicles per transaction."""
        after, vehicles, folds, written = -1, 0, 0, 0
        while True:

            async def chunk(tx: Tx, after: int = after) -> tuple[int, int, int, int, bool]:
                return await self._chunk(tx.conn, after, until)

            last, count, chunk_folds, chunk_written, more = await self.engine.write(chunk)
            folds += chunk_folds
            written += chunk_written
            if more:
                continue  # the same vehicles again: a window stopped at ROLLUP_SPAN_US
            vehicles += count
            if count < VEHICLES_PER_TX:
                return RollupReport(until, vehicles, folds, written)
            after = last

    async def _chunk(self, conn: Conn, after: int, until: int) -> tuple[int, int, int, int, bool]:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", HISTORY_LOCK)
        rows = await conn.fetch(
            "SELECT vehicle_id FROM latest_received WHERE vehicle_id > $1 "
            "ORDER BY vehicle_id LIMIT $2 FOR SHARE",
            after,
            VEHICLES_PER_TX,
        )
        if not rows:
            return after, 0, 0, 0, False
        # Read after the locks are held, in a statement of its own: its snapshot then
        # includes the dirty marks of every write the lock waited for.
        ids = [int(row[0]) for row in rows]
        marks = {
            int(row[0]): state_of(row[1], row[2])
            for row in await conn.fetch(
                "SELECT vehicle_id, folded_to, dirty_from FROM telemetry_rollup "
                "WHERE vehicle_id = ANY($1::bigint[])",
                ids,
            )
        }
        states = {vehicle_id: marks.get(vehicle_id) for vehicle_id in ids}
        edge = await boundary(conn)
        starts = {}
        for vehicle_id, state in states.items():
            start = fold_start(state, edge)
            if start is None or start < until:
                starts[vehicle_id] = NO_LOWER if start is None else start
        # Each vehicle's first raw row from its start: empty stretches are skipped.
        firsts = await conn.fetch(
            "SELECT w.vehicle_id, (SELECT MIN(t.ts) FROM telemetry t WHERE "
            "t.vehicle_id = w.vehicle_id AND t.ts >= w.lo AND t.ts < $3) "
            "FROM unnest($1::bigint[], $2::bigint[]) AS w(vehicle_id, lo)",
            list(starts),
            list(starts.values()),
            until,
        )
        windows: list[Window] = []
        updated: dict[int, RollupState] = {}
        for vehicle_id, first in firsts:
            if first is None:
                updated[vehicle_id] = after_fold(states[vehicle_id], until)
                continue
            lower = minute_floor(int(first))
            upper = min(until, lower + ROLLUP_SPAN_US)
            windows.append((vehicle_id, lower, upper))
            updated[vehicle_id] = after_fold(states[vehicle_id], upper)
        written = await fold_windows(conn, "telemetry", windows)
        if updated:
            ids = list(updated)
            await conn.execute(
                "INSERT INTO telemetry_rollup (vehicle_id, folded_to, dirty_from) "
                "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) "
                "ON CONFLICT (vehicle_id) DO UPDATE SET folded_to = excluded.folded_to, "
                "dirty_from = excluded.dirty_from",
                ids,
                [updated[i].folded_to for i in ids],
                [updated[i].dirty_from for i in ids],
            )
        more = any(upper < until for _, _, upper in windows)
        return int(rows[-1][0]), len(rows), len(windows), written, more
