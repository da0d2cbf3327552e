"""Minute rollups on PostgreSQL, folded by ingest's own write (the rules of bucketed
reads: `carcloud.ingest.rollup`).

Every transaction that writes history rows also adds them to their minutes
(`telemetry_minutes`: per vehicle, signal and minute the average of numeric values, how
many values, the last one and its time), from the values it has in hand: one
multi-row upsert that merges counts, count-weighted averages and the newest last
value (`ON CONFLICT … DO UPDATE`). So the aggregates always equal a computation over
the raw rows, for every minute, at every commit: nothing re-reads history, no pass
runs, and no lock is held beyond the write's own rows (taken in key order, so two
ingest processes never deadlock). A row that replaces values of an existing row (the
same vehicle time sent again under another seq) reads the old values under the
row's lock and folds the difference: the count stays, the average moves by (new - old).

History loaded around ingest (a bulk COPY, a database migrated from a version that
folded in a periodic pass) is folded once from the raw rows by `fold_sql`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from carcloud.ingest.retention import MINUTE_US
from carcloud.storage.postgres.engine import Conn

# Serialises partition changes and retention of several processes.
HISTORY_LOCK = 7_431_002
NO_LOWER = -(2**62)

_MERGE = """
    average = CASE
        WHEN excluded.average IS NULL THEN telemetry_minutes.average
        WHEN telemetry_minutes.average IS NULL THEN excluded.average
        ELSE (telemetry_minutes.average * telemetry_minutes.count
              + excluded.average * excluded.count) / (telemetry_minutes.count + excluded.count)
    END,
    count = telemetry_minutes.count + excluded.count,
    last = CASE WHEN telemetry_minutes.last_ts IS NULL
                  OR excluded.last_ts >= telemetry_minutes.last_ts
                THEN excluded.last ELSE telemetry_minutes.last END,
    last_ts = GREATEST(telemetry_minutes.last_ts, excluded.last_ts)"""
_REPLACE = (
    "average = excluded.average, count = excluded.count, last = excluded.last, "
    "last_ts = excluded.last_ts"
)


def fold_sql(source: str, merge: bool) -> str:
    """Fold the rows of `source` with $1 <= ts < $2 into minutes, per vehicle, signal and
    minute (a bulk load, or history a write did not fold).

    Averages, counts and the time of the last value come from one hash aggregate over
    every (row, signal); the last values from merging each minute's signal objects in
    time order (jsonb_merge_agg, migration 0002). Merge: add to an existing minute;
    otherwise replace it (the fold saw all of the minute's rows).
    """
    return f"""
INSERT INTO telemetry_minutes (vehicle_id, path, minute, average, count, last, last_ts)
WITH sums AS (
    SELECT t.vehicle_id, t.ts - t.ts % {MINUTE_US} AS minute, s.key AS path,
           AVG((s.value #>> '{{}}')::float8) FILTER (WHERE jsonb_typeof(s.value) = 'number')
               AS average,
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
SELECT s.vehicle_id, s.path, s.minute, s.average, s.count, l.merged -> s.path, s.last_ts
FROM sums s JOIN lasts l USING (vehicle_id, minute)
ON CONFLICT (vehicle_id, path, minute) DO UPDATE SET {_MERGE if merge else _REPLACE}
"""


# Folding a day is one big aggregate: in memory, and beyond the pool's 60 s command timeout.
FOLD_WORK_MEM = "256MB"
FOLD_TIMEOUT_S = 3600.0


def count_of(status: str) -> int:
    """The row count of an asyncpg command status such as 'INSERT 0 42'."""
    return int(status.rsplit(" ", 1)[-1])


async def fold_raw(conn: Conn, source: str, lower: int, upper: int, merge: bool = False) -> int:
    """Fold the rows of `source` in [lower, upper) into minutes; minutes written."""
    await conn.execute(f"SET LOCAL work_mem = '{FOLD_WORK_MEM}'")
    sql = fold_sql(source, merge)
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
        """Merge into the stored minutes, in key order (no deadlock between writers);
        minutes touched."""
        added: list[tuple[int, str, int]] = []
        moved: list[tuple[int, str, int]] = []
        entries: dict[tuple[int, str, int], Entry] = {}
        for (vehicle_id, minute), slot in self.minutes.items():
            for path, entry in slot.items():
                key = (vehicle_id, path, minute)
                entries[key] = entry
                # Values that only replaced others: the count stays, the sum moves.
                (added if entry[1] > 0 else moved).append(key)
        if added:
            added.sort()
            await conn.execute(
                "INSERT INTO telemetry_minutes (vehicle_id, path, minute, average, count, "
                "last_ts, last) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], "
                "$4::float8[], $5::bigint[], $6::bigint[], $7::jsonb[]) "
                f"ON CONFLICT (vehicle_id, path, minute) DO UPDATE SET {_MERGE}",
                *_columns(added, [entries[key] for key in added]),
            )
        if moved:
            moved.sort()
            await conn.execute(
                "UPDATE telemetry_minutes m SET average = CASE WHEN u.total IS NULL "
                "THEN m.average ELSE m.average + u.total / m.count END, "
                "last = CASE WHEN m.last_ts IS NULL OR u.last_ts >= m.last_ts "
                "THEN u.last ELSE m.last END, last_ts = GREATEST(m.last_ts, u.last_ts) "
                "FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::float8[], "
                "$5::bigint[], $6::bigint[], $7::jsonb[]) "
                "AS u(vehicle_id, path, minute, total, count, last_ts, last) "
                "WHERE m.vehicle_id = u.vehicle_id AND m.path = u.path AND m.minute = u.minute",
                *_columns(moved, [entries[key] for key in moved]),
            )
        return len(entries)


def _columns(keys: list[tuple[int, str, int]], entries: list[list[Any]]) -> Iterable[list[Any]]:
    """The arrays of an upsert: for new values the average, for moved ones the sum."""
    dumps = orjson.dumps
    return (
        [key[0] for key in keys],
        [key[1] for key in keys],
        [key[2] for key in keys],
        [
            None if entry[0] is None else (entry[0] / entry[1] if entry[1] else entry[0])
            for entry in entries
        ],
        [entry[1] for entry in entries],
        [entry[2] for entry in entries],
        # Numeric signals show their average per bucket: only the others need a last value.
        [None if entry[0] is not None else dumps(entry[3]).decode() for entry in entries],
    )
