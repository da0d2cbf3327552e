"""The body: central locking, doors, trunk and windows, and the signals they report."""

from __future__ import annotations

import math

from carcloud.catalog import SignalValue
from carcloud.sim.commands import CommandResult

__all__ = ["Body"]

_DOORS = (
    "Vehicle.Cabin.Door.Row1.DriverSide",
    "Vehicle.Cabin.Door.Row1.PassengerSide",
    "Vehicle.Cabin.Door.Row2.DriverSide",
    "Vehicle.Cabin.Door.Row2.PassengerSide",
)
_OPEN = tuple(f"{door}.IsOpen" for door in _DOORS)
_LOCKED = tuple(f"{door}.IsLocked" for door in _DOORS)
_WINDOW = tuple(f"{door}.Window.Position" for door in _DOORS)


class Body:
    """Four doors (driver first), a trunk and four windows (0 = closed), locked together."""

    __slots__ = ("doors", "locked", "passengers", "relock_at", "trunk_open", "windows")

    def __init__(self) -> None:
        self.locked = True
        self.doors = [False, False, False, False]
        self.trunk_open = False
        self.windows = [0, 0, 0, 0]
        self.relock_at = math.inf
        self.passengers = 0

    @property
    def any_open(self) -> bool:
        """True while a door or the trunk is open."""
        return self.trunk_open or True in self.doors

    def set_doors(self, is_open: bool) -> None:
        """Open or close the doors of the driver and the passengers riding along."""
        doors = self.doors
        passengers = self.passengers
        doors[0] = is_open
        doors[1] = is_open and passengers >= 1
        doors[2] = is_open and passengers >= 2
        doors[3] = is_open and passengers >= 3

    def lock_up(self) -> None:
        """Lock everything; comfort close shuts the windows as the car locks."""
        self.locked = True
        self.relock_at = math.inf
        self.windows[:] = [0, 0, 0, 0]

    def lock(self) -> CommandResult:
        """Remote lock: refused while something is open, as real cars do."""
        if self.any_open:
            return False, "a door or the trunk is open"
        self.lock_up()
        return True, None

    def unlock(self, relock_at: float) -> None:
        """Unlock; the car relocks at ``relock_at`` unless a door has been opened by then."""
        self.locked = False
        self.relock_at = relock_at

    def add_signals(self, out: dict[str, SignalValue]) -> None:
        """Add door, window, trunk and hood signals to ``out``."""
        locked = self.locked
        doors = self.doors
        windows = self.windows
        for index in range(4):
            out[_OPEN[index]] = doors[index]
            out[_LOCKED[index]] = locked
            out[_WINDOW[index]] = windows[index]
        out["Vehicle.Body.Trunk.Rear.IsOpen"] = self.trunk_open
        out["Vehicle.Body.Trunk.Rear.IsLocked"] = locked
        out["Vehicle.Body.Hood.IsOpen"] = False
