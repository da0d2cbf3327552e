"""Test helpers: a real `carcloud up` in a child process on free ports, and MQTT vehicles."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt

from carcloud.client import ApiClient

_vin_counter = iter(range(1, 10**9))
_VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


@dataclass
class Platform:
    """A running `carcloud up` child process."""

    data_dir: Path
    http_port: int
    mqtt_port: int
    nats_port: int
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "carcloud.cli",
            "up",
            "--data-dir",
            str(self.data_dir),
            "--http-port",
            str(self.http_port),
            "--mqtt-port",
            str(self.mqtt_port),
            "--nats-port",
            str(self.nats_port),
            *self.extra_args,
        ]

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "up.log"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"carcloud up exited {self.process.returncode}:\n{self.log()}")
            if (self.data_dir / "runtime.json").exists():
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"carcloud up did not become ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    @property
    def operator_key(self) -> str:
        return (self.data_dir / "operator.key").read_text().strip()

    def api(self, key: str | None = None) -> ApiClient:
        return ApiClient(self.url, key or self.operator_key)

    def ensure_brand(self, slug: str) -> None:
        with self.api() as api:
            if slug not in {b["slug"] for b in api.get("/brands")}:
                api.post("/brands", {"slug": slug, "name": slug.title()})

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
        self.client.on_message = lambda c, u, m: self.received.append((m.topic, m.payload))
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
