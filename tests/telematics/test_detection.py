"""Trip and charging detection as pure functions of a scripted car's reported history."""

from __future__ import annotations

import dataclasses
import random

import pytest

from carcloud.telematics import checkpoint
from carcloud.telematics.charging import SessionScan, detect_sessions, pricing
from carcloud.telematics.checkpoint import Checkpoint
from carcloud.telematics.models import SECOND, DetectionSettings
from carcloud.telematics.tariffs import DAYS, Tariff, TariffPeriod
from carcloud.telematics.timeline import Timeline, build_timeline
from carcloud.telematics.trips import TripScan, detect_trips
from tests.telematics.drive import CHARGE, DAY, Leg, rows, run

VIN = "WVWZZZ1JZXW000001"
SETTINGS = DetectionSettings()


def _real(script_trips: list) -> list:  # type: ignore[type-arg]
    return [truth for truth in script_trips if truth.distance_km >= 0.1]


def test_day_gives_exactly_the_driven_trips_within_bounds() -> None:
    script = run(DAY)
    trips = detect_trips(VIN, build_timeline(rows(script)), SETTINGS)
    truth = _real(script.trips)
    assert [t.status for t in trips] == ["completed"] * 2
    assert len(trips) == len(truth) == 2
    for trip, real in zip(trips, truth, strict=True):
        assert abs(trip.start_ts - real.start_ts) <= 1 * SECOND
        assert abs(trip.end_ts - real.end_ts) <= 2 * SECOND
        assert trip.distance_source == "odometer"
        assert trip.distance_km == pytest.approx(real.distance_km, rel=0.01)
        assert trip.energy_source == "battery_power"
        assert trip.energy_kwh == pytest.approx(real.energy_kwh, rel=0.03)
        assert trip.positions >= 2
        assert trip.outside_temp_c == 12.5
        assert trip.start_soc is not None and trip.end_soc is not None
        assert trip.start_soc > trip.end_soc
    # The red light is inside drive 1: driving time excludes it, duration does not.
    assert trips[0].duration_s - trips[0].driving_s == pytest.approx(60, abs=3)
    assert trips[0].max_speed_kmh is not None and trips[0].max_speed_kmh > 70


def test_gps_and_soc_fallbacks_when_the_car_reports_neither_odometer_nor_power() -> None:
    script = run(DAY)
    stripped = [
        (
            ts,
            {
                k: v
                for k, v in values.items()
                if not k.endswith(("TraveledDistance", "CurrentPower"))
            },
        )
        for ts, values in rows(script)
    ]
    trips = detect_trips(VIN, build_timeline(stripped), SETTINGS, usable_kwh=60.0)
    truth = _real(script.trips)
    assert len(trips) == 2
    for trip, real in zip(trips, truth, strict=True):
        assert trip.distance_source == "gps"
        assert trip.distance_km == pytest.approx(real.distance_km, rel=0.01)
        assert trip.energy_source == "state_of_charge"
        assert trip.energy_kwh == pytest.approx(real.energy_kwh, rel=0.03)


def test_an_offline_gap_while_driving_does_not_split_the_trip() -> None:
    script = run(DAY)
    start = script.trips[1].start_ts + 120 * SECOND
    live = [row for row in rows(script) if not start <= row[0] < start + 600 * SECOND]
    trips = detect_trips(VIN, build_timeline(live), SETTINGS)
    assert len(trips) == 2
    assert (
        trips[1].start_ts == detect_trips(VIN, build_timeline(rows(script)), SETTINGS)[1].start_ts
    )
    assert trips[1].distance_km == pytest.approx(_real(script.trips)[1].distance_km, rel=0.01)


def test_arrival_order_does_not_matter() -> None:
    data = rows(run(DAY))
    shuffled = data[:]
    random.Random(7).shuffle(shuffled)
    assert detect_trips(VIN, build_timeline(shuffled), SETTINGS) == detect_trips(
        VIN, build_timeline(data), SETTINGS
    )


def test_a_car_that_only_reports_gear_and_power_state() -> None:
    script = run(DAY)
    reduced = [
        (ts, {k: v for k, v in values.items() if not k.endswith(".Speed")})
        for ts, values in rows(script)
    ]
    trips = detect_trips(VIN, build_timeline(reduced), SETTINGS)
    # Without speed the red light is a driving gear: still one trip each.
    assert len(trips) == 2


def test_data_ending_mid_drive_is_an_open_trip() -> None:
    script = run(DAY)
    cut = script.trips[1].start_ts + 300 * SECOND
    trips = detect_trips(VIN, build_timeline([r for r in rows(script) if r[0] < cut]), SETTINGS)
    assert [t.status for t in trips] == ["completed", "driving"]


def test_a_pause_is_one_session_with_two_segments_and_energy_once() -> None:
    script = run(CHARGE)
    sessions = detect_sessions(VIN, build_timeline(rows(script)), SETTINGS)
    assert len(sessions) == 1
    session = sessions[0]
    assert session.status == "completed"
    assert len(session.segments) == 2
    truth = script.charges[0]
    assert session.energy_kwh == pytest.approx(truth.energy_kwh, rel=0.01)
    assert sum(s.energy_kwh for s in session.segments) == pytest.approx(session.energy_kwh)
    assert session.segments[0].duration_s == pytest.approx(1200, abs=2)
    assert session.segments[1].duration_s == pytest.approx(900, abs=2)
    assert session.charging_s == pytest.approx(2100, abs=3)
    assert session.current_type == "AC"
    assert session.max_power_kw is not None and 11.0 < session.max_power_kw < 11.7
    assert session.start_soc is not None and session.end_soc is not None
    assert session.end_soc > session.start_soc


def test_time_of_use_tariff_splits_cost_at_the_boundary() -> None:
    # Charging at a constant 10 kW from 21:50 to 22:10 UTC; off-peak from 22:00.
    base = 1_780_005_000 * SECOND  # 2026-05-28T21:50:00Z, a Thursday
    legs = [Leg("park", 10), Leg("charge", 1200, charge_kw=10.0), Leg("charge", 10, plugged=False)]
    script = run(legs, start_ts=base - 10 * SECOND)
    flat = [
        (
            ts,
            {
                **v,
                "Vehicle.Powertrain.TractionBattery.CurrentPower": 10_000.0
                if v["Vehicle.Powertrain.TractionBattery.Charging.IsCharging"]
                else 0.0,
            },
        )
        for ts, v in rows(script)
    ]
    tariff = Tariff(
        id="trf_1",
        brand="volta",
        name="home",
        currency="EUR",
        timezone="UTC",
        price_per_kwh=0.40,
        price_per_session=1.00,
        periods=(TariffPeriod(days=("thu",), start="22:00", end="06:00", price_per_kwh=0.10),),
    )
    sessions = detect_sessions(VIN, build_timeline(flat), SETTINGS, tariffs=[tariff])
    assert len(sessions) == 1
    # 10 kW for 10 min before 22:00 and 10 min after: 1.6667 kWh at 0.40 and at 0.10.
    assert sessions[0].energy_kwh == pytest.approx(3.3333, abs=0.01)
    assert sessions[0].cost == pytest.approx(1.00 + 1.6667 * 0.40 + 1.6667 * 0.10, abs=0.01)
    assert sessions[0].currency == "EUR" and sessions[0].tariff_id == "trf_1"
    assert tariff.prices_at(base + 9 * 60 * SECOND) == (0.40, 0.0)
    assert tariff.prices_at(base + 11 * 60 * SECOND) == (0.10, 0.0)
    # Friday 05:59 is still Thursday night's off-peak; 06:00 is not.
    friday_0559 = base + (8 * 3600 + 9 * 60) * SECOND
    assert tariff.prices_at(friday_0559) == (0.10, 0.0)
    assert tariff.prices_at(friday_0559 + 60 * SECOND) == (0.40, 0.0)


def test_a_timeline_grown_row_by_row_equals_one_built_at_once() -> None:
    data = rows(run(DAY))
    grown = Timeline(data[0][0])
    for start in range(0, len(data), 7):
        grown.extend(data[start : start + 7])
    assert grown.moments == build_timeline(data)
    cut = data[100][0]
    grown.trim(cut)
    assert grown.moments == build_timeline(data)[100:] and grown.start == cut
    with pytest.raises(ValueError, match="not newer"):
        grown.extend([data[50]])


def test_energy_counters_measure_a_car_that_reports_every_10_s() -> None:
    # A car that samples every 10 s: its held power misses what happens between samples;
    # its lifetime energy counters do not (found measuring against the simulator's truth).
    script = run(DAY, report_every_s=10.0, counters=True)
    trips = detect_trips(VIN, build_timeline(rows(script)), SETTINGS)
    truth = _real(script.trips)
    assert len(trips) == len(truth) == 2
    for trip, real in zip(trips, truth, strict=True):
        assert trip.energy_source == "energy_counters"
        assert trip.energy_kwh == pytest.approx(real.energy_kwh, rel=0.005)
    charge = run(CHARGE, report_every_s=10.0, counters=True)
    [session] = detect_sessions(VIN, build_timeline(rows(charge)), SETTINGS)
    assert len(session.segments) == 2
    assert session.energy_kwh == pytest.approx(charge.charges[0].energy_kwh, rel=0.005)


def test_energy_counters_measure_a_trip_across_an_offline_gap() -> None:
    script = run(DAY, counters=True)
    drive = _real(script.trips)[1]
    # Offline for 5 minutes in the middle of drive 2; the backlog never arrives.
    gap = (drive.start_ts + 200 * SECOND, drive.start_ts + 500 * SECOND)
    kept = [row for row in rows(script) if not gap[0] <= row[0] < gap[1]]
    trips = detect_trips(VIN, build_timeline(kept), SETTINGS)
    assert len(trips) == 2
    assert trips[1].energy_source == "energy_counters"
    assert trips[1].energy_kwh == pytest.approx(drive.energy_kwh, rel=0.005)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scans_resumed_from_saved_checkpoints_give_exactly_one_scans_trips_and_sessions(
    seed: int,
) -> None:
    # A derivation goes on from where the last one stopped (the checkpoint it saved): a
    # day cut at random moments, each piece scanned from the checkpoint the piece before
    # saved, ends with the trips and sessions (figures, cost) of one scan of the day.
    rng = random.Random(seed)
    data = rows(run(DAY + CHARGE, report_every_s=rng.choice([1.0, 5.0]), counters=seed == 2))
    data = [row for row in data if not 3000 < (row[0] - data[0][0]) // SECOND < 3100]  # a gap
    moments = build_timeline(data)
    tariff = Tariff(
        id="trf_1", brand="volta", name="tou", currency="EUR", price_per_kwh=0.4,
        price_per_minute=0.01, price_per_session=1.0,
        periods=(TariffPeriod(days=DAYS, start="20:40", end="06:00", price_per_kwh=0.1),),
    )  # fmt: skip
    price_for = pricing(VIN, [tariff], [])
    trip_scan, session_scan = TripScan(SETTINGS, 60.0), SessionScan(SETTINGS, 60.0, price_for)
    trips, sessions = [], []
    cuts = sorted(rng.sample(range(1, len(moments)), 30))
    for first, last in zip([0, *cuts], [*cuts, len(moments)], strict=True):
        for moment in moments[first:last]:
            trips += trip_scan.feed(moment, VIN)
            sessions += [s for s in [session_scan.feed(moment, VIN)] if s is not None]
        saved = Checkpoint(moments[last - 1].ts, (), {}, trip_scan, session_scan, 0, last)
        resumed = checkpoint.decode(checkpoint.parse(checkpoint.encode(saved)), SETTINGS,
                                    60.0, price_for)  # fmt: skip
        assert resumed is not None
        trip_scan, session_scan = resumed.trips, resumed.sessions
    trips += [t for t in [trip_scan.open_trip(VIN)] if t is not None]
    sessions += [s for s in [session_scan.open_session(VIN)] if s is not None]
    assert trips == detect_trips(VIN, moments, SETTINGS, 60.0)
    assert sessions == detect_sessions(VIN, moments, SETTINGS, 60.0, [tariff])
    assert len(trips) >= 2 and len(sessions) == 1 and sessions[0].cost


def test_a_checkpoint_priced_by_a_tariff_since_changed_is_not_resumed() -> None:
    data = rows(run(CHARGE))
    moments = build_timeline(data[: len(data) // 2])
    tariff = Tariff(id="trf_1", brand="volta", name="home", currency="EUR", price_per_kwh=0.3)
    scan = SessionScan(SETTINGS, 60.0, pricing(VIN, [tariff], []))
    for moment in moments:
        scan.feed(moment, VIN)
    saved = checkpoint.parse(
        checkpoint.encode(
            Checkpoint(moments[-1].ts, (), {}, TripScan(SETTINGS, 60.0), scan, 0, len(moments))
        )
    )
    edited = dataclasses.replace(tariff, price_per_kwh=0.35, updated_at=1)
    assert checkpoint.decode(saved, SETTINGS, 60.0, pricing(VIN, [tariff], [])) is not None
    assert checkpoint.decode(saved, SETTINGS, 60.0, pricing(VIN, [edited], [])) is None
    assert checkpoint.decode(saved, SETTINGS, 50.0, pricing(VIN, [tariff], [])) is None
