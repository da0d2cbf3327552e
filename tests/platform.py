"""Test helpers: a real `carcloud up` in a child process on free ports, and MQTT vehicles."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from carcloud.runtime.launcher import PlatformProcess

_vin_counter = iter(range(1, 10**9))
_VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def make_vin(prefix: str = "TST") -> str:
    """A unique valid VIN for this test run."""
    number = next(_vin_counter) + os.getpid() * 1000
    digits = ""
    while len(digits) < 17 - len(prefix):
        number, rest = divmod(number, len(_VIN_ALPHABET))
        digits = _VIN_ALPHABET[rest] + digits
    return (prefix + digits)[:17]


@dataclass
class VehicleCredentials:
    vin: str
    password: str


class Platform(PlatformProcess):
    """A running `carcloud up` child process, with helpers for tests."""

    def restarted(self) -> Platform:
        """The same platform (data dir, ports, backend) started again after `stop()`."""
        again = Platform(
            self.data_dir, self.http_port, self.mqtt_port, self.nats_port, list(self.extra_args)
        )
        again.start()
        return again

    def register(
        self, brand: str = "testbrand", vin: str | None = None, **extra: Any
    ) -> VehicleCredentials:
        self.ensure_brand(brand)
        body = {
            "vin": vin or make_vin(),
            "brand": brand,
            "model": "T1",
            "model_year": 2025,
            **extra,
        }
        with self.api() as api:
            created = api.post("/vehicles", body)
        return VehicleCredentials(created["mqtt_username"], created["mqtt_password"])

    def wait_for(self, predicate: Any, timeout: float = 10.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")


OPEN_CARS: list[Car] = []


class Car:
    """A vehicle as a real MQTT 3.1.1 client (paho), with helpers that wait."""

    def close(self) -> None:
        """Stop the network loop and close the socket, whatever state it is in."""
        self.client.loop_stop()
        # paho keeps a socket and a wake-up socket pair; release all of them.
        reset = getattr(self.client, "_reset_sockets", None)
        if reset is not None:
            reset()

    def __init__(
        self,
        platform: Platform,
        vin: str,
        password: str,
        client_id: str | None = None,
        clean_session: bool = False,
    ) -> None:
        self.vin = vin
        self.platform = platform
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or vin,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        self.client.username_pw_set(vin, password)
        self.client.will_set(f"vehicles/{vin}/status", json.dumps({"online": False}), qos=1)
        self.connack: Any = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.answered = threading.Event()
        self.received: list[tuple[str, bytes]] = []
        self.subacks: list[Any] = []
        self._suback = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.answer: Any = None  # callable(kind, params) -> (status, reason), set by serve()
        self.seen_commands: dict[str, int] = {}
        self.client.on_subscribe = self._on_subscribe
        self.seq = 0
        OPEN_CARS.append(self)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connack = reason
        self.answered.set()
        if not reason.is_failure:
            self.disconnected.clear()
            self.connected.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.connected.clear()
        self.disconnected.set()
        self.answered.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.received.append((message.topic, message.payload))
        parts = message.topic.split("/")
        if self.answer is not None and len(parts) == 4 and parts[2] == "commands":
            command_id = parts[3]
            self.seen_commands[command_id] = self.seen_commands.get(command_id, 0) + 1
            body = json.loads(message.payload)
            result_topic = f"{message.topic}/result"
            client.publish(result_topic, json.dumps({"status": "received"}), qos=1)
            status, reason = self.answer(body["kind"], body["params"])
            client.publish(result_topic, json.dumps({"status": status, "reason": reason}), qos=1)

    def serve(self, answer: Any = None) -> None:
        """Subscribe to commands and desired properties; answer commands with `answer`."""
        self.answer = answer or (lambda kind, params: ("succeeded", None))
        assert self.subscribe(f"vehicles/{self.vin}/commands/+") == [1]
        assert self.subscribe(f"vehicles/{self.vin}/twin/desired") == [1]

    def desired_documents(self) -> list[dict[str, Any]]:
        """Every desired document received, in order."""
        return [
            json.loads(payload)
            for topic, payload in list(self.received)
            if topic.endswith("/twin/desired")
        ]

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        self.subacks.append([int(getattr(code, "value", code)) for code in codes])
        self._suback.set()

    def connect(self, timeout: float = 10.0, reconnect: bool = False) -> Any:
        """Connect; returns the CONNACK reason (paho ReasonCode)."""
        self.answered.clear()
        if not reconnect:
            self.client.reconnect_delay_set(1, 2)
        self.client.connect("127.0.0.1", self.platform.mqtt_port, keepalive=30)
        self.client.loop_start()
        if not self.answered.wait(timeout):
            raise AssertionError(f"{self.vin}: no CONNACK within {timeout}s")
        return self.connack

    def subscribe(self, topic: str, timeout: float = 5.0) -> list[int]:
        self._suback.clear()
        self.client.subscribe(topic, qos=1)
        if not self._suback.wait(timeout):
            raise AssertionError(f"{self.vin}: no SUBACK for {topic}")
        return self.subacks[-1]

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, timeout: float = 5.0) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout)

    def telemetry(
        self, signals: dict[str, Any], seq: int | None = None, ts: str | None = None
    ) -> int:
        if seq is None:
            self.seq += 1
            seq = self.seq
        body = {"seq": seq, "ts": ts or utc_now(), "signals": signals}
        self.publish(f"vehicles/{self.vin}/telemetry", json.dumps(body))
        return seq

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def drop(self) -> None:
        """Vanish without DISCONNECT, as a car entering a tunnel does."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def utc_now(offset_s: float = 0.0) -> str:
    moment = time.time() + offset_s
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1e6):06d}Z"
    )
