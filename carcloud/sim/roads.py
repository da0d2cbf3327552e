"""A generated street network around a real city: intersections, roads, places, and routes.

The network is a jittered grid of intersections (local streets at 30 or 50 km/h), a few
straighter arterials at 50/70 km/h and a ring road at 100 km/h with ramps into the grid.
Some intersections are places: DC fast chargers, fuel stations, homes and depots with AC
charging, and destinations (offices, shops, leisure). Everything is derived from the city
and a seed, so the same inputs always give the same network (`carcloud.sim.citygen`
builds it).

Routes are shortest paths by travel time (A*), cached per network because a fleet asks for
the same few hundred origin/destination pairs over and over.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from carcloud.sim.geo import LocalProjection, haversine_m, turn_angle_deg

__all__ = [
    "CITIES",
    "PLAN_DECEL_MS2",
    "City",
    "Edge",
    "Place",
    "PlaceKind",
    "RoadKind",
    "RoadNetwork",
    "Route",
    "junction_speed_ms",
]

RoadKind = Literal["residential", "street", "arterial", "ring", "ramp"]
PlaceKind = Literal["home", "depot", "dc_charger", "fuel", "office", "shop", "leisure", "custom"]

PLAN_DECEL_MS2 = 2.0
"""Deceleration drivers plan with; braking harder than this is reserved for surprises."""

_ROUTE_CACHE_SIZE = 50_000
_MAX_LIMIT_MS = 100 / 3.6


@dataclass(frozen=True, slots=True)
class City:
    """A real city the network is laid around, with the climate its weather follows."""

    slug: str
    name: str
    lat: float
    lon: float
    altitude_m: float
    hilliness_m: float
    mean_temp_c: float
    daily_temp_swing_c: float


CITIES: Mapping[str, City] = {
    city.slug: city
    for city in (
        City("berlin", "Berlin", 52.5200, 13.4050, 34.0, 12.0, 7.0, 4.5),
        City("munich", "Munich", 48.1370, 11.5750, 519.0, 18.0, 6.0, 5.5),
        City("stuttgart", "Stuttgart", 48.7750, 9.1800, 245.0, 80.0, 8.0, 5.0),
    )
}


@dataclass(frozen=True, slots=True)
class Place:
    """A named intersection where vehicles stop; ``charge_kw`` is the charger power there."""

    node: int
    kind: PlaceKind
    name: str
    charge_kw: float = 0.0

    @property
    def has_ac_charging(self) -> bool:
        """True where a parked vehicle can plug into an AC wallbox."""
        return self.kind in ("home", "depot") and self.charge_kw > 0


@dataclass(frozen=True, slots=True, eq=False)
class Edge:
    """One direction of a road between two intersections, with its geometry precomputed."""

    index: int
    a: int
    b: int
    road: RoadKind
    limit_kmh: int
    limit_ms: float
    length_m: float
    heading_deg: float
    travel_s: float
    lat_a: float
    lon_a: float
    dlat: float
    dlon: float
    alt_a: float
    dalt: float
    grade: float


def junction_speed_ms(edge_in: Edge, edge_out: Edge) -> float:
    """The speed a driver takes from ``edge_in`` into ``edge_out``: both limits and the turn."""
    cap = min(edge_in.limit_ms, edge_out.limit_ms)
    angle = turn_angle_deg(edge_in.heading_deg, edge_out.heading_deg)
    sharpness = abs(angle)
    if sharpness > 150.0:
        turn_kmh = 10.0  # turning around
    elif sharpness > 60.0:
        # Right-hand traffic: a right turn hugs the curb, a left turn sweeps wider.
        turn_kmh = 20.0 if angle > 0 else 28.0
    elif sharpness > 25.0:
        turn_kmh = 40.0
    else:
        return cap
    return min(cap, turn_kmh / 3.6)


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """A path of edges with, per edge, the highest speed allowed at its end (0 at the last)."""

    origin: int
    destination: int
    edges: tuple[Edge, ...]
    end_speeds_ms: tuple[float, ...]
    length_m: float
    duration_s: float

    @classmethod
    def along(cls, origin: int, destination: int, edges: tuple[Edge, ...]) -> Route:
        """Build a route over ``edges``, planning where the driver must have slowed down."""
        speeds = [0.0] * len(edges)
        # Backward pass: a slow junction or the final stop constrains every edge before it.
        for i in range(len(edges) - 2, -1, -1):
            reach = math.sqrt(speeds[i + 1] ** 2 + 2.0 * PLAN_DECEL_MS2 * edges[i + 1].length_m)
            speeds[i] = min(junction_speed_ms(edges[i], edges[i + 1]), reach)
        return cls(
            origin=origin,
            destination=destination,
            edges=edges,
            end_speeds_ms=tuple(speeds),
            length_m=sum(edge.length_m for edge in edges),
            duration_s=sum(edge.travel_s for edge in edges),
        )


class RoadNetwork:
    """Intersections, directed road edges, places, and cached travel-time routing."""

    def __init__(
        self,
        city: City,
        seed: int,
        node_lat: tuple[float, ...],
        node_lon: tuple[float, ...],
        node_alt: tuple[float, ...],
        edges: tuple[Edge, ...],
        traffic_lights: frozenset[int],
        places: tuple[Place, ...],
    ) -> None:
        self.city = city
        self.seed = seed
        self.node_lat = node_lat
        self.node_lon = node_lon
        self.node_alt = node_alt
        self.edges = edges
        self.traffic_lights = traffic_lights
        self.places = places
        out: list[list[Edge]] = [[] for _ in node_lat]
        for edge in edges:
            out[edge.a].append(edge)
        self.out_edges: tuple[tuple[Edge, ...], ...] = tuple(tuple(items) for items in out)
        by_kind: dict[str, list[Place]] = {}
        for place in places:
            by_kind.setdefault(place.kind, []).append(place)
        self._places_by_kind = {kind: tuple(items) for kind, items in by_kind.items()}
        self._place_at = {place.node: place for place in places}
        self._projection = LocalProjection(city.lat, city.lon)
        self._node_xy = tuple(
            self._projection.to_xy(lat, lon) for lat, lon in zip(node_lat, node_lon, strict=True)
        )
        self._routes: OrderedDict[tuple[int, int], Route] = OrderedDict()
        self._nearest: dict[tuple[int, tuple[str, ...]], Place | None] = {}

    def __repr__(self) -> str:
        return (
            f"<RoadNetwork {self.city.name} seed={self.seed}: {len(self.node_lat)} nodes, "
            f"{len(self.edges)} edges, {len(self.places)} places>"
        )

    @property
    def node_count(self) -> int:
        """Number of intersections."""
        return len(self.node_lat)

    def places_of(self, *kinds: str) -> tuple[Place, ...]:
        """All places of the given kinds, in network order."""
        if len(kinds) == 1:
            return self._places_by_kind.get(kinds[0], ())
        return tuple(place for place in self.places if place.kind in kinds)

    def place_at(self, node: int) -> Place | None:
        """The place at an intersection, if there is one."""
        return self._place_at.get(node)

    def nearest_node(self, lat: float, lon: float) -> int:
        """The intersection closest to a WGS 84 point (straight-line distance)."""
        x, y = self._projection.to_xy(lat, lon)
        best_node, best_sq = 0, math.inf
        for node, (nx, ny) in enumerate(self._node_xy):
            dist_sq = (nx - x) ** 2 + (ny - y) ** 2
            if dist_sq < best_sq:
                best_node, best_sq = node, dist_sq
        return best_node

    def distance_from_center_m(self, lat: float, lon: float) -> float:
        """Straight-line distance of a point from the city center the network is laid around."""
        return haversine_m(self.city.lat, self.city.lon, lat, lon)

    def route(self, origin: int, destination: int) -> Route:
        """The fastest route between two intersections (empty when they are the same)."""
        key = (origin, destination)
        cached = self._routes.get(key)
        if cached is not None:
            self._routes.move_to_end(key)
            return cached
        route = Route.along(origin, destination, self._search(origin, destination))
        self._routes[key] = route
        if len(self._routes) > _ROUTE_CACHE_SIZE:
            self._routes.popitem(last=False)
        return route

    def nearest_place(self, origin: int, kinds: Collection[str]) -> Place | None:
        """The place of one of ``kinds`` that is quickest to reach from ``origin``."""
        key = (origin, tuple(sorted(kinds)))
        if key in self._nearest:
            return self._nearest[key]
        targets = {place.node: place for place in self.places if place.kind in kinds}
        found: Place | None = None
        best = {origin: 0.0}
        heap = [(0.0, origin)]
        while heap:
            cost, node = heapq.heappop(heap)
            if node in targets:
                found = targets[node]
                break
            if cost > best[node]:
                continue
            for edge in self.out_edges[node]:
                new_cost = cost + edge.travel_s
                if new_cost < best.get(edge.b, math.inf):
                    best[edge.b] = new_cost
                    heapq.heappush(heap, (new_cost, edge.b))
        self._nearest[key] = found
        return found

    def _search(self, origin: int, destination: int) -> tuple[Edge, ...]:
        if origin == destination:
            return ()
        xy = self._node_xy
        goal_x, goal_y = xy[destination]
        # Straight-line time at the highest limit never overestimates: A* stays optimal.
        inv_speed = 0.999 / _MAX_LIMIT_MS
        best = {origin: 0.0}
        via: dict[int, Edge] = {}
        heap: list[tuple[float, float, int]] = [(0.0, 0.0, origin)]
        while heap:
            _, cost, node = heapq.heappop(heap)
            if node == destination:
                break
            if cost > best[node]:
                continue
            for edge in self.out_edges[node]:
                new_cost = cost + edge.travel_s
                if new_cost < best.get(edge.b, math.inf):
                    best[edge.b] = new_cost
                    via[edge.b] = edge
                    nx, ny = xy[edge.b]
                    estimate = math.hypot(goal_x - nx, goal_y - ny) * inv_speed
                    heapq.heappush(heap, (new_cost + estimate, new_cost, edge.b))
        if destination not in via:
            raise ValueError(f"no route from node {origin} to node {destination}")
        path: list[Edge] = []
        node = destination
        while node != origin:
            edge = via[node]
            path.append(edge)
            node = edge.a
        path.reverse()
        return tuple(path)
