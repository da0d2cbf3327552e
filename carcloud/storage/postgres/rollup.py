"""Minute rollups on PostgreSQL, folded by ingest's own write (the rules of bucketed
reads: `carcloud.ingest.rollup`).

Every transaction that writes history rows also adds them to their minutes
(`telemetry_minutes`: one row per vehicle and minute whose JSON object holds, per
signal, the sum of numeric values, how many values, the time of the last one and, for
non-numeric signals, the last value), from the values it has in hand: one merge of
many rows that adds sums and counts and keeps the newest last value (`merged_rows`).
One row per vehicle and minute, not one per signal: a batch of messages from many cars
touches one row per car, not twenty.
So the aggregates always equal a computation over the raw rows, for every minute, at
every commit: nothing re-reads history, no pass runs, and no lock is held beyond the
write's own rows (taken in key order, so two ingest processes never deadlock). A row
that replaces values of an existing row (the same vehicle time sent again under another
seq) reads the old values under the row's lock and folds the difference: the count
stays, the sum moves by (new - old).

History loaded around ingest (a bulk COPY, a database migrated from a version that
folded in a periodic pass) is folded once from the raw rows by `fold_sql`.
"""

from __future__ import annotations

from typing import Any

from carcloud.ingest.retention import MINUTE_US
from carcloud.storage.postgres.engine import Conn
from carcloud.storage.postgres.merged_rows import TELEMETRY_MINUTES

# Serialises partition changes and retention of several processes.
HISTORY_LOCK = 7_431_002
NO_LOWER = -(2**62)


def fold_sql(source: str) -> str:
    """Fold the rows of `source` with $1 <= ts < $2 into minutes, one row per vehicle and
    minute (a bulk load, or history a write did not fold).

    Sums, counts and the time of the last value come from one hash aggregate over every
    (row, signal); the last values from merging each minute's signal objects in time
    order (jsonb_merge_agg, migration 0002). A minute already stored is replaced: the
    fold saw all of its rows.
    """
    return f"""
INSERT INTO telemetry_minutes (vehicle_id, minute, signals)
WITH sums AS (
    SELECT t.vehicle_id, t.ts - t.ts % {MINUTE_US} AS minute, s.key AS path,
           SUM((s.value #>> '{{}}')::float8) FILTER (WHERE jsonb_typeof(s.value) = 'number')
               AS total,
           COUNT(*) AS count, MAX(t.ts) AS last_ts
    FROM {source} t CROSS JOIN LATERAL jsonb_each(t.signals) s
    WHERE t.ts >= $1 AND t.ts < $2
    GROUP BY 1, 2, 3
), lasts AS (
    SELECT t.vehicle_id, t.ts - t.ts % {MINUTE_US} AS minute,
           jsonb_merge_agg(t.signals ORDER BY t.ts) AS merged
    FROM {source} t WHERE t.ts >= $1 AND t.ts < $2
    GROUP BY 1, 2
)
SELECT s.vehicle_id, s.minute, jsonb_object_agg(s.path, jsonb_build_array(
    s.total, s.count, s.last_ts, CASE WHEN s.total IS NULL THEN l.merged -> s.path END))::json
FROM sums s JOIN lasts l USING (vehicle_id, minute)
GROUP BY s.vehicle_id, s.minute
ON CONFLICT (vehicle_id, minute) DO UPDATE SET signals = excluded.signals
"""


# Folding a day is one big aggregate: in memory, and beyond the pool's 60 s command timeout.
FOLD_WORK_MEM = "256MB"
FOLD_TIMEOUT_S = 3600.0


def count_of(status: str) -> int:
    """The row count of an asyncpg command status such as 'INSERT 0 42'."""
    return int(status.rsplit(" ", 1)[-1])


async def fold_raw(conn: Conn, source: str, lower: int, upper: int) -> int:
    """Fold the rows of `source` in [lower, upper) into minutes; minutes written."""
    await conn.execute(f"SET LOCAL work_mem = '{FOLD_WORK_MEM}'")
    sql = fold_sql(source)
    return count_of(await conn.execute(sql, lower, upper, timeout=FOLD_TIMEOUT_S))


async def boundary(conn: Conn) -> int | None:
    """Where full-rate history starts (None: nothing was ever expired)."""
    value = await conn.fetchval("SELECT full_rate_from FROM telemetry_retention")
    return None if value is None else int(value)


Entry = list[Any]  # [sum of numeric values or None, count, last_ts, last value]


class MinuteFold:
    """The minutes one write adds to: per vehicle, minute and path the sum of numeric
    values, how many values more, and the newest value with its time."""

    def __init__(self) -> None:
        self.minutes: dict[tuple[int, int], dict[str, Entry]] = {}

    def slot(self, vehicle_id: int, ts: int) -> dict[str, Entry]:
        """The entries of the minute holding `ts`, by path (the write fills them: a new
        value adds 1 to the count and itself to the sum; one that replaces a value of the
        same instant adds only its difference; the newest time's value is the last)."""
        key = (vehicle_id, ts - ts % MINUTE_US)
        slot = self.minutes.get(key)
        if slot is None:
            slot = self.minutes[key] = {}
        return slot

    def replaced(self, vehicle_id: int, ts: int, old: dict[str, Any], new: dict[str, Any]) -> None:
        """A row of this write replaced values of a stored row: those values leave their
        minute (the count stays, the sum moves by new - old)."""
        slot = self.minutes[(vehicle_id, ts - ts % MINUTE_US)]
        for path in new.keys() & old.keys():
            entry = slot[path]
            entry[1] -= 1
            previous = old[path]
            if type(previous) is float or type(previous) is int:
                entry[0] = (entry[0] or 0.0) - previous

    async def write(self, conn: Conn) -> int:
        """Fold into the stored minutes, one row per vehicle and minute, in key order (no
        deadlock between writers); minutes touched."""
        keys = sorted(self.minutes)
        await TELEMETRY_MINUTES.write(conn, [(key, self.minutes[key], None) for key in keys])
        return len(keys)
