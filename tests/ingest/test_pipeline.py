"""Telemetry through the real pipeline: MQTT → NATS JetStream → ingest workers → SQLite → API."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_platform
from tests.platform import Car, Platform, utc_now


def history(platform: Platform, vin: str, path: str = "Vehicle.Speed") -> list[float]:
    with platform.api() as api:
        found = api.get(f"/vehicles/{vin}/signals", path=path, limit=100_000)
    return [point["value"] for point in found["points"]]


def test_resent_message_is_stored_once(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    ts = utc_now()
    for _ in range(3):  # the same (vin, seq) three times, as a car that lost its PUBACKs would
        car.telemetry({"Vehicle.Speed": 33.0}, seq=1, ts=ts)
    car.telemetry({"Vehicle.Speed": 34.0}, seq=2)
    platform.wait_for(lambda: len(history(platform, creds.vin)) >= 2, what="two messages")
    time.sleep(0.5)
    assert history(platform, creds.vin) == [33.0, 34.0]


def test_every_kind_of_bad_input_lands_in_dead_letters(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    topic = f"vehicles/{creds.vin}/telemetry"
    now = utc_now()
    bad = {
        "malformed JSON": b'{"seq": 1, "ts": ',
        "unknown signal path": json.dumps(
            {"seq": 2, "ts": now, "signals": {"Vehicle.Warp.Factor": 9}}
        ),
        "expected a number": json.dumps(
            {"seq": 3, "ts": now, "signals": {"Vehicle.Speed": "fast"}}
        ),
        "above the maximum": json.dumps({"seq": 4, "ts": now, "signals": {"Vehicle.Speed": 5000}}),
        "does not match the topic's VIN": json.dumps(
            {"seq": 5, "vin": "WVWZZZ1JZXW999999", "ts": now, "signals": {"Vehicle.Speed": 1}}
        ),
        "exceeds the limit": json.dumps(
            {"seq": 6, "ts": now, "signals": {"Vehicle.Speed": 1}, "padding": "x" * 70_000}
        ),
        "seq is missing": json.dumps({"ts": now, "signals": {"Vehicle.Speed": 1}}),
    }
    for payload in bad.values():
        car.publish(topic, payload)
    car.telemetry({"Vehicle.Speed": 12.0}, seq=100)  # good data after the bad keeps flowing

    with platform.api() as api:

        def letters() -> list[dict[str, str]]:
            found: list[dict[str, str]] = api.get("/dead-letters", vin=creds.vin, limit=100)
            return found if len(found) >= len(bad) else []

        found = platform.wait_for(letters, what="dead letters")
    for reason, payload in bad.items():
        matching = [d for d in found if reason in d["reason"]]
        assert matching, f"no dead letter says {reason!r}: {[d['reason'] for d in found]}"
        raw = payload if isinstance(payload, bytes) else payload.encode()
        assert matching[0]["payload"].encode() == raw
    assert history(platform, creds.vin) == [12.0]


def test_a_batch_message_is_stored_sample_by_sample(platform: Platform) -> None:
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    body = {
        "seq": 1,
        "samples": [
            {
                "ts": utc_now(-3 + i),
                "signals": {"Vehicle.Speed": float(i), "Vehicle.IsMoving": True},
            }
            for i in range(3)
        ],
    }
    car.publish(f"vehicles/{creds.vin}/telemetry", json.dumps(body))
    platform.wait_for(lambda: history(platform, creds.vin) == [0.0, 1.0, 2.0], what="3 samples")


@pytest.fixture
def platform_without_ingest(tmp_path: Path) -> Iterator[Platform]:
    running = start_platform(tmp_path / "data", "--ingest-workers", "0")
    yield running
    running.stop()


@pytest.mark.slow
def test_kill_9_of_the_ingest_worker_loses_and_duplicates_nothing(
    platform_without_ingest: Platform,
) -> None:
    platform = platform_without_ingest
    creds = platform.register()
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    total = 3000
    sent = threading.Event()
    killed = threading.Event()

    def stream() -> None:
        for seq in range(1, total + 1):
            car.telemetry({"Vehicle.Speed": float(seq % 250)}, seq=seq, ts=utc_now(seq / 1000))
            if seq % 200 == 0:
                time.sleep(0.05)
            if seq == total // 2:
                # The second half only after the kill, however slowly the worker started:
                # the kill always falls mid-stream.
                killed.wait(60)
        sent.set()

    worker = platform.spawn_worker("ingest")
    publisher = threading.Thread(target=stream)
    publisher.start()
    platform.wait_for(
        lambda: len(history(platform, creds.vin)) > 300, timeout=30, what="ingest started"
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    killed.set()
    stored_at_kill = len(history(platform, creds.vin))
    assert stored_at_kill < total, "the stream had already finished: the kill was not mid-stream"

    # Two fresh workers share the rest of the stream and the redeliveries.
    replacements = [platform.spawn_worker("ingest"), platform.spawn_worker("ingest")]
    try:
        publisher.join(60)
        assert sent.is_set()
        platform.wait_for(
            lambda: len(history(platform, creds.vin)) >= total, timeout=60, what="every message"
        )
        time.sleep(1.0)  # give any duplicate a chance to show up
        values = history(platform, creds.vin)
        assert len(values) == total
        assert values == [float(seq % 250) for seq in range(1, total + 1)]
    finally:
        for process in replacements:
            process.send_signal(signal.SIGINT)
            process.wait(20)
