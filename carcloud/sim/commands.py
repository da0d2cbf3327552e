"""Remote commands a simulated vehicle understands, declared as data: parameters and handler.

``apply_command(vehicle, kind, params)`` checks the parameters against the declaration and
calls the vehicle; it never raises for bad input, it answers ``(False, reason)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    from carcloud.sim.model import SimVehicle

__all__ = ["COMMANDS", "CommandKind", "CommandResult", "Param", "apply_command"]

CommandResult: TypeAlias = tuple[bool, str | None]
ParamValue: TypeAlias = float | int | str


@dataclass(frozen=True, slots=True)
class Param:
    """One command parameter: its type, whether it is required, and its allowed range."""

    name: str
    kind: Literal["number", "integer", "string"]
    required: bool = True
    default: ParamValue | None = None
    min: float | None = None
    max: float | None = None

    def parse(self, raw: object) -> ParamValue:
        """Check one raw value; raises ValueError with a reason a user can read."""
        if self.kind == "string":
            if not isinstance(raw, str) or not raw.strip() or len(raw) > 200:
                raise ValueError(
                    f"{self.name} must be a non-empty string of at most 200 characters"
                )
            return raw.strip()
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise ValueError(f"{self.name} must be a number")
        if self.kind == "integer":
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError(f"{self.name} must be a whole number")
            raw = int(raw)
        if (self.min is not None and raw < self.min) or (self.max is not None and raw > self.max):
            raise ValueError(f"{self.name} must be between {self.min:g} and {self.max:g}")
        return raw


Handler: TypeAlias = Callable[["SimVehicle", Mapping[str, ParamValue]], CommandResult]


@dataclass(frozen=True, slots=True)
class CommandKind:
    """A command: its name, what it does, its parameters, and how the vehicle runs it."""

    name: str
    description: str
    params: tuple[Param, ...]
    run: Handler


def _number(params: Mapping[str, ParamValue], name: str) -> float:
    value = params[name]
    assert not isinstance(value, str)  # guaranteed by the Param declaration
    return float(value)


def _string(params: Mapping[str, ParamValue], name: str) -> str:
    return str(params[name])


COMMANDS: Mapping[str, CommandKind] = {
    command.name: command
    for command in (
        CommandKind("lock", "Lock all doors and the trunk.", (), lambda v, p: v.lock()),
        CommandKind("unlock", "Unlock all doors.", (), lambda v, p: v.unlock()),
        CommandKind(
            "climate_start",
            "Heat or cool the cabin toward a target temperature.",
            (Param("target_temperature", "number", False, 21.0, 16.0, 28.0),),
            lambda v, p: v.start_climate(_number(p, "target_temperature")),
        ),
        CommandKind("climate_stop", "Stop climate control.", (), lambda v, p: v.stop_climate()),
        CommandKind("charge_start", "Start charging.", (), lambda v, p: v.start_charging()),
        CommandKind("charge_stop", "Stop charging.", (), lambda v, p: v.stop_charging()),
        CommandKind(
            "set_charge_limit",
            "Set the state of charge where charging stops.",
            (Param("percent", "integer", True, None, 50, 100),),
            lambda v, p: v.set_charge_limit(int(_number(p, "percent"))),
        ),
        CommandKind("honk_flash", "Honk and flash the lights.", (), lambda v, p: v.honk_flash()),
        CommandKind(
            "navigate_to",
            "Send a destination to the navigation system.",
            (
                Param("lat", "number", True, None, -90.0, 90.0),
                Param("lon", "number", True, None, -180.0, 180.0),
                Param("name", "string", False, "Destination"),
            ),
            lambda v, p: v.navigate_to(_number(p, "lat"), _number(p, "lon"), _string(p, "name")),
        ),
    )
}
"""Every command kind the simulator executes, by name."""


def apply_command(vehicle: SimVehicle, kind: str, params: Mapping[str, object]) -> CommandResult:
    """Validate ``params`` for command ``kind`` and run it on ``vehicle``."""
    command = COMMANDS.get(kind)
    if command is None:
        return False, f"unsupported command {kind!r} (supported: {', '.join(COMMANDS)})"
    if not isinstance(params, Mapping):
        return False, "params must be an object"
    known = {param.name for param in command.params}
    unknown = sorted(str(name) for name in params if name not in known)
    if unknown:
        return False, f"unknown parameter(s) for {kind}: {', '.join(unknown)}"
    parsed: dict[str, ParamValue] = {}
    for param in command.params:
        if param.name in params and params[param.name] is not None:
            try:
                parsed[param.name] = param.parse(params[param.name])
            except ValueError as exc:
                return False, str(exc)
        elif param.required:
            return False, f"missing parameter {param.name!r} for {kind}"
        else:
            assert param.default is not None  # optional parameters declare a default
            parsed[param.name] = param.default
    return command.run(vehicle, parsed)
