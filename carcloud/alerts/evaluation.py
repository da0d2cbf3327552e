"""A rule evaluated over a vehicle's moments, in the car's own time: a pure function.

Each moment carries every signal the rules read, forward-filled (a car may send a
value only when it changes). A `for` timer starts at the first moment the
condition holds and raises the alert at the first moment it has held `for_s`;
a moment where it does not hold resets the timer. An open alert clears at the
first moment its clear condition holds (default: the condition no longer holds).
The state after the last moment is what is stored, so evaluation goes on after a
restart exactly where it stopped, timer included.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from carcloud.alerts.models import DTC_LIST, SECOND, AlertRule, RuleState

# The car's time and the values of the rules' signals then (forward-filled).
Moment = tuple[int, Mapping[str, Any]]
CURSOR = ""  # the state key that carries a rule's evaluated time (and, for conditions, all)


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert to raise or to clear, at a vehicle time."""

    kind: str  # "raise" or "clear"
    rule_id: str
    vin: str
    key: str
    ts: int
    alert_id: str
    pending_since: int | None = None
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _yes() -> bool:
    return True


def _no() -> bool:
    return False


def alert_id(rule_id: str, vin: str, key: str, raised_ts: int) -> str:
    """A stable id: evaluating the same history twice raises the same alert, once."""
    digest = hashlib.sha256(f"{rule_id}:{vin}:{key}:{raised_ts}".encode()).hexdigest()[:20]
    return f"alt_{digest}"


def _snapshot(rule: AlertRule, values: Mapping[str, Any]) -> dict[str, Any]:
    return {path: values[path] for path in sorted(rule.signals) if path in values}


def _step(
    rule: AlertRule,
    state: RuleState,
    ts: int,
    holds: Callable[[], bool],
    clears: Callable[[], bool],
    values: Mapping[str, Any],
) -> tuple[RuleState, Transition | None]:
    """One moment for one (rule, vehicle, key); only the check that matters is run."""
    if state.alert_id is None:
        if not holds():
            return dataclasses.replace(state, pending_since=None), None
        since = state.pending_since if state.pending_since is not None else ts
        if ts - since < rule.for_s * SECOND:
            return dataclasses.replace(state, pending_since=since), None
        raised = alert_id(rule.id, state.vin, state.key, ts)
        transition = Transition("raise", rule.id, state.vin, state.key, ts, raised, since,
                                _snapshot(rule, values))  # fmt: skip
        return dataclasses.replace(state, pending_since=None, alert_id=raised), transition
    if clears():
        transition = Transition("clear", rule.id, state.vin, state.key, ts, state.alert_id,
                                values=_snapshot(rule, values))  # fmt: skip
        return dataclasses.replace(state, alert_id=None), transition
    return state, None


def evaluate(
    rule: AlertRule, vin: str, states: Mapping[str, RuleState], moments: Iterable[Moment]
) -> tuple[dict[str, RuleState], list[Transition]]:
    """The rule over the moments newer than its cursor: the states after, and transitions.

    `states` are the rule's stored states for the vehicle by key (`""`: the cursor; a
    `dtc` rule has one more per trouble code). A `dtc` state without a pending timer
    or an open alert is dropped from the result.
    """
    current = dict(states)
    cursor = current.get(CURSOR) or RuleState(rule.id, vin, evaluated_ts=-(2**62))
    transitions: list[Transition] = []
    for ts, values in moments:
        if ts <= cursor.evaluated_ts:
            continue
        if rule.kind == "dtc":
            _dtc_moment(rule, vin, current, ts, values, transitions)
        else:
            cursor, moved = _step(
                rule, cursor, ts, partial(rule.holds, values), partial(rule.clears, values), values
            )
            transitions += [moved] if moved is not None else []
        cursor = dataclasses.replace(cursor, evaluated_ts=ts)
    current[CURSOR] = cursor
    return current, transitions


def _dtc_moment(
    rule: AlertRule,
    vin: str,
    current: dict[str, RuleState],
    ts: int,
    values: Mapping[str, Any],
    transitions: list[Transition],
) -> None:
    """Each reported code: pending, then confirmed (raised) after `for_s`; gone: cleared."""
    reported = values.get(DTC_LIST)
    if not isinstance(reported, Sequence) or isinstance(reported, str):
        return  # not reported (yet): nothing is known to change
    codes = {code for code in reported if isinstance(code, str) and code}
    for key in sorted(set(current) - {CURSOR} - codes):
        state, moved = _step(rule, current.pop(key), ts, _no, _yes, values)
        transitions += [moved] if moved is not None else []
    for code in sorted(codes):
        state = current.get(code) or RuleState(rule.id, vin, code)
        state, moved = _step(rule, state, ts, _yes, _no, {DTC_LIST: sorted(codes)})
        current[code] = state
        transitions += [moved] if moved is not None else []


def moments_of(
    seed: Mapping[str, Any], rows: Sequence[tuple[int, Mapping[str, Any]]]
) -> list[Moment]:
    """Moments from history rows (oldest first), each signal forward-filled from `seed`."""
    current = dict(seed)
    moments: list[Moment] = []
    for ts, values in rows:
        current.update(values)
        moments.append((ts, dict(current)))
    return moments
