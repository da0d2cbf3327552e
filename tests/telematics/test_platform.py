"""Trips and charging sessions through the real platform: a scripted car publishes over
MQTT, ingest commits, the derive role detects, the API answers."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from carcloud.errors import CarcloudError
from carcloud.telematics.timeline import BATTERY_POWER, IS_CHARGING
from carcloud.timeutil import format_us, parse_rfc3339_us
from tests.platform import Car, Platform
from tests.telematics.drive import CHARGE, DAY, SECOND, Script, run

BRAND = "telematix"
BACKLOG_CHUNK = 50


def _publish_live(car: Car, samples: list[tuple[int, dict[str, Any]]]) -> None:
    """One message per sample, as a connected car sends them."""
    infos = []
    for ts, signals in samples:
        car.seq += 1
        body = {"seq": car.seq, "ts": format_us(ts), "signals": signals}
        infos.append(car.client.publish(f"vehicles/{car.vin}/telemetry", json.dumps(body), qos=1))
    for info in infos:
        info.wait_for_publish(30)


def _publish_backlog(car: Car, samples: list[tuple[int, dict[str, Any]]]) -> None:
    """What a car buffered offline, sent after it reconnects, many samples a message."""
    for start in range(0, len(samples), BACKLOG_CHUNK):
        car.seq += 1
        body = {
            "seq": car.seq,
            "samples": [
                {"ts": format_us(ts), "signals": signals}
                for ts, signals in samples[start : start + BACKLOG_CHUNK]
            ],
        }
        car.publish(f"vehicles/{car.vin}/telemetry", json.dumps(body), timeout=30)


def _car(platform: Platform) -> Car:
    creds = platform.register(BRAND)
    car = Car(platform, creds.vin, creds.password)
    assert not car.connect().is_failure
    return car


def _trips(platform: Platform, vin: str) -> list[dict[str, Any]]:
    with platform.api() as api:
        return list(reversed(api.get(f"/vehicles/{vin}/trips")["trips"]))


def _settled(platform: Platform, vin: str, count: int) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        trips = _trips(platform, vin)
        completed = [t for t in trips if t["status"] == "completed"]
        return trips if len(completed) == count and len(trips) == count else None

    found: list[dict[str, Any]] = platform.wait_for(done, timeout=60, what=f"{count} trips")
    return found


def _comparable(trip: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in trip.items() if k not in ("id", "vin")}


@pytest.fixture(scope="module")
def day() -> Script:
    return run(DAY + CHARGE)


@pytest.fixture(scope="module")
def live(platform: Platform, day: Script) -> tuple[str, list[dict[str, Any]]]:
    """A car that sent the whole day live; its trips once derived."""
    platform.ensure_brand(BRAND)
    with platform.api() as api:
        api.post(
            "/tariffs",
            {
                "name": "home",
                "brand": BRAND,
                "currency": "EUR",
                "price_per_kwh": 0.30,
                "price_per_session": 0.5,
                "periods": [
                    {"days": ["thu"], "start": "21:30", "end": "23:00", "price_per_kwh": 0.1}
                ],
            },
        )
    car = _car(platform)
    _publish_live(car, day.samples)
    return car.vin, _settled(platform, car.vin, 2)


def test_a_live_drive_gives_exactly_the_driven_trips(
    platform: Platform, day: Script, live: tuple[str, list[dict[str, Any]]]
) -> None:
    vin, trips = live
    truth = [t for t in day.trips if t.distance_km >= 0.1]  # the 40 m shunt is no trip
    assert len(trips) == len(truth) == 2
    for trip, real in zip(trips, truth, strict=True):
        assert abs(trip["distance_km"] - real.distance_km) <= 0.01 * real.distance_km
        assert abs(trip["energy_kwh"] - real.energy_kwh) <= 0.03 * real.energy_kwh
        assert abs(parse_rfc3339_us(trip["start_at"], "start_at") - real.start_ts) <= SECOND
        assert abs(parse_rfc3339_us(trip["end_at"], "end_at") - real.end_ts) <= 2 * SECOND
        assert trip["distance_source"] == "odometer"
        assert trip["energy_source"] == "battery_power"
        assert trip["consumption_kwh_per_100km"] > 5
    with platform.api() as api:
        one = api.get(f"/vehicles/{vin}/trips/{trips[1]['id']}", max_points=50)
        events = api.get("/events", type="trip", vin=vin)["events"]
    assert len(one["route"]) == 50
    assert one["route"][0]["at"] == trips[1]["start_at"]
    assert [e["type"] for e in events] == ["trip.completed", "trip.completed"]
    assert [e["data"]["id"] for e in events] == [t["id"] for t in trips]


def test_a_backlog_after_ten_minutes_offline_gives_the_same_trips(
    platform: Platform, day: Script, live: tuple[str, list[dict[str, Any]]]
) -> None:
    _, expected = live
    offline_from = day.trips[1].start_ts + 120 * SECOND
    offline_to = offline_from + 600 * SECOND
    car = _car(platform)
    online = [s for s in day.samples if not offline_from <= s[0] < offline_to]
    buffered = [s for s in day.samples if offline_from <= s[0] < offline_to]
    _publish_live(car, online)
    _settled(platform, car.vin, 2)  # the gap kept driving: still two trips
    _publish_backlog(car, buffered)

    def same() -> list[dict[str, Any]] | None:
        trips = _trips(platform, car.vin)
        return (
            trips if [_comparable(t) for t in trips] == [_comparable(t) for t in expected] else None
        )

    try:
        trips = platform.wait_for(same, timeout=60, what="the live trips")
    except AssertionError:
        assert [_comparable(t) for t in _trips(platform, car.vin)] == [
            _comparable(t) for t in expected
        ]
        raise
    with platform.api() as api:
        events = api.get("/events", type="trip", vin=car.vin)["events"]
    # Derive holds a backlog until no more of it comes for a moment, so it is usually
    # one re-derivation; on a loaded machine the backlog's messages can come further
    # apart and each part gives an update. Either way only the driven-through trip is
    # updated and the last update is that trip as it is now.
    completed, updates = events[:2], events[2:]
    assert [e["type"] for e in completed] == ["trip.completed", "trip.completed"]
    assert updates, "the backlog changed the second trip: a trip.updated is expected"
    assert {e["type"] for e in updates} == {"trip.updated"}
    assert {e["data"]["id"] for e in updates} == {trips[1]["id"]}
    assert _comparable(updates[-1]["data"]) == _comparable(trips[1])


def test_charging_session_with_a_pause_and_its_cost(
    platform: Platform, day: Script, live: tuple[str, list[dict[str, Any]]]
) -> None:
    vin, _ = live

    def sessions() -> list[dict[str, Any]] | None:
        with platform.api() as api:
            found = api.get(f"/vehicles/{vin}/charging-sessions")["sessions"]
        return found if found and found[0]["status"] == "completed" else None

    [session] = platform.wait_for(sessions, timeout=60, what="a completed session")
    truth = day.charges[0]
    assert len(session["segments"]) == 2
    assert abs(session["energy_kwh"] - truth.energy_kwh) <= 0.01 * truth.energy_kwh
    assert session["current_type"] == "AC"
    assert session["currency"] == "EUR"
    # Charging starts Thursday 21:12 UTC; from 21:30 the night price applies.
    boundary = parse_rfc3339_us("2026-05-28T21:30:00Z", "boundary")
    assert session["start_at"] < "2026-05-28T21:30" < session["segments"][0]["end_at"]
    charged = [(ts, s[BATTERY_POWER]) for ts, s in day.samples if s[IS_CHARGING]]
    before = sum(w / 3.6e6 for ts, w in charged if ts < boundary)
    after = sum(w / 3.6e6 for ts, w in charged if ts >= boundary)
    assert before > 1 and after > 1
    assert session["cost"] == pytest.approx(0.5 + before * 0.30 + after * 0.10, abs=0.02)


def test_tariff_input_errors_name_the_field(platform: Platform) -> None:
    platform.ensure_brand(BRAND)
    base = {"name": "x", "brand": BRAND, "currency": "EUR"}
    cases = [
        ({**base, "currency": "euro"}, "currency"),
        ({**base, "timezone": "Mars/Olympus"}, "timezone"),
        ({**base, "price_per_kwh": -1}, "price_per_kwh"),
        (
            {**base, "periods": [{"days": ["mon"], "start": "25:00", "end": "06:00"}]},
            "periods[0].start",
        ),
        (
            {**base, "periods": [{"days": ["monday"], "start": "22:00", "end": "06:00"}]},
            "periods[0].days",
        ),
        ({**base, "vins": ["nope"]}, "vins[0]"),
        ({**base, "home": {"lat": 48.1, "lon": 11.5, "radius_m": 0}}, "home.radius_m"),
        ({**base, "colour": "red"}, "colour"),
    ]
    with platform.api() as api:
        for body, field in cases:
            with pytest.raises(CarcloudError) as caught:
                api.post("/tariffs", body)
            assert field in str(caught.value), (field, str(caught.value))
        created = api.post("/tariffs", {**base, "price_per_kwh": 0.2})
        replaced = api.request(
            "PUT", f"/tariffs/{created['id']}", json={**base, "price_per_kwh": 0.25}
        )
        assert replaced["price_per_kwh"] == 0.25 and replaced["created_at"] == created["created_at"]
        assert api.get(f"/tariffs/{created['id']}")["price_per_kwh"] == 0.25


def _carcloud(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carcloud.cli", *args, "--data-dir", str(platform.data_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_cli_shows_trips_and_charging_sessions(
    platform: Platform, live: tuple[str, list[dict[str, Any]]]
) -> None:
    vin, trips = live
    shown = _carcloud(platform, "trips", vin, "--json")
    assert shown.returncode == 0, shown.stderr
    assert [t["id"] for t in json.loads(shown.stdout)["trips"]] == [
        t["id"] for t in reversed(trips)
    ]
    table = _carcloud(platform, "charging", vin)
    assert table.returncode == 0, table.stderr
    assert "charging sessions of" in table.stdout and "EUR" in table.stdout
    missing = _carcloud(platform, "trips", "WVWZZZ1JZXW999999")
    assert missing.returncode != 0 and "not found" in missing.stderr


def test_status_reports_the_derive_backlog(
    platform: Platform, live: tuple[str, list[dict[str, Any]]]
) -> None:
    # The day is derived (its trips settled): nothing waits, and the derive role said so.
    def drained() -> dict[str, Any] | None:
        with platform.api() as api:
            derive: dict[str, Any] = api.get("/status")["derive"]
        return derive if derive["vehicles_waiting"] == derive["notices_waiting"] == 0 else None

    derive = platform.wait_for(drained, timeout=60, what="an empty derive backlog")
    assert derive["workers"] == 1 and derive["oldest_waiting_s"] == 0
    shown = _carcloud(platform, "status")
    assert shown.returncode == 0, shown.stderr
    assert "derive    0 vehicles waiting (oldest 0.0 s), 0 commit notices" in shown.stdout
