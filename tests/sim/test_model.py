"""Tests for the simulated vehicle: determinism, physics of a few simulated hours, signals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from carcloud.catalog import SignalValueError, default_catalog
from carcloud.sim import BRANDS, SimVehicle
from carcloud.sim.geo import distance_to_segment_m
from tests.sim.vehicles import make_vehicle

CATALOG = default_catalog()
HOURS = 3
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
BATTERY_PREFIX = "Vehicle.Powertrain.TractionBattery."
ENGINE_PREFIXES = ("Vehicle.Powertrain.FuelSystem.", "Vehicle.Powertrain.CombustionEngine.")
DOOR_LOCKS = [p for p in CATALOG.paths if p.endswith("IsLocked")]
COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
TIRE = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"
MODELS = [(brand.slug, line.spec.model) for brand in BRANDS.values() for line in brand.models]


def num(values: Mapping[str, object], path: str) -> float:
    value = values[path]
    assert isinstance(value, int | float) and not isinstance(value, bool)
    return float(value)


@dataclass
class Trace:
    """What one vehicle did over the simulated hours, condensed while it ran."""

    vehicle: SimVehicle
    invalid: list[str] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)
    odometer: list[float] = field(default_factory=list)
    over_limit: list[tuple[float, float, int]] = field(default_factory=list)
    max_offroad_m: float = 0.0
    max_speed_kmh: float = 0.0
    stopped_while_driving: int = 0
    drives_soc: list[tuple[float, float]] = field(default_factory=list)
    charges_soc: list[list[float]] = field(default_factory=list)
    activities: Counter[str] = field(default_factory=Counter)
    power_states: Counter[tuple[str, str]] = field(default_factory=Counter)
    parked_unlocked: int = 0
    engine_running_parked: int = 0
    max_coolant_c: float = -100.0
    tire_first_kpa: int = 0
    tire_max_driving_kpa: int = 0


def _run(vehicle: SimVehicle, seconds: int) -> Trace:
    trace = Trace(vehicle)
    network = vehicle.network
    drive_start: float | None = None
    previous_soc: float | None = None
    session: list[float] | None = None
    first = vehicle.signals()
    trace.tire_first_kpa = int(num(first, TIRE))
    for _ in range(seconds):
        vehicle.step(1.0)
        values = vehicle.signals()
        trace.paths.update(values)
        for path, value in values.items():
            try:
                CATALOG.validate(path, value)
            except SignalValueError as exc:
                trace.invalid.append(str(exc))
        speed = num(values, "Vehicle.Speed")
        trace.odometer.append(num(values, "Vehicle.TraveledDistance"))
        trace.max_speed_kmh = max(trace.max_speed_kmh, speed)
        activity = vehicle.activity
        trace.activities[activity] += 1
        trace.power_states[activity, str(values["Vehicle.LowVoltageSystemState"])] += 1
        soc = num(values, SOC) if SOC in values else None
        edge = vehicle.edge
        if edge is not None:
            if speed > edge.limit_kmh + 2.0:
                trace.over_limit.append((vehicle.sim_time, speed, edge.limit_kmh))
            offroad = distance_to_segment_m(
                num(values, "Vehicle.CurrentLocation.Latitude"),
                num(values, "Vehicle.CurrentLocation.Longitude"),
                network.node_lat[edge.a],
                network.node_lon[edge.a],
                network.node_lat[edge.b],
                network.node_lon[edge.b],
            )
            trace.max_offroad_m = max(trace.max_offroad_m, offroad)
            trace.stopped_while_driving += speed == 0.0
            tire = int(num(values, TIRE))
            trace.tire_max_driving_kpa = max(trace.tire_max_driving_kpa, tire)
            if drive_start is None and previous_soc is not None:
                drive_start = previous_soc
        elif drive_start is not None and previous_soc is not None:
            trace.drives_soc.append((drive_start, previous_soc))
            drive_start = None
        if activity == "parked":
            trace.parked_unlocked += not all(values[p] for p in DOOR_LOCKS)
            trace.engine_running_parked += bool(
                values.get("Vehicle.Powertrain.CombustionEngine.IsRunning")
            )
        if COOLANT in values:
            trace.max_coolant_c = max(trace.max_coolant_c, num(values, COOLANT))
        if vehicle.is_charging and soc is not None:
            if session is None:
                session = []
                trace.charges_soc.append(session)
            session.append(soc)
        else:
            session = None
        previous_soc = soc
    return trace


@pytest.fixture(scope="module")
def traces() -> dict[tuple[str, str], Trace]:
    """One vehicle of every model, driven for a few simulated hours, second by second."""
    return {
        (brand, model): _run(
            make_vehicle(brand, model, seed=index + 1, soc=45.0, fuel=50.0), HOURS * 3_600
        )
        for index, (brand, model) in enumerate(MODELS)
    }


def test_same_seed_gives_the_same_signals() -> None:
    first = make_vehicle("nordwind", "Kombi", seed=21, first_departure_s=5.0)
    second = make_vehicle("nordwind", "Kombi", seed=21, first_departure_s=5.0)
    for _ in range(1_200):
        first.step(1.0)
        second.step(1.0)
        assert first.signals() == second.signals()
    assert first.signals()["Vehicle.TraveledDistance"] != 0.0  # it did drive


def test_another_seed_drives_differently() -> None:
    first = make_vehicle("volta", "Aria", seed=21, first_departure_s=5.0)
    second = make_vehicle("volta", "Aria", seed=22, first_departure_s=5.0)
    for _ in range(600):
        first.step(1.0)
        second.step(1.0)
    assert first.position != second.position


def test_every_emitted_value_passes_the_catalog(traces: dict[tuple[str, str], Trace]) -> None:
    for trace in traces.values():
        assert trace.invalid == []


def test_each_powertrain_reports_exactly_the_signals_it_has(
    traces: dict[tuple[str, str], Trace],
) -> None:
    every = set(CATALOG.paths)
    # Regenerative braking energy needs a traction battery to brake into.
    battery = {p for p in every if p.startswith(BATTERY_PREFIX)} | {
        "Vehicle.Powertrain.AccumulatedBrakingEnergy"
    }
    engine = {p for p in every if p.startswith(ENGINE_PREFIXES)}
    expected = {"bev": every - engine, "ice": every - battery, "phev": every}
    for trace in traces.values():
        assert trace.paths == expected[trace.vehicle.spec.powertrain]


def test_vehicles_drive_park_and_stop_at_lights(traces: dict[tuple[str, str], Trace]) -> None:
    for trace in traces.values():
        assert set(trace.activities) == {"parked", "boarding", "driving", "alighting"}
        assert trace.odometer[-1] - trace.odometer[0] > 2.0  # km; some drivers stay put long
        assert trace.max_speed_kmh > 40.0
        assert trace.stopped_while_driving > 0  # red lights
    assert sum(t.odometer[-1] - t.odometer[0] for t in traces.values()) > 150.0


def test_odometer_never_decreases(traces: dict[tuple[str, str], Trace]) -> None:
    for trace in traces.values():
        odometer = trace.odometer
        assert all(a <= b for a, b in zip(odometer, odometer[1:], strict=False))


def test_speed_never_exceeds_the_limit_of_the_current_road(
    traces: dict[tuple[str, str], Trace],
) -> None:
    for trace in traces.values():
        assert trace.over_limit == []


def test_positions_lie_on_the_road_being_driven(traces: dict[tuple[str, str], Trace]) -> None:
    for trace in traces.values():
        assert trace.max_offroad_m < 3.0


def test_state_of_charge_falls_while_driving(traces: dict[tuple[str, str], Trace]) -> None:
    drives = [
        d for t in traces.values() if t.vehicle.spec.powertrain == "bev" for d in t.drives_soc
    ]
    assert len(drives) >= 10
    for start, end in drives:
        assert end < start


def test_state_of_charge_rises_while_charging(traces: dict[tuple[str, str], Trace]) -> None:
    sessions = [s for t in traces.values() for s in t.charges_soc if len(s) > 60]
    assert sessions
    for session in sessions:
        assert all(a <= b for a, b in zip(session, session[1:], strict=False))
        assert session[-1] > session[0]


def test_parked_cars_are_locked_and_powered_down(traces: dict[tuple[str, str], Trace]) -> None:
    for trace in traces.values():
        assert trace.parked_unlocked == 0
        assert trace.engine_running_parked == 0
        states = {state for (activity, state), _ in trace.power_states.items()}
        assert states <= {"LOCK", "OFF", "ACC", "ON", "START"}
        assert trace.power_states["driving", "ON"] == trace.activities["driving"]
        assert trace.power_states["parked", "LOCK"] == trace.activities["parked"]
        assert trace.power_states["boarding", "START"] > 0


def test_engines_warm_up_and_tyres_warm_while_driving(
    traces: dict[tuple[str, str], Trace],
) -> None:
    long_drivers = [t for t in traces.values() if t.activities["driving"] >= 900]
    assert len(long_drivers) >= 5
    for trace in long_drivers:
        if trace.vehicle.spec.powertrain == "ice":
            assert trace.max_coolant_c > 80.0
        # A warm tyre holds more pressure than the cold one the morning started with.
        assert trace.tire_max_driving_kpa > trace.tire_first_kpa + 5


def test_cabin_cools_toward_outside_when_parked() -> None:
    vehicle = make_vehicle("volta", "Nova", seed=5, first_departure_s=5.0)
    while vehicle.activity != "parked" or vehicle.sim_time < 60:
        vehicle.step(1.0)

    def gap() -> float:
        values = vehicle.signals()
        cabin = values["Vehicle.Cabin.HVAC.AmbientAirTemperature"]
        outside = values["Vehicle.Exterior.AirTemperature"]
        assert isinstance(cabin, float) and isinstance(outside, float)
        return abs(cabin - outside)

    heated = gap()
    assert heated > 10.0  # the HVAC kept the cabin warm on a cold morning drive
    parked_s = 0
    while vehicle.activity == "parked" and parked_s < 1_800:
        vehicle.step(60.0)
        parked_s += 60
    assert parked_s >= 1_800
    assert gap() < heated - 5.0


def test_faults_raise_dtcs_that_clear_later() -> None:
    vehicle = make_vehicle("nordwind", "Tessa", seed=3, fault_rate_per_hour=3.0)
    seen: set[str] = set()
    cleared = False
    previous: list[str] = []
    for _ in range(8 * 360):
        vehicle.step(10.0)
        values = vehicle.signals()
        codes = values["Vehicle.Diagnostics.DTCList"]
        assert isinstance(codes, list)
        assert values["Vehicle.Diagnostics.DTCCount"] == len(codes)
        seen.update(codes)
        cleared = cleared or bool(set(previous) - set(codes))
        previous = codes
    assert seen
    assert all(code[0] in "PCBU" and len(code) == 5 for code in seen)
    assert cleared


def test_step_refuses_negative_or_infinite_time() -> None:
    vehicle = make_vehicle("kargo", "eKargo", seed=1)
    with pytest.raises(ValueError):
        vehicle.step(-1.0)
    with pytest.raises(ValueError):
        vehicle.step(float("inf"))
    vehicle.step(0.0)
    assert vehicle.sim_time == 0.0


def test_long_steps_advance_time_and_keep_signals_valid() -> None:
    vehicle = make_vehicle("kargo", "Kargo D", seed=2)
    for _ in range(12):
        vehicle.step(600.0)
        for path, value in vehicle.signals().items():
            CATALOG.validate(path, value)
    assert vehicle.sim_time == pytest.approx(7_200.0)
    assert vehicle.epoch_s == pytest.approx(vehicle.sim_time + 1_740_981_600.0)
