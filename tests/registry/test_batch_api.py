"""POST /api/v1/vehicles/batch: many vehicles in one request, a result per row."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from carcloud.errors import ValidationError
from tests.platform import Car, Platform, make_vin


def row(vin: str, brand: str = "batchco", **extra: Any) -> dict[str, Any]:
    return {"vin": vin, "brand": brand, "model": "B1", "model_year": 2025, **extra}


def test_bad_rows_are_reported_and_the_others_registered(platform: Platform) -> None:
    platform.ensure_brand("batchco")
    taken = platform.register(brand="batchco").vin
    good, second, repeated = make_vin("BAT"), make_vin("BAT"), make_vin("BAT")
    rows = [
        row(good, tags=["fleet:a", "lease"]),
        row("NOT-A-VIN"),
        row(make_vin("BAT"), brand="nobrand"),
        row(repeated),
        row(repeated),
        row(taken),
        row(make_vin("BAT"), tags=["bad tag!"]),
        row(make_vin("BAT"), model_year=1900),
        row(second, model_year=None),
    ]
    with platform.api() as api:
        answer = api.post("/vehicles/batch", {"vehicles": rows})
        assert (answer["registered"], answer["failed"]) == (3, 6)
        results = answer["results"]
        assert [r["row"] for r in results] == list(range(len(rows)))
        assert [r["error"] for r in results] == [
            None,
            "invalid_vin",
            "unknown_brand",
            None,
            "duplicate",
            "already_registered",
            "invalid",
            "invalid",
            None,
        ]
        assert "17" in results[1]["message"] and "at row 3" in results[4]["message"]
        assert all(r["mqtt_password"] is None for r in results if not r["registered"])

        vehicle = api.get(f"/vehicles/{good}")
        assert (vehicle["brand"], vehicle["tags"]) == ("batchco", ["fleet:a", "lease"])
        assert api.get(f"/vehicles/{second}")["model_year"] is None
        events = api.get("/events", types="vehicle.registered", vin=good)["events"]
        assert [e["type"] for e in events] == ["vehicle.registered"]

    car = Car(platform, good, results[0]["mqtt_password"])
    assert not car.connect().is_failure
    car.disconnect()


def test_a_brand_key_registers_only_its_own_brand(platform: Platform) -> None:
    platform.ensure_brand("batchown")
    platform.ensure_brand("batchother")
    with platform.api() as api:
        key = api.post("/api-keys", {"name": "own importer", "brand": "batchown"})["key"]
    ours, theirs = make_vin("BAT"), make_vin("BAT")
    with platform.api(key) as scoped:
        answer = scoped.post(
            "/vehicles/batch", {"vehicles": [row(ours, "batchown"), row(theirs, "batchother")]}
        )
    assert [(r["registered"], r["error"]) for r in answer["results"]] == [
        (True, None),
        (False, "unknown_brand"),  # as for one vehicle: another brand's name does not leak
    ]
    with platform.api() as api:
        assert api.get(f"/vehicles/{ours}")["brand"] == "batchown"
        assert {v["vin"] for v in api.get("/vehicles", brand="batchother")["vehicles"]} == set()


def test_limits_of_a_batch(platform: Platform) -> None:
    platform.ensure_brand("batchco")
    with platform.api() as api:
        with pytest.raises(ValidationError, match="422"):
            api.post("/vehicles/batch", {"vehicles": []})
        with pytest.raises(ValidationError, match="422"):
            api.post("/vehicles/batch", {"vehicles": [row(make_vin("BAT")) for _ in range(1001)]})
        full = api.post(
            "/vehicles/batch", {"vehicles": [row(make_vin("BAT")) for _ in range(1000)]}
        )
        assert (full["registered"], full["failed"]) == (1000, 0)
        assert len({r["mqtt_password"] for r in full["results"]}) == 1000
    unauthenticated = httpx.post(f"{platform.url}/api/v1/vehicles/batch", json={"vehicles": []})
    assert unauthenticated.status_code == 401


def test_configurations_reach_vehicles_registered_in_a_batch(platform: Platform) -> None:
    platform.ensure_brand("batchcfg")
    with platform.api() as api:
        api.post("/configurations", {
            "name": "batch-north", "priority": 5,
            "target": {"brand": "batchcfg", "tags": ["region:north"]},
            "desired": {"charge_limit_percent": 80},
        })  # fmt: skip
        north, south = make_vin("BAT"), make_vin("BAT")
        api.post(
            "/vehicles/batch",
            {
                "vehicles": [
                    row(north, "batchcfg", tags=["region:north"]),
                    row(south, "batchcfg", tags=["region:south"]),
                ]
            },
        )
        assert api.get(f"/vehicles/{north}/twin")["desired"]["properties"] == {
            "charge_limit_percent": 80
        }
        assert api.get(f"/vehicles/{south}/twin")["desired"]["properties"] == {}
