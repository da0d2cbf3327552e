"""History partitions and retention on PostgreSQL: the mechanics, not the rule.

`telemetry` is range-partitioned by vehicle time, one partition per UTC day
(`telemetry_pYYYYMMDD`) plus a default partition for days without one. Which days
to prepare and which to drop is `carcloud.ingest.retention`'s decision; here a day
is created (moving its rows out of the default partition first, so none is lost)
and dropped as a whole table; its per-minute aggregates stay (every write folded its
rows into them: `carcloud.storage.postgres.rollup`).

A day is dropped in two transactions: the first detaches its partition (renamed
`telemetry_expired_pYYYYMMDD`) under a short lock of the `telemetry` table, the second
drops the detached table. PostgreSQL removes a table's files when the dropping
transaction commits (a second or more for a day's gigabyte on a busy disk); done on
the detached table, no write to `telemetry` waits for that. A detached table left by a
pass that stopped in between is dropped by the next.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from carcloud.ingest.retention import (
    DAY_US,
    RetentionPlan,
    RetentionReport,
    day_start,
    expired_days,
)
from carcloud.storage.postgres.engine import Conn, PostgresEngine, Tx
from carcloud.storage.postgres.rollup import HISTORY_LOCK, boundary, count_of
from carcloud.timeutil import now_us

PREFIX = "telemetry_p"
EXPIRED_PREFIX = "telemetry_expired_p"


def partition_name(day: int) -> str:
    """The partition of the day starting at `day`: telemetry_pYYYYMMDD."""
    return PREFIX + datetime.fromtimestamp(day / 1_000_000, UTC).strftime("%Y%m%d")


def partition_day(name: str) -> int:
    """The day start of a partition named by `partition_name`."""
    day = datetime.strptime(name.removeprefix(PREFIX), "%Y%m%d").replace(tzinfo=UTC)
    return int(day.timestamp()) * 1_000_000


async def partition_days(conn: Conn) -> list[int]:
    """The days that have a partition, oldest first."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'telemetry'::regclass AND c.relname LIKE 'telemetry\\_p%'"
    )
    return sorted(partition_day(row[0]) for row in rows)


class PostgresHistory:
    """Partitions, retention and the downsampled history of one database."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine
        self.last_drop_s = 0.0  # how long the last partition drop took (benchmarks)

    async def prepare(self, days: Sequence[int]) -> int:
        """Create the partitions of `days` and of days found in the default partition."""

        async def prepare(tx: Tx) -> int:
            conn = tx.conn
            await conn.execute("SELECT pg_advisory_xact_lock($1)", HISTORY_LOCK)
            existing = set(await partition_days(conn))
            stray = await conn.fetch(
                f"SELECT DISTINCT ts - ts % {DAY_US} FROM telemetry_default ORDER BY 1"
            )
            wanted = sorted({day_start(day) for day in days} | {row[0] for row in stray})
            created = 0
            for day in wanted:
                if day in existing:
                    continue
                await _create_partition(conn, day)
                created += 1
            return created

        return await self.engine.write(prepare)

    async def expire(self, plan: RetentionPlan) -> RetentionReport:
        """Fold and drop each expired day (one transaction per day), then old minutes."""
        dropped = deleted = written = minutes_deleted = messages_deleted = 0
        if plan.full_rate_from is not None:
            cutoff = plan.full_rate_from
            days = await self.engine.read(partition_days)
            for day in expired_days(days, cutoff):

                async def drop(tx: Tx, day: int = day) -> bool:
                    return await self._drop_day(tx, day)

                dropped += await self.engine.write(drop)
            await self._drop_detached()

            async def strays(tx: Tx) -> int:
                # Rows of days that never had a partition (their minutes hold them: every
                # write folds its own rows).
                await tx.conn.execute("SELECT pg_advisory_xact_lock($1)", HISTORY_LOCK)
                gone = count_of(
                    await tx.conn.execute("DELETE FROM telemetry_default WHERE ts < $1", cutoff)
                )
                await tx.conn.execute(
                    "INSERT INTO telemetry_retention (id, full_rate_from, applied_at) "
                    "VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET full_rate_from = "
                    "GREATEST(telemetry_retention.full_rate_from, excluded.full_rate_from), "
                    "applied_at = excluded.applied_at",
                    cutoff,
                    now_us(),
                )
                return gone

            deleted = await self.engine.write(strays)
            # A message older than full-rate history can no longer be deduplicated.
            messages_deleted = await self.engine.write(
                lambda tx: _delete_messages(tx, cutoff)
            )  # fmt: skip
        if plan.downsampled_from is not None:
            minutes_deleted = await self.engine.write(
                lambda tx: _delete_minutes(tx, plan.downsampled_from or 0)
            )
        return RetentionReport(
            plan.full_rate_from, dropped, deleted, written, minutes_deleted, messages_deleted
        )  # fmt: skip

    async def _drop_day(self, tx: Tx, day: int) -> bool:
        conn = tx.conn
        await conn.execute("SELECT pg_advisory_xact_lock($1)", HISTORY_LOCK)
        name = partition_name(day)
        if name not in {partition_name(d) for d in await partition_days(conn)}:
            return False  # another process dropped it first
        began = time.perf_counter()
        await conn.execute(f"ALTER TABLE telemetry DETACH PARTITION {name}")
        await conn.execute(f"ALTER TABLE {name} RENAME TO {EXPIRED_PREFIX}{name[len(PREFIX) :]}")
        self.last_drop_s = time.perf_counter() - began
        return True

    async def _drop_detached(self) -> None:
        """Drop the detached partitions of expired days, each in a transaction of its own."""
        names = await self.engine.read(
            lambda conn: conn.fetch(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE "
                "'telemetry\\_expired\\_p%'"
            )
        )
        for row in names:

            async def drop(tx: Tx, name: str = row[0]) -> None:
                await tx.conn.execute(f"DROP TABLE IF EXISTS {name}")

            await self.engine.write(drop)

    async def boundary(self, conn: Conn) -> int | None:
        """Where full-rate history starts (None: nothing was ever expired)."""
        return await boundary(conn)


async def _create_partition(conn: Conn, day: int) -> None:
    name = partition_name(day)
    bounds = f"FROM ({day}) TO ({day + DAY_US})"
    moved = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM telemetry_default WHERE ts >= $1 AND ts < $2)",
        day,
        day + DAY_US,
    )
    if not moved:
        await conn.execute(f"CREATE TABLE {name} PARTITION OF telemetry FOR VALUES {bounds}")
        return
    # Rows of this day wait in the default partition: move them into the new table
    # before it becomes the day's partition (attaching checks the default holds none).
    await conn.execute(f"CREATE TABLE {name} (LIKE telemetry INCLUDING ALL)")
    await conn.execute(
        f"WITH moved AS (DELETE FROM telemetry_default WHERE ts >= $1 AND ts < $2 "
        f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
        day,
        day + DAY_US,
    )
    await conn.execute(f"ALTER TABLE telemetry ATTACH PARTITION {name} FOR VALUES {bounds}")


async def _delete_messages(tx: Tx, before: int) -> int:
    status = await tx.conn.execute("DELETE FROM telemetry_messages WHERE ts < $1", before)
    return count_of(status)


async def _delete_minutes(tx: Tx, before: int) -> int:
    await tx.conn.execute("SELECT pg_advisory_xact_lock($1)", HISTORY_LOCK)
    status = await tx.conn.execute("DELETE FROM telemetry_minutes WHERE minute < $1", before)
    return count_of(status)


def minute_buckets_sql(numeric: bool) -> str:
    """The statement of `minute_buckets`: $1 vehicle, $2 path, [$3, $4) minutes, $5 bucket
    size, $6 limit.

    The signal's entry is taken out of each minute row once, in a MATERIALIZED CTE: each
    row is `json` text with every signal of its vehicle (about 1.6 kB for 20 signals), and
    PostgreSQL parses all of it for each `->`. Inlined into the aggregate, the entry was
    taken three to four times per minute (the filter, then each use in the aggregates,
    with whole rows carried through the sort): the statement for a day by minute at 10
    million rows took 201 ms instead of 74 (median of 15, load 9; docs/benchmarks.md,
    "PostgreSQL history at 10 million rows on the one-row-per-minute layout").
    """
    if numeric:
        value = "SUM((e ->> 0)::float8) / NULLIF(SUM((e ->> 1)::bigint), 0)"
    else:
        value = (
            "((array_agg((e -> 3)::text ORDER BY minute DESC) "
            "FILTER (WHERE json_typeof(e -> 3) <> 'null'))[1])"
        )
    return (
        "WITH m AS MATERIALIZED (SELECT minute, signals -> $2::text AS e FROM telemetry_minutes "
        "WHERE vehicle_id = $1 AND minute >= $3 AND minute < $4) "
        f"SELECT (minute / $5) * $5 AS bucket, {value}, SUM((e ->> 1)::bigint) FROM m "
        "WHERE e IS NOT NULL GROUP BY bucket ORDER BY bucket LIMIT $6"
    )


async def minute_buckets(
    conn: Conn,
    vehicle_id: int,
    path: str,
    numeric: bool,
    lower: int,
    upper: int,
    bucket_us: int,
    limit: int,
) -> list[tuple[int, str | float, int]]:
    """Buckets of the downsampled history in [lower, upper): (bucket, value, count).

    Numeric: the count-weighted average (a float); otherwise the last value as JSON text.
    Each minute row holds every signal of its vehicle: the signal's entry is taken once.
    """
    rows = await conn.fetch(
        minute_buckets_sql(numeric), vehicle_id, path, lower, upper, bucket_us, limit
    )
    return [(int(row[0]), row[1], int(row[2])) for row in rows if row[1] is not None]
