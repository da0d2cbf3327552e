"""Simulated cars answer commands and apply desired properties, even after hours offline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from carcloud.sim.runner import FleetRunner
from carcloud.sim.session import SimulationOptions, cars_for, prepare
from tests.platform import Platform

LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
LOCKED = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"


def fleet(platform: Platform, tmp_path: Path, count: int) -> tuple[FleetRunner, list[Any]]:
    options = SimulationOptions(
        api_url=platform.url,
        api_key=platform.operator_key,
        mqtt_host="127.0.0.1",
        mqtt_port=platform.mqtt_port,
        vehicles=count,
        brands=["volta"],  # battery-electric: every command kind applies
        seed=11,
        start_epoch_s=1_790_000_000.0,
        credentials_file=tmp_path / "creds.json",
    )
    vehicles, credentials = prepare(options)
    cars = cars_for(vehicles, credentials, options.seed)
    # One simulated hour per real second.
    return FleetRunner(cars, "127.0.0.1", platform.mqtt_port, rate=2.0, speedup=1800.0), cars


@pytest.mark.slow
def test_commands_and_desired_reach_a_car_hours_of_simulated_time_later(
    platform: Platform, tmp_path: Path
) -> None:
    runner, cars = fleet(platform, tmp_path, 2)
    away, home = cars
    results: dict[str, Any] = {}

    async def scenario() -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(runner.run(stop, duration_s=14.0))
        await asyncio.sleep(2.0)
        await runner.go_offline(away, sim_seconds=3 * 3600)  # three hours in a garage
        offline_at = away.vehicle.sim_time
        with platform.api() as api:
            queued = api.post(f"/vehicles/{away.vin}/commands", {
                "kind": "set_charge_limit", "params": {"percent": 60}, "ttl": "1h",
            })  # fmt: skip
            api.post(f"/vehicles/{away.vin}/commands", {"kind": "lock"})
            api.request(
                "PUT",
                f"/vehicles/{away.vin}/twin/desired",
                json={"properties": {"mode": "eco", "speed_alert_kmh": 120}},
            )
            lock_home = api.post(f"/vehicles/{home.vin}/commands", {"kind": "lock"})
            await asyncio.sleep(1.0)
            assert api.get(f"/vehicles/{away.vin}/commands/{queued['id']}")["status"] == "queued"
            done = await asyncio.to_thread(
                api.get, f"/vehicles/{away.vin}/commands/{queued['id']}", wait="20s"
            )
            results["done"] = done
            results["hours_offline"] = (away.vehicle.sim_time - offline_at) / 3600
            results["home"] = api.get(f"/vehicles/{home.vin}/commands/{lock_home['id']}", wait="5s")
        await run

    asyncio.run(scenario())
    assert results["done"]["status"] == "succeeded", results["done"]
    assert results["hours_offline"] >= 3.0
    assert results["home"]["status"] == "succeeded"
    with platform.api() as api:
        commands = api.get(f"/vehicles/{away.vin}/commands")
        assert {c["kind"]: c["status"] for c in commands} == {
            "set_charge_limit": "succeeded",
            "lock": "succeeded",
        }
        twin = platform.wait_for(
            lambda: (t := api.get(f"/vehicles/{away.vin}/twin"))["in_sync"] and t,
            what="the desired properties applied",
        )
        # What the test asked for; the cloud adds its own properties (calls.video_allowed).
        reported = {**twin["reported"]["properties"], "calls": None}
        assert reported == {"mode": "eco", "speed_alert_kmh": 120, "calls": None}
        state = platform.wait_for(
            lambda: (
                (s := api.get(f"/vehicles/{away.vin}/state")["signals"])[LIMIT]["value"] == 60 and s
            ),
            what="the new charge limit in the car's telemetry",
        )
        assert state[LOCKED]["value"] is True
    assert away.side is not None and away.side.executed == 2  # each command ran once
