"""Rows of the alert tables, shared by both backends: one encoding, one decoding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from carcloud.alerts.models import Alert, AlertRule, RuleState, Target
from carcloud.errors import PreconditionFailed

# Rule fields in table order (after id and brand_id); the brand slug comes from the join.
RULE_FIELDS = (
    "name", "kind", "condition", "for_s", "clear_condition", "severity", "target",
    "enabled", "builtin", "created_at", "updated_at",
)  # fmt: skip
# State fields after rule_id and vehicle_id; the vin comes from the join.
STATE_FIELDS = ("key", "pending_since", "alert_id", "evaluated_ts")
# Alert fields after id, brand_id and vehicle_id; brand slug and vin come from joins.
ALERT_FIELDS = (
    "rule_id", "rule_name", "severity", "status", "key", "pending_since", "raised_ts",
    "acknowledged_at", "acknowledged_by", "cleared_ts", "alert_values",
)  # fmt: skip
# The SELECT heads of both backends' reads (a WHERE clause follows).
RULE_SELECT = (
    f"SELECT r.id, b.slug, {', '.join('r.' + f for f in RULE_FIELDS)} "
    "FROM alert_rules r JOIN brands b ON b.id = r.brand_id "
)
ALERT_SELECT = (
    f"SELECT a.id, b.slug, v.vin, {', '.join('a.' + f for f in ALERT_FIELDS)} FROM alerts a "
    "JOIN brands b ON b.id = a.brand_id JOIN vehicles v ON v.id = a.vehicle_id "
)
STATE_SELECT = (
    f"SELECT s.rule_id, {', '.join('s.' + f for f in STATE_FIELDS)} FROM alert_states s "
    "JOIN vehicles v ON v.id = s.vehicle_id "
)


def rule_values(rule: AlertRule) -> tuple[Any, ...]:
    """A rule's RULE_FIELDS values (the target as JSON)."""
    target = {
        "models": list(rule.target.models),
        "tags": list(rule.target.tags),
        "vins": list(rule.target.vins),
    }
    return (
        rule.name, rule.kind, rule.condition, rule.for_s, rule.clear_condition, rule.severity,
        orjson.dumps(target).decode(), rule.enabled, rule.builtin, rule.created_at,
        rule.updated_at,
    )  # fmt: skip


def rule_of(rule_id: str, brand: str, values: Sequence[Any]) -> AlertRule:
    """A rule from its id, brand and RULE_FIELDS values."""
    v = list(values)
    target = orjson.loads(v[6])
    return AlertRule(
        id=rule_id, brand=brand, name=v[0], kind=v[1], condition=v[2], for_s=float(v[3]),
        clear_condition=v[4], severity=v[5],
        target=Target(tuple(target["models"]), tuple(target["tags"]), tuple(target["vins"])),
        enabled=bool(v[7]), builtin=v[8], created_at=int(v[9]), updated_at=int(v[10]),
    )  # fmt: skip


def state_values(state: RuleState) -> tuple[Any, ...]:
    """A state's STATE_FIELDS values."""
    return state.key, state.pending_since, state.alert_id, state.evaluated_ts


def state_of(rule_id: str, vin: str, values: Sequence[Any]) -> RuleState:
    """A rule state from its rule, vin and STATE_FIELDS values."""
    key, pending_since, alert_id, evaluated_ts = values
    return RuleState(rule_id, vin, key, pending_since, alert_id, int(evaluated_ts))


def alert_values(alert: Alert) -> tuple[Any, ...]:
    """An alert's ALERT_FIELDS values (the signal values as JSON)."""
    return (
        alert.rule_id, alert.rule_name, alert.severity, alert.status, alert.key,
        alert.pending_since, alert.raised_ts, alert.acknowledged_at, alert.acknowledged_by,
        alert.cleared_ts, orjson.dumps(dict(alert.values)).decode(),
    )  # fmt: skip


def alert_of(alert_id: str, brand: str, vin: str, values: Sequence[Any]) -> Alert:
    """An alert from its id, brand, vin and ALERT_FIELDS values."""
    v = list(values)
    return Alert(
        id=alert_id, rule_id=v[0], rule_name=v[1], brand=brand, vin=vin, severity=v[2],
        status=v[3], key=v[4], pending_since=v[5], raised_ts=int(v[6]), acknowledged_at=v[7],
        acknowledged_by=v[8], cleared_ts=v[9], values=orjson.loads(v[10]),
    )  # fmt: skip


# The cursors (key '') of some rules of a vehicle: SQL of both dialects after the vehicle
# id parameter ("?" or "$1").
CURSORS_SQL = "SELECT rule_id, evaluated_ts FROM alert_states WHERE vehicle_id = {} AND key = ''"


def check_cursors(
    vin: str, stored: Mapping[str, int], expected: Mapping[str, int | None] | None
) -> None:
    """PreconditionFailed unless every rule's stored cursor time is the one an evaluation
    started from (None: it had none): another evaluation of the vehicle saved first."""
    if expected is None:
        return
    moved = sorted(rule for rule, ts in expected.items() if stored.get(rule) != ts)
    if moved:
        raise PreconditionFailed(
            f"rule states of {vin} changed since they were read ({', '.join(moved)}): "
            "evaluate again"
        )
