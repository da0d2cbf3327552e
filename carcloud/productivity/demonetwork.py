"""The simulator's city networks as a router, for the demo: the same roads the simulated
cars drive on, so a leave-by time matches how long the simulated drive really takes."""

from __future__ import annotations

from collections.abc import Sequence

from carcloud.productivity.routing import Point, Travel, straight_line_m
from carcloud.sim.citygen import network_for
from carcloud.sim.roads import CITIES, RoadNetwork

# The generated networks span 12 km around their centre; a point farther out is not covered.
COVERED_M = 5_800.0
# From the exact point to the nearest intersection and back: slow, local streets.
ACCESS_SPEED_MS = 20 / 3.6


class DemoNetworkRouter:
    """Shortest paths by travel time (A*) over the simulator's networks of its cities."""

    name = "demo-network"

    def __init__(self, cities: Sequence[str] | None = None, seed: int = 0) -> None:
        self.cities = tuple(cities) if cities is not None else tuple(CITIES)
        self.seed = seed

    def network_covering(self, origin: Point, destination: Point) -> RoadNetwork | None:
        """The network of the city both points are in, if any (built on first use)."""
        for slug in self.cities:
            city = CITIES[slug]
            centre = Point(city.lat, city.lon)
            if all(straight_line_m(centre, p) <= COVERED_M for p in (origin, destination)):
                return network_for(slug, self.seed)
        return None

    async def travel(self, origin: Point, destination: Point) -> Travel | None:
        """The fastest route over the network, plus the way to and from its intersections."""
        network = self.network_covering(origin, destination)
        if network is None:
            return None
        start = network.nearest_node(origin.lat, origin.lon)
        end = network.nearest_node(destination.lat, destination.lon)
        route = network.route(start, end)
        access = straight_line_m(
            origin, Point(network.node_lat[start], network.node_lon[start])
        ) + straight_line_m(destination, Point(network.node_lat[end], network.node_lon[end]))
        return Travel(
            route.duration_s + access / ACCESS_SPEED_MS, route.length_m + access, self.name
        )
