"""PostgreSQL bucketed reads from the minute aggregates (one `json` row per vehicle and
minute, every signal of the vehicle in it): the read takes the asked signal out of each
row once, and still answers what was written."""

from __future__ import annotations

import asyncpg

from carcloud.ingest.models import Sample, TelemetryMessage
from carcloud.ingest.retention import MINUTE_US
from carcloud.storage.postgres import postgres_stores
from carcloud.storage.postgres.history import minute_buckets_sql
from tests.pg import postgres_database
from tests.storage.conftest import SECOND, VIN

START = 1_773_144_000 * SECOND  # 2026-03-10 12:00 UTC
PATHS = ("Vehicle.Speed", "Vehicle.IsMoving", "Vehicle.Exterior.AirTemperature")


def message(seq: int) -> TelemetryMessage:
    ts = START + seq * 10 * SECOND
    return TelemetryMessage(
        VIN,
        seq,
        ts,
        ts,
        (
            Sample("Vehicle.Speed", ts, float(seq)),
            Sample("Vehicle.IsMoving", ts, seq % 2 == 0),
            Sample("Vehicle.Exterior.AirTemperature", ts, 7.5),
        ),
    )


async def test_a_bucketed_read_parses_each_minute_row_once_and_answers_what_was_written() -> None:
    async with postgres_database() as url:
        stores = postgres_stores(url)
        await stores.open()
        try:
            await stores.registry.create_brand("volta", "Volta")
            await stores.registry.create_vehicle(VIN, "volta", "E1", 2025, [], "scrypt$h")
            # Three minutes of six messages (one every 10 s), three signals each.
            await stores.telemetry.write_telemetry([message(seq) for seq in range(18)], [])
            end = START + 3 * MINUTE_US

            speed = await stores.telemetry.history(VIN, "Vehicle.Speed", START, end, 100, MINUTE_US)
            moving = await stores.telemetry.history(
                VIN, "Vehicle.IsMoving", START, end, 100, MINUTE_US
            )

            assert [(p.ts, p.value, p.count) for p in speed] == [
                (START, 2.5, 6),
                (START + MINUTE_US, 8.5, 6),
                (START + 2 * MINUTE_US, 14.5, 6),
            ]
            # Not a number: each minute shows its last value (seq 5, 11, 17 are odd).
            assert [(p.value, p.count) for p in moving] == [(False, 6)] * 3

            conn = await asyncpg.connect(url)
            try:
                vehicle_id = await conn.fetchval("SELECT id FROM vehicles WHERE vin = $1", VIN)
                for numeric in (True, False):
                    plan = await conn.fetch(
                        "EXPLAIN (VERBOSE) " + minute_buckets_sql(numeric),
                        vehicle_id, "Vehicle.Speed", START, end, MINUTE_US, 100,
                    )  # fmt: skip
                    text = "\n".join(row[0] for row in plan)
                    # The row's JSON (every signal of the vehicle) is parsed by each
                    # `signals ->`: once per minute row, not once per use of the entry.
                    assert text.count("signals ->") == 1, text
            finally:
                await conn.close()
        finally:
            await stores.close()
