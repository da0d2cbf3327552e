"""Bulk history writes on PostgreSQL: asyncpg or psycopg 3, arrays, executemany or COPY.

    python bench/pg_write.py --database postgresql://postgres@127.0.0.1:5432/postgres \\
        [--batches 30] [--batch 1000] [--rounds 3]

Creates a database of its own (dropped at the end), migrated by carcloud, and writes
batches of telemetry history rows (one row per vehicle and time, 20 signals in JSONB,
as ingest writes them) into today's partition, each batch in one transaction, with
every method in turn, `--rounds` times alternating:

  asyncpg unnest         INSERT … SELECT FROM unnest($1::bigint[], …) ON CONFLICT DO UPDATE
                         (the production path before this bench)
  asyncpg executemany    one INSERT … ON CONFLICT per row, pipelined by executemany
  asyncpg copy+merge     COPY into a temporary table, then INSERT … SELECT … ON CONFLICT
  asyncpg copy           COPY straight into the table (no merge: a lower bound; ingest
                         needs the merge for redelivered messages)
  psycopg …              the same four with psycopg 3 (async, binary wheels)

Prints rows/s per method (median over rounds). psycopg is a measuring dependency only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psycopg

from carcloud.ingest.retention import day_start
from carcloud.storage.postgres import postgres_stores
from carcloud.timeutil import now_us

# The same 20-signal message as the end-to-end bench.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import SIGNALS  # noqa: E402

COLUMNS = ["vehicle_id", "ts", "seq", "received_at", "signals"]
MERGE = (
    "ON CONFLICT (vehicle_id, ts) DO UPDATE SET seq = excluded.seq, "
    "received_at = excluded.received_at, signals = telemetry.signals || excluded.signals"
)
UNNEST_PG = (
    "INSERT INTO telemetry (vehicle_id, ts, seq, received_at, signals) SELECT * FROM "
    "unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::jsonb[]) " + MERGE
)
UNNEST_PSY = UNNEST_PG.replace("$1", "%s").replace("$2", "%s").replace("$3", "%s")
UNNEST_PSY = UNNEST_PSY.replace("$4", "%s").replace("$5", "%s")
ROW_PG = "INSERT INTO telemetry VALUES ($1, $2, $3, $4, $5::jsonb) " + MERGE
ROW_PSY = "INSERT INTO telemetry VALUES (%s, %s, %s, %s, %s::jsonb) " + MERGE
STAGE = "CREATE TEMP TABLE stage (LIKE telemetry) ON COMMIT DELETE ROWS"
FROM_STAGE = "INSERT INTO telemetry SELECT * FROM stage " + MERGE

Row = tuple[int, int, int, int, str]


class Batches:
    """Fresh history rows: `size` rows a batch, 100 vehicles, each batch a new instant range."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.next_ts = day_start(now_us()) + 1_000_000  # today: today's partition
        self.signals = orjson.dumps(SIGNALS).decode()

    def take(self) -> list[Row]:
        rows = []
        for index in range(self.size):
            ts = self.next_ts + (index // 100) * 1000
            rows.append((1 + index % 100, ts, index, ts, self.signals))
        self.next_ts += (self.size // 100 + 1) * 1000
        return rows


async def asyncpg_methods(url: str) -> dict[str, Callable[[list[Row]], Awaitable[None]]]:
    conn = await asyncpg.connect(url, server_settings={"jit": "off"})
    await conn.execute(STAGE)

    async def unnest(rows: list[Row]) -> None:
        async with conn.transaction():
            await conn.execute(UNNEST_PG, *(list(column) for column in zip(*rows, strict=True)))

    async def executemany(rows: list[Row]) -> None:
        async with conn.transaction():
            await conn.executemany(ROW_PG, rows)

    async def copy_merge(rows: list[Row]) -> None:
        async with conn.transaction():
            await conn.copy_records_to_table("stage", records=rows, columns=COLUMNS)
            await conn.execute(FROM_STAGE)

    async def copy(rows: list[Row]) -> None:
        async with conn.transaction():
            await conn.copy_records_to_table("telemetry", records=rows, columns=COLUMNS)

    return {
        "asyncpg unnest": unnest,
        "asyncpg executemany": executemany,
        "asyncpg copy+merge": copy_merge,
        "asyncpg copy": copy,
    }


async def psycopg_methods(url: str) -> dict[str, Callable[[list[Row]], Awaitable[None]]]:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    await conn.execute("SET jit = off")
    await conn.execute(STAGE)

    async def unnest(rows: list[Row]) -> None:
        async with conn.transaction():
            columns: list[Any] = [list(column) for column in zip(*rows, strict=True)]
            await conn.execute(UNNEST_PSY, columns)  # type: ignore[arg-type]

    async def executemany(rows: list[Row]) -> None:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(ROW_PSY, rows)  # psycopg 3.1+: pipelined

    async def copy_into(table: str, rows: list[Row]) -> None:
        async with conn.cursor() as cur:
            sql = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN"
            async with cur.copy(sql) as copy:  # type: ignore[arg-type]
                for row in rows:
                    await copy.write_row(row)

    async def copy_merge(rows: list[Row]) -> None:
        async with conn.transaction():
            await copy_into("stage", rows)
            await conn.execute(FROM_STAGE)  # type: ignore[arg-type]

    async def copy(rows: list[Row]) -> None:
        async with conn.transaction():
            await copy_into("telemetry", rows)

    return {
        "psycopg unnest": unnest,
        "psycopg executemany": executemany,
        "psycopg copy+merge": copy_merge,
        "psycopg copy": copy,
    }


async def run(url: str, args: argparse.Namespace) -> dict[str, object]:
    stores = postgres_stores(url)
    await stores.open()
    await stores.telemetry.prepare_history([day_start(now_us())])
    await stores.close()
    methods = {**await asyncpg_methods(url), **await psycopg_methods(url)}
    batches = Batches(args.batch)
    rates: dict[str, list[float]] = {name: [] for name in methods}
    for method in methods.values():  # warm up: plans, caches, the partition's first pages
        await method(batches.take())
    for _ in range(args.rounds):
        for name, method in methods.items():
            work = [batches.take() for _ in range(args.batches)]
            began = time.perf_counter()
            for rows in work:
                await method(rows)
            rates[name].append(args.batches * args.batch / (time.perf_counter() - began))
    result: dict[str, object] = {}
    for name, measured in rates.items():
        median = statistics.median(measured)
        result[name] = round(median)
        print(f"{name:<22} {median:9.0f} rows/s  (rounds: {[round(r) for r in measured]})")
    return result


async def main(args: argparse.Namespace) -> dict[str, object]:
    name = f"carcloud_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(args.database)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        return await run(f"{args.database.rsplit('/', 1)[0]}/{name}", args)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", required=True, help="postgresql://USER@HOST/DB (server)")
    parser.add_argument("--batches", type=int, default=30, help="batches per method and round")
    parser.add_argument("--batch", type=int, default=1000, help="rows per batch (ingest: 1000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    if arguments.json:
        arguments.json.write_text(json.dumps(outcome, indent=2))
