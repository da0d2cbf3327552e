"""Routers: OSRM and Valhalla over HTTP against a local server that replays their answers
(in the shapes their documentation gives), the demo networks, and the fallback chain."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from carcloud.errors import ConfigError, UnreachableError
from carcloud.productivity.demonetwork import DemoNetworkRouter
from carcloud.productivity.routeservice import RouteService, RoutingSettings
from carcloud.productivity.routing import Point, RouterChain, StraightLineRouter
from carcloud.runtime.launcher import free_port
from carcloud.sim.citygen import network_for

RESPONSES = Path(__file__).parent / "responses"
FRIEDRICHSTR = Point(52.517037, 13.388860)
TORSTR = Point(52.529407, 13.397634)


class Replay:
    """A routing server that answers each request with a stored response."""

    def __init__(self) -> None:
        self.answer: tuple[int, str] = (200, "osrm_route.json")
        self.requests: list[tuple[str, str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, body: Any) -> None:
                owner.requests.append((self.command, self.path, body))
                status, name = owner.answer
                payload = (RESPONSES / name).read_bytes()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                self._reply(None)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                self._reply(json.loads(self.rfile.read(length)))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def replay() -> Iterator[Replay]:
    server = Replay()
    yield server
    server.close()


async def test_osrm_route_and_no_route(replay: Replay) -> None:
    service = RouteService(RoutingSettings(replay.url, "osrm"))
    try:
        travel = await service.travel(FRIEDRICHSTR, TORSTR)
        assert travel is not None
        assert (travel.duration_s, travel.distance_m, travel.source) == (263.1, 1886.3, "osrm")
        method, path, _ = replay.requests[-1]
        # OSRM takes longitude first.
        assert method == "GET" and path == (
            "/route/v1/driving/13.388860,52.517037;13.397634,52.529407?overview=false"
        )
        replay.answer = (400, "osrm_noroute.json")
        assert await service.travel(FRIEDRICHSTR, TORSTR) is None
    finally:
        await service.aclose()


async def test_valhalla_route_and_no_route(replay: Replay) -> None:
    service = RouteService(RoutingSettings(replay.url, "valhalla"))
    replay.answer = (200, "valhalla_route.json")
    try:
        travel = await service.travel(FRIEDRICHSTR, TORSTR)
        assert travel is not None
        assert travel.duration_s == pytest.approx(318.169) and travel.distance_m == 2103.0
        method, path, body = replay.requests[-1]
        assert (method, path, body["costing"]) == ("POST", "/route", "auto")
        assert body["locations"][0] == {"lat": FRIEDRICHSTR.lat, "lon": FRIEDRICHSTR.lon}
        replay.answer = (400, "valhalla_noroute.json")
        assert await service.travel(FRIEDRICHSTR, TORSTR) is None
    finally:
        await service.aclose()


async def test_a_service_that_is_down_falls_back_to_the_straight_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = RouteService(RoutingSettings(f"http://127.0.0.1:{free_port()}", "osrm", 1.0))
    chain = RouterChain([down], StraightLineRouter(detour_factor=1.4, speed_kmh=36))
    try:
        with pytest.raises(UnreachableError, match="osrm at http://127.0.0.1"):
            await down.travel(FRIEDRICHSTR, TORSTR)
        first = await chain.travel(FRIEDRICHSTR, TORSTR)
        await chain.travel(FRIEDRICHSTR, TORSTR)
    finally:
        await down.aclose()
    # 1.50 km straight × 1.4 at 10 m/s.
    assert first.source == "straight-line"
    assert first.distance_m == pytest.approx(1498 * 1.4, rel=0.005)
    assert first.duration_s == pytest.approx(first.distance_m / 10.0)
    assert sum("osrm fails" in r.message for r in caplog.records) == 1  # said once


async def test_the_demo_network_covers_its_cities_only() -> None:
    router = DemoNetworkRouter(["berlin"])
    centre, north = Point(52.52, 13.405), Point(52.538, 13.405)
    travel = await router.travel(centre, north)
    assert travel is not None and travel.source == "demo-network"
    assert 2_000 < travel.distance_m < 4_000 and 120 < travel.duration_s < 900
    assert await router.travel(centre, Point(52.70, 13.405)) is None  # 20 km out
    chain = RouterChain([router])
    assert (await chain.travel(centre, Point(52.70, 13.405))).source == "straight-line"


async def test_every_place_of_a_demo_network_is_routed_over_it() -> None:
    # The networks are squares: places in their corners are 8 km from the centre.
    router = DemoNetworkRouter()
    for city in ("berlin", "munich", "stuttgart"):
        network = network_for(city, 0)
        places = network.places_of("home", "depot", "office", "shop", "leisure")
        points = [Point(network.node_lat[p.node], network.node_lon[p.node]) for p in places]
        corner = max(
            points, key=lambda p: abs(p.lat - network.city.lat) + abs(p.lon - network.city.lon)
        )
        for point in points:
            travel = await router.travel(corner, point)
            assert travel is not None and travel.source == "demo-network", (city, point)


def test_routing_settings_name_what_is_wrong() -> None:
    assert RoutingSettings.from_env({}).url is None
    valhalla = {
        "CARCLOUD_ROUTING_URL": "http://valhalla:8002/",
        "CARCLOUD_ROUTING_KIND": "valhalla",
    }
    assert RoutingSettings.from_env(valhalla).url == "http://valhalla:8002"
    with pytest.raises(ConfigError, match="CARCLOUD_ROUTING_KIND must be osrm or valhalla"):
        RoutingSettings.from_env({"CARCLOUD_ROUTING_KIND": "graphhopper"})
    with pytest.raises(ConfigError, match="CARCLOUD_ROUTING_URL 'osrm:5000' is not an http"):
        RoutingSettings.from_env({"CARCLOUD_ROUTING_URL": "osrm:5000"})
    with pytest.raises(ConfigError, match="DETOUR_FACTOR must be 1 to 3"):
        RoutingSettings.from_env({"CARCLOUD_ROUTING_DETOUR_FACTOR": "0.5"})
