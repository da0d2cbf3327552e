"""Geofences through the real platform: a car publishes its positions over MQTT, ingest
commits, the derive role detects enter and exit, the API and the events answer."""

from __future__ import annotations

import json
from typing import Any

from carcloud.client import ApiClient
from carcloud.errors import CarcloudError
from carcloud.telematics.timeline import LATITUDE, LONGITUDE
from carcloud.timeutil import format_us
from tests.geofences.track import CENTER, SECOND, drive_through
from tests.platform import Car, Platform

BRAND, OTHER = "fencia", "otherfence"
START_TS = 1_780_000_000 * SECOND
CHUNK = 60


def _publish(car: Car, fixes: list[tuple[int, Any]], per_message: int) -> None:
    """Positions in messages of `per_message` samples (1: live, more: a backlog)."""
    for start in range(0, len(fixes), per_message):
        car.seq += 1
        samples = [
            {
                "ts": format_us(ts),
                "signals": {LATITUDE: round(p.lat, 7), LONGITUDE: round(p.lon, 7)},
            }
            for ts, p in fixes[start : start + per_message]
        ]
        car.publish(
            f"vehicles/{car.vin}/telemetry",
            json.dumps({"seq": car.seq, "samples": samples}),
            timeout=30,
        )


def _car(platform: Platform, brand: str) -> Car:
    creds = platform.register(brand)
    car = Car(platform, creds.vin, creds.password)
    assert not car.connect().is_failure
    return car


def _depot(platform: Platform, brand: str) -> dict[str, Any]:
    body = {"name": "depot", "brand": brand, "shape": "circle",
            "center": {"lat": CENTER.lat, "lon": CENTER.lon}, "radius_m": 200}  # fmt: skip
    with platform.api() as api:
        created: dict[str, Any] = api.post("/geofences", body)
    return created


def _refused(api: ApiClient, method: str, path: str, body: Any = None) -> str:
    """The error of a call that must fail ("404: ...")."""
    try:
        api.request(method, path, json=body)
    except CarcloudError as exc:
        return str(exc)
    raise AssertionError(f"{method} {path} succeeded")


def _events(platform: Platform, vin: str) -> list[dict[str, Any]]:
    with platform.api() as api:
        found: list[dict[str, Any]] = api.get("/events", type="geofence", vin=vin)["events"]
    return found


def test_jitter_at_the_edge_gives_one_enter_and_one_exit_live_or_as_a_backlog(
    platform: Platform,
) -> None:
    platform.ensure_brand(BRAND)
    fence = _depot(platform, BRAND)
    fixes = drive_through(jitter_m=15, start_ts=START_TS)
    live, late = _car(platform, BRAND), _car(platform, BRAND)
    _publish(live, fixes, per_message=1)

    def settled(vin: str) -> list[dict[str, Any]] | None:
        events = _events(platform, vin)
        return events if [e["type"] for e in events][-1:] == ["geofence.exited"] else None

    # The other car was offline while it came in: the second half of its drive (parked
    # inside, then leaving) is derived first; the first half arrives later as a backlog.
    half = len(fixes) // 2
    _publish(late, fixes[half:], per_message=CHUNK)
    platform.wait_for(lambda: settled(late.vin), timeout=60, what="the late car's exit")
    _publish(late, fixes[:half], per_message=CHUNK)

    def same_visits() -> list[dict[str, Any]] | None:
        with platform.api() as api:
            visits = api.get(f"/geofences/{fence['id']}/visits")["visits"]
        times = {tuple(v[k] for k in ("entered_at", "exited_at", "dwell_s")) for v in visits}
        return visits if len(visits) == 2 and len(times) == 1 else None

    platform.wait_for(lambda: settled(live.vin), timeout=60, what="the live car's exit")
    visits = platform.wait_for(same_visits, timeout=60, what="the backlog's visit = live's")
    live_events, late_events = _events(platform, live.vin), _events(platform, late.vin)
    assert [e["type"] for e in live_events] == ["geofence.entered", "geofence.exited"]
    entered, exited = live_events[0]["data"], live_events[1]["data"]
    assert entered["geofence_id"] == exited["geofence_id"] == fence["id"]
    assert entered["geofence_name"] == "depot" and live_events[0]["brand"] == BRAND
    assert 400 < exited["dwell_s"] < 700
    assert {visit["vin"] for visit in visits} == {live.vin, late.vin}
    # The backlog moved the stay's enter earlier: the same visit, no second enter or exit.
    assert [e["type"] for e in late_events] == ["geofence.entered", "geofence.exited"]
    assert late_events[1]["data"]["dwell_s"] < exited["dwell_s"]  # as told before the backlog


def test_a_brand_key_sees_only_its_brand_fences(platform: Platform) -> None:
    platform.ensure_brand(BRAND)
    platform.ensure_brand(OTHER)
    mine, theirs = _depot(platform, BRAND), _depot(platform, OTHER)
    with platform.api() as api:
        key = api.post("/api-keys", {"name": "fence app", "brand": BRAND})["key"]
    with platform.api(key) as scoped:
        listed = scoped.get("/geofences")["geofences"]
        assert {f["brand"] for f in listed} == {BRAND} and mine["id"] in {f["id"] for f in listed}
        for method, path in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("GET", "/visits")):
            body = {"name": "x", "shape": "circle", "center": {"lat": 1, "lon": 1}, "radius_m": 5}
            sent = body if method == "PUT" else None
            error = _refused(scoped, method, f"/geofences/{theirs['id']}{path}", sent)
            assert error.startswith("404"), (method, path, error)
        assert _refused(scoped, "POST", "/geofences", {**body, "brand": OTHER}).startswith("404")
        created = scoped.post("/geofences", body)
        assert created["brand"] == BRAND
    with platform.api() as api:
        assert api.get(f"/geofences/{theirs['id']}")["name"] == "depot"


def test_invalid_fences_are_422_naming_the_field(platform: Platform) -> None:
    platform.ensure_brand(BRAND)
    bowtie = [{"lat": 48.0, "lon": 11.0}, {"lat": 48.01, "lon": 11.01},
              {"lat": 48.0, "lon": 11.01}, {"lat": 48.01, "lon": 11.0}]  # fmt: skip
    base = {"name": "x", "brand": BRAND}
    cases = [
        (
            {**base, "shape": "polygon", "points": bowtie},
            "points: the polygon is self-intersecting",
        ),
        ({**base, "shape": "circle", "center": {"lat": 95, "lon": 1}, "radius_m": 9}, "center.lat"),
        ({**base, "shape": "circle", "center": {"lat": 48, "lon": 11}}, "radius_m"),
        ({**base, "shape": "corridor", "points": bowtie[:2]}, "width_m"),
        (
            {**base, "shape": "polygon", "points": [*bowtie[:2], {"lat": 1, "lon": 500}]},
            "points[2].lon",
        ),
        ({**base, "shape": "square"}, "shape"),
    ]
    with platform.api() as api:
        for body, field in cases:
            error = _refused(api, "POST", "/geofences", body)
            assert error.startswith("422") and field in error, (field, error)
