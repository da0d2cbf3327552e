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
arithmetic, numbers and strings: nothing is ever evaluated as Python. The cloud
takes conditions from API callers and every car runs them, so the language is
bounded: at most MAX_CONDITION_LENGTH characters, MAX_CONDITION_NODES terms and
MAX_CONDITION_DEPTH levels of nesting; `+ - * /` work on numbers only; a string
may only be compared with `==` or `!=`. While a condition runs, anything that has
no numeric answer (a signal without a value yet, a string-valued signal in
arithmetic, a division by zero, `<` between a string and a number) makes it not
hold, rather than raise.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from carcloud_agent.catalog import default_catalog
from carcloud_agent.errors import ValidationError

Values = Mapping[str, object]
Condition = Callable[[Values], bool]

MAX_CONDITION_LENGTH = 1_000  # characters
MAX_CONDITION_NODES = 200  # signals, constants and operators; a signal path counts once
MAX_CONDITION_DEPTH = 20  # levels of nesting; `a + b + c` nests one level per `+`

_EQUALITY: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ORDER: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
}
_ARITHMETIC: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
}

# What a term is known to be when the condition is compiled; a signal's type is only
# known once a value arrives, so it is checked then.
_Kind = Literal["number", "string", "boolean", "signal"]
_Term = Callable[[Values], Any]


class _DoesNotHold(Exception):
    """The values give the condition no answer (a missing signal, a string in arithmetic)."""


def _is_number(value: object) -> bool:
    # bool is an int to Python, but `Vehicle.IsMoving * 2` is a mistake, not a number.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _constant_kind(value: float | str) -> _Kind:
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


def _ordered(check: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """An ordering that is false, not a TypeError, between values of different kinds."""

    def compare(a: Any, b: Any) -> bool:
        if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
            return check(a, b)
        return False

    return compare


def _path(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _quoted(expression: str) -> str:
    # Error messages name the condition; a long one is cut so the message stays readable.
    return repr(expression if len(expression) <= 80 else expression[:77] + "...")


def _check_size(tree: ast.expr, quoted: str) -> None:
    """Count terms and nesting without recursion, before anything recurses over the tree."""
    nodes = 0
    stack: list[tuple[ast.expr, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_CONDITION_NODES:
            raise ValidationError(
                f"condition {quoted} is too large: more than {MAX_CONDITION_NODES} nodes "
                "(each signal, constant and operator is one)"
            )
        if depth > MAX_CONDITION_DEPTH:
            raise ValidationError(
                f"condition {quoted} is nested too deeply: more than {MAX_CONDITION_DEPTH} "
                "levels (each operator in a chain like a + b + c is one level)"
            )
        if _path(node) is not None:
            continue  # a signal is one term, however many dots its path has
        stack.extend(
            (child, depth + 1)
            for child in ast.iter_child_nodes(node)
            if isinstance(child, ast.expr)
        )


def compile_condition(expression: str) -> tuple[Condition, frozenset[str]]:
    """The condition as a function of signal values, and the signals it reads."""
    quoted = _quoted(expression)
    # Length first: everything after it (the parser included) is bounded by it.
    if len(expression) > MAX_CONDITION_LENGTH:
        raise ValidationError(
            f"condition {quoted} is {len(expression)} characters long; "
            f"the limit is {MAX_CONDITION_LENGTH}"
        )
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError as exc:
        raise ValidationError(f"condition {quoted} does not parse: {exc.msg}") from exc
    except ValueError as exc:  # a NUL byte, on Python 3.11
        raise ValidationError(f"condition {quoted} does not parse: {exc}") from exc
    except (RecursionError, MemoryError) as exc:
        # The parser recurses on nesting; a short expression should not get here.
        raise ValidationError(
            f"condition {quoted} is nested too deeply to parse "
            f"(the limit is {MAX_CONDITION_DEPTH} levels)"
        ) from exc
    _check_size(tree, quoted)
    catalog = default_catalog()
    used: set[str] = set()

    def invalid(reason: str) -> ValidationError:
        return ValidationError(f"condition {quoted}: {reason}")

    def not_a_string(kind: _Kind, where: str) -> None:
        if kind == "string":
            raise invalid(f"a string can only be compared with == or != (here it is {where})")

    def numeric(kind: _Kind, symbol: str) -> None:
        if kind in ("string", "boolean"):
            raise invalid(f"{symbol} works on numbers only, not on a {kind}")

    # Recursion is safe here: _check_size has bounded the depth.
    def build(node: ast.expr) -> tuple[_Term, _Kind]:
        path = _path(node)
        if path is not None:
            if path not in catalog:
                raise invalid(f"unknown signal {path}")
            used.add(path)

            def read(values: Values) -> Any:
                if path not in values:
                    raise _DoesNotHold(path)
                return values[path]

            return read, "signal"
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str | bool):
            value = node.value
            return (lambda values: value), _constant_kind(value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner, inner_kind = build(node.operand)
            not_a_string(inner_kind, "the operand of not")
            return (lambda values: not inner(values)), "boolean"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            operand, operand_kind = build(node.operand)
            numeric(operand_kind, "-")

            def negate(values: Values) -> Any:
                number = operand(values)
                if not _is_number(number):
                    raise _DoesNotHold(number)
                return -number

            return negate, "number"
        if isinstance(node, ast.BoolOp):
            parts = []
            for part_node in node.values:
                part, part_kind = build(part_node)
                not_a_string(part_kind, "an operand of and/or")
                parts.append(part)
            if isinstance(node.op, ast.And):
                return (lambda values: all(part(values) for part in parts)), "boolean"
            return (lambda values: any(part(values) for part in parts)), "boolean"
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            (left, left_kind), (right, right_kind) = build(node.left), build(node.right)
            symbol, apply = _ARITHMETIC[type(node.op)]
            numeric(left_kind, symbol)
            numeric(right_kind, symbol)

            def arithmetic(values: Values) -> Any:
                a, b = left(values), right(values)
                # A string-valued signal would otherwise repeat (`"x" * 10**9`) or concatenate.
                if not (_is_number(a) and _is_number(b)):
                    raise _DoesNotHold(a, b)
                return apply(a, b)

            return arithmetic, "number"
        if isinstance(node, ast.Compare) and all(
            type(op) in _EQUALITY or type(op) in _ORDER for op in node.ops
        ):
            built = [build(node.left), *(build(c) for c in node.comparators)]
            for op, (_, a_kind), (_, b_kind) in zip(node.ops, built, built[1:], strict=False):
                if type(op) in _ORDER and "string" in (a_kind, b_kind):
                    raise invalid("a string can only be compared with == or !=")
            terms = [term for term, _ in built]
            checks = [
                _EQUALITY[type(op)] if type(op) in _EQUALITY else _ordered(_ORDER[type(op)])
                for op in node.ops
            ]

            def compare(values: Values) -> bool:
                operands = [term(values) for term in terms]
                return all(
                    check(a, b) for check, a, b in zip(checks, operands, operands[1:], strict=False)
                )

            return compare, "boolean"
        raise invalid(
            "only signals, numbers, strings, True/False, comparisons, "
            "and/or/not and + - * / are allowed"
        )

    root, root_kind = build(tree)
    not_a_string(root_kind, "the whole condition")

    def holds(values: Values) -> bool:
        try:
            return bool(root(values))
        except (_DoesNotHold, ArithmeticError, TypeError):
            # ArithmeticError: a division by zero, or a number too large for a float.
            # TypeError: a value of a kind no check above foresaw; the car keeps going.
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
