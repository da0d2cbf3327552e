"""Leave-by for many moving cars: routing and planning, against the straight-line estimate
in the same run.

    python bench/leaveby.py [--cars 10000] [--moves 2]

Each car is at a random point of the demo's Berlin network with one meeting at one of
the network's places (the offices, shops and leisure places meetings would be at).
A pass plans every car's meeting: routing plus the leave-by arithmetic with a range
check, with three routers: the straight line × detour (the baseline), one A* search
per car (the first implementation), and DemoNetworkRouter (one tree per destination).
MOVES passes follow, each after every car moved ~300 m (new origins). Storage and the
agenda are not part of it: this is the computation the productivity worker adds per car.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import time

from carcloud.calendars.agenda import AgendaEntry
from carcloud.calendars.joining import JoinInfo
from carcloud.calendars.places import Coordinates
from carcloud.productivity.demonetwork import DemoNetworkRouter
from carcloud.productivity.energy import ModelEnergy, RangePolicy
from carcloud.productivity.leaveby import CarSituation, plan_meeting
from carcloud.productivity.routing import Point, RouterChain, Travel
from carcloud.sim.citygen import network_for
from carcloud.timeutil import now_us

ARIA = ModelEnergy(95.0, 16.5, 270.0)


class AStarPerCar:
    """The first implementation, kept to compare: a linear nearest-intersection scan and
    one A* search (the simulator's RoadNetwork.route) per car and move."""

    name = "a-star-per-car"

    async def travel(self, origin: Point, destination: Point) -> Travel | None:
        network = network_for("berlin")
        start = network.nearest_node(origin.lat, origin.lon)
        end = network.nearest_node(destination.lat, destination.lon)
        route = network.route(start, end)
        return Travel(route.duration_s, route.length_m, self.name)


async def one_pass(router: RouterChain, cars: list[tuple[Point, AgendaEntry]]) -> float:
    policy, now = RangePolicy(), now_us()
    began = time.perf_counter()
    for origin, entry in cars:
        assert entry.coordinates is not None
        travel = await router.travel(origin, Point(entry.coordinates.lat, entry.coordinates.lon))
        plan_meeting(entry, travel, CarSituation(origin, now, 250.0, ARIA), 5, now, policy)
    return time.perf_counter() - began


def fleet(count: int, seed: int) -> list[tuple[Point, AgendaEntry]]:
    network = network_for("berlin")
    rng = random.Random(seed)

    def covered(node: int) -> bool:
        return (
            network.distance_from_center_m(network.node_lat[node], network.node_lon[node]) < 5_400
        )

    places = [p for p in network.places_of("office", "shop", "leisure") if covered(p.node)]
    nodes = [node for node in range(network.node_count) if covered(node)]
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    cars = []
    for index in range(count):
        node = rng.choice(nodes)
        place = rng.choice(places)
        where = Coordinates(network.node_lat[place.node], network.node_lon[place.node], "geo")
        entry = AgendaEntry(f"a:{index}", "a", str(index), place.name, start,
                            start + dt.timedelta(hours=1), False, False, "CONFIRMED", place.name,
                            where, JoinInfo())  # fmt: skip
        cars.append((Point(network.node_lat[node], network.node_lon[node]), entry))
    return cars


def moved(
    cars: list[tuple[Point, AgendaEntry]], rng: random.Random
) -> list[tuple[Point, AgendaEntry]]:
    # ~300 m in a random direction (0.0027° of latitude).
    return [(Point(p.lat + rng.uniform(-0.0027, 0.0027), p.lon + rng.uniform(-0.0045, 0.0045)), e)
            for p, e in cars]  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cars", type=int, default=10_000)
    parser.add_argument("--moves", type=int, default=2)
    args = parser.parse_args()
    began = time.perf_counter()
    network_for("berlin")
    print(f"network built in {time.perf_counter() - began:.2f} s")
    rng = random.Random(7)
    cars = fleet(args.cars, 1)
    for name, router in (
        ("straight-line", RouterChain([])),
        ("a-star-per-car", RouterChain([AStarPerCar()])),
        ("demo-network", RouterChain([DemoNetworkRouter(["berlin"])])),
    ):
        current = cars
        times = [await one_pass(router, current)]
        for _ in range(args.moves):
            current = moved(current, rng)
            times.append(await one_pass(router, current))
        shown = ", ".join(f"{t:.2f}" for t in times)
        print(f"{name:>14}: {args.cars} cars, passes {shown} s "
              f"(first = new routes; then each after every car moved)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
