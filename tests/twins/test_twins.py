"""Twins and fleet-wide configurations with real MQTT cars."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from carcloud.errors import ValidationError
from tests.platform import Car, Platform


def report(car: Car, version: int, reported: dict[str, Any]) -> None:
    body = {"desired_version": version, "reported": reported}
    car.publish(f"vehicles/{car.vin}/twin/reported", json.dumps(body))


def twin(platform: Platform, vin: str) -> dict[str, Any]:
    with platform.api() as api:
        found: dict[str, Any] = api.get(f"/vehicles/{vin}/twin")
        return found


def put_desired(
    platform: Platform,
    vin: str,
    properties: dict[str, Any],
    if_match: str | None = None,
    method: str = "PUT",
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {platform.operator_key}"}
    if if_match is not None:
        headers["If-Match"] = if_match
    return httpx.request(
        method,
        f"{platform.url}/api/v1/vehicles/{vin}/twin/desired",
        json={"properties": properties},
        headers=headers,
    )


def test_desired_reaches_the_car_and_reported_closes_the_gap(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.serve()
    response = put_desired(platform, creds.vin, {"charge_limit_percent": 80, "hvac": {"eco": True}})
    assert response.status_code == 200 and response.headers["ETag"] == '"1"'
    got = platform.wait_for(car.desired_documents, what="desired document at the car")
    assert got[-1] == {"version": 1, "desired": {"charge_limit_percent": 80, "hvac": {"eco": True}}}
    state = twin(platform, creds.vin)
    assert state["pending"] == {"charge_limit_percent": 80, "hvac": {"eco": True}}
    assert state["in_sync"] is False
    report(car, 1, {"charge_limit_percent": 80, "hvac": {"eco": True}, "firmware": "2.4.1"})
    synced = platform.wait_for(
        lambda: (t := twin(platform, creds.vin))["in_sync"] and t, what="reported properties"
    )
    assert synced["reported"]["properties"]["firmware"] == "2.4.1"
    assert synced["reported"]["desired_version"] == 1


def test_a_desired_change_made_while_offline_is_applied_after_reconnect(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.serve()
    car.disconnect()
    assert put_desired(platform, creds.vin, {"charge_limit_percent": 90}).status_code == 200
    assert put_desired(platform, creds.vin, {"charge_limit_percent": 85}).status_code == 200
    back = Car(platform, creds.vin, creds.password)
    back.connect()
    back.publish(f"vehicles/{creds.vin}/status", json.dumps({"online": True}))
    documents = platform.wait_for(
        lambda: [d for d in back.desired_documents() if d["version"] == 2], what="version 2"
    )
    assert documents[-1]["desired"] == {"charge_limit_percent": 85}


def test_stale_if_match_gets_412_and_a_current_one_succeeds(platform: Platform) -> None:
    creds = platform.register()
    first = put_desired(platform, creds.vin, {"mode": "eco"}, if_match='"0"')
    assert first.status_code == 200 and first.headers["ETag"] == '"1"'
    stale = put_desired(platform, creds.vin, {"mode": "sport"}, if_match='"0"')
    assert stale.status_code == 412
    assert "version 1, not 0" in stale.json()["message"]
    patched = put_desired(platform, creds.vin, {"lights": "auto"}, if_match='"1"', method="PATCH")
    assert patched.status_code == 200
    assert patched.json()["desired"]["properties"] == {"mode": "eco", "lights": "auto"}
    removed = put_desired(platform, creds.vin, {"lights": None}, method="PATCH")
    assert removed.json()["desired"]["properties"] == {"mode": "eco"}
    assert put_desired(platform, creds.vin, {"$bad": 1}).status_code == 422
    assert put_desired(platform, creds.vin, {"mode": "x"}, if_match="latest").status_code == 422


def test_configuration_targets_now_and_later_and_reports_progress(platform: Platform) -> None:
    early = platform.register(brand="fleetco", tags=["region:north"])
    other = platform.register(brand="fleetco", tags=["region:south"])
    car = Car(platform, early.vin, early.password)
    car.connect()
    car.serve()
    with platform.api() as api:
        created = api.post("/configurations", {
            "name": "north-winter", "priority": 10,
            "target": {"brand": "fleetco", "tags": ["region:north"]},
            "desired": {"preconditioning": {"enabled": True, "target_c": 21}},
        })  # fmt: skip
        assert created["status"]["targeted"] == 1
        assert created["status"]["applied"] == 0
        documents = platform.wait_for(car.desired_documents, what="configuration at the car")
        assert documents[-1]["desired"] == {"preconditioning": {"enabled": True, "target_c": 21}}
        report(car, documents[-1]["version"], documents[-1]["desired"])

        def applied() -> dict[str, Any] | None:
            found: dict[str, Any] = api.get(f"/configurations/{created['id']}")
            return found if found["status"]["applied"] == 1 else None

        platform.wait_for(applied, what="applied count")
        assert twin(platform, other.vin)["desired"]["properties"] == {}

        # A vehicle that matches later gets the configuration too.
        late = platform.register(brand="fleetco", tags=["region:north"])
        assert twin(platform, late.vin)["desired"]["properties"]["preconditioning"]["enabled"]
        api.request("PATCH", f"/vehicles/{other.vin}", json={"tags": ["region:north"]})
        assert (
            twin(platform, other.vin)["desired"]["properties"]["preconditioning"]["target_c"] == 21
        )
        status = api.get(f"/configurations/{created['id']}")["status"]
        assert (status["targeted"], status["applied"], status["pending"]) == (3, 1, 2)

        # Own desired properties win over a configuration; higher priority wins over lower.
        api.post("/configurations", {
            "name": "fleet-default", "priority": 1, "target": {"brand": "fleetco"},
            "desired": {"preconditioning": {"target_c": 19}, "speed_alert_kmh": 130},
        })  # fmt: skip
        merged = twin(platform, early.vin)["desired"]["properties"]
        assert merged == {
            "preconditioning": {"enabled": True, "target_c": 21},
            "speed_alert_kmh": 130,
        }
        put_desired(platform, early.vin, {"speed_alert_kmh": 110})
        assert twin(platform, early.vin)["desired"]["properties"]["speed_alert_kmh"] == 110

        api.request("DELETE", f"/configurations/{created['id']}")
        assert twin(platform, late.vin)["desired"]["properties"] == {
            "preconditioning": {"target_c": 19},
            "speed_alert_kmh": 130,
        }


def test_configuration_failures_are_counted(platform: Platform) -> None:
    creds = platform.register(brand="failco")
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.serve()
    with platform.api() as api:
        created = api.post("/configurations", {
            "name": "bad-limit", "target": {"brand": "failco"},
            "desired": {"charge_limit_percent": 30},
        })  # fmt: skip
        version = platform.wait_for(car.desired_documents, what="document")[-1]["version"]
        report(car, version, {"errors": {"charge_limit_percent": "must be between 50 and 100"}})
        platform.wait_for(
            lambda: api.get(f"/configurations/{created['id']}")["status"]["failed"] == 1,
            what="failed count",
        )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"name": "x", "target": {"colour": "red"}, "desired": {"a": 1}}, "unknown target field"),
        ({"name": "x", "target": {"tags": "north"}, "desired": {"a": 1}}, "tags must be a list"),
        ({"name": "x", "desired": "fast"}, "desired"),
    ],
)
def test_invalid_configurations_get_422(
    platform: Platform, body: dict[str, Any], reason: str
) -> None:
    with platform.api() as api, pytest.raises(ValidationError, match=reason):
        api.post("/configurations", body)


def test_brand_keys_only_touch_their_own_brand(platform: Platform) -> None:
    mine = platform.register(brand="ownbrand")
    theirs = platform.register(brand="otherbrand")
    with platform.api() as api:
        key = api.post("/api-keys", {"name": "own", "brand": "ownbrand"})["key"]
    with platform.api(key) as scoped:
        scoped.get(f"/vehicles/{mine.vin}/twin")
        with pytest.raises(Exception, match="404"):
            scoped.get(f"/vehicles/{theirs.vin}/twin")
        with pytest.raises(Exception, match="404"):
            scoped.post(f"/vehicles/{theirs.vin}/commands", {"kind": "lock"})
        with pytest.raises(ValidationError, match="can only target that brand"):
            scoped.post(
                "/configurations",
                {"name": "steal", "target": {"brand": "otherbrand"}, "desired": {"a": 1}},
            )
        created = scoped.post("/configurations", {"name": "own-cfg", "desired": {"a": 1}})
        assert created["target"] == {"brand": "ownbrand"}
