"""Tests for the demo brands and the deterministic fleet builder."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from carcloud.catalog import default_catalog
from carcloud.sim import BRANDS, build_fleet, make_vin
from carcloud.sim.fleet import vin_check_digit
from carcloud.vin import Vin, is_valid_vin

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def test_check_digit_matches_the_standard_worked_example() -> None:
    # The textbook 49 CFR 565 example: 1M8GDM9AXKP042788 has check digit X.
    assert vin_check_digit("1M8GDM9A0KP042788") == "X"
    assert vin_check_digit("1HGCM82633A004352") == "3"


def test_make_vin_builds_valid_vins_with_a_check_digit() -> None:
    vin = make_vin("WZV", "A1SE1", 2025, "M", 42)
    assert Vin(vin).value == vin
    assert vin[:3] == "WZV" and vin[9] == "S" and vin.endswith("000042")
    assert vin[8] == vin_check_digit(vin)
    with pytest.raises(ValueError):
        make_vin("WZV", "A1SE1", 2005, "M", 1)


def test_vins_are_valid_unique_and_carry_the_brand() -> None:
    fleet = build_fleet(300, seed=1)
    vins = [vehicle.vin for vehicle in fleet]
    assert len(set(vins)) == len(vins)
    for vehicle in fleet:
        assert is_valid_vin(vehicle.vin)
        assert not set(vehicle.vin) & set("IOQ")
        assert vehicle.vin[8] == vin_check_digit(vehicle.vin)
        assert vehicle.vin[:3] == BRANDS[vehicle.spec.brand].wmi


def test_same_seed_builds_the_same_fleet_and_drives() -> None:
    first, second = build_fleet(40, seed=9), build_fleet(40, seed=9)
    assert [v.vin for v in first] == [v.vin for v in second]
    assert [v.spec for v in first] == [v.spec for v in second]
    for _ in range(900):
        for a, b in zip(first, second, strict=True):
            a.step(1.0)
            b.step(1.0)
    assert [v.signals() for v in first] == [v.signals() for v in second]
    assert any(v.is_driving for v in first)  # the comparison covered moving vehicles


def test_another_seed_builds_another_fleet() -> None:
    assert [v.vin for v in build_fleet(20, seed=1)] != [v.vin for v in build_fleet(20, seed=2)]


def test_fleet_spreads_over_brands_models_and_powertrains() -> None:
    fleet = build_fleet(300, seed=4)
    brands = Counter(vehicle.spec.brand for vehicle in fleet)
    assert brands == {slug: 100 for slug in BRANDS}
    models = {(vehicle.spec.brand, vehicle.spec.model) for vehicle in fleet}
    assert models == {(b.slug, m.spec.model) for b in BRANDS.values() for m in b.models}
    assert {vehicle.spec.powertrain for vehicle in fleet} == {"bev", "ice", "phev"}
    for vehicle in fleet:
        brand = BRANDS[vehicle.spec.brand]
        line = next(m for m in brand.models if m.spec.model == vehicle.spec.model)
        assert vehicle.spec.model_year in line.years
        assert vehicle.network.city.slug == brand.city
        assert vehicle.place is not None  # everyone starts parked at a place
        expected_home = "depot" if brand.usage == "delivery" else "home"
        assert vehicle.home.kind == expected_home


def test_brand_filter_and_bad_arguments() -> None:
    vans = build_fleet(12, seed=3, brands=["kargo"])
    assert {vehicle.spec.brand for vehicle in vans} == {"kargo"}
    assert build_fleet(0, seed=3) == []
    with pytest.raises(ValueError, match="unknown brands"):
        build_fleet(5, seed=3, brands=["tesla"])
    with pytest.raises(ValueError):
        build_fleet(-1, seed=3)


def test_brands_are_a_premium_bev_maker_a_mass_market_maker_and_a_van_maker() -> None:
    assert len(BRANDS) == 3
    powertrains = {
        slug: {line.spec.powertrain for line in brand.models} for slug, brand in BRANDS.items()
    }
    assert powertrains["volta"] == {"bev"}
    assert powertrains["nordwind"] == {"bev", "ice", "phev"}
    assert {line.spec.body for line in BRANDS["kargo"].models} == {"van"}
    for slug, brand in BRANDS.items():
        assert SLUG_RE.fullmatch(slug) and brand.slug == slug
        assert re.fullmatch(r"[A-HJ-NPR-Z0-9]{3}", brand.wmi)
        assert all(line.spec.brand == slug for line in brand.models)


def test_initial_signals_pass_the_catalog() -> None:
    catalog = default_catalog()
    for vehicle in build_fleet(30, seed=5):
        for path, value in vehicle.signals().items():
            catalog.validate(path, value)


def test_a_warmed_up_fleet_is_already_on_the_road_at_the_start() -> None:
    """The demo's warm-up: at the start cars drive and charge, and the clock is the start."""
    from carcloud.sim.session import SimulationOptions, fleet_for

    start = 1_764_000_000.0
    options = SimulationOptions("http://x", "k", "127.0.0.1", 1, vehicles=60, seed=7)
    options.start_epoch_s = start
    cold = fleet_for(options)
    assert sum(v.is_driving for v in cold) == 0
    options.warmup_s = 600.0
    warm = fleet_for(options)
    driving = sum(v.is_driving for v in warm)
    charging = sum(v.is_charging for v in warm)
    assert driving >= 10, f"only {driving} of 60 driving after a 10-minute warm-up"
    assert charging >= 5 and driving + charging < 60  # and some simply parked
    assert {round(v.epoch_s) for v in warm} == {round(start)}
    # Deterministic like the rest of the simulator.
    again = fleet_for(options)
    assert [v.signals() for v in again] == [v.signals() for v in warm]
