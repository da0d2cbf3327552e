"""Travel time between two points: a road network when one covers them, a straight-line
estimate otherwise.

Routers are tried in order (`RouterChain`): a configured OSRM or Valhalla service in
production (`carcloud.productivity.routeservice`), the simulator's generated city
networks for the demo, and always last a straight line times a detour factor at a
typical urban speed, which never fails. A router that cannot answer returns None (no
network covers the points) or raises UnreachableError (a service is down): the next
one answers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from carcloud.errors import UnreachableError

log = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class Point:
    """A WGS 84 position."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Travel:
    """How long a trip takes and how far it is; `source` names the router that said so."""

    duration_s: float
    distance_m: float
    source: str


class Router(Protocol):
    """Travel time and distance by road between two points."""

    name: str

    async def travel(self, origin: Point, destination: Point) -> Travel | None:
        """The trip, or None when this router does not cover the points."""
        ...


def straight_line_m(origin: Point, destination: Point) -> float:
    """Great-circle distance in metres."""
    lat1, lat2 = math.radians(origin.lat), math.radians(destination.lat)
    dlat = lat2 - lat1
    dlon = math.radians(destination.lon - origin.lon)
    a = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


@dataclass(frozen=True, slots=True)
class StraightLineRouter:
    """The fallback: straight line × detour factor at an average speed (never fails)."""

    detour_factor: float = 1.35
    speed_kmh: float = 40.0
    name: str = "straight-line"

    async def travel(self, origin: Point, destination: Point) -> Travel:
        distance = straight_line_m(origin, destination) * self.detour_factor
        return Travel(distance / (self.speed_kmh / 3.6), distance, self.name)


class RouterChain:
    """Routers in order of preference; the straight line answers when none does."""

    def __init__(self, routers: Sequence[Router], fallback: StraightLineRouter | None = None):
        self.routers = list(routers)
        self.fallback = fallback or StraightLineRouter()
        self._failing: set[str] = set()

    async def travel(self, origin: Point, destination: Point) -> Travel:
        """The first router's answer that covers the trip."""
        for router in self.routers:
            try:
                found = await router.travel(origin, destination)
            except UnreachableError as exc:
                if router.name not in self._failing:
                    log.warning("routing: %s fails (%s); using the next router", router.name, exc)
                    self._failing.add(router.name)
                continue
            if router.name in self._failing:
                log.info("routing: %s answers again", router.name)
                self._failing.discard(router.name)
            if found is not None:
                return found
        return await self.fallback.travel(origin, destination)
