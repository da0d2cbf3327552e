"""`carcloud simulate`: build a fleet, enrol it, run it, show how it goes."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from carcloud.client import ApiClient
from carcloud.sim.enrolment import enrol, load_credentials, save_credentials
from carcloud.sim.fleet import build_fleet
from carcloud.sim.model import SimVehicle
from carcloud.sim.runner import Connectivity, FleetRunner, FleetStats, SimulatedCar
from carcloud.sim.truth import GroundTruth


@dataclass
class SimulationOptions:
    """Everything `carcloud simulate` takes."""

    api_url: str
    api_key: str
    mqtt_host: str
    mqtt_port: int
    vehicles: int = 50
    brands: list[str] | None = None
    rate: float = 1.0
    duration_s: float | None = None
    seed: int = 1
    speedup: float = 1.0
    gaps_per_hour: float = 0.0
    start_epoch_s: float | None = None
    warmup_s: float = 0.0
    credentials_file: Path | None = None
    processes: int = 1
    shard: int = 0
    shards: int = 1
    extra_args: list[str] = field(default_factory=list)
    ground_truth: Path | None = None  # JSON lines of the trips and sessions really driven

    def __repr__(self) -> str:
        return (
            f"SimulationOptions(api_url={self.api_url!r}, mqtt={self.mqtt_host}:{self.mqtt_port}, "
            f"vehicles={self.vehicles}, rate={self.rate}, seed={self.seed}, "
            f"speedup={self.speedup}, processes={self.processes})"
        )


def fleet_for(options: SimulationOptions) -> list[SimVehicle]:
    """The simulated fleet of these options (the same for the same seed, start and warm-up).

    With a warm-up the fleet's day begins that long before the start and runs
    forward unseen (nothing is sent), so that at the start cars are already on the
    road, charging or parked as at any other time, rather than all parked at once.
    """
    start = options.start_epoch_s if options.start_epoch_s is not None else float(int(time.time()))
    fleet = build_fleet(
        options.vehicles, options.seed, options.brands, start_epoch_s=start - options.warmup_s
    )
    warm_up(fleet, options.warmup_s)
    return fleet


def warm_up(fleet: list[SimVehicle], seconds: float, step_s: float = 5.0) -> None:
    """Run every vehicle `seconds` forward (the model keeps its own 1 s substeps)."""
    done = 0.0
    while done < seconds:
        dt = min(step_s, seconds - done)
        for vehicle in fleet:
            vehicle.step(dt)
        done += dt


def prepare(
    options: SimulationOptions, progress: Callable[[int], None] | None = None
) -> tuple[list[SimVehicle], dict[str, str]]:
    """Build the fleet and make sure every vehicle is registered with a known secret."""
    vehicles = fleet_for(options)
    known = load_credentials(options.credentials_file)
    with ApiClient(options.api_url, options.api_key) as api:
        credentials = enrol(api, vehicles, known, progress)
    if options.credentials_file is not None:
        save_credentials(options.credentials_file, {**known, **credentials})
    return vehicles, credentials


def cars_for(
    vehicles: list[SimVehicle],
    credentials: dict[str, str],
    seed: int,
    shard: int = 0,
    shards: int = 1,
) -> list[SimulatedCar]:
    """The share of the fleet one process drives."""
    return [
        SimulatedCar(vehicle, credentials[vehicle.vin], random.Random(f"{seed}:{vehicle.vin}"))
        for index, vehicle in enumerate(vehicles)
        if index % shards == shard
    ]


async def run_shard(
    options: SimulationOptions,
    cars: list[SimulatedCar],
    stop: asyncio.Event,
    report: Callable[[FleetStats], None] | None = None,
) -> FleetStats:
    """Drive `cars` until stopped, calling `report` twice a second."""
    runner = FleetRunner(
        cars,
        options.mqtt_host,
        options.mqtt_port,
        rate=options.rate,
        speedup=options.speedup,
        connectivity=Connectivity(gaps_per_hour=options.gaps_per_hour),
    )

    async def reporter() -> None:
        while not stop.is_set():
            if report is not None:
                report(runner.stats)
            await asyncio.sleep(0.5)

    # One process: a fresh file; shards append to the one their parent emptied.
    truth = None
    if options.ground_truth is not None:
        truth = GroundTruth(options.ground_truth, truncate=options.shards == 1)
    recorders = truth.attach(car.vehicle for car in cars) if truth is not None else []
    ticker = asyncio.create_task(reporter())
    try:
        return await runner.run(stop, options.duration_s)
    finally:
        ticker.cancel()
        if truth is not None:
            truth.close(recorders)
        if report is not None:
            report(runner.stats)


def spawn_shards(options: SimulationOptions) -> list[subprocess.Popen[str]]:
    """Start one child process per shard; each prints its stats as JSON lines."""
    if options.ground_truth is not None:
        GroundTruth(options.ground_truth, truncate=True).close()  # the shards append to it
    children = []
    for shard in range(options.shards):
        command = [
            sys.executable, "-m", "carcloud.cli", "simulate",
            "--api", options.api_url, "--key", options.api_key,
            "--mqtt", f"{options.mqtt_host}:{options.mqtt_port}",
            "--vehicles", str(options.vehicles), "--rate", str(options.rate),
            "--seed", str(options.seed), "--speedup", str(options.speedup),
            "--offline-rate", str(options.gaps_per_hour),
            "--start", str(options.start_epoch_s), "--warm-up", str(options.warmup_s),
            "--shard", f"{shard}/{options.shards}", "--status-json",
        ]  # fmt: skip
        if options.brands:
            command += ["--brands", ",".join(options.brands)]
        if options.duration_s is not None:
            command += ["--duration", str(options.duration_s)]
        if options.credentials_file is not None:
            command += ["--credentials", str(options.credentials_file)]
        if options.ground_truth is not None:
            command += ["--ground-truth", str(options.ground_truth)]
        children.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1))
    return children


def read_shard_stats(line: str) -> dict[str, int] | None:
    """One JSON status line of a child, or None if the line is something else."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "sent" in data else None
