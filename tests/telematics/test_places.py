"""Trips name the geofence or driver's place at each end, and a tariff attached to a
geofence prices the sessions inside it: through the real platform, cars publishing over
MQTT, and in the tariff rule itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from carcloud.errors import CarcloudError
from carcloud.geofences.models import Geofence
from carcloud.telematics.tariffs import Place, Tariff, choose_tariff
from carcloud.telematics.timeline import LATITUDE, LONGITUDE, Position
from carcloud.timeutil import format_us
from tests.platform import Car, Platform
from tests.telematics.drive import CHARGE, Leg, Script, run

BRAND, OTHER = "placed", "placedother"
VIN = "WVWZZZ1JZXW000001"
DEPOT = Position(48.137, 11.575)  # where every scripted day starts
# From the depot to work (5 km), charging there; then back home is not driven.
TO_WORK = [Leg("park", 30), Leg("stand", 5), Leg("drive", 360, speed_kmh=50), *CHARGE]


def _publish(platform: Platform, script: Script, driver_id: str | None = None) -> str:
    """A new car of the brand (driven by `driver_id`) publishes the script live."""
    creds = platform.register(BRAND)
    if driver_id is not None:
        with platform.api() as api:
            api.request("PUT", f"/vehicles/{creds.vin}/driver", json={"driver_id": driver_id})
    car = Car(platform, creds.vin, creds.password)
    assert not car.connect().is_failure
    infos = []
    for ts, signals in script.samples:
        car.seq += 1
        body = {"seq": car.seq, "ts": format_us(ts), "signals": signals}
        infos.append(car.client.publish(f"vehicles/{car.vin}/telemetry", json.dumps(body), qos=1))
    for info in infos:
        info.wait_for_publish(30)
    return car.vin


def _session(platform: Platform, vin: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        with platform.api() as api:
            found = api.get(f"/vehicles/{vin}/charging-sessions")["sessions"]
        return found[0] if found and found[0]["status"] == "completed" else None

    found: dict[str, Any] = platform.wait_for(done, timeout=60, what="a completed session")
    return found


@pytest.fixture(scope="module")
def places(platform: Platform) -> dict[str, Any]:
    """The brand's depot fence, tariffs (brand-wide and at the depot), a driver with work."""
    platform.ensure_brand(BRAND)
    platform.ensure_brand(OTHER)
    _, last = max(run(TO_WORK).samples, key=lambda sample: sample[0])
    work = Position(last[LATITUDE], last[LONGITUDE])  # where the drive ended
    with platform.api() as api:
        depot = api.post(
            "/geofences",
            {
                "name": "depot",
                "brand": BRAND,
                "shape": "circle",
                "center": {"lat": DEPOT.lat, "lon": DEPOT.lon},
                "radius_m": 300,
            },
        )
        foreign = api.post(
            "/geofences",
            {
                "name": "elsewhere",
                "brand": OTHER,
                "shape": "circle",
                "center": {"lat": 1.0, "lon": 1.0},
                "radius_m": 50,
            },
        )
        anywhere = api.post(
            "/tariffs", {"name": "brand", "brand": BRAND, "currency": "EUR", "price_per_kwh": 0.30}
        )
        at_depot = api.post(
            "/tariffs",
            {
                "name": "depot",
                "brand": BRAND,
                "currency": "EUR",
                "price_per_kwh": 0.10,
                "geofence_id": depot["id"],
            },
        )
        driver = api.post(
            "/drivers", {"name": "Ada", "brand": BRAND, "work": {"lat": work.lat, "lon": work.lon}}
        )
    return {"depot": depot, "foreign": foreign, "anywhere": anywhere, "at_depot": at_depot,
            "driver": driver}  # fmt: skip


def test_a_trip_names_the_geofence_it_left_and_the_drivers_place_it_reached(
    platform: Platform, places: dict[str, Any]
) -> None:
    vin = _publish(platform, run(TO_WORK), places["driver"]["id"])

    def completed() -> dict[str, Any] | None:
        with platform.api() as api:
            trips = api.get(f"/vehicles/{vin}/trips")["trips"]
        return trips[0] if trips and trips[0]["status"] == "completed" else None

    trip = platform.wait_for(completed, timeout=60, what="a completed trip")
    depot = {"kind": "geofence", "id": places["depot"]["id"], "name": "depot"}
    work = {"kind": "driver_place", "id": None, "name": "work"}
    assert (trip["start_place"], trip["end_place"]) == (depot, work)
    with platform.api() as api:
        one = api.get(f"/vehicles/{vin}/trips/{trip['id']}")
        [event] = api.get("/events", type="trip", vin=vin)["events"]
    assert (one["start_place"], one["end_place"]) == (depot, work)
    # The event is the webhook's body: trip.completed carries both places.
    assert event["type"] == "trip.completed"
    assert (event["data"]["start_place"], event["data"]["end_place"]) == (depot, work)
    shown = subprocess.run(
        [sys.executable, "-m", "carcloud.cli", "trips", vin, "--data-dir", str(platform.data_dir)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "depot" in shown.stdout and "work" in shown.stdout
    # Charged at work (not in the depot): the brand-wide tariff.
    assert _session(platform, vin)["tariff_id"] == places["anywhere"]["id"]


def test_a_session_inside_a_tariffs_geofence_gets_that_tariff(
    platform: Platform, places: dict[str, Any]
) -> None:
    vin = _publish(platform, run(CHARGE))  # plugged in at the depot
    session = _session(platform, vin)
    assert session["tariff_id"] == places["at_depot"]["id"]
    # 0.10 per kWh, not the brand's 0.30.
    assert session["cost"] == pytest.approx(session["energy_kwh"] * 0.10, abs=0.02)


def test_a_tariffs_geofence_must_be_one_of_its_brands(
    platform: Platform, places: dict[str, Any]
) -> None:
    base = {"name": "x", "brand": BRAND, "currency": "EUR"}
    cases = [
        {**base, "geofence_id": "gfn_doesnotexist"},
        {**base, "geofence_id": places["foreign"]["id"]},
        {**base, "geofence_id": places["depot"]["id"], "home": {"lat": 1, "lon": 1}},
    ]
    with platform.api() as api:
        for body in cases:
            with pytest.raises(CarcloudError) as caught:
                api.post("/tariffs", body)
            assert str(caught.value).startswith("422") and "geofence_id" in str(caught.value)
        with pytest.raises(CarcloudError) as caught:
            api.request(
                "PUT",
                f"/tariffs/{places['anywhere']['id']}",
                json={**base, "geofence_id": places["foreign"]["id"]},
            )
        assert "geofence_id" in str(caught.value)
        assert (
            api.get(f"/tariffs/{places['at_depot']['id']}")["geofence_id"]
            == (places["depot"]["id"])
        )


def _fence(fence_id: str, center: Position, radius_m: float) -> Geofence:
    return Geofence(fence_id, "volta", fence_id, "circle", (center,), radius_m=radius_m)


def test_the_most_specific_tariff_wins() -> None:
    depot = _fence("gfn_depot", DEPOT, 300)
    brand = Tariff("trf_1", "volta", "brand", "EUR", created_at=1)
    cars = Tariff("trf_2", "volta", "cars", "EUR", vins=(VIN,), created_at=2)
    at_depot = Tariff("trf_3", "volta", "depot", "EUR", geofence_id=depot.id, created_at=3)
    cars_at_depot = Tariff("trf_4", "volta", "cars at the depot", "EUR", vins=(VIN,),
                           geofence_id=depot.id, created_at=4)  # fmt: skip
    home = Tariff("trf_5", "volta", "home", "EUR", home=Place(48.2, 11.6, 100), created_at=5)
    inside = [depot.id] if depot.contains(DEPOT) else []
    everything = [brand, cars, at_depot, cars_at_depot, home]
    assert choose_tariff(everything, VIN, DEPOT, inside) is cars_at_depot
    assert choose_tariff([brand, cars, at_depot], VIN, DEPOT, inside) is at_depot
    assert choose_tariff([brand, cars, at_depot], VIN, Position(48.3, 11.7), []) is cars
    assert choose_tariff([brand, at_depot], "WVWZZZ1JZXW000002", DEPOT, inside) is at_depot
    assert choose_tariff([brand, at_depot], VIN, Position(48.3, 11.7), []) is brand
    assert choose_tariff(everything, VIN, Position(48.2, 11.6), []) is home
