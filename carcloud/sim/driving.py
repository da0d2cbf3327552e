"""The driver along a route: speed choice, traffic lights, turns, and position on the road."""

from __future__ import annotations

import math
import random

from carcloud.sim.geo import turn_angle_deg
from carcloud.sim.roads import PLAN_DECEL_MS2, Route

__all__ = ["MAX_DECEL_MS2", "RouteFollower"]

MAX_DECEL_MS2 = 4.0
"""Hardest braking a driver uses short of an emergency stop."""

_RED_CHANCE = 0.45
_RED_WAIT_S = (4.0, 40.0)
# Drivers hold a little under the limit, each road a bit differently.
_CRUISE_SHARE = (0.88, 1.0)
_TURN_DURATION_S = 3.0
_STOP_TOLERANCE_M = 0.5  # close enough to the stop line: roll the last bit and stop


class RouteFollower:
    """Drives one route: accelerates, brakes ahead of slow junctions and red lights, and stops.

    Speed never exceeds the limit of the edge the vehicle is on: the planned speed at the end
    of each edge already respects the next edge's limit and the turn, and entering an edge
    clamps what is left of a rounding error.
    """

    __slots__ = (
        "_accel_max",
        "_cruise_ms",
        "_end_speed_ms",
        "_halted",
        "_lights",
        "_max_speed_ms",
        "_red_s",
        "_rng",
        "accel_ms2",
        "arrived",
        "edge",
        "index",
        "lateral_ms2",
        "offset_m",
        "route",
        "speed_ms",
    )

    def __init__(
        self,
        route: Route,
        rng: random.Random,
        lights: frozenset[int],
        max_accel_ms2: float,
        max_speed_ms: float,
    ) -> None:
        if not route.edges:
            raise ValueError("a route to follow needs at least one edge")
        self.route = route
        self._rng = rng
        self._lights = lights
        self._accel_max = max_accel_ms2
        self._max_speed_ms = max_speed_ms
        self.speed_ms = 0.0
        self.accel_ms2 = 0.0
        self.lateral_ms2 = 0.0
        self.arrived = False
        self.index = 0
        self.edge = route.edges[0]
        self.offset_m = 0.0
        self._cruise_ms = 0.0
        self._end_speed_ms = 0.0
        self._red_s = 0.0
        self._halted = False
        self._enter(0)

    def _enter(self, index: int) -> None:
        """Start on edge ``index``: pick a cruise speed and see whether its light is red."""
        edge = self.route.edges[index]
        rng = self._rng
        self.index = index
        self.edge = edge
        self.offset_m = 0.0
        self._cruise_ms = min(edge.limit_ms * rng.uniform(*_CRUISE_SHARE), self._max_speed_ms)
        if self._halted:
            self._cruise_ms = 0.0
        self._end_speed_ms = self.route.end_speeds_ms[index]
        self._red_s = 0.0
        last = index == len(self.route.edges) - 1
        red = not last and edge.b in self._lights and rng.random() < _RED_CHANCE
        # Too close to stop comfortably: the driver goes through on amber instead.
        if red and self.speed_ms * self.speed_ms < 2.0 * 3.0 * edge.length_m:
            self._red_s = rng.uniform(*_RED_WAIT_S)
            self._end_speed_ms = 0.0

    @property
    def position(self) -> tuple[float, float]:
        """Latitude and longitude: on the straight segment between the edge's intersections."""
        edge = self.edge
        share = self.offset_m / edge.length_m if edge.length_m > 0.0 else 0.0
        return edge.lat_a + edge.dlat * share, edge.lon_a + edge.dlon * share

    @property
    def altitude_m(self) -> float:
        """Altitude above the WGS 84 ellipsoid, interpolated along the edge."""
        edge = self.edge
        share = self.offset_m / edge.length_m if edge.length_m > 0.0 else 0.0
        return edge.alt_a + edge.dalt * share

    @property
    def waiting_at_light(self) -> bool:
        """True while standing at a red light."""
        return self._red_s > 0.0 and self.speed_ms == 0.0

    def reroute(self, onward: Route) -> None:
        """Finish the current edge, then follow ``onward`` (which starts where this edge ends)."""
        if onward.edges and onward.origin != self.edge.b:
            raise ValueError("an onward route must start at the end of the current edge")
        offset, red_s, end_speed = self.offset_m, self._red_s, self._end_speed_ms
        self.route = Route.along(self.edge.a, onward.destination, (self.edge, *onward.edges))
        self.index = 0
        self.offset_m = offset
        self._red_s = red_s
        self._end_speed_ms = 0.0 if red_s > 0.0 else self.route.end_speeds_ms[0]
        if end_speed < self._end_speed_ms:
            # Already braking for a slower end: keep it, never surprise the follower behind.
            self._end_speed_ms = end_speed

    def halt(self) -> None:
        """Pull over and stop (a breakdown): brake to a standstill where the vehicle is."""
        self._halted = True
        self._cruise_ms = 0.0

    def resume(self) -> None:
        """Drive on after a halt."""
        self._halted = False
        self._cruise_ms = self.edge.limit_ms * _CRUISE_SHARE[0]

    def advance(self, dt_s: float) -> float:
        """Drive for ``dt_s`` seconds; returns the distance covered in meters."""
        if self.arrived:
            self.speed_ms = self.accel_ms2 = 0.0
            return 0.0
        self.lateral_ms2 = 0.0
        edge = self.edge
        remaining = edge.length_m - self.offset_m
        v0 = self.speed_ms
        end_speed = self._end_speed_ms
        if v0 == 0.0 and remaining <= 0.0 and end_speed == 0.0:
            # Standing at the stop line: wait out the red light, or we have arrived.
            if self._red_s > 0.0:
                self._red_s -= dt_s
                self.accel_ms2 = 0.0
                if self._red_s > 0.0:
                    return 0.0
                self._red_s = 0.0
                self._end_speed_ms = end_speed = self.route.end_speeds_ms[self.index]
            if self.index == len(self.route.edges) - 1:
                self.arrived = True
                self.accel_ms2 = 0.0
                return 0.0

        # The fastest speed at the end of this step from which braking at the planned rate
        # still meets the end speed, counting the distance covered during the step itself.
        reach = end_speed * end_speed + PLAN_DECEL_MS2 * (2.0 * remaining - v0 * dt_s)
        half_b_dt = 0.5 * PLAN_DECEL_MS2 * dt_s
        allowed = math.sqrt(half_b_dt * half_b_dt + reach) - half_b_dt if reach > 0.0 else 0.0
        if allowed > self._cruise_ms:
            allowed = self._cruise_ms
        if v0 < allowed:
            accel = self._accel_max * (1.0 - 0.5 * v0 / self._max_speed_ms)
            if v0 + accel * dt_s > allowed:
                accel = (allowed - v0) / dt_s
        else:
            accel = (allowed - v0) / dt_s
            if accel < -MAX_DECEL_MS2:
                accel = -MAX_DECEL_MS2
        v1 = v0 + accel * dt_s
        if v1 < 0.0:
            v1 = 0.0
        step = 0.5 * (v0 + v1) * dt_s
        covered = 0.0
        while step >= remaining - (_STOP_TOLERANCE_M if end_speed == 0.0 else 0.0):
            if end_speed == 0.0:
                # The stop line (a red light or the destination): come to rest exactly on it.
                covered += remaining
                self.offset_m = edge.length_m
                accel = max(-MAX_DECEL_MS2, -v0 / dt_s)
                v1 = 0.0
                if self._red_s <= 0.0 and self.index == len(self.route.edges) - 1:
                    self.arrived = True
                break
            covered += remaining
            step -= remaining
            if v1 > end_speed:
                v1 = end_speed  # through the junction no faster than planned for it
            heading_in = edge.heading_deg
            self._enter(self.index + 1)
            edge = self.edge
            remaining = edge.length_m
            end_speed = self._end_speed_ms
            if v1 > edge.limit_ms:
                v1 = edge.limit_ms
            turn = math.radians(turn_angle_deg(heading_in, edge.heading_deg))
            # ISO 8855: +y points left, so a right turn pulls the occupants to the left.
            self.lateral_ms2 = max(-8.0, min(8.0, -v1 * turn / _TURN_DURATION_S))
        else:
            self.offset_m += step
            covered += step
        self.speed_ms = v1
        self.accel_ms2 = accel
        return covered
