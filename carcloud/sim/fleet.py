"""Three demo brands as data, and a deterministic fleet of simulated vehicles built from them.

The brands are fictional: a premium BEV maker, a mass-market maker with BEV, ICE and PHEV
models, and a utility van maker whose vans run delivery rounds. Each brand lives in a real
city's street network. ``build_fleet(count, seed)`` always returns the same vehicles, with
the same VINs, starting places and states, so the same seed drives the same trips.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from carcloud.sim.citygen import network_for
from carcloud.sim.model import DEFAULT_START_EPOCH_S, SimVehicle
from carcloud.sim.roads import PlaceKind
from carcloud.sim.spec import VehicleSpec
from carcloud.sim.trips import Usage
from carcloud.vin import Vin

__all__ = ["BRANDS", "Brand", "ModelLine", "build_fleet", "make_vin", "vin_check_digit"]

# ISO 3779 / 49 CFR 565 check digit: letters transliterate to digits, positions are weighted.
_TRANSLITERATION = {
    **{str(digit): digit for digit in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# Position 10 encodes the model year in a 30-year cycle; 2010 is "A".
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"
_POWERTRAIN_CODES = {"bev": "E", "phev": "H", "ice": "G"}


def vin_check_digit(vin: str) -> str:
    """The check digit (position 9) a 17-character VIN must carry: '0'-'9' or 'X'."""
    if len(vin) != 17:
        raise ValueError("a VIN has 17 characters")
    total = sum(_TRANSLITERATION[char] * weight for char, weight in zip(vin, _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def make_vin(wmi: str, descriptor: str, model_year: int, plant: str, serial: int) -> str:
    """Assemble a VIN from its parts, with the right check digit; validated by ``Vin``."""
    if not 2010 <= model_year <= 2039:
        raise ValueError("model_year must be 2010-2039 for this VIN year code cycle")
    if not 0 <= serial <= 999_999:
        raise ValueError("serial must fit in six digits")
    draft = f"{wmi}{descriptor}0{_YEAR_CODES[model_year - 2010]}{plant}{serial:06d}"
    vin = f"{draft[:8]}{vin_check_digit(draft)}{draft[9:]}"
    return Vin(vin).value


@dataclass(frozen=True, slots=True)
class ModelLine:
    """A model a brand sells: its two VIN model characters, spec, years and fleet share."""

    code: str
    spec: VehicleSpec
    years: tuple[int, ...]
    share: float


@dataclass(frozen=True, slots=True)
class Brand:
    """A demo brand: slug and name as registered in carcloud, VIN maker code, city, models."""

    slug: str
    name: str
    wmi: str
    plants: str
    city: str
    usage: Usage
    models: tuple[ModelLine, ...]


BRANDS: Mapping[str, Brand] = {
    brand.slug: brand
    for brand in (
        Brand(
            slug="volta",
            name="Volta Motors",
            wmi="WZV",
            plants="MA",
            city="munich",
            usage="commuter",
            models=(
                ModelLine("A1", VehicleSpec(
                    "volta", "Aria", 2025, "bev", body="sedan", mass_kg=2_100.0,
                    drag_area_m2=0.52, rolling_resistance=0.009, heat_pump=True,
                    battery_kwh=95.0, pack_voltage_v=800.0, rated_kwh_per_100km=16.5,
                    max_dc_kw=270.0, max_ac_kw=11.0, max_regen_kw=200.0, max_speed_kmh=230.0,
                    max_accel_ms2=2.6, tire_pressure_kpa=270,
                ), (2023, 2024, 2025), 0.4),
                ModelLine("V1", VehicleSpec(
                    "volta", "Vela", 2025, "bev", body="suv", mass_kg=2_450.0,
                    drag_area_m2=0.72, rolling_resistance=0.010, heat_pump=True,
                    battery_kwh=105.0, pack_voltage_v=800.0, rated_kwh_per_100km=20.5,
                    max_dc_kw=250.0, max_ac_kw=22.0, max_regen_kw=180.0, max_speed_kmh=210.0,
                    max_accel_ms2=2.4, tire_pressure_kpa=290,
                ), (2024, 2025), 0.35),
                ModelLine("N1", VehicleSpec(
                    "volta", "Nova", 2025, "bev", body="hatchback", mass_kg=1_750.0,
                    drag_area_m2=0.58, rolling_resistance=0.009, heat_pump=False,
                    battery_kwh=64.0, pack_voltage_v=400.0, rated_kwh_per_100km=15.5,
                    max_dc_kw=150.0, max_ac_kw=11.0, max_regen_kw=100.0, max_speed_kmh=180.0,
                    max_accel_ms2=2.2, tire_pressure_kpa=250,
                ), (2022, 2023, 2024, 2025), 0.25),
            ),
        ),
        Brand(
            slug="nordwind",
            name="Nordwind",
            wmi="WZN",
            plants="BW",
            city="berlin",
            usage="commuter",
            models=(
                ModelLine("P2", VehicleSpec(
                    "nordwind", "Pico", 2025, "bev", body="hatchback", mass_kg=1_550.0,
                    drag_area_m2=0.62, rolling_resistance=0.010, battery_kwh=52.0,
                    pack_voltage_v=400.0, rated_kwh_per_100km=15.0, max_dc_kw=100.0,
                    max_ac_kw=11.0, max_regen_kw=70.0, max_speed_kmh=160.0, max_accel_ms2=2.0,
                    tire_pressure_kpa=240,
                ), (2021, 2022, 2023, 2024, 2025), 0.35),
                ModelLine("T2", VehicleSpec(
                    "nordwind", "Tessa", 2025, "ice", body="hatchback", mass_kg=1_300.0,
                    drag_area_m2=0.64, rolling_resistance=0.011, tank_l=45.0, fuel="petrol",
                    fuel_l_per_100km=6.2, max_speed_kmh=190.0, max_accel_ms2=1.9,
                    tire_pressure_kpa=230,
                ), tuple(range(2016, 2026)), 0.4),
                ModelLine("K2", VehicleSpec(
                    "nordwind", "Kombi", 2025, "phev", body="estate", mass_kg=1_750.0,
                    drag_area_m2=0.68, rolling_resistance=0.010, battery_kwh=19.7,
                    pack_voltage_v=350.0, rated_kwh_per_100km=17.5, max_ac_kw=3.7,
                    max_regen_kw=40.0, tank_l=40.0, fuel="petrol",
                    fuel_l_per_100km=5.6, max_speed_kmh=210.0, max_accel_ms2=2.1,
                    tire_pressure_kpa=250,
                ), (2021, 2022, 2023, 2024, 2025), 0.25),
            ),
        ),
        Brand(
            slug="kargo",
            name="Kargo Vans",
            wmi="WZK",
            plants="SL",
            city="stuttgart",
            usage="delivery",
            models=(
                ModelLine("E3", VehicleSpec(
                    "kargo", "eKargo", 2025, "bev", body="van", mass_kg=2_900.0,
                    drag_area_m2=1.15, rolling_resistance=0.011, battery_kwh=75.0,
                    pack_voltage_v=400.0, rated_kwh_per_100km=26.0, max_dc_kw=115.0,
                    max_ac_kw=11.0, max_regen_kw=80.0, max_speed_kmh=130.0, max_accel_ms2=1.6,
                    aux_power_w=400.0, tire_pressure_kpa=380,
                ), (2022, 2023, 2024, 2025), 0.55),
                ModelLine("D3", VehicleSpec(
                    "kargo", "Kargo D", 2025, "ice", body="van", mass_kg=2_400.0,
                    drag_area_m2=1.10, rolling_resistance=0.011, tank_l=70.0, fuel="diesel",
                    fuel_l_per_100km=8.6, max_speed_kmh=160.0, max_accel_ms2=1.5,
                    aux_power_w=400.0, tire_pressure_kpa=360,
                ), tuple(range(2017, 2026)), 0.45),
            ),
        ),
    )
}  # fmt: skip
"""The demo brands by slug."""


def build_fleet(
    count: int,
    seed: int,
    brands: Sequence[str] | None = None,
    *,
    start_epoch_s: float = DEFAULT_START_EPOCH_S,
    road_seed: int = 0,
) -> list[SimVehicle]:
    """Create ``count`` vehicles spread over ``brands`` (all by default), the same every time."""
    if count < 0:
        raise ValueError("count must not be negative")
    slugs = list(BRANDS) if brands is None else list(brands)
    unknown = [slug for slug in slugs if slug not in BRANDS]
    if unknown or not slugs:
        raise ValueError(f"unknown brands {unknown} (known: {', '.join(BRANDS)})")
    rng = random.Random(f"carcloud.sim.fleet:{seed}")
    used_serials: set[tuple[str, int]] = set()
    fleet: list[SimVehicle] = []
    for index in range(count):
        brand = BRANDS[slugs[index % len(slugs)]]
        line = rng.choices(brand.models, weights=[m.share for m in brand.models])[0]
        year = rng.choice(line.years)
        spec = dataclasses.replace(line.spec, model_year=year)
        serial = rng.randrange(1_000_000)
        while (brand.wmi, serial) in used_serials:
            serial = (serial + 1) % 1_000_000
        used_serials.add((brand.wmi, serial))
        descriptor = f"{line.code}{spec.body[0].upper()}{_POWERTRAIN_CODES[spec.powertrain]}1"
        vin = make_vin(brand.wmi, descriptor, year, rng.choice(brand.plants), serial)
        network = network_for(brand.city, road_seed)
        home_kind: PlaceKind = "depot" if brand.usage == "delivery" else "home"
        home = rng.choice(network.places_of(home_kind))
        if rng.random() < 0.65:
            start = home
        else:
            start = rng.choice(network.places_of("office", "shop", "leisure"))
        age = 2025 - year
        fleet.append(
            SimVehicle(
                spec,
                vin,
                network,
                seed=rng.getrandbits(63),
                home=home,
                start_place=start,
                soc_percent=round(rng.uniform(22.0, 90.0), 1),
                fuel_percent=round(rng.uniform(20.0, 95.0), 1),
                odometer_km=round(age * rng.uniform(6_000.0, 18_000.0) + rng.uniform(30, 3_000), 1),
                charge_limit_percent=rng.choice((80, 80, 80, 85, 90)),
                usage=brand.usage,
                start_epoch_s=start_epoch_s,
            )
        )
    return fleet
