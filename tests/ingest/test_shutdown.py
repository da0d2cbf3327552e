"""A stop of carcloud loses nothing a car was told had arrived (its PUBACK).

nats-server stops JetStream before it closes client connections; carcloud disconnects
the cars first (`drop_vehicles`). Without that, a car publishing fast lost over a
thousand acknowledged messages in about one stop out of three.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path

import pytest

from carcloud_agent.mqtt import MqttClient, MqttError
from tests.conftest import start_platform
from tests.platform import Platform, utc_now

ODOMETER = "Vehicle.TraveledDistance"  # a unique value per message: its seq


async def publish_until_dropped(platform: Platform, vin: str, password: str) -> list[int]:
    """Send numbered telemetry as fast as 32 unacknowledged messages allow; the acked seqs."""
    client = MqttClient("127.0.0.1", platform.mqtt_port, vin, vin, password)
    await client.connect()
    acked: list[int] = []
    window = asyncio.Semaphore(32)

    def on_ack(seq: int) -> object:
        def done(future: asyncio.Future[list[int] | None]) -> None:
            window.release()
            if not future.cancelled():
                acked.append(seq)

        return done

    seq = 0
    stopping = asyncio.create_task(asyncio.to_thread(platform.stop, signal.SIGINT))
    while not client.closed.is_set():
        await window.acquire()
        seq += 1
        # A millisecond apart (history keeps one row per vehicle and millisecond).
        ts = utc_now(seq / 1000 - 3600)
        body = {"seq": seq, "ts": ts, "signals": {ODOMETER: float(seq)}}
        try:
            future = client.publish_nowait(f"vehicles/{vin}/telemetry", json.dumps(body).encode())
        except MqttError:
            break
        future.add_done_callback(on_ack(seq))  # type: ignore[arg-type]
        if seq % 32 == 0:
            await asyncio.sleep(0)
    await stopping
    await client.abort()
    return acked


@pytest.mark.slow
def test_messages_acknowledged_while_carcloud_stops_are_all_stored(tmp_path: Path) -> None:
    platform = start_platform(tmp_path / "data")
    creds = platform.register()
    acked = asyncio.run(publish_until_dropped(platform, creds.vin, creds.password))
    assert len(acked) > 100, "the car hardly published before the stop"
    platform.start()
    try:
        with platform.api() as api:

            def stored() -> set[int]:
                points = api.get(f"/vehicles/{creds.vin}/signals", path=ODOMETER, limit=100_000)
                return {int(p["value"]) for p in points["points"]}

            # Ingest catches up after the restart (what it had taken but not stored comes
            # back after the consumer's ack wait); then every acknowledged seq is there.
            with contextlib.suppress(AssertionError):
                platform.wait_for(lambda: set(acked) <= stored(), timeout=40, what="the backlog")
            lost = sorted(set(acked) - stored())
            assert not lost, (
                f"{len(lost)} of {len(acked)} acknowledged messages lost, "
                f"seqs {lost[0]}..{lost[-1]} (the last acknowledged was {max(acked)})"
            )
    finally:
        platform.stop()
