"""Calls from the car over MQTT: a join action (a Zoom link and its dial-in with the PIN)
reaches the car as the call_join command, the car's joined/left reports show in the API,
and the cloud turns the car's video flag off while it moves and on when it parks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from carcloud.errors import ValidationError
from carcloud_agent.protocol.calls import CallReport, encode_call_report, join_of_params
from tests.platform import Car, Platform

ZOOM = "https://us02web.zoom.us/j/81234567890?pwd=abc123"
DIAL_IN = "tel:+4930123456,,81234567890#,,,,*123456#"


def commands_of(car: Car, kind: str) -> list[dict[str, Any]]:
    found = []
    for topic, payload in list(car.received):
        if "/commands/" in topic and not topic.endswith("/result"):
            body = json.loads(payload)
            if body["kind"] == kind:
                found.append(body)
    return found


def video_flags(car: Car) -> list[bool]:
    flags = []
    for document in car.desired_documents():
        calls = document.get("desired", {}).get("calls")
        if isinstance(calls, dict) and "video_allowed" in calls:
            flags.append(calls["video_allowed"])
    return flags


def test_a_zoom_join_reaches_the_car_and_its_reports_show(platform: Platform) -> None:
    creds = platform.register("callbrand")
    car = Car(platform, creds.vin, creds.password)
    assert not car.connect().is_failure
    car.serve()
    with platform.api() as api:
        call = api.post(
            f"/vehicles/{creds.vin}/calls", {"url": ZOOM, "tel": DIAL_IN, "title": "Design review"}
        )
        assert (call["state"], call["provider"]) == ("requested", "zoom")
        assert call["command_id"]

        sent = platform.wait_for(lambda: commands_of(car, "call_join"), what="the join action")
        join = join_of_params(sent[0]["params"])
        assert (join.call_id, join.url, join.tel, join.title) == (
            call["id"], ZOOM, DIAL_IN, "Design review",
        )  # fmt: skip
        assert join.video_allowed is False  # nothing known about the car's motion: no video

        topic = f"vehicles/{creds.vin}/events"
        car.publish(topic, encode_call_report(CallReport(call["id"], "joined")))

        def state() -> str:
            return str(api.get(f"/vehicles/{creds.vin}/calls")["calls"][0]["state"])

        platform.wait_for(lambda: state() == "joined", what="the joined report")
        car.publish(topic, encode_call_report(CallReport(call["id"], "left")))
        platform.wait_for(lambda: state() == "left", what="the left report")
        shown = api.get(f"/vehicles/{creds.vin}/calls/{call['id']}")
        assert shown["joined_at"] is not None and shown["ended_at"] is not None

        # A report after the end changes nothing; bad input gets a precise error.
        car.publish(topic, encode_call_report(CallReport(call["id"], "failed", "late")))
        assert api.get(f"/vehicles/{creds.vin}/calls/{call['id']}")["state"] == "left"
        with pytest.raises(ValidationError, match="tel: URI"):
            api.post(f"/vehicles/{creds.vin}/calls", {"url": ZOOM, "tel": "https://x.example"})
        with pytest.raises(ValidationError, match="event_id, or url"):
            api.post(f"/vehicles/{creds.vin}/calls", {"title": "nothing to join"})


def test_video_is_allowed_only_while_parked(platform: Platform) -> None:
    creds = platform.register("callbrand")
    car = Car(platform, creds.vin, creds.password)
    assert not car.connect().is_failure
    car.serve()
    car.telemetry({"Vehicle.Speed": 48.0, "Vehicle.Chassis.ParkingBrake.IsEngaged": False})
    platform.wait_for(lambda: video_flags(car)[-1:] == [False], what="video off while moving")
    car.telemetry({"Vehicle.Speed": 0.0, "Vehicle.Chassis.ParkingBrake.IsEngaged": True})
    platform.wait_for(lambda: video_flags(car)[-1:] == [True], what="video on once parked")

    # A join sent while parked says so; then the car drives off and the flag follows.
    with platform.api() as api:
        call = api.post(f"/vehicles/{creds.vin}/calls", {"tel": DIAL_IN})
    sent = platform.wait_for(lambda: commands_of(car, "call_join"), what="the join action")
    assert join_of_params(sent[0]["params"]).video_allowed is True
    assert call["provider"] == "phone"
    car.telemetry({"Vehicle.Speed": 12.0, "Vehicle.Chassis.ParkingBrake.IsEngaged": False})
    platform.wait_for(lambda: video_flags(car)[-1:] == [False], what="video off when it moves")
