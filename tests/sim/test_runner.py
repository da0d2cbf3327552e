"""The simulator on the wire: determinism, and gaps in connectivity that lose nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from carcloud.sim.fleet import build_fleet
from carcloud.sim.runner import FleetRunner, forget_receipted, next_sample
from carcloud.sim.session import SimulationOptions, cars_for, prepare
from carcloud.timeutil import parse_rfc3339_us
from tests.platform import Platform

START = 1_790_000_000.0


def first_messages(seed: int, count: int) -> list[tuple[str, str, dict[str, object]]]:
    fleet = build_fleet(6, seed, start_epoch_s=START)
    return [(v.vin, *next_sample(v, 1.0)) for _ in range(count) for v in fleet]


def test_same_seed_same_first_messages_and_another_seed_differs() -> None:
    first = first_messages(seed=42, count=30)
    assert first == first_messages(seed=42, count=30)
    other = first_messages(seed=43, count=30)
    assert [vin for vin, _, _ in first] != [vin for vin, _, _ in other]


def options_for(platform: Platform, tmp_path: Path, vehicles: int) -> SimulationOptions:
    return SimulationOptions(
        api_url=platform.url,
        api_key=platform.operator_key,
        mqtt_host="127.0.0.1",
        mqtt_port=platform.mqtt_port,
        vehicles=vehicles,
        seed=5,
        rate=5.0,
        speedup=10.0,
        start_epoch_s=START,
        credentials_file=tmp_path / "creds.json",
    )


@pytest.mark.slow
def test_a_car_that_loses_the_network_delivers_its_gap_in_order(
    platform: Platform, tmp_path: Path
) -> None:
    options = options_for(platform, tmp_path, vehicles=3)
    vehicles, credentials = prepare(options)
    cars = cars_for(vehicles, credentials, options.seed)
    runner = FleetRunner(cars, "127.0.0.1", platform.mqtt_port, rate=5.0, speedup=10.0)
    tunnel = cars[0]

    async def drive() -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(runner.run(stop, duration_s=8.0))
        await asyncio.sleep(2.0)
        await runner.go_offline(tunnel, sim_seconds=30.0)  # 3 s of real time in a tunnel
        await run

    asyncio.run(drive())
    assert runner.stats.errors == 0, runner.stats.last_error
    # Every telemetry message was named by a commit receipt before the cars left.
    assert [car.unreceipted for car in cars] == [{}, {}, {}]
    assert runner.stats.receipted > 0
    ticks = runner.stats.ticks // len(cars)
    with platform.api() as api:
        for car in cars:

            def points(vin: str = car.vin) -> list[dict[str, object]]:
                found = api.get(
                    f"/vehicles/{vin}/signals", path="Vehicle.TraveledDistance", limit=10_000
                )["points"]
                return found if len(found) >= ticks else []

            stored = platform.wait_for(points, timeout=20, what=f"all samples of {car.vin}")
            times = [parse_rfc3339_us(p["ts"]) for p in stored]
            assert len(times) == ticks, f"{car.vin}: {len(times)} stored of {ticks} sampled"
            assert times == sorted(times)
            steps = {b - a for a, b in zip(times, times[1:], strict=False)}
            assert steps == {2_000_000}, f"{car.vin}: gaps in the stored history: {steps}"
            odometer = [float(p["value"]) for p in stored]  # type: ignore[arg-type]
            assert odometer == sorted(odometer)
        # The gap went out as a few batch messages; the others sent one message per sample.
        assert tunnel.seq < ticks == cars[1].seq


def test_a_receipt_forgets_exactly_the_seqs_it_names() -> None:
    waiting = {seq: (b"", 0.0) for seq in (3, 4, 5, 9, 12)}
    assert forget_receipted(waiting, [(1, 4), (9, 9)]) == 3
    assert list(waiting) == [5, 12]
    assert forget_receipted(waiting, [(0, 2**53 - 1)]) == 2  # a wide range walks the dict
    assert waiting == {}
