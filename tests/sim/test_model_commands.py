"""Tests for remote commands on a simulated vehicle and their effect on its signals."""

from __future__ import annotations

from typing import Any

import pytest

from carcloud.catalog import default_catalog
from carcloud.sim import COMMANDS, SimVehicle
from carcloud.sim.geo import haversine_m
from tests.sim import vehicles

CATALOG = default_catalog()
LOCKS = [p for p in CATALOG.paths if p.endswith("IsLocked")]
DOORS_OPEN = [p for p in CATALOG.paths if p.startswith("Vehicle.Cabin.Door") and "IsOpen" in p]
CABIN = "Vehicle.Cabin.HVAC.AmbientAirTemperature"


def make_vehicle(brand_slug: str, model: str, **options: Any) -> SimVehicle:
    # Parked for the first six hours unless a test says otherwise: commands act on a still car.
    return vehicles.make_vehicle(brand_slug, model, **{"first_departure_s": 6 * 3_600.0, **options})


def cabin_c(vehicle: SimVehicle) -> float:
    value = vehicle.signals()[CABIN]
    assert isinstance(value, float)
    return value


def drive_until(vehicle: SimVehicle, activity: str, limit_s: float = 7_200.0) -> None:
    while vehicle.activity != activity:
        vehicle.step(1.0)
        assert vehicle.sim_time < limit_s, f"never reached {activity}"


def test_unlock_then_lock_sets_every_lock() -> None:
    vehicle = make_vehicle("volta", "Vela")
    vehicle.step(1.0)
    assert all(vehicle.signals()[p] is True for p in LOCKS)
    assert vehicle.signals()["Vehicle.LowVoltageSystemState"] == "LOCK"
    assert vehicle.apply_command("unlock", {}) == (True, None)
    values = vehicle.signals()
    assert all(values[p] is False for p in LOCKS)
    assert values["Vehicle.LowVoltageSystemState"] == "OFF"
    assert vehicle.apply_command("lock", {}) == (True, None)
    assert all(vehicle.signals()[p] is True for p in LOCKS)


def test_an_unlocked_car_relocks_itself_when_nobody_opens_it() -> None:
    vehicle = make_vehicle("volta", "Vela")
    vehicle.apply_command("unlock", {})
    vehicle.step(60.0)
    assert vehicle.signals()[LOCKS[0]] is False
    vehicle.step(70.0)
    assert all(vehicle.signals()[p] is True for p in LOCKS)


def test_lock_is_refused_while_a_door_is_open() -> None:
    vehicle = make_vehicle("kargo", "eKargo", first_departure_s=5.0)
    drive_until(vehicle, "alighting")
    while not any(vehicle.signals()[p] for p in DOORS_OPEN):
        vehicle.step(1.0)
    accepted, reason = vehicle.apply_command("lock", {})
    assert not accepted and reason is not None and "open" in reason
    drive_until(vehicle, "parked")
    assert all(vehicle.signals()[p] is True for p in LOCKS)  # locked after walking away


def test_climate_start_heats_the_cabin_toward_the_target() -> None:
    vehicle = make_vehicle("volta", "Aria")
    vehicle.step(60.0)
    before = cabin_c(vehicle)
    assert before < 12.0  # a cold March morning
    assert vehicle.apply_command("climate_start", {"target_temperature": 22.5}) == (True, None)
    vehicle.step(1.0)
    values = vehicle.signals()
    assert values["Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"] == 22.5
    assert values["Vehicle.LowVoltageSystemState"] == "ACC"
    assert values["Vehicle.Cabin.HVAC.IsAirConditioningActive"] is False  # heating, not cooling
    temperatures = [before]
    for _ in range(15):
        vehicle.step(60.0)
        temperatures.append(cabin_c(vehicle))
    assert all(a < b for a, b in zip(temperatures, temperatures[1:], strict=False))
    assert 22.5 - temperatures[-1] < 0.3 * (22.5 - before)
    assert vehicle.apply_command("climate_stop", {}) == (True, None)
    assert vehicle.signals()["Vehicle.LowVoltageSystemState"] == "LOCK"
    vehicle.step(1_800.0)
    assert cabin_c(vehicle) < temperatures[-1] - 3.0  # drifting back toward outside


def test_climate_drains_an_unplugged_battery_and_times_out() -> None:
    vehicle = make_vehicle("volta", "Nova", first_departure_s=3_000.0)
    network = vehicle.network
    office = network.places_of("office")[0]
    # Park it away from its wallbox first: navigate to an office and let it arrive.
    vehicle.apply_command("navigate_to", {"latitude": network.node_lat[office.node],
                                          "longitude": network.node_lon[office.node]})  # fmt: skip
    drive_until(vehicle, "driving")
    drive_until(vehicle, "parked")
    soc_before = vehicle.signals()["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"]
    assert vehicle.apply_command("climate_start", {}) == (True, None)
    vehicle.step(60.0)
    values = vehicle.signals()
    assert values["Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"] == 21.0  # the default
    power = values["Vehicle.Powertrain.TractionBattery.CurrentPower"]
    assert isinstance(power, float) and power < -1_000.0
    soc_after = values["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"]
    assert isinstance(soc_before, float) and isinstance(soc_after, float)
    assert soc_after < soc_before
    vehicle.step(1_800.0)  # remote climate stops by itself after 30 minutes
    assert vehicle.signals()["Vehicle.LowVoltageSystemState"] == "LOCK"


def test_remote_start_runs_an_ice_engine() -> None:
    vehicle = make_vehicle("nordwind", "Tessa")
    assert vehicle.apply_command("climate_start", {"target_temperature": 20}) == (True, None)
    vehicle.step(120.0)
    values = vehicle.signals()
    assert values["Vehicle.Powertrain.CombustionEngine.IsRunning"] is True
    assert values["Vehicle.Powertrain.CombustionEngine.Speed"] == 780
    assert values["Vehicle.LowVoltageSystemState"] == "ON"
    assert vehicle.apply_command("climate_stop", {}) == (True, None)
    vehicle.step(1.0)
    assert vehicle.signals()["Vehicle.Powertrain.CombustionEngine.IsRunning"] is False


def test_charge_stop_and_start() -> None:
    vehicle = make_vehicle("nordwind", "Pico", soc=40.0)
    vehicle.step(1.0)
    assert vehicle.is_charging
    assert vehicle.apply_command("charge_stop", {}) == (True, None)
    assert not vehicle.is_charging
    vehicle.step(600.0)
    values = vehicle.signals()
    assert values["Vehicle.Powertrain.TractionBattery.Charging.IsCharging"] is False
    assert values["Vehicle.Powertrain.TractionBattery.Charging.ChargeCurrent.Phase1"] == 0.0
    assert vehicle.apply_command("charge_start", {}) == (True, None)
    vehicle.step(1.0)
    assert vehicle.is_charging


def test_charge_commands_need_a_battery_a_cable_and_room() -> None:
    ice = make_vehicle("kargo", "Kargo D")
    assert ice.apply_command("charge_start", {}) == (False, "vehicle has no traction battery")
    assert ice.apply_command("set_charge_limit", {"percent": 80})[0] is False
    full = make_vehicle("nordwind", "Pico", soc=90.0)
    full.step(1.0)
    assert full.apply_command("charge_start", {}) == (False, "charge limit reached")
    driving = make_vehicle("nordwind", "Pico", first_departure_s=1.0)
    drive_until(driving, "driving")
    assert driving.apply_command("charge_start", {}) == (False, "charging cable is not connected")


def test_honk_flash_wakes_a_parked_car_but_not_a_moving_one() -> None:
    vehicle = make_vehicle("volta", "Aria", first_departure_s=30.0)
    assert vehicle.apply_command("honk_flash", {}) == (True, None)
    assert vehicle.signals()["Vehicle.LowVoltageSystemState"] == "ACC"
    drive_until(vehicle, "driving")
    assert vehicle.apply_command("honk_flash", {}) == (False, "vehicle is being driven")
    assert vehicle.apply_command("unlock", {})[0] is False


def test_navigate_to_sends_a_parked_car_there() -> None:
    vehicle = make_vehicle("nordwind", "Tessa")
    network = vehicle.network
    shop = network.places_of("shop")[2]
    lat, lon = network.node_lat[shop.node] + 0.0001, network.node_lon[shop.node]
    assert vehicle.apply_command(
        "navigate_to", {"latitude": lat, "longitude": lon, "name": "Bakery"}
    ) == (
        True,
        None,
    )
    drive_until(vehicle, "driving", limit_s=300.0)
    assert vehicle.destination.name == "Bakery"
    drive_until(vehicle, "parked")
    assert vehicle.place is not None and vehicle.place.node == shop.node
    here = vehicle.position
    assert haversine_m(*here, network.node_lat[shop.node], network.node_lon[shop.node]) < 1.0


def test_navigate_to_reroutes_a_driving_car() -> None:
    vehicle = make_vehicle("kargo", "Kargo D", first_departure_s=1.0)
    drive_until(vehicle, "driving")
    vehicle.step(30.0)
    network = vehicle.network
    target = network.places_of("leisure")[0]
    lat, lon = network.node_lat[target.node], network.node_lon[target.node]
    assert vehicle.apply_command("navigate_to", {"latitude": lat, "longitude": lon}) == (True, None)
    assert vehicle.destination.node == target.node
    drive_until(vehicle, "alighting")
    assert haversine_m(*vehicle.position, lat, lon) < 1.0


@pytest.mark.parametrize(
    ("kind", "params", "reason"),
    [
        ("self_destruct", {}, "unsupported command"),
        ("set_charge_limit", {}, "missing parameter"),
        ("set_charge_limit", {"percent": 49}, "between 50 and 100"),
        ("set_charge_limit", {"percent": 80.5}, "whole number"),
        ("set_charge_limit", {"percent": "80"}, "must be a number"),
        ("climate_start", {"target_temperature": 45}, "between 16 and 28"),
        ("climate_start", {"temp": 21}, "unknown parameter"),
        ("navigate_to", {"latitude": 0.0, "longitude": 0.0}, "outside the simulated area"),
        ("navigate_to", {"latitude": 48.1}, "missing parameter 'longitude'"),
        ("navigate_to", {"latitude": 48.1, "longitude": 11.5, "name": ""}, "non-empty string"),
    ],
)
def test_bad_commands_are_refused_with_a_reason(
    kind: str, params: dict[str, object], reason: str
) -> None:
    vehicle = make_vehicle("volta", "Aria")
    accepted, message = vehicle.apply_command(kind, params)
    assert accepted is False
    assert message is not None and reason in message


def test_every_declared_command_runs() -> None:
    vehicle = make_vehicle("nordwind", "Kombi")
    network = vehicle.network
    params: dict[str, dict[str, object]] = {
        "climate_start": {"target_temperature": 21.0},
        "set_charge_limit": {"percent": 90},
        "navigate_to": {
            "latitude": network.node_lat[10],
            "longitude": network.node_lon[10],
            "name": "X",
        },
        "custom": {"name": "ping"},
    }
    vehicle.step(1.0)
    for kind in COMMANDS:
        accepted, reason = vehicle.apply_command(kind, params.get(kind, {}))
        assert accepted, f"{kind}: {reason}"
        vehicle.step(1.0)
        for path, value in vehicle.signals().items():
            CATALOG.validate(path, value)


def test_unknown_custom_command_is_answered_with_a_reason() -> None:
    vehicle = make_vehicle("volta", "Aria")
    accepted, reason = vehicle.apply_command("custom", {"name": "launch_rocket"})
    assert accepted is False and reason is not None and "launch_rocket" in reason
