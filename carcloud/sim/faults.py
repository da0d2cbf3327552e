"""Rare faults: diagnostic trouble codes that appear now and then and clear again later."""

from __future__ import annotations

import random
from collections.abc import Mapping

from carcloud.sim.spec import Powertrain

__all__ = ["DTC_CODES", "FaultSimulator"]

_COMMON = (
    "C0035",  # left front wheel speed sensor circuit
    "U0100",  # lost communication with ECM/PCM
    "B1318",  # battery voltage low (body controller)
)
DTC_CODES: Mapping[Powertrain, tuple[str, ...]] = {
    "bev": (
        "P0A80",  # replace hybrid/EV battery pack
        "P0AA6",  # high-voltage isolation fault
        "P0A94",  # DC/DC converter performance
        *_COMMON,
    ),
    "ice": (
        "P0300",  # random/multiple cylinder misfire
        "P0171",  # system too lean, bank 1
        "P0420",  # catalyst efficiency below threshold
        "P0128",  # coolant below thermostat regulating temperature
        *_COMMON,
    ),
    "phev": ("P0A80", "P0A94", "P0300", "P0420", *_COMMON),
}
"""SAE J2012 codes each powertrain may raise, most of them generic OBD-II codes."""

# Faults are several times likelier under load than while the car sleeps.
_PARKED_SHARE = 0.15
_MIN_ACTIVE_S = 900.0
_MAX_ACTIVE_S = 6 * 3_600.0


class FaultSimulator:
    """Raises DTCs at random at ``rate_per_hour`` and clears each after 15 minutes to 6 hours."""

    __slots__ = ("_active", "_codes", "_driving_p_per_s", "codes")

    def __init__(self, powertrain: Powertrain, rate_per_hour: float) -> None:
        self._codes = DTC_CODES[powertrain]
        self._driving_p_per_s = rate_per_hour / 3_600.0
        self._active: dict[str, float] = {}
        self.codes: list[str] = []

    def update(self, rng: random.Random, now_s: float, dt_s: float, driving: bool) -> None:
        """Maybe raise a new fault, and clear the ones whose time is up."""
        chance = self._driving_p_per_s * dt_s * (1.0 if driving else _PARKED_SHARE)
        if rng.random() < chance:
            code = rng.choice(self._codes)
            if code not in self._active:
                self._active[code] = now_s + rng.uniform(_MIN_ACTIVE_S, _MAX_ACTIVE_S)
                self.codes = sorted(self._active)
        if self._active and min(self._active.values()) <= now_s:
            self._active = {code: until for code, until in self._active.items() if until > now_s}
            self.codes = sorted(self._active)
