"""Commands end to end with real MQTT cars: online, offline, restart, isolation, bad input."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from carcloud.commands.api import CommandOut
from carcloud.errors import ValidationError
from tests.conftest import start_platform
from tests.platform import Car, Platform


def send(
    platform: Platform,
    vin: str,
    kind: str,
    params: dict[str, object] | None = None,
    **extra: object,
) -> dict[str, object]:
    with platform.api() as api:
        body: dict[str, object] = {"kind": kind, "params": params or {}, **extra}
        result: dict[str, object] = api.post(f"/vehicles/{vin}/commands", body)
        return result


def wait_final(
    platform: Platform, vin: str, command_id: object, wait: str = "15s"
) -> dict[str, object]:
    with platform.api() as api:
        result: dict[str, object] = api.get(f"/vehicles/{vin}/commands/{command_id}", wait=wait)
        return result


def test_a_command_to_an_online_car_succeeds_end_to_end(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.serve()
    queued = send(platform, creds.vin, "climate_start", {"target_temperature": 22.5})
    assert queued["status"] == "queued"
    done = wait_final(platform, creds.vin, queued["id"])
    assert done["status"] == "succeeded"
    assert [t["status"] for t in done["transitions"]] == ["queued", "delivered", "succeeded"]  # type: ignore[union-attr]
    delivered = [json.loads(p) for t, p in car.received if t.endswith(str(queued["id"]))]
    assert delivered[0]["kind"] == "climate_start"
    assert delivered[0]["params"] == {"target_temperature": 22.5}


def test_waiting_answers_have_the_documented_shape(platform: Platform) -> None:
    """POST ?wait answers from the announcement; it must equal what GET reads back."""
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.serve()
    with platform.api() as api:
        done = api.post(
            f"/vehicles/{creds.vin}/commands?wait=15s",
            {"kind": "set_charge_limit", "params": {"percent": 70}},
        )
        again = api.get(f"/vehicles/{creds.vin}/commands/{done['id']}")
        schema = api.get("/openapi.json")["components"]["schemas"]["CommandOut"]
    assert done["status"] == "succeeded"
    assert done == again
    assert set(done) == set(schema["properties"])
    CommandOut.model_validate(done)


def test_a_failed_command_carries_the_cars_reason(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.serve(lambda kind, params: ("failed", "charging cable not connected"))
    queued = send(platform, creds.vin, "charge_start")
    done = wait_final(platform, creds.vin, queued["id"])
    assert (done["status"], done["reason"]) == ("failed", "charging cable not connected")


def test_a_command_for_an_offline_car_waits_and_arrives_in_order(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.serve()
    car.disconnect()
    first = send(platform, creds.vin, "unlock")
    second = send(platform, creds.vin, "lock")
    with platform.api() as api:
        assert api.get(f"/vehicles/{creds.vin}/commands/{first['id']}")["status"] == "queued"
    back = Car(platform, creds.vin, creds.password)
    back.answer = lambda kind, params: ("succeeded", None)
    back.connect()
    assert wait_final(platform, creds.vin, first["id"])["status"] == "succeeded"
    assert wait_final(platform, creds.vin, second["id"])["status"] == "succeeded"
    order = [t.rsplit("/", 1)[1] for t, _ in back.received if "/commands/" in t]
    assert order.index(str(first["id"])) < order.index(str(second["id"]))


def test_a_command_expires_after_its_ttl_when_the_car_stays_away(platform: Platform) -> None:
    creds = platform.register()
    queued = send(platform, creds.vin, "honk_flash", ttl="2s")
    done = wait_final(platform, creds.vin, queued["id"], wait="10s")
    assert done["status"] == "expired"
    assert "time to live" in str(done["reason"])
    car = Car(platform, creds.vin, creds.password)
    car.answer = lambda kind, params: ("succeeded", None)
    car.connect()
    car.serve()
    platform.wait_for(lambda: True, timeout=0.1)
    with platform.api() as api:
        assert api.get(f"/vehicles/{creds.vin}/commands/{queued['id']}")["status"] == "expired"


def test_same_idempotency_key_returns_the_same_command(platform: Platform) -> None:
    creds = platform.register()
    headers = {"Authorization": f"Bearer {platform.operator_key}", "Idempotency-Key": "tap-123"}
    url = f"{platform.url}/api/v1/vehicles/{creds.vin}/commands"
    first = httpx.post(url, json={"kind": "lock"}, headers=headers)
    again = httpx.post(url, json={"kind": "lock"}, headers=headers)
    assert first.status_code == 202 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    with platform.api() as api:
        assert len(api.get(f"/vehicles/{creds.vin}/commands")) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"kind": "warp"}, "unknown command kind 'warp'"),
        ({"kind": "set_charge_limit", "params": {}}, "missing parameter 'percent'"),
        ({"kind": "set_charge_limit", "params": {"percent": 120}}, "between 50 and 100"),
        ({"kind": "set_charge_limit", "params": {"percent": "high"}}, "must be a number"),
        ({"kind": "lock", "params": {"force": True}}, "unknown parameter(s) for lock: force"),
        (
            {"kind": "navigate_to", "params": {"latitude": 95, "longitude": 0}},
            "latitude must be between",
        ),
        ({"kind": "custom", "params": {}}, "missing parameter 'name'"),
        ({"kind": "lock", "ttl": "40d"}, "longer than the maximum"),
        ({"kind": "lock", "ttl": "soon"}, "not a duration"),
    ],
)
def test_invalid_commands_get_422_with_the_reason(
    platform: Platform, body: dict[str, object], reason: str
) -> None:
    creds = platform.register()
    with platform.api() as api, pytest.raises(ValidationError, match="422") as raised:
        api.post(f"/vehicles/{creds.vin}/commands", body)
    assert reason in str(raised.value)


def test_a_car_cannot_read_another_cars_commands(platform: Platform) -> None:
    target, snoop = platform.register(), platform.register()
    spy = Car(platform, snoop.vin, snoop.password)
    spy.connect()
    assert spy.subscribe(f"vehicles/{target.vin}/commands/+") == [0x80]
    assert spy.subscribe("vehicles/+/commands/#") == [0x80]
    owner = Car(platform, target.vin, target.password)
    owner.connect()
    owner.serve()
    queued = send(platform, target.vin, "unlock")
    assert wait_final(platform, target.vin, queued["id"])["status"] == "succeeded"
    assert not [t for t, _ in spy.received if target.vin in t]


def test_duplicate_delivery_is_answered_once_per_id(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.serve()
    queued = send(platform, creds.vin, "lock")
    assert wait_final(platform, creds.vin, queued["id"])["status"] == "succeeded"
    with platform.api() as api:
        command = api.get(f"/vehicles/{creds.vin}/commands/{queued['id']}")
    # A final command is not sent again, whatever reconnects follow.
    car.disconnect()
    again = Car(platform, creds.vin, creds.password)
    again.connect()
    again.serve()
    again.publish(f"vehicles/{creds.vin}/status", json.dumps({"online": True}))
    platform.wait_for(lambda: True, timeout=0.1)
    assert str(queued["id"]) not in {t.rsplit("/", 1)[1] for t, _ in again.received}
    assert command["status"] == "succeeded"


def test_cancel_and_event_stream(platform: Platform) -> None:
    creds = platform.register()
    events: list[dict[str, object]] = []
    ready = threading.Event()

    def follow() -> None:
        headers = {"Authorization": f"Bearer {platform.operator_key}"}
        url = f"{platform.url}/api/v1/vehicles/{creds.vin}/commands/events"
        with httpx.stream("GET", url, headers=headers, timeout=20) as response:
            for line in response.iter_lines():
                ready.set()
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["status"] == "cancelled":
                        return

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    assert ready.wait(10)
    queued = send(platform, creds.vin, "unlock")
    with platform.api() as api:
        cancelled = api.post(f"/vehicles/{creds.vin}/commands/{queued['id']}/cancel")
        assert cancelled["status"] == "cancelled"
        with pytest.raises(ValidationError, match="already cancelled"):
            api.post(f"/vehicles/{creds.vin}/commands/{queued['id']}/cancel")
    reader.join(10)
    assert [e["status"] for e in events] == ["queued", "cancelled"]
    # Each event is the whole command, as GET shows it, plus when it was announced.
    assert [t["status"] for t in events[-1]["transitions"]] == ["queued", "cancelled"]  # type: ignore[attr-defined]
    assert {k: v for k, v in events[-1].items() if k != "at"} == cancelled


@pytest.mark.slow
def test_queued_commands_survive_a_restart_of_carcloud(tmp_path: Path) -> None:
    platform = start_platform(tmp_path / "data")
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.serve()
    car.disconnect()
    queued = send(platform, creds.vin, "set_charge_limit", {"percent": 85})
    platform.stop()
    again = platform.restarted()
    try:
        back = Car(again, creds.vin, creds.password)
        back.answer = lambda kind, params: ("succeeded", None)
        back.connect()
        done = wait_final(again, creds.vin, queued["id"])
        assert done["status"] == "succeeded"
        assert json.loads(next(p for t, p in back.received if "/commands/" in t))["params"] == {
            "percent": 85
        }
    finally:
        again.stop()


def test_a_car_cannot_answer_another_cars_command(platform: Platform) -> None:
    owner, forger = platform.register(), platform.register()
    queued = send(platform, owner.vin, "unlock")
    liar = Car(platform, forger.vin, forger.password)
    liar.connect()
    # Its own subtree is all it may publish to: it tries there with the other car's command id.
    liar.publish(
        f"vehicles/{forger.vin}/commands/{queued['id']}/result", json.dumps({"status": "succeeded"})
    )
    honest = Car(platform, owner.vin, owner.password)
    honest.connect()
    honest.serve(lambda kind, params: ("failed", "door frozen"))
    done = wait_final(platform, owner.vin, queued["id"])
    assert (done["status"], done["reason"]) == ("failed", "door frozen")


def test_post_with_wait_answers_with_the_final_state(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.serve()
    headers = {"Authorization": f"Bearer {platform.operator_key}", "Idempotency-Key": "once"}
    url = f"{platform.url}/api/v1/vehicles/{creds.vin}/commands"
    done = httpx.post(url, params={"wait": "15s"}, json={"kind": "honk_flash"}, headers=headers)
    assert done.status_code == 202 and done.json()["status"] == "succeeded"
    again = httpx.post(url, params={"wait": "15s"}, json={"kind": "honk_flash"}, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == done.json()["id"]
    assert again.json()["status"] == "succeeded"
