"""The ingest write on PostgreSQL alone: CPU per message in the database and in Python.

    python bench/pg_ingest_write.py --database postgresql://postgres@127.0.0.1:5432/postgres \\
        [--vehicles 50] [--batches 40] [--batch 1000] [--writers 1,4]

Creates a database of its own (dropped at the end), migrated by carcloud, registers
`--vehicles` vehicles and writes batches of `--batch` messages of 20 signals each
through `TelemetryStore.write_telemetry`, as ingest workers do (each message one new
instant of one vehicle, vehicles in turn; all in the same minutes, as in
bench/ingest.py). With W writers, W batches commit at once on W connections, the
same vehicles in each (several ingest processes sharing one consumer). Prints for
each writer count: messages/s, and µs of CPU per message of this database's backends
(user + system, read from /proc for the backends pg_stat_activity lists for it) and of
this Python process. The backends of other databases on the server are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
import uuid
from pathlib import Path

import asyncpg

from carcloud.ingest.models import TelemetryMessage
from carcloud.ingest.retention import day_start
from carcloud.storage.postgres import postgres_stores
from carcloud.timeutil import now_us

# The same 20-signal message as the end-to-end bench.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import SIGNALS  # noqa: E402


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Messages:
    """Fresh messages: one instant each, vehicles in turn, 1 ms apart per vehicle."""

    def __init__(self, vins: list[str]) -> None:
        self.vins, self.seq = vins, 0
        self.base = day_start(now_us()) + 3600 * 1_000_000

    def take(self, count: int) -> list[TelemetryMessage]:
        batch = []
        for index in range(count):
            vin = self.vins[index % len(self.vins)]
            seq = self.seq + index // len(self.vins) + 1
            ts = self.base + seq * 1000
            samples = tuple((path, ts, value) for path, value in SIGNALS.items())
            batch.append(TelemetryMessage(vin, seq, ts, ts, samples))
        self.seq += -(-count // len(self.vins))
        return batch


async def run(url: str, args: argparse.Namespace) -> dict[str, object]:
    stores = postgres_stores(url)
    await stores.open()
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url)
    try:
        await stores.telemetry.prepare_history([day_start(now_us())])
        await stores.registry.create_brand("bench", "Bench")
        vins = [f"BENCH{index:012d}" for index in range(args.vehicles)]
        for vin in vins:
            await stores.registry.create_vehicle(vin, "bench", "B1", 2025, [], "scrypt$h")
        messages = Messages(vins)
        counts = [int(n) for n in args.writers.split(",")]
        # Warm up, with as many connections open as the most writers need.
        await asyncio.gather(
            *(
                stores.telemetry.write_telemetry(messages.take(args.batch), [])
                for _ in range(max(counts))
            )
        )
        result: dict[str, object] = {}
        for writers in counts:
            work = [messages.take(args.batch) for _ in range(args.batches)]
            # The prepared batches stay alive for the whole run; an ingest worker holds
            # only the batch it writes. Keep the collector from rescanning them each time.
            gc.collect()
            gc.freeze()
            pids = [
                int(row[0])
                for row in await admin.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> "
                    "pg_backend_pid()",
                    name,
                )
            ]
            pg_before, own_before = cpu_seconds(pids), own_cpu()
            began = time.perf_counter()
            queue = list(reversed(work))

            async def writer(queue: list[list[TelemetryMessage]] = queue) -> None:
                while queue:
                    await stores.telemetry.write_telemetry(queue.pop(), [])

            await asyncio.gather(*(writer() for _ in range(writers)))
            elapsed = time.perf_counter() - began
            total = args.batches * args.batch
            pg_us = (cpu_seconds(pids) - pg_before) * 1e6 / total
            own_us = (own_cpu() - own_before) * 1e6 / total
            result[f"writers_{writers}"] = {
                "msgs_per_s": round(total / elapsed),
                "postgres_cpu_us_per_msg": round(pg_us, 1),
                "python_cpu_us_per_msg": round(own_us, 1),
                "load_average": os.getloadavg()[0],
            }
            print(
                f"{writers} writer(s): {total / elapsed:7.0f} msg/s; CPU µs/msg: PostgreSQL "
                f"{pg_us:.1f}, Python {own_us:.1f}; load average {os.getloadavg()[0]:.1f}"
            )
        await asyncio.sleep(1.0)  # table statistics are flushed at the end of transactions
        hot = {
            row[0]: f"{row[2]} of {row[1]} updates HOT"
            for row in await admin.fetch(
                "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                "WHERE relname IN ('vehicle_latest', 'telemetry_minutes')"
            )
        }
        print(f"updates: {hot}")
        result["hot_updates"] = hot
        return result
    finally:
        await admin.close()
        await stores.close()


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
    parser.add_argument("--database", required=True, help="postgresql://USER@HOST/DB")
    parser.add_argument("--vehicles", type=int, default=50)
    parser.add_argument("--batches", type=int, default=40, help="batches per writer count")
    parser.add_argument("--batch", type=int, default=1000, help="messages per batch")
    parser.add_argument("--writers", default="1,4", help="concurrent writers to try")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    print(json.dumps(outcome, indent=2))
    if arguments.json:
        arguments.json.write_text(json.dumps(outcome, indent=2))
