"""The simulator's city networks as a router, for the demo: the same roads the simulated
cars drive on, so a leave-by time matches how long the simulated drive really takes.

Many cars drive to few meeting places, and a car asks again each time it moves. So the
router keeps, per destination, the fastest time from every intersection (one Dijkstra
over the reversed roads, LRU-cached): a car's leave-by is then a look-up at its nearest
intersection (found through a grid of cells, not a scan of every intersection). The
times are those of the simulator's own A* routes (same edge costs).
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from collections.abc import Sequence

from carcloud.productivity.routing import Point, Travel, straight_line_m
from carcloud.sim.citygen import network_for
from carcloud.sim.geo import LocalProjection
from carcloud.sim.roads import CITIES, RoadNetwork

# The generated networks are squares of 12 km around their centre (intersections up to
# about 6.07 km east, west, north and south): a point farther out is not covered.
COVERED_M = 6_300.0
# From the exact point to the nearest intersection and back: slow, local streets.
ACCESS_SPEED_MS = 20 / 3.6
CELL_M = 500.0
TREES = 2_000  # destinations whose time-to-every-intersection is kept


class _Index:
    """One network's intersections by grid cell, and its roads reversed."""

    def __init__(self, network: RoadNetwork) -> None:
        self.network = network
        self.projection = LocalProjection(network.city.lat, network.city.lon)
        self.xy = [
            self.projection.to_xy(lat, lon)
            for lat, lon in zip(network.node_lat, network.node_lon, strict=True)
        ]
        self.cells: dict[tuple[int, int], list[int]] = {}
        for node, (x, y) in enumerate(self.xy):
            self.cells.setdefault((int(x // CELL_M), int(y // CELL_M)), []).append(node)
        self.incoming: list[list[tuple[int, float, float]]] = [[] for _ in self.xy]
        for edge in network.edges:
            self.incoming[edge.b].append((edge.a, edge.travel_s, edge.length_m))
        self.trees: OrderedDict[int, tuple[list[float], list[float]]] = OrderedDict()

    def nearest(self, point: Point) -> int:
        """The intersection closest to `point` (the ring of cells around it, widened
        until one holds an intersection, then one ring more for the true nearest)."""
        x, y = self.projection.to_xy(point.lat, point.lon)
        cx, cy = int(x // CELL_M), int(y // CELL_M)
        best, best_sq, found_at = 0, math.inf, None
        for ring in range(0, 64):
            for i in range(cx - ring, cx + ring + 1):
                for j in range(cy - ring, cy + ring + 1):
                    if max(abs(i - cx), abs(j - cy)) != ring:
                        continue
                    for node in self.cells.get((i, j), ()):
                        nx, ny = self.xy[node]
                        dist_sq = (nx - x) ** 2 + (ny - y) ** 2
                        if dist_sq < best_sq:
                            best, best_sq = node, dist_sq
            if found_at is None and best_sq < math.inf:
                found_at = ring
            if found_at is not None and ring > found_at:
                break
        return best

    def towards(self, destination: int) -> tuple[list[float], list[float]]:
        """Fastest time (s) and its length (m) from every intersection to `destination`."""
        tree = self.trees.get(destination)
        if tree is not None:
            self.trees.move_to_end(destination)
            return tree
        times = [math.inf] * len(self.xy)
        lengths = [math.inf] * len(self.xy)
        times[destination], lengths[destination] = 0.0, 0.0
        heap = [(0.0, destination)]
        while heap:
            cost, node = heapq.heappop(heap)
            if cost > times[node]:
                continue
            for before, travel_s, length_m in self.incoming[node]:
                new_cost = cost + travel_s
                if new_cost < times[before]:
                    times[before] = new_cost
                    lengths[before] = lengths[node] + length_m
                    heapq.heappush(heap, (new_cost, before))
        self.trees[destination] = (times, lengths)
        if len(self.trees) > TREES:
            self.trees.popitem(last=False)
        return times, lengths


class DemoNetworkRouter:
    """Fastest routes over the simulator's networks of its cities."""

    name = "demo-network"

    def __init__(self, cities: Sequence[str] | None = None, seed: int = 0) -> None:
        self.cities = tuple(cities) if cities is not None else tuple(CITIES)
        self.seed = seed
        self._indexes: dict[str, _Index] = {}

    def _index_covering(self, origin: Point, destination: Point) -> _Index | None:
        for slug in self.cities:
            city = CITIES[slug]
            square = LocalProjection(city.lat, city.lon)
            ends = (square.to_xy(p.lat, p.lon) for p in (origin, destination))
            if all(max(abs(x), abs(y)) <= COVERED_M for x, y in ends):
                index = self._indexes.get(slug)
                if index is None:  # built on first use
                    index = self._indexes[slug] = _Index(network_for(slug, self.seed))
                return index
        return None

    async def travel(self, origin: Point, destination: Point) -> Travel | None:
        """The fastest route over the network, plus the way to and from its intersections;
        None when no network covers both points."""
        index = self._index_covering(origin, destination)
        if index is None:
            return None
        start, end = index.nearest(origin), index.nearest(destination)
        times, lengths = index.towards(end)
        if math.isinf(times[start]):
            return None  # not connected (the generated networks are, but say so if not)
        network = index.network
        access = straight_line_m(
            origin, Point(network.node_lat[start], network.node_lon[start])
        ) + straight_line_m(destination, Point(network.node_lat[end], network.node_lon[end]))
        return Travel(times[start] + access / ACCESS_SPEED_MS, lengths[start] + access, self.name)
