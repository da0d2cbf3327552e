"""What a simulated vehicle model is: powertrain, battery, tank, and road-load parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FuelType", "Powertrain", "VehicleSpec"]

Powertrain = Literal["bev", "ice", "phev"]
FuelType = Literal["petrol", "diesel"]


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    """One vehicle model; validated on creation so a bad brand table fails at import.

    Consumption follows from the road-load parameters (mass, drag area, rolling resistance,
    drivetrain and regeneration efficiency, auxiliary load): energy per km rises with the
    square of speed through aerodynamic drag, and with cold through cabin heating.
    ``rated_kwh_per_100km`` and ``fuel_l_per_100km`` are the published figures, used for
    range estimates before the vehicle has learned its driver's real consumption, and to
    calibrate the combustion engine's efficiency.
    """

    brand: str
    model: str
    model_year: int
    powertrain: Powertrain
    body: Literal["hatchback", "sedan", "suv", "estate", "van"] = "sedan"
    mass_kg: float = 1_800.0
    drag_area_m2: float = 0.62
    rolling_resistance: float = 0.010
    drivetrain_efficiency: float = 0.90
    regen_efficiency: float = 0.65
    max_regen_kw: float = 60.0
    aux_power_w: float = 300.0
    heat_pump: bool = False
    battery_kwh: float = 0.0
    pack_voltage_v: float = 400.0
    rated_kwh_per_100km: float = 0.0
    max_dc_kw: float = 0.0
    max_ac_kw: float = 0.0
    tank_l: float = 0.0
    fuel: FuelType = "petrol"
    fuel_l_per_100km: float = 0.0
    max_speed_kmh: float = 180.0
    max_accel_ms2: float = 2.0
    tire_pressure_kpa: int = 250

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.powertrain not in ("bev", "ice", "phev"):
            problems.append(f"powertrain must be bev, ice or phev, not {self.powertrain!r}")
        electric = self.powertrain in ("bev", "phev")
        combustion = self.powertrain in ("ice", "phev")
        if electric and not (
            self.battery_kwh > 0 and self.rated_kwh_per_100km > 0 and self.max_ac_kw > 0
        ):
            problems.append("an electric powertrain needs battery_kwh, rated consumption, AC kW")
        if not electric and (self.battery_kwh or self.max_dc_kw or self.max_ac_kw):
            problems.append("an ICE has no traction battery or charging")
        if combustion and not (self.tank_l > 0 and self.fuel_l_per_100km > 0):
            problems.append("a combustion powertrain needs tank_l and fuel_l_per_100km")
        if not combustion and (self.tank_l or self.fuel_l_per_100km):
            problems.append("a BEV has no fuel tank")
        if not 1990 <= self.model_year <= 2040:
            problems.append(f"model_year {self.model_year} is implausible")
        if not (
            0.5 <= self.drivetrain_efficiency <= 1.0
            and 0.0 <= self.regen_efficiency <= 1.0
            and self.mass_kg > 0
            and self.drag_area_m2 > 0
            and self.rolling_resistance > 0
        ):
            problems.append("road-load parameters are out of range")
        if not (60.0 <= self.max_speed_kmh <= 350.0 and 0.5 <= self.max_accel_ms2 <= 6.0):
            problems.append("max speed or acceleration is out of range")
        if problems:
            raise ValueError(
                f"invalid VehicleSpec {self.brand}/{self.model}: {'; '.join(problems)}"
            )

    @property
    def is_electric(self) -> bool:
        """True when the vehicle has a traction battery it can plug in (BEV or PHEV)."""
        return self.powertrain != "ice"

    @property
    def has_engine(self) -> bool:
        """True when the vehicle burns fuel (ICE or PHEV)."""
        return self.powertrain != "bev"
