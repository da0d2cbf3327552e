"""Tests for the generated street network: geometry, speed limits, places and routing."""

from __future__ import annotations

import heapq
import math
import random

import pytest

from carcloud.sim.citygen import generate_network, network_for
from carcloud.sim.geo import (
    LocalProjection,
    bearing_deg,
    distance_to_segment_m,
    haversine_m,
    turn_angle_deg,
)
from carcloud.sim.roads import CITIES, PLAN_DECEL_MS2, RoadNetwork, junction_speed_ms


@pytest.fixture(scope="module")
def network() -> RoadNetwork:
    return generate_network("munich", seed=3)


def _fingerprint(network: RoadNetwork) -> tuple[object, ...]:
    return (
        network.node_lat,
        network.node_lon,
        network.node_alt,
        tuple((e.a, e.b, e.limit_kmh, e.road, e.length_m) for e in network.edges),
        network.traffic_lights,
        network.places,
    )


def _dijkstra_s(network: RoadNetwork, origin: int, destination: int) -> float:
    best = {origin: 0.0}
    heap = [(0.0, origin)]
    while heap:
        cost, node = heapq.heappop(heap)
        if node == destination:
            return cost
        if cost > best[node]:
            continue
        for edge in network.out_edges[node]:
            if cost + edge.travel_s < best.get(edge.b, math.inf):
                best[edge.b] = cost + edge.travel_s
                heapq.heappush(heap, (cost + edge.travel_s, edge.b))
    raise AssertionError("unreachable")


def test_same_seed_gives_the_same_network() -> None:
    assert _fingerprint(generate_network("berlin", 7)) == _fingerprint(
        generate_network("berlin", 7)
    )


def test_another_seed_or_city_gives_another_network() -> None:
    base = _fingerprint(generate_network("berlin", 7))
    assert _fingerprint(generate_network("berlin", 8)) != base
    assert _fingerprint(generate_network("stuttgart", 7)) != base


def test_network_lies_around_the_city_and_spans_10_to_15_km(network: RoadNetwork) -> None:
    city = CITIES["munich"]
    projection = LocalProjection(city.lat, city.lon)
    xs, ys = zip(
        *(
            projection.to_xy(lat, lon)
            for lat, lon in zip(network.node_lat, network.node_lon, strict=True)
        ),
        strict=True,
    )
    assert 10_000 <= max(xs) - min(xs) <= 15_000
    assert 10_000 <= max(ys) - min(ys) <= 15_000
    mean_lat = sum(network.node_lat) / network.node_count
    mean_lon = sum(network.node_lon) / network.node_count
    assert haversine_m(mean_lat, mean_lon, city.lat, city.lon) < 1_000
    assert network.node_count > 500


def test_edges_carry_haversine_length_bearing_and_a_real_limit(network: RoadNetwork) -> None:
    lat, lon = network.node_lat, network.node_lon
    pairs = {(e.a, e.b) for e in network.edges}
    for edge in network.edges:
        assert edge.limit_kmh in (30, 50, 70, 100)
        assert edge.limit_ms == pytest.approx(edge.limit_kmh / 3.6)
        assert edge.length_m == pytest.approx(
            haversine_m(lat[edge.a], lon[edge.a], lat[edge.b], lon[edge.b]), rel=1e-12
        )
        assert edge.heading_deg == pytest.approx(
            bearing_deg(lat[edge.a], lon[edge.a], lat[edge.b], lon[edge.b])
        )
        assert 30 < edge.length_m < 2_000
        assert (edge.b, edge.a) in pairs  # every road is two-way
        assert edge in network.out_edges[edge.a]
    assert {e.limit_kmh for e in network.edges} == {30, 50, 70, 100}
    assert {e.road for e in network.edges} == {"residential", "street", "arterial", "ring", "ramp"}
    # Local streets dominate; the fast roads are "a few".
    fast = sum(e.limit_kmh >= 70 for e in network.edges)
    assert 0.02 < fast / len(network.edges) < 0.3


def test_every_intersection_is_reachable(network: RoadNetwork) -> None:
    seen = {0}
    frontier = [0]
    while frontier:
        for edge in network.out_edges[frontier.pop()]:
            if edge.b not in seen:
                seen.add(edge.b)
                frontier.append(edge.b)
    assert len(seen) == network.node_count


def test_routes_are_connected_fastest_paths(network: RoadNetwork) -> None:
    rng = random.Random(1)
    for _ in range(25):
        origin, destination = rng.randrange(network.node_count), rng.randrange(network.node_count)
        route = network.route(origin, destination)
        if origin == destination:
            assert route.edges == ()
            continue
        assert route.edges[0].a == origin
        assert route.edges[-1].b == destination
        for first, second in zip(route.edges, route.edges[1:], strict=False):
            assert first.b == second.a
        assert route.duration_s == pytest.approx(_dijkstra_s(network, origin, destination))
        assert route.length_m == pytest.approx(sum(e.length_m for e in route.edges))


def test_planned_speeds_respect_limits_turns_and_the_final_stop(network: RoadNetwork) -> None:
    route = network.route(5, network.node_count - 5)
    speeds = route.end_speeds_ms
    assert speeds[-1] == 0.0
    for i, (edge, speed) in enumerate(zip(route.edges, speeds, strict=True)):
        assert speed <= edge.limit_ms + 1e-9
        if i + 1 < len(route.edges):
            following = route.edges[i + 1]
            assert speed <= junction_speed_ms(edge, following) + 1e-9
            # Braking at the planned rate along the next edge reaches its end speed.
            assert speed**2 <= speeds[i + 1] ** 2 + 2 * PLAN_DECEL_MS2 * following.length_m + 1e-6


def test_routes_are_cached(network: RoadNetwork) -> None:
    assert network.route(10, 400) is network.route(10, 400)


def test_turns_slow_the_driver_down(network: RoadNetwork) -> None:
    found_turn = found_straight = False
    for edge in network.edges:
        for following in network.out_edges[edge.b]:
            angle = abs(turn_angle_deg(edge.heading_deg, following.heading_deg))
            speed = junction_speed_ms(edge, following)
            if 70 < angle < 110:
                assert speed <= 28 / 3.6 + 1e-9
                found_turn = True
            elif angle < 10:
                assert speed == min(edge.limit_ms, following.limit_ms)
                found_straight = True
    assert found_turn and found_straight


def test_places_of_every_kind_on_distinct_intersections(network: RoadNetwork) -> None:
    places = network.places
    assert len({p.node for p in places}) == len(places)
    assert len({p.name for p in places}) == len(places)
    chargers = network.places_of("dc_charger")
    assert len(chargers) >= 5
    assert {p.charge_kw for p in chargers} <= {50.0, 150.0, 300.0}
    for kind in ("home", "depot"):
        assert network.places_of(kind)
        assert all(p.has_ac_charging and 3 <= p.charge_kw <= 22 for p in network.places_of(kind))
    for kind in ("fuel", "office", "shop", "leisure"):
        assert network.places_of(kind)
        assert not any(p.has_ac_charging for p in network.places_of(kind))
    for place in places:
        assert network.place_at(place.node) is place
    assert len(network.places_of("office", "shop")) == len(network.places_of("office")) + len(
        network.places_of("shop")
    )


def test_nearest_charger_is_the_quickest_to_reach(network: RoadNetwork) -> None:
    chargers = network.places_of("dc_charger")
    for origin in (0, 123, network.node_count // 2, network.node_count - 1):
        nearest = network.nearest_place(origin, ("dc_charger",))
        assert nearest is not None and nearest.kind == "dc_charger"
        best = network.route(origin, nearest.node).duration_s
        assert all(best <= network.route(origin, p.node).duration_s + 1e-6 for p in chargers)


def test_nearest_node_snaps_coordinates_to_the_closest_intersection(network: RoadNetwork) -> None:
    for node in (0, 77, network.node_count - 1):
        lat, lon = network.node_lat[node], network.node_lon[node]
        assert network.nearest_node(lat, lon) == node
        assert network.nearest_node(lat + 0.00002, lon - 0.00002) == node


def test_network_for_shares_one_network_per_city_and_seed() -> None:
    assert network_for("stuttgart", 0) is network_for("stuttgart", 0)
    assert network_for("stuttgart", 0).city.name == "Stuttgart"


def test_unknown_city_and_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown city"):
        generate_network("atlantis")
    with pytest.raises(ValueError):
        generate_network("berlin", size_m=500.0)


def test_geo_helpers() -> None:
    berlin, munich = CITIES["berlin"], CITIES["munich"]
    assert haversine_m(berlin.lat, berlin.lon, munich.lat, munich.lon) == pytest.approx(
        504_000, rel=0.01
    )
    assert bearing_deg(48.0, 11.0, 48.1, 11.0) == pytest.approx(0.0, abs=1e-9)
    assert bearing_deg(48.0, 11.0, 48.0, 11.1) == pytest.approx(90.0, abs=0.1)
    assert turn_angle_deg(350.0, 10.0) == pytest.approx(20.0)
    assert turn_angle_deg(10.0, 280.0) == pytest.approx(-90.0)
    # A point 10 m north of the middle of a 1 km east-west segment is 10 m away from it.
    projection = LocalProjection(48.0, 11.0)
    a = projection.to_latlon(-500.0, 0.0)
    b = projection.to_latlon(500.0, 0.0)
    p = projection.to_latlon(0.0, 10.0)
    assert distance_to_segment_m(*p, *a, *b) == pytest.approx(10.0, abs=0.01)
