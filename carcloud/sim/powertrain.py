"""Road-load physics and the combustion engine: the power a drive needs and the fuel it burns."""

from __future__ import annotations

import functools
import math

from carcloud.sim.spec import VehicleSpec

__all__ = ["Engine", "RoadLoad", "engine_efficiency", "gear_for_speed"]

AIR_DENSITY_KG_M3 = 1.2
GRAVITY_MS2 = 9.81
FUEL_KWH_PER_L = {"petrol": 8.9, "diesel": 9.9}
IDLE_L_PER_H = {"petrol": 0.75, "diesel": 0.6}
IDLE_RPM = 780

# Upshift speeds (km/h) of a six-speed gearbox, and engine rpm per km/h in each gear.
_UPSHIFT_KMH = (16.0, 30.0, 46.0, 62.0, 82.0)
_RPM_PER_KMH = (0.0, 115.0, 68.0, 46.0, 35.0, 28.0, 22.0)


class RoadLoad:
    """The traction power a vehicle needs at a speed, acceleration and road grade."""

    __slots__ = ("_half_rho_cda", "_mass", "_mass_g", "_roll_force")

    def __init__(self, spec: VehicleSpec) -> None:
        self._mass = spec.mass_kg
        self._mass_g = spec.mass_kg * GRAVITY_MS2
        self._roll_force = spec.rolling_resistance * self._mass_g
        self._half_rho_cda = 0.5 * AIR_DENSITY_KG_M3 * spec.drag_area_m2

    def wheel_power_w(self, speed_ms: float, accel_ms2: float, grade: float) -> float:
        """Power at the wheels in W: positive drives the car, negative is available to brake."""
        if speed_ms <= 0.0:
            return 0.0
        force = (
            self._mass * accel_ms2
            + self._roll_force
            + self._half_rho_cda * speed_ms * speed_ms
            + self._mass_g * grade
        )
        return force * speed_ms


@functools.lru_cache(maxsize=256)
def engine_efficiency(spec: VehicleSpec) -> float:
    """Tank-to-wheel efficiency that makes an urban mix burn the spec's l/100 km."""
    if not spec.has_engine:
        return 0.0
    speed = 45.0 / 3.6
    load = RoadLoad(spec)
    # Stop-and-go driving throws ~50% of the steady-state road load away in the brakes.
    wheel_j_per_km = load.wheel_power_w(speed, 0.0, 0.0) / speed * 1_000.0 * 1.5
    wheel_j_per_km /= spec.drivetrain_efficiency
    idle_l_per_km = IDLE_L_PER_H[spec.fuel] / 45.0 * 0.5  # about half the time is moving idle
    rated_l_per_km = spec.fuel_l_per_100km / 100.0
    moving_l_per_km = max(rated_l_per_km - idle_l_per_km, 0.2 * rated_l_per_km)
    efficiency = wheel_j_per_km / (moving_l_per_km * FUEL_KWH_PER_L[spec.fuel] * 3.6e6)
    return min(0.42, max(0.16, efficiency))


def gear_for_speed(speed_kmh: float) -> int:
    """The gear an automatic six-speed box holds at a speed (1 when stopped in drive)."""
    gear = 1
    for threshold in _UPSHIFT_KMH:
        if speed_kmh < threshold:
            break
        gear += 1
    return gear


class Engine:
    """A combustion engine: running or not, its speed, coolant temperature, and fuel burn."""

    __slots__ = ("_efficiency", "_idle_l_s", "_j_per_l", "coolant_c", "is_running", "rpm")

    def __init__(self, spec: VehicleSpec, ambient_c: float) -> None:
        self._efficiency = engine_efficiency(spec)
        self._idle_l_s = IDLE_L_PER_H[spec.fuel] / 3_600.0
        self._j_per_l = FUEL_KWH_PER_L[spec.fuel] * 3.6e6
        self.coolant_c = ambient_c
        self.is_running = False
        self.rpm = 0

    def fuel_l(self, wheel_power_w: float, drivetrain_efficiency: float, dt_s: float) -> float:
        """Fuel burned over ``dt_s`` while running at a wheel power (overrun burns only idle)."""
        if not self.is_running:
            return 0.0
        burn = self._idle_l_s
        if wheel_power_w > 0.0:
            burn += wheel_power_w / drivetrain_efficiency / (self._efficiency * self._j_per_l)
        return burn * dt_s

    def update(self, speed_kmh: float, ambient_c: float, dt_s: float) -> int:
        """Advance rpm and coolant temperature; returns the gear engaged (0 when off)."""
        if self.is_running:
            gear = gear_for_speed(speed_kmh)
            self.rpm = max(IDLE_RPM, int(speed_kmh * _RPM_PER_KMH[gear]))
            # A thermostat holds ~90 C once warm; warming takes a few minutes of running.
            target, tau = 90.0, 240.0
        else:
            gear = 0
            self.rpm = 0
            target, tau = ambient_c, 2_400.0
        self.coolant_c += (target - self.coolant_c) * (1.0 - math.exp(-dt_s / tau))
        return gear
