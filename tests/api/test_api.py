"""The REST API: authentication, brand scoping, validation errors and the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest

from carcloud.errors import AuthError, ForbiddenError, NotFoundError, ValidationError
from tests.platform import Car, Platform, make_vin


def test_requests_without_a_valid_key_get_401_with_a_reason(platform: Platform) -> None:
    missing = httpx.get(f"{platform.url}/api/v1/vehicles")
    assert missing.status_code == 401
    assert missing.json() == {
        "error": "unauthorized",
        "message": "missing API key: send Authorization: Bearer <key>",
    }
    wrong = httpx.get(
        f"{platform.url}/api/v1/vehicles", headers={"Authorization": "Bearer cck_abc_def"}
    )
    assert wrong.status_code == 401 and "unknown or wrong API key" in wrong.json()["message"]
    garbage = httpx.get(
        f"{platform.url}/api/v1/vehicles", headers={"Authorization": "Bearer hello"}
    )
    assert garbage.status_code == 401 and "malformed API key" in garbage.json()["message"]


def test_brand_scoped_key_sees_only_its_brand(platform: Platform) -> None:
    ours = platform.register(brand="alpha")
    theirs = platform.register(brand="beta")
    with platform.api() as api:
        key = api.post("/api-keys", {"name": "alpha app", "brand": "alpha"})["key"]
    with platform.api(key) as scoped:
        assert scoped.get(f"/vehicles/{ours.vin}")["brand"] == "alpha"
        listed = {v["vin"] for v in scoped.get("/vehicles", limit=1000)["vehicles"]}
        assert ours.vin in listed and theirs.vin not in listed
        assert [b["slug"] for b in scoped.get("/brands")] == ["alpha"]
        for path in (f"/vehicles/{theirs.vin}", f"/vehicles/{theirs.vin}/state", "/brands/beta"):
            with pytest.raises(NotFoundError, match="404"):
                scoped.get(path)
        with pytest.raises(NotFoundError, match="404"):
            scoped.get("/vehicles", brand="beta")
        with pytest.raises(NotFoundError, match="404"):
            scoped.post(f"/vehicles/{theirs.vin}/revoke")
        with pytest.raises(NotFoundError, match="404"):
            scoped.post("/vehicles", {"vin": make_vin(), "brand": "beta", "model": "X"})
        with pytest.raises(ForbiddenError, match="403"):
            scoped.post("/brands", {"slug": "gamma", "name": "Gamma"})
        with pytest.raises(ForbiddenError, match="403"):
            scoped.post("/api-keys", {"name": "escalate"})
        created = scoped.post("/vehicles", {"vin": make_vin(), "brand": "alpha", "model": "X"})
        assert created["vehicle"]["brand"] == "alpha"
    with platform.api(key) as scoped:
        letters = scoped.get("/dead-letters")
        assert all(d["vin"] != theirs.vin for d in letters)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"vin": "SHORT", "brand": "alpha", "model": "X"}, "exactly 17"),
        ({"vin": "WVWZZZ1JZXW00000I", "brand": "alpha", "model": "X"}, "except I, O and Q"),
        ({"vin": "WVWZZZ1JZXW000123", "brand": "alpha"}, "model: Field required"),
        (
            {"vin": "WVWZZZ1JZXW000123", "brand": "alpha", "model": "X", "model_year": 1800},
            "model_year",
        ),
        (
            {"vin": "WVWZZZ1JZXW000123", "brand": "alpha", "model": "X", "colour": "red"},
            "colour: Extra inputs",
        ),
    ],
)
def test_invalid_vehicle_gets_422_with_the_reason(
    platform: Platform, body: dict[str, object], message: str
) -> None:
    platform.ensure_brand("alpha")
    with platform.api() as api, pytest.raises(ValidationError, match=message):
        api.post("/vehicles", body)


def test_conflicts_and_unknown_things(platform: Platform) -> None:
    creds = platform.register()
    with platform.api() as api:
        with pytest.raises(Exception, match="409: vehicle .* already registered"):
            api.post("/vehicles", {"vin": creds.vin, "brand": "testbrand", "model": "X"})
        with pytest.raises(NotFoundError, match="brand 'nobody' not found"):
            api.post("/vehicles", {"vin": make_vin(), "brand": "nobody", "model": "X"})
        with pytest.raises(ValidationError, match="unknown signal path"):
            api.get(f"/vehicles/{creds.vin}/signals", path="Vehicle.Nope")
        with pytest.raises(ValidationError, match="not an RFC 3339"):
            api.get(f"/vehicles/{creds.vin}/signals", path="Vehicle.Speed", **{"from": "monday"})
        with pytest.raises(ValidationError, match="not a duration"):
            api.get(f"/vehicles/{creds.vin}/signals", path="Vehicle.Speed", interval="often")


def test_tags_update_and_filter(platform: Platform) -> None:
    creds = platform.register(tags=["fleet:north"])
    with platform.api() as api:
        updated = api.request(
            "PATCH", f"/vehicles/{creds.vin}", json={"tags": ["fleet:south", "ev"]}
        )
        assert updated["tags"] == ["ev", "fleet:south"]
        south = api.get("/vehicles", tag="fleet:south")["vehicles"]
        assert [v["vin"] for v in south] == [creds.vin]
        assert api.get("/vehicles", tag="fleet:north")["vehicles"] == []


def test_delete_vehicle_drops_its_connection_and_credentials(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    with platform.api() as api:
        api.request("DELETE", f"/vehicles/{creds.vin}")
        with pytest.raises(NotFoundError):
            api.get(f"/vehicles/{creds.vin}")
    assert car.disconnected.wait(5)


def test_history_downsampling_through_the_api(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    base = "2026-11-24T10:00:{:02d}Z"
    for second in range(20):
        car.telemetry({"Vehicle.Speed": float(second)}, seq=second + 1, ts=base.format(second))
    with platform.api() as api:
        platform.wait_for(
            lambda: (
                len(api.get(f"/vehicles/{creds.vin}/signals", path="Vehicle.Speed")["points"]) == 20
            ),
            what="20 points",
        )
        buckets = api.get(f"/vehicles/{creds.vin}/signals", path="Vehicle.Speed", interval="10s")
        assert [(p["ts"], p["value"], p["count"]) for p in buckets["points"]] == [
            ("2026-11-24T10:00:00.000000Z", 4.5, 10),
            ("2026-11-24T10:00:10.000000Z", 14.5, 10),
        ]
        window = api.get(
            f"/vehicles/{creds.vin}/signals",
            path="Vehicle.Speed",
            **{"from": base.format(5), "to": base.format(8)},
        )
        assert [p["value"] for p in window["points"]] == [5.0, 6.0, 7.0]
        assert window["unit"] == "km/h"


def test_openapi_document_describes_the_api(platform: Platform) -> None:
    spec = httpx.get(f"{platform.url}/api/v1/openapi.json").json()
    assert spec["info"]["title"] == "carcloud"
    for path in (
        "/api/v1/vehicles",
        "/api/v1/vehicles/{vin}/state",
        "/api/v1/vehicles/{vin}/signals",
        "/api/v1/brands",
        "/api/v1/dead-letters",
        "/healthz",
    ):
        assert path in spec["paths"], path
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_status_reports_vehicles_and_ingest(platform: Platform) -> None:
    with platform.api() as api:
        status = api.get("/status")
    assert status["vehicles"]["registered"] >= 0
    assert {"pending", "ack_pending"} <= set(status["ingest"])
    assert status["mqtt_url"].endswith(str(platform.mqtt_port))


def test_auth_error_type_is_what_clients_see(platform: Platform) -> None:
    with platform.api("cck_nothing_here") as api, pytest.raises(AuthError):
        api.get("/vehicles")
