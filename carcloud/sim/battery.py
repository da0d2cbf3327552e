"""The traction battery: state of charge, pack voltage and temperature, and charging curves."""

from __future__ import annotations

import math

from carcloud.sim.spec import VehicleSpec

__all__ = [
    "AC_EFFICIENCY",
    "DC_EFFICIENCY",
    "TractionBattery",
    "dc_curve",
    "displayed_from_physical",
    "physical_from_displayed",
]

DC_EFFICIENCY = 0.95
"""Share of DC charger power that ends up in the cells (cable, contactor and cell losses)."""
AC_EFFICIENCY = 0.90
"""Share of wallbox power that ends up in the cells (the onboard charger loses the rest)."""

# The BMS hides a buffer at both ends: displayed 0-100 % is physical 2-98 %.
_BUFFER_LOW = 2.0
_BUFFER_SPAN = 96.0
_MIN_CHARGE_W = 1_500.0  # balancing trickle: a session at the top still finishes


def displayed_from_physical(physical_percent: float) -> float:
    """The state of charge a driver sees, from the physical one."""
    shown = (physical_percent - _BUFFER_LOW) * (100.0 / _BUFFER_SPAN)
    return 0.0 if shown < 0.0 else 100.0 if shown > 100.0 else shown


def physical_from_displayed(displayed_percent: float) -> float:
    """The physical state of charge at which the driver sees ``displayed_percent``."""
    return _BUFFER_LOW + displayed_percent * (_BUFFER_SPAN / 100.0)


def dc_curve(soc: float) -> float:
    """Share of peak DC power the pack accepts at a physical state of charge (0-1).

    Full power from ~10 % to ~50 %, a linear fall to 55 % of peak at 80 %, then an
    exponential taper that protects the cells from lithium plating as they fill up.
    """
    if soc < 0.10:
        return 0.75 + 2.5 * soc
    if soc <= 0.50:
        return 1.0
    if soc <= 0.80:
        return 1.0 - 1.5 * (soc - 0.50)
    return 0.55 * math.exp(-(soc - 0.80) / 0.08)


class TractionBattery:
    """A high-voltage pack: energy bookkeeping and what it accepts from a charger."""

    __slots__ = (
        "_max_ac_w",
        "_max_dc_w",
        "_nominal_v",
        "capacity_j",
        "soc",
        "state_of_health",
        "temperature_c",
    )

    def __init__(
        self, spec: VehicleSpec, soc: float, temperature_c: float, state_of_health: float
    ) -> None:
        # An aged pack holds less: the usable capacity shrinks with state of health.
        self.capacity_j = spec.battery_kwh * 3.6e6 * state_of_health / 100.0
        self.soc = min(1.0, max(0.0, soc))
        self.temperature_c = temperature_c
        self.state_of_health = state_of_health
        self._nominal_v = spec.pack_voltage_v
        self._max_dc_w = spec.max_dc_kw * 1_000.0
        self._max_ac_w = spec.max_ac_kw * 1_000.0

    @property
    def voltage_v(self) -> float:
        """Pack voltage: open-circuit voltage rises with state of charge."""
        return self._nominal_v * (0.86 + 0.22 * self.soc)

    @property
    def displayed_percent(self) -> float:
        """State of charge shown to the driver, in percent."""
        return displayed_from_physical(self.soc * 100.0)

    @property
    def supports_dc(self) -> bool:
        """True when the vehicle has a DC fast-charging inlet."""
        return self._max_dc_w > 0.0

    def energy_kwh_above(self, displayed_percent: float) -> float:
        """Energy left before the displayed state of charge reaches ``displayed_percent``."""
        floor = physical_from_displayed(displayed_percent) / 100.0
        return max(0.0, self.soc - floor) * self.capacity_j / 3.6e6

    def drain(self, energy_j: float) -> None:
        """Take energy out of (positive) or put it into (negative) the cells."""
        soc = self.soc - energy_j / self.capacity_j
        self.soc = 0.0 if soc < 0.0 else 1.0 if soc > 1.0 else soc

    def dc_power_w(self, charger_kw: float) -> float:
        """Power into the cells from a DC charger of ``charger_kw`` at the present state."""
        # A cold pack limits current until the cells warm up (the pack heats while charging).
        cold = 1.0 if self.temperature_c >= 15.0 else max(0.35, 0.45 + self.temperature_c / 27.0)
        # The pack asks for what its curve allows; the charger caps it at its own rating.
        wanted = self._max_dc_w * cold * dc_curve(self.soc)
        return max(_MIN_CHARGE_W, min(wanted, charger_kw * 1_000.0 * DC_EFFICIENCY))

    def ac_power_w(self, wallbox_kw: float) -> float:
        """Power into the cells from an AC wallbox of ``wallbox_kw`` at the present state."""
        grid_w = min(self._max_ac_w, wallbox_kw * 1_000.0)
        if self.soc > 0.95:  # the onboard charger backs off for the last few percent
            grid_w *= max(0.3, 1.0 - (self.soc - 0.95) * 14.0)
        return max(_MIN_CHARGE_W, grid_w * AC_EFFICIENCY)

    def seconds_to(self, displayed_percent: float, dc: bool, charger_kw: float) -> float:
        """Estimated seconds until the display reaches ``displayed_percent`` at this charger."""
        target = physical_from_displayed(displayed_percent) / 100.0
        if self.soc >= target:
            return 0.0
        saved = self.soc
        seconds = 0.0
        step = 0.01
        try:
            # Integrate the charging curve in 1 % slices; pack temperature held as it is now.
            while self.soc < target:
                slice_soc = min(step, target - self.soc)
                power = self.dc_power_w(charger_kw) if dc else self.ac_power_w(charger_kw)
                seconds += slice_soc * self.capacity_j / power
                self.soc += slice_soc
        finally:
            self.soc = saved
        return seconds
