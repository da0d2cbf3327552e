"""A car's track through a fence with GPS jitter: for unit tests and the platform test."""

from __future__ import annotations

import math
import random

from carcloud.geofences.visits import Fix
from carcloud.telematics.timeline import Position

SECOND = 1_000_000
CENTER = Position(48.137, 11.575)
METRE_LAT = 1 / 111_195  # degrees of latitude per metre


def north(metres: float, east: float = 0.0) -> Position:
    """A position `metres` north (and `east` metres east) of CENTER."""
    return Position(
        CENTER.lat + metres * METRE_LAT,
        CENTER.lon + east * METRE_LAT / math.cos(math.radians(CENTER.lat)),
    )


def drive_through(jitter_m: float, seed: int = 7, start_ts: int = 1_000 * SECOND) -> list[Fix]:
    """A car approaching from 600 m north at 5 m/s, parking 5 min at the centre, leaving
    south; every second one fix, with GPS noise of up to `jitter_m` in each direction,
    and a slow pass along the edge on the way in and out (where drift flaps naive fences)."""
    rng = random.Random(seed)
    track: list[float] = []
    track += [600 - 5 * s for s in range(80)]  # to 200 m: the edge
    track += [200 - 0.2 * s for s in range(120)]  # creeping along the edge
    track += [176 - 5 * s for s in range(35)]  # to the centre
    track += [0.0] * 300  # parked
    track += [-5 * s for s in range(40)]  # to the southern edge
    track += [-200 - 0.2 * s for s in range(120)]
    track += [-224 - 5 * s for s in range(80)]
    return [(start_ts + i * SECOND,
             north(m + rng.uniform(-jitter_m, jitter_m), rng.uniform(-jitter_m, jitter_m)))
            for i, m in enumerate(track)]  # fmt: skip
