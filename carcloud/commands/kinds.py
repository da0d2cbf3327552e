"""Command kinds, declared as data: name, meaning, parameters and their rules.

The API validates a request against these declarations, the simulator and the
edge agent run the same declarations, so a kind is added in one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from carcloud.errors import ValidationError

ParamValue: TypeAlias = float | int | str | bool | dict[str, object]

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Param:
    """One command parameter: its type, whether it is required, and its allowed range."""

    name: str
    kind: Literal["number", "integer", "string", "object"]
    required: bool = True
    default: ParamValue | None = None
    min: float | None = None
    max: float | None = None
    description: str = ""

    def parse(self, raw: object) -> ParamValue:
        """Check one raw value; raises ValueError with a reason a user can read."""
        if self.kind == "object":
            if not isinstance(raw, dict):
                raise ValueError(f"{self.name} must be a JSON object")
            return raw
        if self.kind == "string":
            if not isinstance(raw, str) or not raw.strip() or len(raw) > 200:
                raise ValueError(
                    f"{self.name} must be a non-empty string of at most 200 characters"
                )
            return raw.strip()
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise ValueError(f"{self.name} must be a number, got {raw!r}")
        if self.kind == "integer":
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError(f"{self.name} must be a whole number, got {raw!r}")
            raw = int(raw)
        if (self.min is not None and raw < self.min) or (self.max is not None and raw > self.max):
            raise ValueError(
                f"{self.name} must be between {self.min:g} and {self.max:g}, got {raw!r}"
            )
        return raw


@dataclass(frozen=True, slots=True)
class CommandKind:
    """A command the platform can send: its name, what it does and its parameters."""

    name: str
    description: str
    params: tuple[Param, ...] = ()
    default_ttl_s: int = DAY_S

    def parse_params(self, params: Mapping[str, object]) -> dict[str, ParamValue]:
        """Check `params` against the declaration; ValueError names the first problem."""
        known = {param.name for param in self.params}
        unknown = sorted(str(name) for name in params if name not in known)
        if unknown:
            allowed = ", ".join(sorted(known)) or "none"
            raise ValueError(
                f"unknown parameter(s) for {self.name}: {', '.join(unknown)} (allowed: {allowed})"
            )
        parsed: dict[str, ParamValue] = {}
        for param in self.params:
            raw = params.get(param.name)
            if raw is not None:
                parsed[param.name] = param.parse(raw)
            elif param.required:
                raise ValueError(f"missing parameter {param.name!r} for {self.name}")
            elif param.default is not None:
                parsed[param.name] = param.default
        return parsed


# Why the cloud sends a command on its own (pre-conditioning for a meeting), shown with it.
REASON = Param("reason", "string", False, None, description="why carcloud sent it")

KINDS: Mapping[str, CommandKind] = {
    kind.name: kind
    for kind in (
        CommandKind("lock", "Lock all doors and the trunk.", default_ttl_s=600),
        CommandKind("unlock", "Unlock all doors.", default_ttl_s=120),
        CommandKind(
            "climate_start",
            "Heat or cool the cabin toward a target temperature.",
            (Param("target_temperature", "number", False, 21.0, 16.0, 28.0, "°C"), REASON),
            default_ttl_s=1800,
        ),
        CommandKind("climate_stop", "Stop climate control.", default_ttl_s=1800),
        CommandKind("charge_start", "Start charging.", (REASON,), default_ttl_s=3600),
        CommandKind("charge_stop", "Stop charging.", default_ttl_s=3600),
        CommandKind(
            "set_charge_limit",
            "Set the state of charge where charging stops.",
            (Param("percent", "integer", True, None, 50, 100, "percent"), REASON),
        ),
        CommandKind("honk_flash", "Honk and flash the lights.", default_ttl_s=60),
        CommandKind(
            "navigate_to",
            "Send a destination to the navigation system.",
            (
                Param("latitude", "number", True, None, -90.0, 90.0, "degrees"),
                Param("longitude", "number", True, None, -180.0, 180.0, "degrees"),
                Param("name", "string", False, "Destination"),
            ),
        ),
        CommandKind(
            "call_join",
            "Join a meeting or a carcloud audio room (carcloud_agent.protocol.calls).",
            (
                Param("call_id", "string", True, None, None, None, "the call to report on"),
                Param("join", "object", True, None, None, None, "url, tel and/or room"),
            ),
            default_ttl_s=600,
        ),
        CommandKind(
            "custom",
            "A brand-specific command: a name and JSON parameters the brand's cars understand.",
            (Param("name", "string", True), Param("parameters", "object", False, None)),
        ),
    )
}
"""Every command kind, by name."""


def parse_command(
    kind: str, params: Mapping[str, object]
) -> tuple[CommandKind, dict[str, ParamValue]]:
    """The declaration of `kind` and its checked parameters; ValidationError if not valid."""
    declared = KINDS.get(kind)
    if declared is None:
        raise ValidationError(f"unknown command kind {kind!r}; kinds: {', '.join(KINDS)}")
    try:
        return declared, declared.parse_params(params)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
