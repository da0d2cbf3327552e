"""Data-collection campaigns: which signals a car sends, and when.

A campaign names VSS signals and a trigger:
- time-based: every `period_ms`;
- condition-based: when an expression over signals holds, such as
  `Vehicle.Speed > 130` or
  `Vehicle.Powertrain.TractionBattery.StateOfCharge.Current < 10 and not Vehicle.IsMoving`,
  either on its rising edge or `always` while it holds, at most every
  `min_interval_ms`, with the samples of `pre_trigger_ms` before it and
  `post_trigger_ms` after it.

The cloud validates definitions here; the agent compiles and runs the same ones.
Expressions are parsed once into a small tree of comparisons, `and`/`or`/`not`,
arithmetic and numbers: nothing is ever evaluated as Python.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from carcloud.catalog import default_catalog
from carcloud.errors import ValidationError

Values = Mapping[str, object]
Condition = Callable[[Values], bool]

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


class _Missing(Exception):
    """A signal the condition needs has no value yet: the condition does not hold."""


def _path(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def compile_condition(expression: str) -> tuple[Condition, frozenset[str]]:
    """The condition as a function of signal values, and the signals it reads."""
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError as exc:
        raise ValidationError(f"condition {expression!r} does not parse: {exc.msg}") from exc
    catalog = default_catalog()
    used: set[str] = set()

    def build(node: ast.AST) -> Callable[[Values], Any]:
        path = _path(node)
        if path is not None:
            if path in ("True", "False"):
                constant = path == "True"
                return lambda values: constant
            if path not in catalog:
                raise ValidationError(f"condition {expression!r}: unknown signal {path}")
            used.add(path)

            def read(values: Values) -> Any:
                if path not in values:
                    raise _Missing(path)
                return values[path]

            return read
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str | bool):
            value = node.value
            return lambda values: value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = build(node.operand)
            return lambda values: not inner(values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            negated = build(node.operand)
            return lambda values: -negated(values)
        if isinstance(node, ast.BoolOp):
            parts = [build(value) for value in node.values]
            if isinstance(node.op, ast.And):
                return lambda values: all(part(values) for part in parts)
            return lambda values: any(part(values) for part in parts)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            left, right, apply = build(node.left), build(node.right), _ARITHMETIC[type(node.op)]
            return lambda values: apply(left(values), right(values))
        if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            terms = [build(node.left), *(build(c) for c in node.comparators)]
            checks = [_COMPARE[type(op)] for op in node.ops]

            def compare(values: Values) -> bool:
                operands = [term(values) for term in terms]
                return all(
                    check(a, b) for check, a, b in zip(checks, operands, operands[1:], strict=False)
                )

            return compare
        raise ValidationError(
            f"condition {expression!r}: only signals, numbers, comparisons, "
            "and/or/not and + - * / are allowed"
        )

    root = build(tree)

    def holds(values: Values) -> bool:
        try:
            return bool(root(values))
        except (_Missing, TypeError, ZeroDivisionError):
            return False

    return holds, frozenset(used)


@dataclass(frozen=True)
class CampaignDefinition:
    """A validated campaign (what the cloud stores and the agent runs)."""

    name: str
    signals: tuple[str, ...]
    trigger: str  # "time" or "condition"
    period_ms: int = 1000
    condition: str | None = None
    mode: str = "rising_edge"  # or "always"
    min_interval_ms: int = 0
    pre_trigger_ms: int = 0
    post_trigger_ms: int = 0
    active: bool = True

    def to_document(self) -> dict[str, Any]:
        """The form carried in the twin."""
        return {
            "signals": list(self.signals),
            "trigger": self.trigger,
            "period_ms": self.period_ms,
            "condition": self.condition,
            "mode": self.mode,
            "min_interval_ms": self.min_interval_ms,
            "pre_trigger_ms": self.pre_trigger_ms,
            "post_trigger_ms": self.post_trigger_ms,
            "active": self.active,
        }


def parse_campaign(name: str, body: Mapping[str, Any]) -> CampaignDefinition:
    """Check a campaign definition; ValidationError names the first problem."""
    catalog = default_catalog()
    signals = body.get("signals")
    if not isinstance(signals, list) or not signals or not all(isinstance(s, str) for s in signals):
        raise ValidationError("signals must be a non-empty list of VSS paths")
    unknown = [s for s in signals if s not in catalog]
    if unknown:
        raise ValidationError(f"unknown signal(s): {', '.join(unknown)}")
    trigger = body.get("trigger", "time")
    if trigger not in ("time", "condition"):
        raise ValidationError("trigger must be 'time' or 'condition'")

    def whole(field: str, default: int, low: int, high: int) -> int:
        value = body.get(field, default)
        if value is None:
            value = default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(f"{field} must be a whole number from {low} to {high}")
        return value

    condition = body.get("condition")
    mode = body.get("mode", "rising_edge") or "rising_edge"
    if trigger == "condition":
        if not isinstance(condition, str) or not condition.strip():
            raise ValidationError(
                "a condition campaign needs a condition, e.g. Vehicle.Speed > 130"
            )
        compile_condition(condition)
        if mode not in ("rising_edge", "always"):
            raise ValidationError("mode must be 'rising_edge' or 'always'")
    return CampaignDefinition(
        name=name,
        signals=tuple(dict.fromkeys(signals)),
        trigger=trigger,
        period_ms=whole("period_ms", 1000, 10, 86_400_000),
        condition=condition if trigger == "condition" else None,
        mode=mode,
        min_interval_ms=whole("min_interval_ms", 0, 0, 86_400_000),
        pre_trigger_ms=whole("pre_trigger_ms", 0, 0, 600_000),
        post_trigger_ms=whole("post_trigger_ms", 0, 0, 600_000),
        active=bool(body.get("active", True)),
    )
