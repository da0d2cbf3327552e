"""Measure what the vehicle model costs: ``python -m carcloud.sim.bench [vehicles] [seconds]``.

Each simulated second every vehicle does ``step(1.0)`` and ``signals()``, as the runner does.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from carcloud.sim.fleet import build_fleet

__all__ = ["measure_us_per_vehicle_step"]


def measure_us_per_vehicle_step(
    vehicles: int = 2_000, seconds: int = 120, warmup_s: int = 300, seed: int = 42
) -> float:
    """Microseconds of CPU per vehicle per simulated second (step plus signals)."""
    fleet = build_fleet(vehicles, seed)
    # Warm up so that trips are under way and the route caches hold the common routes.
    for _ in range(warmup_s):
        for vehicle in fleet:
            vehicle.step(1.0)
            vehicle.signals()
    started = time.process_time()
    for _ in range(seconds):
        for vehicle in fleet:
            vehicle.step(1.0)
            vehicle.signals()
    return (time.process_time() - started) / (seconds * vehicles) * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    """Print the measured cost for the fleet size and duration given on the command line."""
    args = list(sys.argv[1:] if argv is None else argv)
    vehicles = int(args[0]) if args else 2_000
    seconds = int(args[1]) if len(args) > 1 else 120
    cost = measure_us_per_vehicle_step(vehicles, seconds)
    share = cost * vehicles / 1e6
    print(f"{vehicles} vehicles: {cost:.1f} us per vehicle-step, {share:.0%} of one core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
