"""A vehicle's energy stores, the traction battery and the fuel tank, and what driving costs."""

from __future__ import annotations

from carcloud.catalog import SignalValue
from carcloud.sim.battery import TractionBattery, physical_from_displayed
from carcloud.sim.powertrain import Engine
from carcloud.sim.roads import PlaceKind
from carcloud.sim.spec import VehicleSpec

__all__ = ["Energy"]

_LOW_SOC = 20.0  # displayed %: a BEV plans a fast-charge stop before leaving
_CRITICAL_SOC = 10.0  # displayed %: a BEV diverts to a charger mid-trip
_LOW_FUEL = 0.15
_CRITICAL_FUEL = 0.08
_PHEV_HYBRID_BELOW = 15.0  # displayed %: a PHEV holds charge on the engine from here
_PHEV_EV_ABOVE = 18.0
_REFUEL_L_PER_S = 0.6  # a car pump delivers ~35 l/min
_LEARN_EVERY_M = 1_000.0
_LEARN_RATE = 0.05
_BATTERY = "Vehicle.Powertrain.TractionBattery."
_FUEL = "Vehicle.Powertrain.FuelSystem."
_ENGINE = "Vehicle.Powertrain.CombustionEngine."


class Energy:
    """Battery and/or tank, the engine, and the consumption the vehicle has learned per km."""

    __slots__ = (
        "_acc_j",
        "_acc_l",
        "_acc_m",
        "_aux_w",
        "_drive_eff",
        "_max_regen_w",
        "_powertrain",
        "_regen_eff",
        "_tank_l",
        "battery",
        "consumed_j",
        "engine",
        "ev_mode",
        "fuel_l",
        "j_per_m",
        "l_per_m",
        "power_w",
        "regen_j",
    )

    def __init__(
        self,
        spec: VehicleSpec,
        battery: TractionBattery | None,
        engine: Engine | None,
        fuel_l: float,
    ) -> None:
        self.battery = battery
        self.engine = engine
        self.fuel_l = fuel_l
        self.ev_mode = battery is not None
        # Range estimates start from the rated figures and learn the driver's real ones.
        self.j_per_m = spec.rated_kwh_per_100km * 36.0
        self.l_per_m = spec.fuel_l_per_100km / 100_000.0
        self.power_w = 0.0
        self._powertrain = spec.powertrain
        self._tank_l = spec.tank_l
        self._aux_w = spec.aux_power_w
        self._drive_eff = spec.drivetrain_efficiency
        self._regen_eff = spec.regen_efficiency
        self._max_regen_w = spec.max_regen_kw * 1_000.0
        self._acc_j = self._acc_l = self._acc_m = 0.0
        # Lifetime counters of the traction battery (VSS Accumulated*Energy), in joules: what
        # left it for propulsion and loads, and what regenerative braking put back.
        self.consumed_j = self.regen_j = 0.0

    @property
    def fuel_share(self) -> float:
        """Fuel left as a share of the tank (0 for a BEV)."""
        return self.fuel_l / self._tank_l if self._tank_l else 0.0

    def drive(
        self, wheel_w: float, cabin_w: float, ac_active: bool, distance_m: float, dt_s: float
    ) -> bool:
        """Pay for ``dt_s`` seconds of driving at a wheel power; True when energy ran out."""
        battery = self.battery
        empty = False
        if battery is not None and self.ev_mode:
            if wheel_w >= 0.0:
                out_w = wheel_w / self._drive_eff
            else:
                # Regenerative braking: the motor recovers part of the braking power.
                out_w = max(wheel_w * self._regen_eff, -self._max_regen_w)
            out_w += self._aux_w + cabin_w
            battery.drain(out_w * dt_s)
            if out_w >= 0.0:
                self.consumed_j += out_w * dt_s
            else:
                self.regen_j -= out_w * dt_s
            self.power_w = -out_w
            self._acc_j += out_w * dt_s
            if battery.soc <= 0.0:
                if self.engine is not None and self.fuel_l > 0.0:
                    self.ev_mode = False
                else:
                    empty = True
        else:
            engine = self.engine
            assert engine is not None  # without EV mode, an engine drives the wheels
            # The engine carries the 12 V and AC compressor loads; cabin heat is its waste heat.
            load_w = self._aux_w + (cabin_w if ac_active else 150.0)
            fuel = engine.fuel_l(max(0.0, wheel_w) + load_w, self._drive_eff, dt_s)
            self.fuel_l -= fuel
            self._acc_l += fuel
            self.power_w = 0.0
            if battery is not None and wheel_w < 0.0:
                regen_w = max(wheel_w * self._regen_eff, -self._max_regen_w)
                battery.drain(regen_w * dt_s)
                self.regen_j -= regen_w * dt_s
                self.power_w = -regen_w
            if self.fuel_l <= 0.0:
                self.fuel_l = 0.0
                if battery is not None and battery.soc > 0.0:
                    self.ev_mode = True
                else:
                    empty = True
        self._acc_m += distance_m
        if self._acc_m >= _LEARN_EVERY_M:
            self._learn()
        if battery is not None and self.engine is not None:
            self._choose_phev_mode(battery)
        return empty

    def _learn(self) -> None:
        """Fold the last km into the learned consumption, slowly, so range follows the driving."""
        if self._acc_j > 0.0:
            per_m = min(1_500.0, max(50.0, self._acc_j / self._acc_m))
            self.j_per_m += _LEARN_RATE * (per_m - self.j_per_m)
        if self._acc_l > 0.0:
            self.l_per_m += _LEARN_RATE * (self._acc_l / self._acc_m - self.l_per_m)
        self._acc_j = self._acc_l = self._acc_m = 0.0

    def _choose_phev_mode(self, battery: TractionBattery) -> None:
        shown = battery.displayed_percent
        if self.ev_mode and shown < _PHEV_HYBRID_BELOW and self.fuel_l > 0.0:
            self.ev_mode = False
        elif not self.ev_mode and shown > _PHEV_EV_ABOVE:
            self.ev_mode = True
        assert self.engine is not None
        self.engine.is_running = not self.ev_mode

    def idle(self, cabin_w: float, plugged: bool, dt_s: float) -> None:
        """Parked: the cabin draws on the pack, a remotely started engine burns fuel."""
        engine = self.engine
        battery = self.battery
        if engine is not None and engine.is_running:
            self.fuel_l = max(0.0, self.fuel_l - engine.fuel_l(600.0, 1.0, dt_s))
            self.power_w = 0.0
        elif battery is not None and cabin_w > 0.0 and not plugged:
            battery.drain(cabin_w * dt_s)
            self.consumed_j += cabin_w * dt_s
            self.power_w = -cabin_w
        else:
            self.power_w = 0.0

    def refuel(self, dt_s: float) -> bool:
        """Pump fuel for ``dt_s`` seconds; True once the tank is full."""
        self.fuel_l = min(self._tank_l, self.fuel_l + _REFUEL_L_PER_S * dt_s)
        return self.fuel_l >= self._tank_l

    def needs_stop(self, critical: bool) -> PlaceKind | None:
        """Where to stop for energy now ("dc_charger", "fuel"), or None if there is enough."""
        battery = self.battery
        if self._powertrain == "bev":
            assert battery is not None
            threshold = _CRITICAL_SOC if critical else _LOW_SOC
            if battery.displayed_percent < threshold and battery.supports_dc:
                return "dc_charger"
            return None
        if self.fuel_share < (_CRITICAL_FUEL if critical else _LOW_FUEL):
            return "fuel"
        return None

    def rescue(self) -> None:
        """Roadside assistance leaves enough energy to reach a charger or a fuel station."""
        battery = self.battery
        if battery is not None and self.engine is None:
            battery.soc = max(battery.soc, physical_from_displayed(12.0) / 100.0)
        else:
            self.fuel_l = max(self.fuel_l, min(self._tank_l, 8.0))

    def add_signals(self, out: dict[str, SignalValue]) -> None:
        """Add battery state, fuel, engine and range signals to ``out``."""
        range_m = 0
        battery = self.battery
        if battery is not None:
            # A PHEV's electric range ends where it starts holding charge on the engine.
            floor = _PHEV_HYBRID_BELOW if self.engine is not None else 0.0
            battery_range_m = int(battery.energy_kwh_above(floor) * 3.6e6 / self.j_per_m)
            range_m += battery_range_m
            out[_BATTERY + "StateOfCharge.Current"] = round(battery.soc * 100.0, 2)
            out[_BATTERY + "StateOfCharge.Displayed"] = round(battery.displayed_percent, 1)
            out[_BATTERY + "StateOfHealth"] = round(battery.state_of_health, 1)
            out[_BATTERY + "Temperature.Average"] = round(battery.temperature_c, 1)
            out[_BATTERY + "CurrentVoltage"] = round(battery.voltage_v, 1)
            out[_BATTERY + "CurrentPower"] = round(self.power_w, 0)
            out[_BATTERY + "AccumulatedConsumedEnergy"] = round(self.consumed_j / 3.6e6, 4)
            out["Vehicle.Powertrain.AccumulatedBrakingEnergy"] = round(self.regen_j / 3.6e6, 4)
            out[_BATTERY + "Range"] = battery_range_m
        engine = self.engine
        if engine is not None:
            fuel_range_m = int(self.fuel_l / self.l_per_m)
            range_m += fuel_range_m
            out[_FUEL + "RelativeLevel"] = int(round(100.0 * self.fuel_l / self._tank_l))
            out[_FUEL + "Range"] = fuel_range_m
            out[_FUEL + "IsFuelLevelLow"] = fuel_range_m < 50_000
            out[_ENGINE + "IsRunning"] = engine.is_running
            out[_ENGINE + "Speed"] = engine.rpm
            out[_ENGINE + "EngineCoolant.Temperature"] = round(engine.coolant_c, 1)
        out["Vehicle.Powertrain.Range"] = range_m
