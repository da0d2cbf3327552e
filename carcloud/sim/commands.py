"""Remote commands a simulated vehicle understands, declared as data: parameters and handler.

``apply_command(vehicle, kind, params)`` checks the parameters against the declaration and
calls the vehicle; it never raises for bad input, it answers ``(False, reason)``. What the
vehicle then does is `RemoteControl`, the part of `SimVehicle` that carries out commands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeAlias

from carcloud.commands.kinds import KINDS, CommandKind, Param, ParamValue

if TYPE_CHECKING:
    from carcloud.sim.remote import RemoteControl

__all__ = [
    "COMMANDS",
    "HANDLERS",
    "CommandKind",
    "CommandResult",
    "Param",
    "apply_command",
]

CommandResult: TypeAlias = tuple[bool, str | None]

Handler: TypeAlias = Callable[["RemoteControl", Mapping[str, ParamValue]], CommandResult]


def _number(params: Mapping[str, ParamValue], name: str) -> float:
    value = params[name]
    assert isinstance(value, int | float)  # guaranteed by the Param declaration
    return float(value)


def _string(params: Mapping[str, ParamValue], name: str) -> str:
    return str(params[name])


def _custom(vehicle: RemoteControl, params: Mapping[str, ParamValue]) -> CommandResult:
    # Simulated cars know one brand-specific command, to show the round trip.
    if params["name"] == "ping":
        return True, None
    return False, f"this car does not know the custom command {params['name']!r}"


HANDLERS: Mapping[str, Handler] = {
    "lock": lambda v, p: v.lock(),
    "unlock": lambda v, p: v.unlock(),
    "climate_start": lambda v, p: v.start_climate(_number(p, "target_temperature")),
    "climate_stop": lambda v, p: v.stop_climate(),
    "charge_start": lambda v, p: v.start_charging(),
    "charge_stop": lambda v, p: v.stop_charging(),
    "set_charge_limit": lambda v, p: v.set_charge_limit(int(_number(p, "percent"))),
    "honk_flash": lambda v, p: v.honk_flash(),
    "navigate_to": lambda v, p: v.navigate_to(
        _number(p, "latitude"), _number(p, "longitude"), _string(p, "name")
    ),
    "custom": _custom,
}
"""How a simulated vehicle runs each command kind."""

COMMANDS: Mapping[str, CommandKind] = {name: KINDS[name] for name in HANDLERS}
"""Every command kind the simulator executes, by name."""


def apply_command(vehicle: RemoteControl, kind: str, params: Mapping[str, object]) -> CommandResult:
    """Validate ``params`` for command ``kind`` and run it on ``vehicle``."""
    command = COMMANDS.get(kind)
    if command is None:
        return False, f"unsupported command {kind!r} (supported: {', '.join(COMMANDS)})"
    if not isinstance(params, Mapping):
        return False, "params must be an object"
    try:
        parsed = command.parse_params(params)
    except ValueError as exc:
        return False, str(exc)
    return HANDLERS[kind](vehicle, parsed)
