"""The simulator's ground truth: the JSON lines it writes are what its telemetry shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carcloud.sim.truth import GroundTruth, format_ts, read_ground_truth
from tests.sim.vehicles import make_vehicle

BATTERY = "Vehicle.Powertrain.TractionBattery."
CABLE = BATTERY + "Charging.ChargingPort.AnyPosition.IsChargingCableConnected"
POWER_STATE = "Vehicle.LowVoltageSystemState"
ODOMETER = "Vehicle.TraveledDistance"
POWER = BATTERY + "CurrentPower"
SOC = BATTERY + "StateOfCharge.Current"
TS = "Vehicle.CurrentLocation.Timestamp"


Sample = tuple[float, dict[str, object]]


def number(sample: Sample, path: str) -> float:
    value = sample[1][path]
    assert isinstance(value, int | float) and not isinstance(value, bool)
    return float(value)


def energy_kwh(samples: list[Sample]) -> float:
    """Energy into the battery: each 1 s sample's power for its own second."""
    return sum(number(sample, POWER) for sample in samples) / 3.6e6


def drive_to_a_fast_charger_and_on(path: Path) -> list[Sample]:
    """A scripted run: a low BEV leaves home for the DC charger, charges, drives on.

    Returns the telemetry a 1 Hz car would send, stepped 1 s at a time.
    """
    vehicle = make_vehicle("volta", "Aria", seed=5, soc=14.0, first_departure_s=0.0)
    charger = vehicle.network.nearest_place(vehicle.home.node, ("dc_charger",))
    assert charger is not None
    samples = [(vehicle.epoch_s, dict(vehicle.signals()))]
    with GroundTruth(path, truncate=True) as truth:
        recorders = truth.attach([vehicle])
        fast_charged = False
        while not (fast_charged and vehicle.activity == "parked" and vehicle.place != charger):
            vehicle.step(1.0)
            samples.append((vehicle.epoch_s, dict(vehicle.signals())))
            fast_charged = fast_charged or vehicle.is_dc_charging
            assert vehicle.sim_time < 4 * 3600, "the scripted run did not finish"
        for _ in range(60):  # parked a minute at the destination, then the run ends
            vehicle.step(1.0)
            samples.append((vehicle.epoch_s, dict(vehicle.signals())))
        truth.close(recorders)
    return samples


def stretches(samples: list[Sample], on: object) -> list[tuple[int, int]]:
    """(first index where `on(values)`, first index after where it no longer is)."""
    found, begin = [], None
    for index, (_, values) in enumerate(samples):
        if on(values) and begin is None:
            begin = index
        elif not on(values) and begin is not None:
            found.append((begin, index))
            begin = None
    if begin is not None:
        found.append((begin, len(samples) - 1))
    return found


def test_ground_truth_lines_are_the_trips_and_plug_ins_the_telemetry_shows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "truth.jsonl"
    samples = drive_to_a_fast_charger_and_on(path)
    records = read_ground_truth(path)
    # Every line is one JSON object.
    assert len(path.read_text().splitlines()) == len(records)
    trips = [r for r in records if r["kind"] == "trip"]
    sessions = [r for r in records if r["kind"] == "charging"]

    # Drives, as the telemetry shows them: power state ON (moving) until OFF at arrival.
    driving = stretches(samples, lambda values: values[POWER_STATE] == "ON")
    assert len(driving) == 2
    assert [(t["start"], t["end"]) for t in trips] == [
        (format_ts(samples[first][0]), format_ts(samples[after][0])) for first, after in driving
    ]
    assert all(trip["complete"] for trip in trips)
    for trip, (first, after) in zip(trips, driving, strict=True):
        odometer = number(samples[after], ODOMETER) - number(samples[first], ODOMETER)
        assert trip["distance_km"] == pytest.approx(odometer, abs=0.002)
        assert trip["distance_km"] > 0.5
        reported = -energy_kwh(samples[first + 1 : after + 1])
        assert trip["energy_kwh"] == pytest.approx(reported, rel=0.02)
        assert trip["energy_kwh"] > 0.05

    # Plug-ins, as the cable signal shows them: the wallbox at home (plugged in before the
    # run began, so incomplete), then the fast charger, from arrival to departure.
    plugged = stretches(samples, lambda values: values[CABLE] is True)
    assert len(plugged) == len(sessions) == 2
    home, fast = sessions
    assert home["complete"] is False and home["dc"] is False
    assert home["plugged_out"] == format_ts(samples[plugged[0][1]][0])
    assert fast["complete"] is True and fast["dc"] is True
    first, after = plugged[1]
    assert (fast["plugged_in"], fast["plugged_out"]) == (
        format_ts(samples[first][0]),
        format_ts(samples[after][0]),
    )
    assert fast["energy_added_kwh"] == pytest.approx(
        energy_kwh(samples[first + 1 : after + 1]), rel=0.01
    )
    assert fast["energy_added_kwh"] > 10.0
    assert sum(s["energy_kwh"] for s in fast["segments"]) == pytest.approx(
        fast["energy_added_kwh"], abs=0.001
    )
    # State of charge agrees: the energy added fills the Aria's 95 kWh pack (aged: 70-100 %
    # of it usable) by the state of charge gained.
    soc_gain = number(samples[after], SOC) - number(samples[first], SOC)
    assert 0.70 * 95.0 <= fast["energy_added_kwh"] / soc_gain * 100 <= 95.0
    # Trips and sessions never overlap: the car does not drive while plugged in.
    assert trips[0]["end"] <= fast["plugged_in"] < fast["plugged_out"] <= trips[1]["start"]


def test_a_run_that_ends_mid_trip_writes_it_incomplete(tmp_path: Path) -> None:
    vehicle = make_vehicle("nordwind", "Tessa", seed=3, first_departure_s=0.0)
    path = tmp_path / "truth.jsonl"
    truth = GroundTruth(path, truncate=True)
    recorders = truth.attach([vehicle])
    while not vehicle.is_driving:
        vehicle.step(1.0)
    for _ in range(120):
        vehicle.step(1.0)
    truth.close(recorders)
    [trip] = read_ground_truth(path)
    assert trip["kind"] == "trip" and trip["complete"] is False
    assert trip["energy_kwh"] is None  # a petrol car has no traction battery
    assert trip["powertrain"] == "ice"
    assert trip["distance_km"] > 0.1


def test_a_malformed_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "truth.jsonl"
    path.write_text(json.dumps({"kind": "trip"}) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"truth.jsonl:2: not a JSON line"):
        read_ground_truth(path)
