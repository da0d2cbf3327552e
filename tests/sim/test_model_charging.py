"""Tests for energy: DC fast charging with a tapering curve, AC at home, fuel, hybrids."""

from __future__ import annotations

from collections.abc import Mapping
from statistics import median

import pytest

from carcloud.catalog import default_catalog
from carcloud.sim import BRANDS
from carcloud.sim.battery import TractionBattery, dc_curve
from carcloud.sim.climate import Cabin
from carcloud.sim.energy import Energy
from carcloud.sim.powertrain import RoadLoad
from tests.sim.vehicles import make_vehicle

CATALOG = default_catalog()
BATTERY = "Vehicle.Powertrain.TractionBattery."
CHARGING = BATTERY + "Charging."


def number(values: Mapping[str, object], path: str) -> float:
    value = values[path]
    assert isinstance(value, int | float) and not isinstance(value, bool)
    return float(value)


def test_dc_curve_is_flat_to_half_then_tapers() -> None:
    assert dc_curve(0.2) == dc_curve(0.5) == 1.0
    assert dc_curve(0.8) == pytest.approx(0.55)
    assert dc_curve(0.9) < 0.2 < dc_curve(0.8)
    samples = [dc_curve(soc / 100) for soc in range(50, 101)]
    assert all(a >= b for a, b in zip(samples, samples[1:], strict=False))


def test_low_soc_bev_fast_charges_at_the_nearest_charger_with_a_taper() -> None:
    vehicle = make_vehicle("volta", "Aria", seed=5, soc=14.0, first_departure_s=0.0)
    assert vehicle.apply_command("set_charge_limit", {"percent": 95}) == (True, None)
    network = vehicle.network
    charger = network.nearest_place(vehicle.home.node, ("dc_charger",))
    assert charger is not None
    vehicle.step(1.0)
    assert vehicle.activity == "boarding"
    assert vehicle.destination == charger
    samples: list[tuple[float, float, float]] = []  # displayed %, power W, DC current A
    while vehicle.place != charger or vehicle.is_charging or not samples:
        vehicle.step(1.0)
        assert vehicle.sim_time < 4 * 3_600
        if vehicle.is_charging and vehicle.place == charger:
            values = vehicle.signals()
            assert values[CHARGING + "ChargeVoltage.DC"] == pytest.approx(
                values[BATTERY + "CurrentVoltage"]
            )
            samples.append(
                (
                    number(values, BATTERY + "StateOfCharge.Displayed"),
                    number(values, BATTERY + "CurrentPower"),
                    number(values, CHARGING + "ChargeCurrent.DC"),
                )
            )
    socs = [soc for soc, _, _ in samples]
    assert all(a <= b for a, b in zip(socs, socs[1:], strict=False))
    assert socs[0] < 20.0 and socs[-1] >= 95.0
    peak = max(power for _, power, _ in samples)
    assert peak > 150_000  # a 270 kW car on a fast charger
    mid = median(power for soc, power, _ in samples if 30.0 <= soc <= 50.0)
    high = median(power for soc, power, _ in samples if 85.0 <= soc <= 90.0)
    top = median(power for soc, power, _ in samples if soc >= 92.0)
    assert mid > 0.85 * peak
    assert high < 0.5 * mid
    assert top < high
    assert all(current > 0 for _, _, current in samples)
    # Charging stopped at the limit, and the driver moves on within minutes.
    assert 95.0 <= vehicle.signals()[BATTERY + "StateOfCharge.Displayed"] < 96.0  # type: ignore[operator]
    for _ in range(600):
        vehicle.step(1.0)
    assert vehicle.activity in ("boarding", "driving")
    assert vehicle.destination.kind != "dc_charger"


def test_charge_limit_stops_ac_charging_at_home() -> None:
    vehicle = make_vehicle("nordwind", "Pico", seed=8, soc=60.0, first_departure_s=6 * 3_600)
    vehicle.step(1.0)
    values = vehicle.signals()
    assert values[CHARGING + "IsCharging"] is True
    assert values[CHARGING + "ChargingPort.AnyPosition.IsChargingCableConnected"] is True
    # An 11 kW wallbox: 16 A on each of three phases at 230 V, about 10 kW into the cells.
    assert number(values, CHARGING + "ChargeCurrent.Phase1") == pytest.approx(15.9, abs=0.3)
    assert values[CHARGING + "ChargeVoltage.Phase1"] == 230.0
    assert values[CHARGING + "ChargeCurrent.DC"] == 0.0
    assert 9_000 < number(values, BATTERY + "CurrentPower") < 10_500
    assert number(values, CHARGING + "ChargeRate") > 40.0  # km of range per hour
    assert number(values, CHARGING + "TimeToComplete") > 600
    assert vehicle.apply_command("set_charge_limit", {"percent": 65}) == (True, None)
    for _ in range(3_600):
        vehicle.step(1.0)
    values = vehicle.signals()
    assert values[CHARGING + "IsCharging"] is False
    assert values[CHARGING + "ChargeLimit"] == 65
    assert values[CHARGING + "TimeToComplete"] == 0
    assert 65.0 <= number(values, BATTERY + "StateOfCharge.Displayed") < 65.5
    assert values[CHARGING + "ChargingPort.AnyPosition.IsChargingCableConnected"] is True


def test_lowering_the_limit_below_the_charge_stops_at_once() -> None:
    vehicle = make_vehicle("nordwind", "Pico", seed=8, soc=70.0, first_departure_s=3_600)
    vehicle.step(1.0)
    assert vehicle.is_charging
    assert vehicle.apply_command("set_charge_limit", {"percent": 60}) == (True, None)
    assert not vehicle.is_charging
    vehicle.step(60.0)
    assert not vehicle.is_charging


def test_ice_refuels_when_low_and_drives_on() -> None:
    vehicle = make_vehicle("nordwind", "Tessa", seed=4, fuel=10.0, first_departure_s=0.0)
    vehicle.step(1.0)
    assert vehicle.destination.kind == "fuel"
    levels: list[float] = []
    while not levels or vehicle.place is not None and vehicle.place.kind == "fuel":
        vehicle.step(1.0)
        assert vehicle.sim_time < 3_600
        if vehicle.place is not None and vehicle.place.kind == "fuel":
            levels.append(number(vehicle.signals(), "Vehicle.Powertrain.FuelSystem.RelativeLevel"))
    assert levels[0] < 12 and max(levels) == 100
    assert all(a <= b for a, b in zip(levels, levels[1:], strict=False))
    assert vehicle.destination.kind != "fuel"


def test_phev_drives_electric_then_holds_charge_on_the_engine() -> None:
    vehicle = make_vehicle("nordwind", "Kombi", seed=6, soc=17.0, first_departure_s=0.0)
    vehicle.step(1.0)
    fuel_start = number(vehicle.signals(), "Vehicle.Powertrain.FuelSystem.RelativeLevel")
    engine_driving = electric_driving = 0
    lowest_soc = 100.0
    while vehicle.sim_time < 3 * 3_600:
        vehicle.step(1.0)
        if vehicle.is_driving:
            values = vehicle.signals()
            running = values["Vehicle.Powertrain.CombustionEngine.IsRunning"]
            engine_driving += running is True
            electric_driving += running is False
            lowest_soc = min(lowest_soc, number(values, BATTERY + "StateOfCharge.Displayed"))
    assert electric_driving > 0 and engine_driving > 0
    assert lowest_soc > 13.0  # charge sustaining keeps a reserve
    assert number(vehicle.signals(), "Vehicle.Powertrain.FuelSystem.RelativeLevel") < fuel_start


def test_range_follows_state_of_charge() -> None:
    vehicle = make_vehicle("kargo", "eKargo", seed=3, soc=50.0, first_departure_s=3_600)
    values = vehicle.signals()
    battery_range = number(values, BATTERY + "Range")
    # 75 kWh net at 50 % and 26 kWh/100 km rated is about 140 km.
    assert battery_range == pytest.approx(140_000, rel=0.1)
    assert values["Vehicle.Powertrain.Range"] == battery_range


def test_consumption_rises_with_speed_and_cold_and_braking_regenerates() -> None:
    spec = BRANDS["volta"].models[0].spec
    load = RoadLoad(spec)

    def wh_per_km(speed_kmh: float) -> float:
        speed = speed_kmh / 3.6
        return load.wheel_power_w(speed, 0.0, 0.0) / speed / 3.6

    # Aerodynamic drag grows with the square of speed: each km costs more the faster it is.
    assert wh_per_km(30) < wh_per_km(50) < wh_per_km(100) < wh_per_km(130)
    assert wh_per_km(130) - wh_per_km(100) > wh_per_km(50) - wh_per_km(30)

    def hvac_w(outside_c: float) -> float:
        cabin = Cabin(temperature_c=21.0, setpoint_c=21.0, heat_pump=False)
        cabin.hvac_on = True
        cabin.update(outside_c, 0.0, 1.0)
        return cabin.power_w

    assert hvac_w(-10.0) > hvac_w(0.0) > hvac_w(15.0) > 0.0
    battery = TractionBattery(spec, 0.5, 20.0, 100.0)
    energy = Energy(spec, battery, None, 0.0)
    energy.drive(wheel_w=30_000.0, cabin_w=0.0, ac_active=False, distance_m=20.0, dt_s=1.0)
    after_driving = battery.soc
    assert after_driving < 0.5 and energy.power_w < 0.0
    energy.drive(wheel_w=-40_000.0, cabin_w=0.0, ac_active=False, distance_m=15.0, dt_s=1.0)
    assert battery.soc > after_driving and energy.power_w > 0.0  # regenerative braking
