"""The charging port: plugged in or not, charging sessions, the charge limit, and their signals."""

from __future__ import annotations

import math

from carcloud.catalog import SignalValue
from carcloud.sim.battery import AC_EFFICIENCY, DC_EFFICIENCY, TractionBattery
from carcloud.sim.commands import CommandResult

__all__ = ["ChargePort"]

_PREFIX = "Vehicle.Powertrain.TractionBattery.Charging."
_CABLE = _PREFIX + "ChargingPort.AnyPosition.IsChargingCableConnected"
_TTC_REFRESH_S = 30.0
_MAINS_V = 230.0


class ChargePort:
    """A charge inlet and the onboard logic that runs sessions up to the charge limit."""

    __slots__ = (
        "_ended",
        "_max_ac_kw",
        "_restart_margin",
        "_ttc_at",
        "_ttc_s",
        "charged_j",
        "charger_kw",
        "dc",
        "enabled",
        "is_charging",
        "limit",
        "plugged",
        "power_w",
    )

    def __init__(self, limit_percent: int, max_ac_kw: float) -> None:
        self.limit = limit_percent
        self._max_ac_kw = max_ac_kw
        self.plugged = False
        self.dc = False
        self.charger_kw = 0.0
        self.enabled = True
        self.is_charging = False
        self.power_w = 0.0
        self._restart_margin = 0.5
        self._ttc_s = 0
        self._ttc_at = -math.inf
        self._ended = False
        self.charged_j = 0.0  # lifetime energy into the cells from chargers (VSS counter)

    def plug(self, charger_kw: float, dc: bool) -> None:
        """Connect a charger; charging starts on the next step if below the limit."""
        self.plugged = True
        self.dc = dc
        self.charger_kw = charger_kw
        self.enabled = True
        self._restart_margin = 0.5

    def unplug(self) -> None:
        """Disconnect the cable (any session ends)."""
        self.plugged = self.is_charging = self.dc = False
        self.power_w = 0.0
        self._ended = False

    def _end(self) -> None:
        self.is_charging = False
        self.power_w = 0.0
        self._restart_margin = 3.0  # top up again only after dropping a few percent
        self._ended = True

    def update(self, battery: TractionBattery | None, now_s: float, dt_s: float) -> bool:
        """Charge for ``dt_s`` seconds; True when a session ended since the last update."""
        if battery is None:
            return False
        shown = battery.displayed_percent
        if self.is_charging:
            if not self.enabled or shown >= self.limit:
                self._end()
        elif self.enabled and shown < self.limit - self._restart_margin:
            self.is_charging = True
            self._ttc_at = -math.inf
        if self.is_charging:
            if self.dc:
                power = battery.dc_power_w(self.charger_kw)
            else:
                power = battery.ac_power_w(self.charger_kw)
            battery.drain(-power * dt_s)
            self.charged_j += power * dt_s
            self.power_w = power
            if now_s - self._ttc_at >= _TTC_REFRESH_S:
                # The estimate integrates the charging curve: refresh it twice a minute.
                seconds = battery.seconds_to(self.limit, self.dc, self.charger_kw)
                self._ttc_s = min(604_800, int(seconds))
                self._ttc_at = now_s
        ended, self._ended = self._ended, False
        return ended

    def start(self, battery: TractionBattery) -> CommandResult:
        """Remote start: needs the cable and room below the limit."""
        if not self.plugged:
            return False, "charging cable is not connected"
        if battery.displayed_percent >= self.limit:
            return False, "charge limit reached"
        self.enabled = True
        self._restart_margin = 0.0
        return True, None

    def stop(self) -> CommandResult:
        """Remote stop: the session ends at once; the cable stays connected."""
        if not self.plugged:
            return False, "charging cable is not connected"
        self.enabled = False
        if self.is_charging:
            self._end()
        return True, None

    def set_limit(self, battery: TractionBattery, percent: int) -> CommandResult:
        """Change the charge limit; a session already past the new limit ends at once."""
        self.limit = percent
        self._ttc_at = -math.inf
        if self.is_charging and battery.displayed_percent >= percent:
            self._end()
        return True, None

    def add_signals(
        self, out: dict[str, SignalValue], battery: TractionBattery, j_per_m: float
    ) -> None:
        """Add the charging signals; ``j_per_m`` turns power into range added per hour."""
        dc_current = dc_voltage = ac_current = ac_voltage = rate_kmh = 0.0
        ttc = 0
        if self.is_charging:
            power = self.power_w
            rate_kmh = power * 3.6 / j_per_m
            ttc = self._ttc_s
            if self.dc:
                dc_voltage = battery.voltage_v
                dc_current = power / DC_EFFICIENCY / dc_voltage
            else:
                ac_voltage = _MAINS_V
                phases = 3.0 if min(self._max_ac_kw, self.charger_kw) > 7.4 else 1.0
                ac_current = power / AC_EFFICIENCY / (phases * _MAINS_V)
        out[_PREFIX + "IsCharging"] = self.is_charging
        out["Vehicle.Powertrain.TractionBattery.AccumulatedChargedEnergy"] = round(
            self.charged_j / 3.6e6, 4
        )
        out[_CABLE] = self.plugged
        out[_PREFIX + "ChargeLimit"] = self.limit
        out[_PREFIX + "ChargeRate"] = round(rate_kmh, 1)
        out[_PREFIX + "ChargeCurrent.DC"] = round(dc_current, 1)
        out[_PREFIX + "ChargeVoltage.DC"] = round(dc_voltage, 1)
        out[_PREFIX + "ChargeCurrent.Phase1"] = round(ac_current, 1)
        out[_PREFIX + "ChargeVoltage.Phase1"] = ac_voltage
        out[_PREFIX + "TimeToComplete"] = ttc
