"""Derive's cost over a sparse fleet: 50 cars, a row each every 30 s, derived after each round.

    python bench/derive_fleet_cost.py [--rounds 160]

A third of the cars drive the whole time (their trip stays open and grows by a row a
round), a third park, a third charge (the plug-in stays open). After each round's rows
are committed (SQLite), every car is derived, 16 at a time, as the derive role does.
Prints the median time of a round's derivations over all rounds and over the last 20
(the longest open trips), and the process's CPU time. To compare two versions of
derive, run it with each tree first on PYTHONPATH, in turns (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from carcloud.ingest.models import TelemetryMessage
from carcloud.storage.sqlite import sqlite_stores
from carcloud.telematics import timeline as tl
from carcloud.telematics.service import TelematicsService

SECOND = 1_000_000
START = 1_780_000_000 * SECOND
CARS, SAMPLE_S = 50, 30
KINDS = ("drive", "park", "charge")


def vin(index: int) -> str:
    return f"WVWZZZ1JZXW{index:06d}"


def sample(index: int, t: int, kind: str) -> dict[str, Any]:
    """Car `index` at second t: driving, parked or charging."""
    driving, charging = kind == "drive", kind == "charge"
    speed = 60 + 10 * math.sin(t / 600 + index) if driving else 0.0
    return {
        tl.SPEED: round(speed, 1), tl.GEAR: 1 if driving else 0,
        tl.POWER_STATE: "ON" if driving else "OFF",
        tl.ODOMETER: round(1000 + t * 60 / 3600 * driving, 3),
        tl.LATITUDE: 48.1 + t * 1e-5 * driving, tl.LONGITUDE: 11.5,
        tl.BATTERY_POWER: -12000.0 if driving else 7000.0 if charging else 0.0, tl.SOC: 50.0,
        tl.OUTSIDE_TEMPERATURE: 12.0, tl.CABLE: charging, tl.IS_CHARGING: charging,
        tl.DC_CURRENT: 0.0, tl.AC_CURRENT: 16.0 if charging else 0.0,
    }  # fmt: skip


async def measure(rounds: int, folder: Path) -> None:
    stores = sqlite_stores(folder / "fleet.db")
    await stores.open()
    try:
        await stores.registry.create_brand("volta", "Volta")
        for index in range(CARS):
            await stores.registry.create_vehicle(vin(index), "volta", "E1", 2025, [], "x")
        service = TelematicsService(stores.telematics)
        limit = asyncio.Semaphore(16)

        async def derive(index: int, ts: int) -> None:
            async with limit:
                await service.derive(vin(index), ts)

        took: list[float] = []
        cpu = time.process_time()
        for round_ in range(rounds):
            t = round_ * SAMPLE_S
            ts = START + t * SECOND
            await stores.telemetry.write_telemetry(
                [
                    TelemetryMessage(
                        vin(index),
                        round_,
                        ts,
                        ts,
                        tuple((p, ts, v) for p, v in sample(index, t, KINDS[index % 3]).items()),
                    )  # fmt: skip
                    for index in range(CARS)
                ],
                [],
            )
            began = time.perf_counter()
            await asyncio.gather(*(derive(index, ts) for index in range(CARS)))
            took.append(time.perf_counter() - began)
        cpu = time.process_time() - cpu
        [trip] = await stores.telematics.list_trips(vin(0), None)
        print(
            f"{rounds} rounds: derivations of a round median {statistics.median(took) * 1000:.1f}"
            f" ms, last 20 rounds {statistics.median(took[-20:]) * 1000:.1f} ms, CPU {cpu:.1f} s"
            f" (open trip of {trip.positions} positions at the end)"
        )
    finally:
        await stores.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=160)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(measure(args.rounds, Path(folder)))


if __name__ == "__main__":
    main()
