"""A generated street network around a real city: intersections, roads, places, and routes.

The network is a jittered grid of intersections (local streets at 30 or 50 km/h), a few
straighter arterials at 50/70 km/h and a ring road at 100 km/h with ramps into the grid.
Some intersections are places: DC fast chargers, fuel stations, homes and depots with AC
charging, and destinations (offices, shops, leisure). Everything is derived from the city
and a seed, so the same inputs always give the same network.

Routes are shortest paths by travel time (A*), cached per network because a fleet asks for
the same few hundred origin/destination pairs over and over.
"""

from __future__ import annotations

import functools
import heapq
import math
import random
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from carcloud.sim.geo import LocalProjection, bearing_deg, haversine_m, turn_angle_deg

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
    "generate_network",
    "junction_speed_ms",
    "network_for",
]

RoadKind = Literal["residential", "street", "arterial", "ring", "ramp"]
PlaceKind = Literal["home", "depot", "dc_charger", "fuel", "office", "shop", "leisure", "custom"]

PLAN_DECEL_MS2 = 2.0
"""Deceleration drivers plan with; braking harder than this is reserved for surprises."""

# Routing counts a small delay per traffic light, so routes prefer arterials like people do.
_LIGHT_PENALTY_S = 8.0
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


# --- generation ---------------------------------------------------------------------------

_STREET_STEMS = (
    "Linden", "Kastanien", "Birken", "Ahorn", "Eichen", "Rosen", "Garten", "Schiller",
    "Goethe", "Mozart", "Bahnhof", "Park", "Sonnen", "Berg", "Wiesen", "Mühlen", "Kirch",
    "Markt", "Schloss", "Blumen", "Tannen", "Buchen", "Feld", "Wald",
)  # fmt: skip
_STREET_SUFFIXES = ("straße", "weg", "allee", "ring", "gasse", "platz")
_CHARGE_OPERATORS = ("VoltHub", "CityCharge", "IONpoint", "FastLane", "Stromtankstelle")
_FUEL_BRANDS = ("Aral", "Shell", "Esso", "Jet", "Total")
_DESTINATION_NAMES: Mapping[str, tuple[str, ...]] = {
    "office": (
        "Tech Campus", "Business Park", "Rathaus", "Klinikum", "Office Tower",
        "Logistikzentrum", "Universität", "Research Lab",
    ),
    "shop": ("Supermarkt", "Einkaufszentrum", "Baumarkt", "Bäckerei", "Möbelhaus", "Apotheke"),
    "leisure": ("Fitnessstudio", "Stadion", "Kino", "Schwimmbad", "Stadtpark", "Zoo"),
}  # fmt: skip
_DISTRICTS = ("Nord", "Nordost", "Ost", "Südost", "Süd", "Südwest", "West", "Nordwest")

# How many places of each kind a network gets (before scaling to the grid size).
_PLACE_COUNTS: Mapping[PlaceKind, int] = {
    "dc_charger": 12,
    "fuel": 10,
    "depot": 4,
    "home": 140,
    "office": 35,
    "shop": 35,
    "leisure": 18,
}


def _district(x: float, y: float) -> str:
    if math.hypot(x, y) < 2_000.0:
        return "Mitte"
    sector = int(((math.degrees(math.atan2(x, y)) + 22.5) % 360.0) // 45.0)
    return _DISTRICTS[sector]


def generate_network(
    city: City | str = "munich",
    seed: int = 0,
    *,
    size_m: float = 12_000.0,
    spacing_m: float = 400.0,
) -> RoadNetwork:
    """Generate the street network around ``city``; the same arguments give the same network."""
    if isinstance(city, str):
        try:
            city = CITIES[city]
        except KeyError:
            raise ValueError(f"unknown city {city!r} (known: {', '.join(CITIES)})") from None
    if not 2_000.0 <= size_m <= 60_000.0 or not 100.0 <= spacing_m <= size_m / 4:
        raise ValueError("size_m must be 2-60 km and spacing_m 100 m to a quarter of size_m")
    # A string seed hashes with SHA-512 inside random: stable across runs and PYTHONHASHSEED.
    rng = random.Random(f"carcloud.sim.roads:{city.slug}:{seed}:{size_m}:{spacing_m}")
    projection = LocalProjection(city.lat, city.lon)
    lines = int(size_m // spacing_m) + 1
    half = (lines - 1) * spacing_m / 2.0
    arterial = {i for i in range(lines) if i % 6 == 3}
    jitter = 0.18 * spacing_m

    xs: list[float] = []
    ys: list[float] = []
    grid: dict[tuple[int, int], int] = {}
    for i in range(lines):
        for j in range(lines):
            # Arterials stay straight; the streets between them wander a little.
            jx = 0.03 * spacing_m if i in arterial else jitter
            jy = 0.03 * spacing_m if j in arterial else jitter
            grid[i, j] = len(xs)
            xs.append(-half + i * spacing_m + rng.uniform(-jx, jx))
            ys.append(-half + j * spacing_m + rng.uniform(-jy, jy))

    blocks = (lines + 3) // 4
    calm_zone = {(bi, bj): rng.random() < 0.35 for bi in range(blocks) for bj in range(blocks)}
    roads: list[tuple[int, int, int, RoadKind]] = []
    for i in range(lines):
        for j in range(lines):
            for ni, nj, on_arterial in ((i + 1, j, j in arterial), (i, j + 1, i in arterial)):
                if (ni, nj) not in grid:
                    continue
                a, b = grid[i, j], grid[ni, nj]
                if on_arterial:
                    mid = math.hypot((xs[a] + xs[b]) / 2, (ys[a] + ys[b]) / 2)
                    roads.append((a, b, 70 if mid > 2_500.0 else 50, "arterial"))
                elif rng.random() < 0.08:
                    continue  # a missing block edge makes the grid feel less like graph paper
                elif calm_zone[i // 4, j // 4]:
                    roads.append((a, b, 30, "residential"))
                else:
                    roads.append((a, b, 50, "street"))

    lights: set[int] = set()
    for (i, j), node in grid.items():
        crossing = (i in arterial) + (j in arterial)
        if crossing == 2 or (crossing == 1 and rng.random() < 0.35) or rng.random() < 0.04:
            lights.add(node)

    grid_nodes = len(xs)
    radius = 0.38 * size_m
    ring_count = max(12, int(2 * math.pi * radius / 1_300.0))
    offset = rng.uniform(0, 2 * math.pi / ring_count)
    for k in range(ring_count):
        angle = offset + 2 * math.pi * k / ring_count
        xs.append(radius * math.sin(angle))
        ys.append(radius * math.cos(angle))
    for k in range(ring_count):
        a = grid_nodes + k
        roads.append((a, grid_nodes + (k + 1) % ring_count, 100, "ring"))
        nearest = min(range(grid_nodes), key=lambda n: (xs[n] - xs[a]) ** 2 + (ys[n] - ys[a]) ** 2)
        roads.append((a, nearest, 50, "ramp"))

    # Keep the part reachable from the center: dropped edges may cut off a corner node.
    neighbours: list[list[int]] = [[] for _ in xs]
    for a, b, _, _ in roads:
        neighbours[a].append(b)
        neighbours[b].append(a)
    center = grid[lines // 2, lines // 2]
    reached = {center}
    frontier = [center]
    while frontier:
        node = frontier.pop()
        for other in neighbours[node]:
            if other not in reached:
                reached.add(other)
                frontier.append(other)
    keep = sorted(reached)
    renumber = {old: new for new, old in enumerate(keep)}

    phases = [rng.uniform(0, 2 * math.pi) for _ in range(3)]

    def altitude(x: float, y: float) -> float:
        wave = 0.6 * math.sin(x / 2_300.0 + phases[0]) * math.cos(y / 1_700.0 + phases[1])
        wave += 0.4 * math.sin((x + y) / 3_100.0 + phases[2])
        return city.altitude_m + city.hilliness_m * wave

    node_lat: list[float] = []
    node_lon: list[float] = []
    node_alt: list[float] = []
    for old in keep:
        lat, lon = projection.to_latlon(xs[old], ys[old])
        node_lat.append(lat)
        node_lon.append(lon)
        node_alt.append(altitude(xs[old], ys[old]))

    edges: list[Edge] = []
    for a_old, b_old, limit_kmh, road in roads:
        if a_old not in renumber or b_old not in renumber:
            continue
        for a, b in ((renumber[a_old], renumber[b_old]), (renumber[b_old], renumber[a_old])):
            length = haversine_m(node_lat[a], node_lon[a], node_lat[b], node_lon[b])
            limit_ms = limit_kmh / 3.6
            edges.append(
                Edge(
                    index=len(edges),
                    a=a,
                    b=b,
                    road=road,
                    limit_kmh=limit_kmh,
                    limit_ms=limit_ms,
                    length_m=length,
                    heading_deg=bearing_deg(node_lat[a], node_lon[a], node_lat[b], node_lon[b]),
                    travel_s=length / limit_ms + (_LIGHT_PENALTY_S if b_old in lights else 0.0),
                    lat_a=node_lat[a],
                    lon_a=node_lon[a],
                    dlat=node_lat[b] - node_lat[a],
                    dlon=node_lon[b] - node_lon[a],
                    alt_a=node_alt[a],
                    dalt=node_alt[b] - node_alt[a],
                    grade=(node_alt[b] - node_alt[a]) / length if length > 0 else 0.0,
                )
            )

    places = _place_places(rng, keep, renumber, grid_nodes, xs, ys, size_m)
    return RoadNetwork(
        city=city,
        seed=seed,
        node_lat=tuple(node_lat),
        node_lon=tuple(node_lon),
        node_alt=tuple(node_alt),
        edges=tuple(edges),
        traffic_lights=frozenset(renumber[n] for n in lights if n in renumber),
        places=places,
    )


def _place_places(
    rng: random.Random,
    keep: list[int],
    renumber: Mapping[int, int],
    grid_nodes: int,
    xs: list[float],
    ys: list[float],
    size_m: float,
) -> tuple[Place, ...]:
    """Pick distinct grid intersections for chargers, fuel stations, homes and destinations."""
    candidates = [old for old in keep if old < grid_nodes]
    scale = min(1.0, len(candidates) / 900.0)
    counts = {kind: max(2, round(count * scale)) for kind, count in _PLACE_COUNTS.items()}
    chosen = rng.sample(candidates, min(len(candidates) // 2, sum(counts.values())))
    places: list[Place] = []
    used_names: set[str] = set()
    cursor = 0
    for kind, count in counts.items():
        for _ in range(count):
            if cursor >= len(chosen):
                break
            old = chosen[cursor]
            cursor += 1
            district = _district(xs[old], ys[old])
            street = f"{rng.choice(_STREET_STEMS)}{rng.choice(_STREET_SUFFIXES)}"
            charge_kw = 0.0
            if kind == "dc_charger":
                charge_kw = float(rng.choice((50, 150, 150, 300)))
                name = f"{rng.choice(_CHARGE_OPERATORS)} {district} ({charge_kw:.0f} kW)"
            elif kind == "fuel":
                name = f"{rng.choice(_FUEL_BRANDS)} {street}"
            elif kind == "home":
                charge_kw = rng.choice((11.0, 11.0, 11.0, 7.4, 3.7))
                name = f"{street} {rng.randint(1, 120)}"
            elif kind == "depot":
                charge_kw = 22.0
                name = f"Depot {district}"
            else:
                name = f"{rng.choice(_DESTINATION_NAMES[kind])} {district}"
            base, suffix = name, 2
            while name in used_names:
                name = f"{base} {suffix}"
                suffix += 1
            used_names.add(name)
            places.append(Place(node=renumber[old], kind=kind, name=name, charge_kw=charge_kw))
    return tuple(places)


@functools.lru_cache(maxsize=16)
def network_for(city: str, seed: int = 0) -> RoadNetwork:
    """The shared network for a city and seed; vehicles in one process share it and its cache."""
    return generate_network(city, seed)
