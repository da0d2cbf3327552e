"""How simulated cars hold their link: clean sessions, QoS 0, full-jitter backoff.

The simulator keeps no state in nats-server (no persistent session, no JetStream
consumer per subscription); the cloud's own resend on 'online' must still get a
command and a desired twin sent while a car was away to that car.
"""

from __future__ import annotations

import asyncio
import random
import statistics
from pathlib import Path
from typing import Any

from carcloud.sim import link
from carcloud.sim.runner import FleetRunner
from carcloud.sim.session import SimulationOptions, cars_for, prepare
from tests.platform import Car, Platform


def session_consumers(store: Path) -> int:
    """Consumers nats-server keeps for MQTT sessions: one per QoS 1 subscription of a
    persistent session, on each vehicle account's $MQTT_msgs stream, restored at each
    start. (Each account's $MQTT_rmsgs consumer for retained messages is the server's
    own, created once per account whenever the server gets to it, whatever the cars do.)
    """
    return sum(1 for _ in store.glob("jetstream/*/streams/$MQTT_msgs/obs/*"))


def test_the_backoff_never_sleeps_beyond_its_cap_and_spreads_over_the_whole_range() -> None:
    rng = random.Random(7)
    after_many = [link.reconnect_delay(12, rng) for _ in range(5000)]
    assert max(after_many) <= link.RECONNECT_MAX_S
    # Full jitter: a storm spreads from 0 to the cap, not in a wave at its upper half.
    assert min(after_many) < 0.05 * link.RECONNECT_MAX_S
    assert 0.45 * link.RECONNECT_MAX_S < statistics.median(after_many) < 0.55 * link.RECONNECT_MAX_S
    first = [link.reconnect_delay(1, rng) for _ in range(1000)]
    assert max(first) <= 2 * link.RECONNECT_MIN_S  # the first retry is quick


def test_a_car_gets_what_was_sent_while_away_though_nats_server_stores_no_session(
    platform: Platform, tmp_path: Path
) -> None:
    store = platform.data_dir / "nats"
    consumers_before = session_consumers(store)
    options = SimulationOptions(
        api_url=platform.url,
        api_key=platform.operator_key,
        mqtt_host="127.0.0.1",
        mqtt_port=platform.mqtt_port,
        vehicles=1,
        brands=["volta"],
        seed=5,
        start_epoch_s=1_790_000_000.0,
        credentials_file=tmp_path / "creds.json",
    )
    vehicles, credentials = prepare(options)
    (car,) = cars_for(vehicles, credentials, options.seed)
    # 30 simulated seconds per real second.
    runner = FleetRunner([car], "127.0.0.1", platform.mqtt_port, rate=2.0, speedup=60.0)
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(runner.run(stop, duration_s=60.0))  # until `stop`
        with platform.api() as api:
            await asyncio.to_thread(
                platform.wait_for,
                lambda: api.get(f"/vehicles/{car.vin}")["online"],
                what="the car online",
            )
            seen["consumers_connected"] = session_consumers(store)
            await runner.go_offline(car, sim_seconds=120.0)  # about 4 s of real time
            command = api.post(f"/vehicles/{car.vin}/commands", {"kind": "lock"})
            api.request(
                "PUT", f"/vehicles/{car.vin}/twin/desired", json={"properties": {"mode": "eco"}}
            )
            await asyncio.sleep(1.0)
            seen["while_away"] = api.get(f"/vehicles/{car.vin}/commands/{command['id']}")
            seen["done"] = await asyncio.to_thread(
                api.get, f"/vehicles/{car.vin}/commands/{command['id']}", wait="20s"
            )
            # While the car is still connected: the cloud may change its own desired
            # properties (calls.video_allowed) as the car parks, and a car that has
            # gone by then cannot apply that change.
            seen["twin"] = await asyncio.to_thread(
                platform.wait_for,
                lambda: (t := api.get(f"/vehicles/{car.vin}/twin"))["in_sync"] and t,
                20,
                "the desired properties applied",
            )
        stop.set()
        await run

    asyncio.run(scenario())
    assert seen["while_away"]["status"] == "queued"  # it really was away
    assert seen["done"]["status"] == "succeeded", seen["done"]
    twin = seen["twin"]
    # What the test asked for; the cloud adds its own properties (calls.video_allowed).
    assert {**twin["reported"]["properties"], "calls": None} == {"mode": "eco", "calls": None}
    assert car.side is not None and car.side.executed == 1
    # Nothing of the car's link was kept in nats-server: no consumer to restore.
    assert seen["consumers_connected"] == consumers_before
    assert session_consumers(store) == consumers_before

    # What it avoids: a car with a persistent session and QoS 1 subscriptions (as the
    # protocol still allows) costs nats-server two consumers, restored at each start.
    creds = platform.register()
    persistent = Car(platform, creds.vin, creds.password)
    persistent.connect()
    persistent.serve()
    assert session_consumers(store) == consumers_before + 2
    # Such a car's first connect with a clean session removes them.
    persistent.disconnect()
    upgraded = Car(platform, creds.vin, creds.password, clean_session=True)
    upgraded.connect()
    platform.wait_for(
        lambda: session_consumers(store) == consumers_before,
        what="the old session's consumers removed",
    )
