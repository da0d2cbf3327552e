"""Alerts through the real platform: a car publishes over MQTT, the derive role evaluates
the rule, the platform is restarted twice, and the alert's lifecycle goes on unbroken."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from carcloud.client import ApiClient
from carcloud.errors import CarcloudError
from carcloud.timeutil import format_us
from tests.conftest import start_platform
from tests.platform import Car, Platform

BRAND, OTHER = "alarmo", "otheralarm"
LATE = "latealarm"  # a brand of its own: the brand-key test counts BRAND's rules
SECOND = 1_000_000
T0 = 1_780_000_000 * SECOND


def _drive(car: Car, first_s: int, last_s: int, speed: float) -> None:
    """One message a second of car time, [first_s, last_s], at `speed`."""
    for second in range(first_s, last_s + 1):
        car.seq += 1
        body = {"seq": car.seq, "ts": format_us(T0 + second * SECOND),
                "signals": {"Vehicle.Speed": speed}}  # fmt: skip
        car.publish(f"vehicles/{car.vin}/telemetry", json.dumps(body), timeout=30)


def _stored(
    platform: Platform, rule_id: str, vin: str, done: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """The rule's stored state once it is `done`. (Its `evaluated_at` is not waited for:
    an evaluation that only moves it on saves it every so many rows, see docs/alerts.md.)"""

    def state() -> dict[str, Any] | None:
        with platform.api() as api:
            states = api.get(f"/alert-rules/{rule_id}/states/{vin}")["states"]
        cursor = next((s for s in states if s["key"] is None), None)
        return cursor if cursor is not None and done(cursor) else None

    found: dict[str, Any] = platform.wait_for(state, timeout=60, what=what)
    return found


def _committed(platform: Platform, vin: str, second: int) -> None:
    """Wait until the car's speed at `second` is stored."""

    def stored() -> bool:
        with platform.api() as api:
            speed = api.get(f"/vehicles/{vin}/state")["signals"].get("Vehicle.Speed")
        return speed is not None and speed["ts"] == format_us(T0 + second * SECOND)

    platform.wait_for(stored, timeout=60, what=f"the speed at {second} stored")


def _alerts(platform: Platform, vin: str, key: str | None = None) -> list[dict[str, Any]]:
    with platform.api(key) as api:
        found: list[dict[str, Any]] = api.get("/alerts", vin=vin)["alerts"]
    return found


def _error(api: ApiClient, method: str, path: str, body: Any = None) -> str:
    try:
        api.request(method, path, json=body)
    except CarcloudError as exc:
        return str(exc)
    raise AssertionError(f"{method} {path} succeeded")


def _reconnect(platform: Platform, vin: str, password: str, seq: int) -> Car:
    car = Car(platform, vin, password)
    car.seq = seq  # the car's sequence goes on: ingest keeps (vin, seq) unique
    assert not car.connect().is_failure
    return car


def _restart(platform: Platform) -> Platform:
    assert platform.stop() == 0
    again = platform.restarted()
    return again


@pytest.mark.slow
def test_for_30s_fires_once_clears_and_keeps_its_state_across_restarts(tmp_path: Path) -> None:
    platform = start_platform(tmp_path / "data")
    try:
        creds = platform.register(BRAND)
        with platform.api() as api:
            rule = api.post("/alert-rules", {"name": "fast", "brand": BRAND, "for_s": 30,
                                             "condition": "Vehicle.Speed > 100",
                                             "clear_condition": "Vehicle.Speed < 60"})  # fmt: skip
        car = Car(platform, creds.vin, creds.password)
        assert not car.connect().is_failure
        _drive(car, 0, 4, 50.0)
        _drive(car, 5, 20, 120.0)  # over 100 km/h from second 5: 15 s of the 30
        started = format_us(T0 + 5 * SECOND)
        state = _stored(platform, rule["id"], creds.vin, lambda s: s["pending_since"] == started,
                        "the timer started at 5")  # fmt: skip
        assert state["alert_id"] is None
        _committed(platform, creds.vin, 20)
        car.close()

        platform = _restart(platform)  # the timer must not start again from zero
        car = _reconnect(platform, creds.vin, creds.password, car.seq)
        _drive(car, 21, 40, 120.0)
        state = _stored(platform, rule["id"], creds.vin, lambda s: s["alert_id"] is not None,
                        "the alert raised")  # fmt: skip
        [alert] = _alerts(platform, creds.vin)
        assert alert["status"] == "active" and alert["severity"] == "warning"
        assert alert["raised_at"] == format_us(T0 + 35 * SECOND)  # 5 + 30: across the restart
        assert alert["pending_since"] == format_us(T0 + 5 * SECOND)
        assert state["alert_id"] == alert["id"]
        car.close()

        platform = _restart(platform)  # an active alert stays active
        assert [a["status"] for a in _alerts(platform, creds.vin)] == ["active"]
        with platform.api() as api:
            acked = api.post(f"/alerts/{alert['id']}/acknowledge")
            assert acked["status"] == "acknowledged" and acked["acknowledged_by"]
            assert _error(api, "POST", f"/alerts/{alert['id']}/acknowledge").startswith("409")
        car = _reconnect(platform, creds.vin, creds.password, car.seq)
        _drive(car, 41, 50, 80.0)  # below 100, not yet below 60: still open
        _committed(platform, creds.vin, 50)
        assert [a["status"] for a in _alerts(platform, creds.vin)] == ["acknowledged"]
        _drive(car, 51, 55, 40.0)
        _stored(platform, rule["id"], creds.vin, lambda s: s["alert_id"] is None, "the clear")
        [done] = _alerts(platform, creds.vin)
        assert done["status"] == "cleared" and done["cleared_at"] == format_us(T0 + 51 * SECOND)
        assert done["acknowledged_by"] == acked["acknowledged_by"]
        with platform.api() as api:
            events = api.get("/events", type="alert", vin=creds.vin)["events"]
        assert [e["type"] for e in events] == [
            "alert.raised",
            "alert.acknowledged",
            "alert.cleared",
        ]
        assert {e["data"]["id"] for e in events} == {alert["id"]}
    finally:
        platform.stop()


def test_late_data_behind_newer_data_does_not_move_a_rules_timer(platform: Platform) -> None:
    """A backlog of older samples (the car was offline, then sent what it buffered) after
    newer live ones: the rule goes on in car time from where it was; the older samples,
    which would have raised the alert long before, change neither timer nor alerts."""
    creds = platform.register(LATE)
    with platform.api() as api:
        rule = api.post("/alert-rules", {"name": "late", "brand": LATE, "for_s": 30,
                                         "condition": "Vehicle.Speed > 100",
                                         "target": {"vins": [creds.vin]}})  # fmt: skip
    car = Car(platform, creds.vin, creds.password)
    assert not car.connect().is_failure
    _drive(car, 100, 115, 120.0)
    started = format_us(T0 + 100 * SECOND)
    state = _stored(platform, rule["id"], creds.vin, lambda s: s["pending_since"] == started,
                    "the timer started at 100")  # fmt: skip
    _committed(platform, creds.vin, 115)
    car.seq += 1
    backlog = [{"ts": format_us(T0 + second * SECOND), "signals": {"Vehicle.Speed": 150.0}}
               for second in range(0, 100)]  # fmt: skip
    car.publish(f"vehicles/{car.vin}/telemetry",
                json.dumps({"seq": car.seq, "samples": backlog}), timeout=30)  # fmt: skip
    _drive(car, 116, 135, 120.0)
    state = _stored(platform, rule["id"], creds.vin, lambda s: s["alert_id"] is not None,
                    "the alert raised")  # fmt: skip
    [alert] = _alerts(platform, creds.vin)
    assert alert["raised_at"] == format_us(T0 + 130 * SECOND)  # 100 + 30, not 0 + 30
    assert alert["pending_since"] == format_us(T0 + 100 * SECOND)
    assert state["alert_id"] == alert["id"]
    with platform.api() as api:
        events = api.get("/events", type="alert", vin=creds.vin)["events"]
    assert [e["type"] for e in events] == ["alert.raised"]


def test_a_brand_key_sees_only_its_brand_rules_and_alerts(platform: Platform) -> None:
    platform.ensure_brand(BRAND)
    platform.ensure_brand(OTHER)
    creds = platform.register(OTHER)
    with platform.api() as api:
        theirs = api.post("/alert-rules", {"name": "any speed", "brand": OTHER,
                                           "condition": "Vehicle.Speed >= 0"})  # fmt: skip
        mine = api.post("/alert-rules", {"builtin": "overspeed", "brand": BRAND})
        key = api.post("/api-keys", {"name": "alarm app", "brand": BRAND})["key"]
    car = Car(platform, creds.vin, creds.password)
    assert not car.connect().is_failure
    _drive(car, 0, 1, 10.0)
    [alert] = platform.wait_for(lambda: _alerts(platform, creds.vin), timeout=60, what="alert")
    assert alert["rule_id"] == theirs["id"]
    assert mine["condition"] == "Vehicle.Speed > 130" and mine["for_s"] == 10
    with platform.api(key) as scoped:
        assert [r["id"] for r in scoped.get("/alert-rules")["rules"]] == [mine["id"]]
        assert scoped.get("/alerts")["alerts"] == []
        for method, path in (
            ("GET", f"/alert-rules/{theirs['id']}"),
            ("PUT", f"/alert-rules/{theirs['id']}"),
            ("DELETE", f"/alert-rules/{theirs['id']}"),
            ("GET", f"/alert-rules/{theirs['id']}/states/{creds.vin}"),
            ("GET", f"/alerts/{alert['id']}"),
            ("POST", f"/alerts/{alert['id']}/acknowledge"),
        ):
            body = {"name": "x", "condition": "Vehicle.Speed > 1"} if method == "PUT" else None
            assert _error(scoped, method, path, body).startswith("404"), (method, path)
        foreign = {"name": "x", "brand": OTHER, "condition": "Vehicle.Speed > 1"}
        assert _error(scoped, "POST", "/alert-rules", foreign).startswith("404")
    assert [a["status"] for a in _alerts(platform, creds.vin)] == ["active"]


def test_invalid_rules_are_422_naming_the_field(platform: Platform) -> None:
    platform.ensure_brand(BRAND)
    base = {"name": "x", "brand": BRAND}
    cases = [
        ({**base, "condition": "Vehicle.Sped > 100"}, "condition: ", "unknown signal Vehicle.Sped"),
        ({**base, "condition": "Vehicle.Speed > 1", "clear_condition": "Vehicle.X < 1"},
         "clear_condition: ", "unknown signal Vehicle.X"),
        ({**base, "condition": "Vehicle.Speed > 1", "for_s": -5}, "for_s", ""),
        ({**base, "condition": "Vehicle.Speed > 1", "severity": "loud"}, "severity", ""),
        ({**base, "condition": "Vehicle.Speed > 1", "target": {"vins": ["bad"]}},
         "target.vins[0]", ""),
        ({**base, "builtin": "nap_time"}, "builtin", ""),
        ({**base, "condition": "Vehicle.Speed > 1", "colour": "red"}, "colour", ""),
    ]  # fmt: skip
    with platform.api() as api:
        for body, field, detail in cases:
            error = _error(api, "POST", "/alert-rules", body)
            assert error.startswith("422") and field in error and detail in error, (field, error)


def _carcloud(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carcloud.cli", *args, "--data-dir", str(platform.data_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_cli_lists_rules_and_alerts_and_acknowledges(platform: Platform) -> None:
    platform.ensure_brand(BRAND)
    creds = platform.register(BRAND)
    made = _carcloud(platform, "alerts", "add-rule", "crawl", "--when", "Vehicle.Speed < 5",
                     "--brand", BRAND, "--severity", "info", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    rule_id = json.loads(made.stdout)["id"]
    car = Car(platform, creds.vin, creds.password)
    assert not car.connect().is_failure
    _drive(car, 0, 1, 2.0)
    [alert] = platform.wait_for(lambda: _alerts(platform, creds.vin), timeout=60, what="alert")
    listed = _carcloud(platform, "alerts", "list", "--vin", creds.vin, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [a["id"] for a in json.loads(listed.stdout)] == [alert["id"]]
    acked = _carcloud(platform, "alerts", "ack", alert["id"])
    assert acked.returncode == 0 and "acknowledged" in acked.stdout, acked.stderr
    again = _carcloud(platform, "alerts", "ack", alert["id"])
    assert again.returncode != 0 and "only an active alert" in again.stderr
    table = _carcloud(platform, "alerts", "rules")
    assert table.returncode == 0 and "crawl" in table.stdout
    bad = _carcloud(platform, "alerts", "add-rule", "x", "--when", "Vehicle.Nope > 1",
                    "--brand", BRAND)  # fmt: skip
    assert bad.returncode != 0 and "unknown signal Vehicle.Nope" in bad.stderr
    assert _carcloud(platform, "alerts", "delete-rule", rule_id).returncode == 0
    assert _alerts(platform, creds.vin)[0]["status"] == "cleared"
    fences = _carcloud(platform, "geofences", "add", "yard", "--circle", "48.1,11.5,150",
                       "--brand", BRAND, "--json")  # fmt: skip
    assert fences.returncode == 0, fences.stderr
    shown = _carcloud(platform, "geofences", "list")
    assert shown.returncode == 0 and "yard" in shown.stdout and "r 150 m" in shown.stdout
