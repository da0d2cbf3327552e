"""The KUKSA source: values from a databroker (real gRPC, stand-in server) reach carcloud."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from carcloud.errors import ConfigError
from carcloud_agent.config import AgentConfig
from carcloud_agent.runtime import Agent
from carcloud_agent.sources.kuksa import KuksaSource
from tests.agent.kuksa_standin import Databroker, serve
from tests.platform import Platform

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
LOCKED = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"


def test_unknown_paths_are_refused() -> None:
    with pytest.raises(ConfigError, match="not in the signal catalog"):
        KuksaSource("WVWZZZ1JZXW000001", "127.0.0.1", 1, ["Vehicle.Nope"])


@pytest.mark.slow
def test_databroker_values_arrive_and_lock_sets_the_actuator_target(
    platform: Platform, tmp_path: Path
) -> None:
    creds = platform.register()
    broker = Databroker()
    outcome: dict[str, Any] = {}

    async def scenario() -> None:
        server, port = await serve(broker)
        broker.current.update({SPEED: 57.5, SOC: 81.0, LOCKED: False})
        config = AgentConfig(
            vin=creds.vin, secret=creds.password, port=platform.mqtt_port,
            buffer_path=tmp_path / "outbox.db", reconnect_min_s=0.2, reconnect_max_s=1.0,
            source={"kind": "kuksa", "interval_s": 0.1},
        )  # fmt: skip
        source = KuksaSource(creds.vin, "127.0.0.1", port, [SPEED, SOC, LOCKED], poll_ms=100)
        agent = Agent(config, source)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        try:
            with platform.api() as api:
                outcome["state"] = await asyncio.to_thread(
                    platform.wait_for,
                    lambda: (
                        (s := api.get(f"/vehicles/{creds.vin}/state")["signals"]).get(SOC) and s
                    ),
                    15,
                    "databroker values in the API",
                )
                broker.current[SPEED] = 88.0  # a change is sent as it happens
                await asyncio.to_thread(
                    platform.wait_for,
                    lambda: (
                        api.get(f"/vehicles/{creds.vin}/state")["signals"][SPEED]["value"] == 88.0
                    ),
                    15,
                    "the new speed",
                )
                command = await asyncio.to_thread(
                    api.post, f"/vehicles/{creds.vin}/commands", {"kind": "lock"}
                )
                outcome["command"] = await asyncio.to_thread(
                    api.get, f"/vehicles/{creds.vin}/commands/{command['id']}", wait="10s"
                )
            for _ in range(50):
                if LOCKED in broker.targets:
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await task
            await server.stop(None)

    asyncio.run(scenario())
    state = outcome["state"]
    assert state[SPEED]["value"] == 57.5 and state[SOC]["value"] == 81.0
    assert state[LOCKED]["value"] is False
    assert outcome["command"]["status"] == "succeeded"
    assert broker.targets[LOCKED] is True
