"""Building a city's street network: a jittered grid, arterials, a ring road, and places.

Intersections form a jittered grid of local streets at 30 or 50 km/h; a few straighter
arterials run at 50/70 km/h and a ring road at 100 km/h with ramps into the grid. Some
intersections become places (DC fast chargers, fuel stations, homes and depots with AC
charging, offices, shops, leisure) with plausible local names. Everything comes from the
city and a seed: the same inputs always give the same network.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping

from carcloud.sim.geo import LocalProjection, bearing_deg, haversine_m
from carcloud.sim.roads import CITIES, City, Edge, Place, PlaceKind, RoadKind, RoadNetwork

__all__ = ["generate_network", "network_for"]

# Routing counts a small delay per traffic light, so routes prefer arterials like people do.
_LIGHT_PENALTY_S = 8.0

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
