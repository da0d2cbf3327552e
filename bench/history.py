"""History benchmark: does a time-range query stay fast as the history grows?

    python bench/history.py [--vehicles 10] [--hours 2,20,200]
    python bench/history.py --database postgresql://postgres@127.0.0.1:5432/postgres \
        --hours 24,278 --retention
    python bench/history.py --database postgresql://postgres@127.0.0.1:5432/postgres \
        --hours 278 --rollup

Fills a store, one message per vehicle per second of vehicle time with 20 signals,
and after each size times the same questions: one hour of one signal of one
vehicle (3,600 points), the same hour by minute, and a day of it by minute. With
the (vehicle, time) key the cost depends on the answer's size, not on the
history's: the ratio between sizes should stay near 1.

SQLite (default) is filled through the storage interface. PostgreSQL: the bench
creates a database of its own on the server of --database (and drops it at the
end), makes the days' partitions, and loads history rows with COPY (the history
table only; 10 vehicles x 278 h is 10 million rows), then folds them into minutes
(ingest's writes fold their own rows; a bulk load is folded once). --retention then times
retention on the oldest days: one day folded into minutes and dropped, one day
dropped without folding. --rollup then runs the minute rollup over the whole history
(as the ingest role's pass would have, minute by minute; on PostgreSQL there is
nothing left to fold), asks the same questions again (bucketed ones now answer from
the aggregates up to the watermark), and times the pass that follows one more minute
of ingest (written through the store, as ingest writes it; on PostgreSQL the write
includes folding its minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import orjson

from carcloud.ingest.models import TelemetryMessage
from carcloud.ingest.retention import DAY_US, MINUTE_US, RetentionPlan, day_start
from carcloud.ingest.store import TelemetryStore
from carcloud.storage import Stores
from carcloud.storage.postgres import postgres_stores
from carcloud.storage.postgres.engine import Tx
from carcloud.storage.postgres.rollup import fold_raw
from carcloud.storage.postgres.telemetry import PostgresTelemetryStore
from carcloud.storage.sqlite import sqlite_stores

SIGNALS = [
    ("Vehicle.Speed", 50.0),
    ("Vehicle.CurrentLocation.Latitude", 52.5),
    ("Vehicle.CurrentLocation.Longitude", 13.4),
    ("Vehicle.TraveledDistance", 1000.0),
    ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 60.0),
    ("Vehicle.Powertrain.Range", 200_000),
    ("Vehicle.Exterior.AirTemperature", 7.0),
    ("Vehicle.Cabin.HVAC.AmbientAirTemperature", 21.0),
    ("Vehicle.IsMoving", True),
    ("Vehicle.LowVoltageBattery.CurrentVoltage", 14.1),
    ("Vehicle.CurrentLocation.Heading", 90.0),
    ("Vehicle.CurrentLocation.Altitude", 35.0),
    ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed", 60.0),
    ("Vehicle.Powertrain.TractionBattery.Charging.IsCharging", False),
    ("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure", 250),
    ("Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure", 250),
    ("Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure", 250),
    ("Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure", 250),
    ("Vehicle.Powertrain.Transmission.CurrentGear", 1),
    ("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked", True),
]
SECOND = 1_000_000
T0 = 1_767_225_600 * SECOND  # 2026-01-01


async def fill(store: TelemetryStore, vins: list[str], first_s: int, last_s: int) -> None:
    batch: list[TelemetryMessage] = []
    for second in range(first_s, last_s):
        ts = T0 + second * SECOND
        for vin in vins:
            samples = tuple((path, ts, value) for path, value in SIGNALS)
            batch.append(TelemetryMessage(vin, second, ts, ts, samples))
        if len(batch) >= 5000:
            await store.write_telemetry(batch, [])
            batch = []
    if batch:
        await store.write_telemetry(batch, [])


def history_rows(vehicle_ids: list[int], first_s: int, last_s: int) -> Iterator[tuple[object, ...]]:
    """The rows `fill` would store, for COPY: (vehicle_id, ts, seq, received_at, signals)."""
    signals = orjson.dumps(dict(SIGNALS)).decode()
    for second in range(first_s, last_s):
        ts = T0 + second * SECOND
        for vehicle_id in vehicle_ids:
            yield (vehicle_id, ts, second, ts, signals)


async def copy_fill(url: str, vehicle_ids: list[int], first_s: int, last_s: int) -> None:
    """Load history rows with COPY, in chunks of an hour of the whole fleet."""
    conn = await asyncpg.connect(url)
    try:
        for chunk_s in range(first_s, last_s, 3600):
            rows = history_rows(vehicle_ids, chunk_s, min(chunk_s + 3600, last_s))
            await conn.copy_records_to_table(
                "telemetry",
                records=rows,
                columns=["vehicle_id", "ts", "seq", "received_at", "signals"],
            )
        await conn.execute("ANALYZE telemetry")
    finally:
        await conn.close()


async def fold_loaded(store: TelemetryStore, first_s: int, last_s: int) -> float:
    """PostgreSQL folds every write's rows into their minutes as it writes them; rows
    loaded around ingest with COPY are folded here once, a day at a time (the bulk-load
    path). Returns the seconds it took."""
    assert isinstance(store, PostgresTelemetryStore)
    began = time.perf_counter()
    for day_s in range(first_s, last_s, 86_400):
        lower, upper = T0 + day_s * SECOND, T0 + min(day_s + 86_400, last_s) * SECOND

        async def fold(tx: Tx, lower: int = lower, upper: int = upper) -> int:
            return await fold_raw(tx.conn, "telemetry", lower, upper)

        await store.engine.write(fold)
    return time.perf_counter() - began


async def time_query(
    store: TelemetryStore, vin: str, start_s: int, seconds: int, bucket: int | None
) -> float:
    start = T0 + start_s * SECOND
    timings = []
    for _ in range(7):
        began = time.perf_counter()
        points = await store.history(
            vin, "Vehicle.Speed", start, start + seconds * SECOND, 10_000, bucket
        )
        timings.append(time.perf_counter() - began)
        expected = seconds * SECOND // bucket if bucket else seconds
        assert len(points) == expected, len(points)
    return statistics.median(timings) * 1000


@asynccontextmanager
async def bench_stores(database: str | None) -> AsyncIterator[tuple[Stores, str, Path | None]]:
    """Stores on a fresh SQLite file, or on a fresh PostgreSQL database dropped afterwards."""
    if database is None:
        root = Path(tempfile.mkdtemp(prefix="carcloud-history-"))
        stores = sqlite_stores(root / "carcloud.db")
        await stores.open()
        try:
            yield stores, f"sqlite:///{root / 'carcloud.db'}", root / "carcloud.db"
        finally:
            await stores.close()
            shutil.rmtree(root, ignore_errors=True)
        return
    name = f"carcloud_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{database.rsplit('/', 1)[0]}/{name}"
    stores = postgres_stores(url)
    try:
        await stores.open()
        yield stores, url, None
    finally:
        await stores.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def database_mb(url: str, path: Path | None) -> float:
    if path is not None:
        return round((await asyncio.to_thread(path.stat)).st_size / 1e6, 1)
    conn = await asyncpg.connect(url)
    try:
        return round(
            int(await conn.fetchval("SELECT pg_database_size(current_database())")) / 1e6, 1
        )
    finally:
        await conn.close()


NARROW = """
CREATE TABLE telemetry_narrow (
    vehicle_id BIGINT NOT NULL, path TEXT NOT NULL, ts BIGINT NOT NULL, value FLOAT8,
    PRIMARY KEY (vehicle_id, path, ts) INCLUDE (value)
)"""


async def time_narrow(url: str, vehicle_ids: list[int], hours: int) -> dict[str, float]:
    """The same history as a row per value (covering index), and the same three questions."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(NARROW)
        began = time.perf_counter()
        for chunk_s in range(0, hours * 3600, 3600):
            rows = (
                (vehicle_id, path, T0 + second * SECOND, float(value))
                for second in range(chunk_s, chunk_s + 3600)
                for vehicle_id in vehicle_ids
                for path, value in SIGNALS
            )
            await conn.copy_records_to_table("telemetry_narrow", records=rows)
        load_s = time.perf_counter() - began
        await conn.execute("VACUUM ANALYZE telemetry_narrow")  # index-only scans need it
        size = await conn.fetchval("SELECT pg_total_relation_size('telemetry_narrow')")
        wide = await conn.fetchval("SELECT SUM(pg_total_relation_size(inhrelid)) FROM pg_inherits "
                                   "WHERE inhparent = 'telemetry'::regclass")  # fmt: skip
        vehicle_id = vehicle_ids[len(vehicle_ids) // 2]
        middle = T0 + (hours // 2) * 3600 * SECOND
        day_from = T0 + max(hours * 3600 - 86_400, 0) * SECOND
        questions = {
            "hour_of_one_signal_ms": (
                "SELECT ts, value FROM telemetry_narrow WHERE vehicle_id = $1 AND path = $2 "
                "AND ts >= $3 AND ts < $4 ORDER BY ts",
                middle, 3600, 3600,
            ),
            "hour_by_minute_ms": (
                "SELECT (ts / 60000000) * 60000000 AS b, AVG(value), COUNT(*) FROM "
                "telemetry_narrow WHERE vehicle_id = $1 AND path = $2 AND ts >= $3 AND ts < $4 "
                "GROUP BY b ORDER BY b",
                middle, 3600, 60,
            ),
            "day_by_minute_ms": (
                "SELECT (ts / 60000000) * 60000000 AS b, AVG(value), COUNT(*) FROM "
                "telemetry_narrow WHERE vehicle_id = $1 AND path = $2 AND ts >= $3 AND ts < $4 "
                "GROUP BY b ORDER BY b",
                day_from, min(86_400, hours * 3600), min(1440, hours * 60),
            ),
        }  # fmt: skip
        result: dict[str, float] = {
            "narrow_rows": hours * 3600 * len(vehicle_ids) * len(SIGNALS),
            "narrow_load_s": round(load_s, 1),
            "narrow_mb": round(size / 1e6, 1),
            "jsonb_mb": round(int(wide) / 1e6, 1),
        }
        for name, (sql, start, seconds, expected) in questions.items():
            timings = []
            for _ in range(7):
                began = time.perf_counter()
                rows = await conn.fetch(
                    sql, vehicle_id, "Vehicle.Speed", start, start + seconds * SECOND
                )
                timings.append(time.perf_counter() - began)
                assert len(rows) == expected, (name, len(rows))
            result[name] = round(statistics.median(timings) * 1000, 2)
        print(f"narrow layout (a row per value, covering index): {result}")
        await conn.execute("DROP TABLE telemetry_narrow")
        return result
    finally:
        await conn.close()


async def time_retention(stores: Stores, vin: str) -> dict[str, float]:
    """Retention of the two oldest days: fold + drop the first, drop the second."""
    store = stores.telemetry
    first_day = day_start(T0)
    timings: dict[str, float] = {}
    for label, days, downsample in (("fold_and_drop", 1, True), ("drop_only", 2, False)):
        cutoff = first_day + days * DAY_US
        plan = RetentionPlan(cutoff, None if downsample else cutoff)
        began = time.perf_counter()
        report = await store.expire_history(plan)
        timings[f"{label}_s"] = round(time.perf_counter() - began, 3)
        if isinstance(store, PostgresTelemetryStore):
            timings[f"{label}_partition_drop_s"] = round(store.partitions.last_drop_s, 4)
        print(f"retention {label}: {report} in {timings[f'{label}_s']} s")
        if downsample:
            # The folded day now answers from the per-minute aggregates.
            hours_left = (day_start(T0) + DAY_US - T0) // (3600 * SECOND)
            minutes_ms = await time_query(store, vin, 0, hours_left * 3600, 60 * SECOND)
            timings["folded_day_by_minute_ms"] = round(minutes_ms, 2)
            print(f"the folded day by minute, from the aggregates: {minutes_ms:.2f} ms")
    return timings


def minute_of_ingest(vins: list[str], second: int) -> list[TelemetryMessage]:
    """A minute of the fleet's messages from `second`, as ingest would write them."""
    batch = []
    for offset in range(60):
        ts = T0 + (second + offset) * SECOND
        for vin in vins:
            samples = tuple((path, ts, value) for path, value in SIGNALS)
            batch.append(TelemetryMessage(vin, second + offset, ts, ts, samples))
    return batch


async def time_rollup(stores: Stores, vins: list[str], hours: int) -> dict[str, float]:
    """Roll the whole history up, ask again, then time passes after a minute of ingest.

    On PostgreSQL the COPY-loaded rows were folded after the load and each write folds
    its own minute; no row beside the history table is needed (the write merges a
    vehicle's latest values and minutes into rows it creates when missing)."""
    store = stores.telemetry
    end = T0 + hours * 3600 * SECOND
    began = time.perf_counter()
    report = await store.roll_up_history(end)
    backfill_s = time.perf_counter() - began
    rows = await store.count_samples()
    print(f"rollup of the whole history: {report} in {backfill_s:.1f} s "
          f"({rows / backfill_s:,.0f} rows/s)")  # fmt: skip
    middle = (hours // 2) * 3600
    vin = vins[len(vins) // 2]
    result: dict[str, float] = {
        "backfill_s": round(backfill_s, 1),
        "backfill_rows_per_s": round(rows / backfill_s),
        "minutes_written": report.minutes_written,
        "hour_of_one_signal_ms": round(await time_query(store, vin, middle, 3600, None), 2),
        "hour_by_minute_ms": round(await time_query(store, vin, middle, 3600, MINUTE_US), 2),
    }
    day_from = min(middle, max(hours * 3600 - 86_400, 0))
    day_s = min(86_400, hours * 3600)
    result["day_by_minute_ms"] = round(await time_query(store, vin, day_from, day_s, MINUTE_US), 2)
    # The last day up to now, across the watermark: aggregates, then the raw tail.
    writes, passes, idle = [], [], []
    for minute in range(7):
        second = hours * 3600 + minute * 60
        batch = minute_of_ingest(vins, second)
        began = time.perf_counter()
        await store.write_telemetry(batch, [])
        writes.append(time.perf_counter() - began)
        began = time.perf_counter()
        live = await store.roll_up_history(T0 + (second + 60) * SECOND)
        passes.append(time.perf_counter() - began)
        # PostgreSQL: the write folded its minute already, the pass has nothing to do.
        folded_by_pass = 0 if store.folds_at_write else len(vins) * len(SIGNALS)
        assert live.minutes_written == folded_by_pass, live
        began = time.perf_counter()
        await store.roll_up_history(T0 + (second + 60) * SECOND)
        idle.append(time.perf_counter() - began)
    # One more minute not rolled up yet: the last day is aggregates, then that raw tail.
    await store.write_telemetry(minute_of_ingest(vins, hours * 3600 + 7 * 60), [])
    total_s = hours * 3600 + 8 * 60
    span_s = min(86_400, total_s)
    result["last_day_with_tail_by_minute_ms"] = round(
        await time_query(store, vin, total_s - span_s, span_s, MINUTE_US), 2
    )
    result.update(
        {
            "minute_of_ingest_write_ms": round(statistics.median(writes) * 1000, 1),
            "rollup_pass_after_a_minute_ms": round(statistics.median(passes) * 1000, 1),
            "rollup_pass_idle_ms": round(statistics.median(idle) * 1000, 1),
        }
    )
    print(f"after the rollup: {result}")
    return result


async def main(args: argparse.Namespace) -> dict[str, object]:
    results: list[dict[str, float]] = []
    outcome: dict[str, object] = {"database": "postgresql" if args.database else "sqlite"}
    async with bench_stores(args.database) as (stores, url, path):
        await stores.registry.create_brand("bench", "Bench")
        vins = [f"HIST{index:013d}" for index in range(args.vehicles)]
        for vin in vins:
            await stores.registry.create_vehicle(vin, "bench", "B1", 2025, [], "x")
        store = stores.telemetry
        sizes = sorted(int(h) for h in args.hours.split(","))
        if args.database:
            days = range(day_start(T0), T0 + sizes[-1] * 3600 * SECOND, DAY_US)
            await store.prepare_history(list(days))
            vehicle_ids = [(await stores.registry.get_vehicle(vin)).id for vin in vins]
        filled = 0
        for hours in sizes:
            began = time.perf_counter()
            fold_s = None
            if args.database:
                await copy_fill(url, vehicle_ids, filled * 3600, hours * 3600)
                if store.folds_at_write:
                    fold_s = await fold_loaded(store, filled * 3600, hours * 3600)
            else:
                await fill(store, vins, filled * 3600, hours * 3600)
            fill_s = time.perf_counter() - began
            filled = hours
            rows = await store.count_samples()
            # Ask about the middle of the history: no help from being at either end.
            middle = (hours // 2) * 3600
            vin = vins[len(vins) // 2]
            raw_ms = await time_query(store, vin, middle, 3600, None)
            minute_ms = await time_query(store, vin, middle, 3600, 60 * SECOND)
            day_from = min(middle, max(hours * 3600 - 86_400, 0))
            day_s = min(86_400, hours * 3600)
            day_ms = await time_query(store, vin, day_from, day_s, 60 * SECOND)
            results.append(
                {
                    "history_rows": rows,
                    "signal_values": rows * len(SIGNALS),
                    "database_mb": await database_mb(url, path),
                    "hour_of_one_signal_ms": round(raw_ms, 2),
                    "hour_by_minute_ms": round(minute_ms, 2),
                    "day_by_minute_ms": round(day_ms, 2),
                    "day_hours": day_s // 3600,
                    "fill_seconds": round(fill_s, 1),
                }
            )
            if fold_s is not None:
                results[-1]["fold_of_loaded_rows_seconds"] = round(fold_s, 1)
                print(f"(COPY-loaded rows folded into minutes in {fold_s:.1f} s)")
            print(
                f"{rows:>10,} rows ({rows * len(SIGNALS):>12,} values, "
                f"{results[-1]['database_mb']} MB, filled in {fill_s:.0f} s): one hour of one "
                f"signal {raw_ms:6.2f} ms, by minute {minute_ms:6.2f} ms, "
                f"{day_s // 3600} h by minute {day_ms:6.2f} ms"
            )
        if args.narrow and args.database:
            outcome["narrow"] = await time_narrow(url, vehicle_ids, sizes[0])
        if args.rollup:
            outcome["rollup"] = await time_rollup(stores, vins, sizes[-1])
        if args.retention:
            outcome["retention"] = await time_retention(stores, vins[len(vins) // 2])
    first, last = results[0], results[-1]
    ratio = last["hour_of_one_signal_ms"] / first["hour_of_one_signal_ms"]
    growth = last["history_rows"] // first["history_rows"]
    print(f"history grew {growth}×; query time changed {ratio:.2f}×")
    outcome.update({"runs": results, "growth_query_time_ratio": round(ratio, 2)})
    return outcome


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vehicles", type=int, default=10)
    parser.add_argument("--hours", default="2,20,200", help="history sizes, in hours per vehicle")
    parser.add_argument(
        "--database",
        help="a PostgreSQL server URL (the bench creates and drops a database of its own); "
        "default: a SQLite file",
    )
    parser.add_argument(
        "--retention", action="store_true", help="then time retention of the two oldest days"
    )
    parser.add_argument(
        "--rollup",
        action="store_true",
        help="then roll the history up into minutes, ask again, and time the minute's pass",
    )
    parser.add_argument(
        "--narrow",
        action="store_true",
        help="PostgreSQL: also load the first size as a row per value and time the same questions",
    )
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    if arguments.json:
        arguments.json.write_text(json.dumps(outcome, indent=2))
