"""Signal sources of the agent, behind one interface: the simulator, CAN (more to come)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

SignalValues = dict[str, object]


class SignalSource(Protocol):
    """Where a car's signals come from, and what carries out commands on the car."""

    @property
    def vin(self) -> str: ...

    def sample(self, dt_s: float) -> tuple[str, SignalValues] | None:
        """Signals due now (vehicle time, VSS path → value), or None if nothing is due."""
        ...

    def apply_command(self, kind: str, params: Mapping[str, object]) -> tuple[bool, str | None]:
        """Carry out a command on the car: (accepted, reason)."""
        ...

    def close(self) -> None:
        """Release the bus or connection."""
        ...
