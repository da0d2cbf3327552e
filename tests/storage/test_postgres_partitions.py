"""PostgreSQL history partitions: made ahead of time, never losing a row, and migrated into."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

import asyncpg

from carcloud.ingest.maintenance import maintain_history
from carcloud.ingest.models import Sample, TelemetryMessage
from carcloud.ingest.retention import DAY_US, DAYS_AHEAD, RetentionPolicy, day_start
from carcloud.ingest.store import TelemetryStore
from carcloud.storage.postgres import postgres_stores
from carcloud.storage.postgres.history import partition_name
from tests.pg import postgres_database
from tests.storage.conftest import SECOND, VIN

NOW = 1_773_144_000 * SECOND  # 2026-03-10 12:00 UTC
TODAY = day_start(NOW)


def speed(seq: int, ts: int) -> TelemetryMessage:
    return TelemetryMessage(VIN, seq, ts, ts, (Sample("Vehicle.Speed", ts, float(seq)),))


@asynccontextmanager
async def one_car() -> AsyncIterator[tuple[str, TelemetryStore]]:
    """A database of its own with brand `volta` and vehicle VIN: its URL and telemetry store."""
    async with postgres_database() as url:
        stores = postgres_stores(url)
        await stores.open()
        try:
            await stores.registry.create_brand("volta", "Volta")
            await stores.registry.create_vehicle(VIN, "volta", "E1", 2025, [], "scrypt$h")
            yield url, stores.telemetry
        finally:
            await stores.close()


async def partitions(url: str) -> dict[str, int]:
    """Partition name -> rows in it."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT tableoid::regclass::text, COUNT(*) FROM telemetry GROUP BY 1"
        )
        names = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'telemetry'::regclass"
        )
    finally:
        await conn.close()
    counts = {row[0]: 0 for row in names}
    counts.update({row[0]: row[1] for row in rows})
    return counts


async def test_days_are_partitioned_ahead_and_strays_moved_never_lost() -> None:
    async with one_car() as (url, telemetry):
        # A car's backlog from a month ago arrives before any partition exists.
        backlog = TODAY - 30 * DAY_US
        await telemetry.write_telemetry([speed(1, backlog), speed(2, backlog + SECOND)], [])
        assert (await partitions(url))["telemetry_default"] == 2

        report = await maintain_history(telemetry, RetentionPolicy(), NOW)

        made = await partitions(url)
        ahead = {partition_name(TODAY + offset * DAY_US) for offset in range(-1, DAYS_AHEAD + 1)}
        assert ahead <= set(made)
        assert made[partition_name(backlog)] == 2 and made["telemetry_default"] == 0
        assert report.partitions_created == len(ahead) + 1
        # Today's rows go to today's partition; nothing is lost on the way.
        await telemetry.write_telemetry([speed(3, NOW)], [])
        assert (await partitions(url))[partition_name(TODAY)] == 1
        values = await telemetry.history(VIN, "Vehicle.Speed", None, None, 10)
        assert [point.value for point in values] == [1.0, 2.0, 3.0]
        again = await maintain_history(telemetry, RetentionPolicy(), NOW)
        assert again.partitions_created == 0


async def test_an_existing_database_migrates_its_history_into_partitions() -> None:
    async with postgres_database() as url:
        # A database as the first release left it: schema 0001, history in one table.
        conn = await asyncpg.connect(url)
        try:
            folder = resources.files("carcloud.storage.postgres.migrations")
            await conn.execute((folder / "0001_initial.sql").read_text("utf-8"))
            await conn.execute(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at BIGINT NOT NULL); "
                "INSERT INTO schema_migrations VALUES (1, '0001_initial.sql', 0); "
                "INSERT INTO brands (slug, name, created_at) VALUES ('volta', 'Volta', 0); "
                f"INSERT INTO vehicles (vin, brand_id, model, secret_hash, created_at) "
                f"VALUES ('{VIN}', 1, 'E1', 'x', 0); "
                f"INSERT INTO telemetry VALUES (1, {NOW}, 7, {NOW}, "
                """'{"Vehicle.Speed": 42.0}')"""
            )
        finally:
            await conn.close()
        stores = postgres_stores(url)
        await stores.open()
        try:
            assert await stores.engine.schema_version() >= 2
            assert (await partitions(url))["telemetry_default"] == 1
            await maintain_history(stores.telemetry, RetentionPolicy(), NOW)
            assert (await partitions(url))[partition_name(TODAY)] == 1
            points = await stores.telemetry.history(VIN, "Vehicle.Speed", None, None, 10)
            assert [(point.ts, point.value) for point in points] == [(NOW, 42.0)]
        finally:
            await stores.close()


async def test_a_database_of_the_rollup_pass_has_its_unfolded_rows_folded() -> None:
    """Before migration 0013 a periodic pass folded minutes behind a watermark; after it
    every write folds its own rows, so the rows the pass had not reached are folded once
    by the migration and bucketed history keeps answering from every row."""
    minute = 60 * SECOND
    first = NOW - 10 * minute
    async with postgres_database() as url:
        conn = await asyncpg.connect(url)
        try:
            folder = resources.files("carcloud.storage.postgres.migrations")
            await conn.execute(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at BIGINT NOT NULL)"
            )
            for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
                if not entry.name.endswith(".sql") or int(entry.name.split("_")[0]) >= 13:
                    continue
                await conn.execute(entry.read_text("utf-8"))
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, 0)",
                    int(entry.name.split("_")[0]),
                    entry.name,
                )
            await conn.execute(
                "INSERT INTO brands (slug, name, created_at) VALUES ('volta', 'Volta', 0); "
                f"INSERT INTO vehicles (vin, brand_id, model, secret_hash, created_at) "
                f"VALUES ('{VIN}', 1, 'E1', 'x', 0)"
            )
            # Five minutes of rows, speed = the minute's index; the pass folded two of them.
            for index in range(5):
                for second in range(0, 60, 10):
                    ts = first + index * minute + second * SECOND
                    await conn.execute(
                        "INSERT INTO telemetry VALUES (1, $1, $2, $1, $3::jsonb)",
                        ts,
                        index * 6 + second,
                        f'{{"Vehicle.Speed": {float(index)}}}',
                    )
            for index in range(2):
                await conn.execute(
                    "INSERT INTO telemetry_minutes (vehicle_id, path, minute, average, count, "
                    "last) VALUES (1, 'Vehicle.Speed', $1, $2, 6, $3::jsonb)",
                    first + index * minute,
                    float(index),
                    str(float(index)),
                )
            await conn.execute(
                "INSERT INTO telemetry_rollup VALUES (1, $1, NULL)", first + 2 * minute
            )
            # Latest values, one row per signal before migration 0015.
            await conn.execute(
                "INSERT INTO latest_values VALUES (1, 'Vehicle.Speed', $1, '4.0'), "
                "(1, 'Vehicle.IsMoving', $1, 'true')",
                first + 4 * minute,
            )
            await conn.execute("INSERT INTO latest_received VALUES (1, $1)", first + 5 * minute)
        finally:
            await conn.close()
        stores = postgres_stores(url)
        await stores.open()
        try:
            points = await stores.telemetry.history(
                VIN, "Vehicle.Speed", first, first + 5 * minute, 10, minute
            )
            assert [(p.ts, p.value, p.count) for p in points] == [
                (first + index * minute, float(index), 6) for index in range(5)
            ]
            latest = await stores.telemetry.latest_state(VIN)
            assert latest.received_at == first + 5 * minute
            assert [(v.path, v.ts, v.value) for v in latest.values] == [
                ("Vehicle.IsMoving", first + 4 * minute, True),
                ("Vehicle.Speed", first + 4 * minute, 4.0),
            ]
        finally:
            await stores.close()


async def test_an_expired_day_is_detached_then_dropped_and_leftovers_go_next_time() -> None:
    """Retention detaches the day's partition (a short lock of `telemetry`) and drops it in
    a transaction of its own; a detached day left by a pass that stopped in between is
    dropped by the next pass. Nothing of it stays, and the newer days answer as before."""
    async with one_car() as (url, telemetry):
        old = TODAY - 10 * DAY_US
        await maintain_history(telemetry, RetentionPolicy(), old)  # its days' partitions
        await telemetry.write_telemetry([speed(1, old), speed(2, NOW)], [])
        await maintain_history(telemetry, RetentionPolicy(), NOW)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE TABLE telemetry_expired_p20200101 (x int)")
        finally:
            await conn.close()

        report = await maintain_history(telemetry, RetentionPolicy(full_rate_days=7), NOW)

        assert report.retention is not None and report.retention.days_dropped >= 1
        assert partition_name(day_start(old)) not in await partitions(url)
        conn = await asyncpg.connect(url)
        try:
            left = await conn.fetch(
                "SELECT relname FROM pg_class WHERE relname LIKE 'telemetry\\_expired%'"
            )
        finally:
            await conn.close()
        assert left == []
        values = await telemetry.history(VIN, "Vehicle.Speed", None, None, 10)
        assert [point.value for point in values] == [2.0]
