"""Vehicles connect with their own credentials and touch only their own topics."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.platform import Car, Platform

NOT_AUTHORIZED = 135  # paho's code for MQTT 3.1.1 CONNACK return code 5


def test_vehicle_connects_and_its_telemetry_is_queryable(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    assert not car.connect().is_failure
    car.telemetry(
        {"Vehicle.Speed": 42.5, "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 77.0}
    )
    with platform.api() as api:
        state = platform.wait_for(
            lambda: (s := api.get(f"/vehicles/{creds.vin}/state"))["signals"] and s,
            what="state in the API",
        )
        assert state["online"] is True
        assert state["signals"]["Vehicle.Speed"]["value"] == 42.5
        assert (
            state["signals"]["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"]["value"]
            == 77.0
        )
    car.disconnect()


@pytest.mark.parametrize("case", ["wrong secret", "unknown vin", "client id not the vin"])
def test_bad_credentials_are_refused_with_not_authorized(platform: Platform, case: str) -> None:
    creds = platform.register()
    if case == "wrong secret":
        car = Car(platform, creds.vin, creds.password + "x")
    elif case == "unknown vin":
        car = Car(platform, "ZZZZZZZZZZZZ99999", creds.password)
    else:
        car = Car(platform, creds.vin, creds.password, client_id="someone-else")
    reason = car.connect()
    car.client.loop_stop()
    assert reason.is_failure and reason.value == NOT_AUTHORIZED


def test_vehicle_cannot_publish_into_another_vehicles_topics(platform: Platform) -> None:
    mine, theirs = platform.register(), platform.register()
    car = Car(platform, mine.vin, mine.password)
    car.connect()
    forged = {"seq": 1, "ts": "2026-01-01T00:00:00Z", "signals": {"Vehicle.Speed": 199.0}}
    car.publish(f"vehicles/{theirs.vin}/telemetry", json.dumps(forged))
    car.telemetry({"Vehicle.Speed": 10.0})  # a marker that passes through the same pipeline
    with platform.api() as api:
        platform.wait_for(lambda: api.get(f"/vehicles/{mine.vin}/state")["signals"], what="marker")
        assert api.get(f"/vehicles/{theirs.vin}/state")["signals"] == {}
    car.disconnect()


def test_vehicle_cannot_subscribe_to_another_vehicles_topics(platform: Platform) -> None:
    mine, theirs = platform.register(), platform.register()
    car = Car(platform, mine.vin, mine.password)
    car.connect()
    assert car.subscribe(f"vehicles/{mine.vin}/commands/#") == [1]
    assert car.subscribe(f"vehicles/{theirs.vin}/commands/#") == [0x80]
    assert car.subscribe("vehicles/#") == [0x80]
    assert car.subscribe("vehicles/+/telemetry") == [0x80]
    assert car.subscribe("$SYS/#") == [0x80]
    car.disconnect()


def test_vehicle_credentials_are_refused_on_plain_nats(platform: Platform) -> None:
    """The NATS client protocol by hand: INFO, CONNECT with the car's secret, PING."""
    creds = platform.register()
    with socket.create_connection(("127.0.0.1", platform.nats_port), timeout=5) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"INFO ")
        connect = {"user": creds.vin, "pass": creds.password, "verbose": False, "pedantic": False}
        sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        answer = reader.readline()
        reader.close()
    assert answer.startswith(b"-ERR") and b"Authorization Violation" in answer


def test_revoke_drops_the_live_connection_and_refuses_reconnects(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    assert car.connected.wait(5)
    with platform.api() as api:
        revoked = api.post(f"/vehicles/{creds.vin}/revoke")
        assert revoked["revoked"] is True
    assert car.disconnected.wait(5), "the revoked vehicle's live connection was not dropped"
    car.client.loop_stop()
    again = Car(platform, creds.vin, creds.password)
    reason = again.connect()
    again.client.loop_stop()
    assert reason.is_failure and reason.value == NOT_AUTHORIZED


def test_rotated_secret_replaces_the_old_one(platform: Platform) -> None:
    creds = platform.register()
    first = Car(platform, creds.vin, creds.password)
    assert not first.connect().is_failure
    first.disconnect()
    with platform.api() as api:
        new_password = api.post(f"/vehicles/{creds.vin}/rotate-secret")["mqtt_password"]
    old = Car(platform, creds.vin, creds.password)
    reason = old.connect()
    old.client.loop_stop()
    assert reason.is_failure and reason.value == NOT_AUTHORIZED
    new = Car(platform, creds.vin, new_password)
    assert not new.connect().is_failure
    new.disconnect()


def test_presence_follows_connect_clean_disconnect_and_drop(platform: Platform) -> None:
    creds = platform.register()
    with platform.api() as api:

        def online() -> bool:
            return bool(api.get(f"/vehicles/{creds.vin}")["online"])

        assert api.get(f"/vehicles/{creds.vin}")["last_seen_at"] is None
        car = Car(platform, creds.vin, creds.password)
        car.connect()
        platform.wait_for(online, what="online after connect")
        car.disconnect()
        platform.wait_for(lambda: not online(), what="offline after a clean disconnect")
        seen = api.get(f"/vehicles/{creds.vin}")["last_seen_at"]
        assert seen is not None
        time.sleep(0.01)
        car = Car(platform, creds.vin, creds.password)
        car.connect()
        platform.wait_for(online, what="online after reconnect")
        car.drop()
        platform.wait_for(
            lambda: not online(), timeout=60, what="offline after a dropped connection"
        )
        assert api.get(f"/vehicles/{creds.vin}")["last_seen_at"] > seen
