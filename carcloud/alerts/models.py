"""Alert rules, rule state and alerts. Vehicle times are epoch microseconds (`ts`).

A rule is data: a condition on signals in the campaign condition language
(`carcloud_agent.campaigns.compile_condition`), an optional `for_s` it must hold
before the alert is raised, an optional clear condition (default: the condition no
longer holds), a severity and a target. Two kinds need more than one moment of
signals: `offline` (presence, checked periodically; `for_s` is how long offline)
and `dtc` (one alert per trouble code: pending when first reported, confirmed
after `for_s`, cleared when the car stops reporting it).

An alert's lifecycle: active → acknowledged (by whom, when) → cleared; or active →
cleared. Rule state (the pending-since time of a `for` timer, the open alert) is
stored, so it survives a restart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from carcloud.errors import ValidationError
from carcloud.timeutil import format_us
from carcloud.vin import describe_invalid_vin, is_valid_vin
from carcloud_agent.campaigns import Condition, compile_condition

SECOND = 1_000_000
SEVERITIES = ("info", "warning", "critical")
KINDS = ("condition", "offline", "dtc")
ACTIVE, ACKNOWLEDGED, CLEARED = "active", "acknowledged", "cleared"
STATUSES = (ACTIVE, ACKNOWLEDGED, CLEARED)
DTC_LIST = "Vehicle.Diagnostics.DTCList"
MAX_FOR_S = 30 * 86_400.0


def _compiled(expression: object, name: str) -> tuple[Condition, frozenset[str]]:
    if not isinstance(expression, str) or not expression.strip():
        raise ValidationError(f"{name} must be a condition such as Vehicle.Speed > 130")
    try:
        return compile_condition(expression)
    except ValidationError as exc:
        raise ValidationError(f"{name}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Target:
    """Which vehicles of the rule's brand it watches; empty lists: every one."""

    models: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    vins: tuple[str, ...] = ()

    def check(self) -> None:
        """ValidationError naming the field (`target.vins[1]`)."""
        for index, vin in enumerate(self.vins):
            if not is_valid_vin(vin):
                raise ValidationError(f"target.vins[{index}]: {describe_invalid_vin(vin)}")
        for name in ("models", "tags"):
            for index, value in enumerate(getattr(self, name)):
                if not isinstance(value, str) or not value.strip():
                    raise ValidationError(f"target.{name}[{index}] must be a non-empty string")

    def matches(self, vin: str, model: str, tags: tuple[str, ...]) -> bool:
        """Whether a vehicle of the rule's brand is watched (every list that is set must fit)."""
        if self.vins and vin not in self.vins:
            return False
        if self.models and model not in self.models:
            return False
        return not self.tags or all(tag in tags for tag in self.tags)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A brand's rule, validated on creation (errors name the field)."""

    id: str
    brand: str
    name: str
    kind: str = "condition"
    condition: str | None = None
    for_s: float = 0.0
    clear_condition: str | None = None
    severity: str = "warning"
    target: Target = field(default_factory=Target)
    enabled: bool = True
    builtin: str | None = None  # the built-in rule it was made from
    created_at: int = 0
    updated_at: int = 0
    _holds: Condition | None = field(init=False, repr=False, compare=False, default=None)
    _clears: Condition | None = field(init=False, repr=False, compare=False, default=None)
    _signals: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > 100:
            raise ValidationError("name must be 1 to 100 characters")
        if self.kind not in KINDS:
            raise ValidationError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValidationError(
                f"severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}"
            )
        value = self.for_s
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"for_s must be a number of seconds, not {value!r}")
        if not math.isfinite(value) or not 0 <= value <= MAX_FOR_S:
            raise ValidationError(f"for_s must be 0 to {MAX_FOR_S:g} seconds, not {value!r}")
        if not isinstance(self.enabled, bool):
            raise ValidationError("enabled must be true or false")
        self.target.check()
        signals: set[str] = set()
        if self.kind == "condition":
            holds, used = _compiled(self.condition, "condition")
            object.__setattr__(self, "_holds", holds)
            signals |= used
        elif self.condition is not None:
            raise ValidationError(f"condition: a {self.kind} rule has no condition")
        if self.clear_condition is not None:
            if self.kind != "condition":
                raise ValidationError(f"clear_condition: a {self.kind} rule has none")
            clears, used = _compiled(self.clear_condition, "clear_condition")
            object.__setattr__(self, "_clears", clears)
            signals |= used
        if self.kind == "dtc":
            signals.add(DTC_LIST)
        object.__setattr__(self, "_signals", frozenset(signals))

    @property
    def signals(self) -> frozenset[str]:
        """The signals the rule reads."""
        return self._signals

    def holds(self, values: Mapping[str, object]) -> bool:
        """Whether the condition holds for these values."""
        return self._holds is not None and self._holds(values)

    def clears(self, values: Mapping[str, object]) -> bool:
        """Whether an open alert clears: its clear condition, else the condition no longer holds."""
        if self._clears is not None:
            return self._clears(values)
        return not self.holds(values)


@dataclass(frozen=True, slots=True)
class RuleState:
    """Where a rule stands for one vehicle (and, for `dtc`, one code: `key`)."""

    rule_id: str
    vin: str
    key: str = ""
    pending_since: int | None = None  # the `for` timer, in vehicle time
    alert_id: str | None = None  # the open (active or acknowledged) alert
    evaluated_ts: int = 0  # the newest vehicle time evaluated


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert and its lifecycle. `raised_ts`/`cleared_ts` are vehicle times (presence
    times for `offline`); `acknowledged_at` is the platform's time."""

    id: str
    rule_id: str
    rule_name: str
    brand: str
    vin: str
    severity: str
    status: str
    raised_ts: int
    key: str = ""  # a DTC's code
    pending_since: int | None = None
    acknowledged_at: int | None = None
    acknowledged_by: str | None = None
    cleared_ts: int | None = None
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.status != CLEARED


def _time(ts: int | None) -> str | None:
    return format_us(ts) if ts is not None else None


def alert_document(alert: Alert) -> dict[str, Any]:
    """An alert's one public shape: in the API and in its events."""
    return {
        "id": alert.id,
        "rule_id": alert.rule_id,
        "rule_name": alert.rule_name,
        "brand": alert.brand,
        "vin": alert.vin,
        "severity": alert.severity,
        "status": alert.status,
        "dtc": alert.key or None,
        "pending_since": _time(alert.pending_since),
        "raised_at": format_us(alert.raised_ts),
        "acknowledged_at": _time(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by,
        "cleared_at": _time(alert.cleared_ts),
        "values": dict(alert.values),
    }


def rule_document(rule: AlertRule) -> dict[str, Any]:
    """A rule's public shape."""
    return {
        "id": rule.id,
        "brand": rule.brand,
        "name": rule.name,
        "kind": rule.kind,
        "builtin": rule.builtin,
        "condition": rule.condition,
        "for_s": rule.for_s,
        "clear_condition": rule.clear_condition,
        "severity": rule.severity,
        "target": {
            "models": list(rule.target.models),
            "tags": list(rule.target.tags),
            "vins": list(rule.target.vins),
        },
        "enabled": rule.enabled,
        "created_at": format_us(rule.created_at),
        "updated_at": format_us(rule.updated_at),
    }
