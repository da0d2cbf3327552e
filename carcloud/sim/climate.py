"""Outside weather and the cabin: air temperature over the day, and what the HVAC must do."""

from __future__ import annotations

import math

from carcloud.catalog import SignalValue
from carcloud.sim.roads import City

__all__ = ["Cabin", "Weather"]

_DAY_S = 86_400.0
_TWO_PI = 2.0 * math.pi


class Weather:
    """Air temperature and sunshine at a city, as a smooth function of UTC time."""

    __slots__ = ("_local_offset_h", "_mean_c", "_offset_c", "_swing_c")

    def __init__(self, city: City, offset_c: float = 0.0) -> None:
        self._mean_c = city.mean_temp_c
        self._swing_c = city.daily_temp_swing_c
        self._offset_c = offset_c  # a vehicle's microclimate: shade, street canyon, sensor
        # Local solar time leads UTC by 4 minutes per degree of longitude east.
        self._local_offset_h = city.lon / 15.0

    def _solar_hour(self, epoch_s: float) -> float:
        return ((epoch_s % _DAY_S) / 3_600.0 + self._local_offset_h) % 24.0

    def air_temperature_c(self, epoch_s: float) -> float:
        """Outside air temperature: coolest near dawn, warmest mid-afternoon, drifting by day."""
        hour = self._solar_hour(epoch_s)
        day = epoch_s / _DAY_S
        daily = self._swing_c * math.sin(_TWO_PI * (hour - 9.0) / 24.0)
        weather_front = 3.0 * math.sin(_TWO_PI * day / 5.3) + 1.5 * math.sin(_TWO_PI * day / 2.1)
        return self._mean_c + daily + weather_front + self._offset_c

    def solar_gain_c(self, epoch_s: float) -> float:
        """How much warmer than outside sunshine makes a closed, parked cabin."""
        hour = self._solar_hour(epoch_s)
        if not 6.0 < hour < 18.0:
            return 0.0
        return 7.0 * math.sin(math.pi * (hour - 6.0) / 12.0)


class Cabin:
    """Cabin air temperature and the heating or cooling power the HVAC spends on it."""

    __slots__ = ("_cop_heat", "ac_active", "hvac_on", "power_w", "setpoint_c", "temperature_c")

    def __init__(self, temperature_c: float, setpoint_c: float, heat_pump: bool) -> None:
        self.temperature_c = temperature_c
        self.setpoint_c = setpoint_c
        self.hvac_on = False
        self.ac_active = False
        self.power_w = 0.0
        # A heat pump moves ~2.5 J of heat per J of electricity; a PTC heater only 1.
        self._cop_heat = 2.5 if heat_pump else 1.0

    def update(self, outside_c: float, solar_c: float, dt_s: float) -> None:
        """Drift the cabin temperature and work out the HVAC's electrical power."""
        cabin = self.temperature_c
        if self.hvac_on:
            setpoint = self.setpoint_c
            target, tau = setpoint, 420.0
            heat_w = 110.0 * (setpoint - outside_c) + 250.0 * (setpoint - cabin)
            cool_w = 90.0 * (outside_c + 0.5 * solar_c - setpoint) + 250.0 * (cabin - setpoint)
            heating = heat_w / self._cop_heat if heat_w > 0.0 else 0.0
            cooling = cool_w / 2.8 if cool_w > 0.0 else 0.0
            self.ac_active = cool_w > 300.0
            self.power_w = min(6_500.0, 150.0 + heating + cooling)  # 150 W blower
        else:
            target, tau = outside_c + solar_c, 2_400.0
            self.ac_active = False
            self.power_w = 0.0
        self.temperature_c = cabin + (target - cabin) * (1.0 - math.exp(-dt_s / tau))

    def add_signals(self, out: dict[str, SignalValue]) -> None:
        """Add cabin temperature and HVAC signals to ``out``."""
        out["Vehicle.Cabin.HVAC.AmbientAirTemperature"] = round(self.temperature_c, 1)
        out["Vehicle.Cabin.HVAC.IsAirConditioningActive"] = self.ac_active
        out["Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"] = self.setpoint_c
        out["Vehicle.Cabin.HVAC.Station.Row1.Passenger.Temperature"] = self.setpoint_c
