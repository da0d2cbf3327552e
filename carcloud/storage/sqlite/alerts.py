"""AlertStore for SQLite: rules, rule state per vehicle, alerts."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from carcloud.alerts.models import ACKNOWLEDGED, ACTIVE, CLEARED, Alert, AlertRule, RuleState
from carcloud.alerts.store import EmitAlert
from carcloud.errors import NotFoundError
from carcloud.events.models import NewEvent
from carcloud.storage.alert_rows import (
    ALERT_FIELDS,
    ALERT_SELECT,
    CURSORS_SQL,
    RULE_FIELDS,
    RULE_SELECT,
    STATE_FIELDS,
    STATE_SELECT,
    alert_of,
    alert_values,
    check_cursors,
    rule_of,
    rule_values,
    state_of,
    state_values,
)
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.storage.sqlite.events import append_events

_INSERT_ALERT = (
    f"INSERT INTO alerts (id, brand_id, vehicle_id, {', '.join(ALERT_FIELDS)}) "
    f"VALUES ({', '.join('?' * (len(ALERT_FIELDS) + 3))}) ON CONFLICT (id) DO NOTHING"
)
# A state never moves back in car time: an evaluation that read older data (a derive
# process that lost a race with another) does not overwrite a newer one.
_SAVE_STATE = (
    f"INSERT INTO alert_states (rule_id, vehicle_id, {', '.join(STATE_FIELDS)}) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vehicle_id, rule_id, key) DO UPDATE SET "
    "pending_since = excluded.pending_since, alert_id = excluded.alert_id, "
    "evaluated_ts = excluded.evaluated_ts WHERE excluded.evaluated_ts >= alert_states.evaluated_ts"
)
_END = 2**62


def _rules(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[AlertRule]:
    return [rule_of(r[0], r[1], r[2:]) for r in conn.execute(RULE_SELECT + where, params)]


def _alerts(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[Alert]:
    rows = conn.execute(ALERT_SELECT + where, params)
    return [alert_of(r[0], r[1], r[2], r[3:]) for r in rows]


def _scoped(where: str, params: list[Any], brand: str | None) -> str:
    if brand is None:
        return where
    params.append(brand)
    return where + " AND b.slug = ?"


class SqliteAlertStore:
    """AlertStore over the shared SQLite engine."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    # ---- rules -------------------------------------------------------------------------------

    async def save_rule(self, rule: AlertRule) -> AlertRule:
        marks = ", ".join("?" * (len(RULE_FIELDS) + 2))
        updates = ", ".join(f"{f} = excluded.{f}" for f in RULE_FIELDS)

        def write(conn: sqlite3.Connection) -> AlertRule:
            row = conn.execute("SELECT id FROM brands WHERE slug = ?", (rule.brand,)).fetchone()
            if row is None:
                raise NotFoundError(f"brand {rule.brand!r} not found")
            conn.execute(
                f"INSERT INTO alert_rules (id, brand_id, {', '.join(RULE_FIELDS)}) "
                f"VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {updates}",
                (rule.id, row[0], *rule_values(rule)),
            )
            return rule

        return await self.engine.write(write)

    def _rule(self, conn: sqlite3.Connection, rule_id: str, brand: str | None) -> AlertRule:
        params: list[Any] = [rule_id]
        found = _rules(conn, _scoped("WHERE r.id = ?", params, brand), params)
        if not found:
            raise NotFoundError(f"alert rule {rule_id} not found")
        return found[0]

    async def get_rule(self, rule_id: str, brand: str | None) -> AlertRule:
        return await self.engine.read(lambda conn: self._rule(conn, rule_id, brand))

    async def list_rules(self, brand: str | None) -> list[AlertRule]:
        def query(conn: sqlite3.Connection) -> list[AlertRule]:
            params: list[Any] = []
            where = _scoped("WHERE 1 = 1", params, brand)
            return _rules(conn, where + " ORDER BY r.created_at, r.id", params)

        return await self.engine.read(query)

    async def delete_rule(
        self, rule_id: str, brand: str | None, at: int, emit: EmitAlert | None = None
    ) -> tuple[AlertRule, list[Alert]]:
        def delete(conn: sqlite3.Connection) -> tuple[AlertRule, list[Alert]]:
            rule = self._rule(conn, rule_id, brand)
            open_ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM alerts WHERE rule_id = ? AND status != ?", (rule_id, CLEARED)
                )
            ]
            closed = self._clear(conn, [(alert_id, at) for alert_id in open_ids], emit)
            conn.execute("DELETE FROM alert_rules WHERE id = ?", (rule_id,))
            return rule, closed

        return await self.engine.write(delete)

    # ---- state and evaluation ----------------------------------------------------------------

    async def load_states(self, vin: str, rule_id: str | None = None) -> list[RuleState]:
        def query(conn: sqlite3.Connection) -> list[RuleState]:
            sql = STATE_SELECT + "WHERE v.vin = ?"
            params: list[Any] = [vin]
            if rule_id is not None:
                sql += " AND s.rule_id = ?"
                params.append(rule_id)
            rows = conn.execute(sql + " ORDER BY s.rule_id, s.key", params)
            return [state_of(row[0], vin, row[1:]) for row in rows]

        return await self.engine.read(query)

    def _clear(
        self, conn: sqlite3.Connection, cleared: Sequence[tuple[str, int]], emit: EmitAlert | None
    ) -> list[Alert]:
        done: list[Alert] = []
        events: list[NewEvent] = []
        for alert_id, at in cleared:
            changed = conn.execute(
                "UPDATE alerts SET status = ?, cleared_ts = ? WHERE id = ? AND status != ?",
                (CLEARED, at, alert_id, CLEARED),
            ).rowcount
            if changed:
                alert = _alerts(conn, "WHERE a.id = ?", (alert_id,))[0]
                done.append(alert)
                events += emit(alert) if emit is not None else []
        append_events(self.engine, conn, events)
        return done

    async def save_evaluation(
        self,
        vin: str,
        states: Sequence[RuleState],
        dropped: Sequence[tuple[str, str]],
        raised: Sequence[Alert],
        cleared: Sequence[tuple[str, int]],
        emit: EmitAlert | None = None,
        expected: Mapping[str, int | None] | None = None,
    ) -> list[Alert]:
        def write(conn: sqlite3.Connection) -> list[Alert]:
            ids = self.engine.vehicle_id(conn, vin)
            if ids is None:
                raise NotFoundError(f"vehicle {vin} not found")
            vehicle_id, brand_id = ids
            cursors = conn.execute(CURSORS_SQL.format("?"), (vehicle_id,)).fetchall()
            check_cursors(vin, dict(cursors), expected)
            # Clear first: a rule may clear one alert and raise the next in one evaluation.
            fresh = {alert.id for alert in raised}
            done = self._clear(conn, [c for c in cleared if c[0] not in fresh], emit)
            events: list[NewEvent] = []
            for alert in raised:
                inserted = conn.execute(
                    _INSERT_ALERT, (alert.id, brand_id, vehicle_id, *alert_values(alert))
                ).rowcount
                if inserted:
                    done.append(alert)
                    events += emit(alert) if emit is not None else []
            append_events(self.engine, conn, events)
            # One raised and cleared in this evaluation (a short spike) is cleared now.
            done += self._clear(conn, [c for c in cleared if c[0] in fresh], emit)
            conn.executemany(
                "DELETE FROM alert_states WHERE vehicle_id = ? AND rule_id = ? AND key = ?",
                [(vehicle_id, rule_id, key) for rule_id, key in dropped],
            )
            conn.executemany(
                _SAVE_STATE,
                [(state.rule_id, vehicle_id, *state_values(state)) for state in states],
            )
            return done

        return await self.engine.write(write)

    # ---- alerts ------------------------------------------------------------------------------

    async def get_alert(self, alert_id: str, brand: str | None) -> Alert:
        def query(conn: sqlite3.Connection) -> Alert:
            params: list[Any] = [alert_id]
            found = _alerts(conn, _scoped("WHERE a.id = ?", params, brand), params)
            if not found:
                raise NotFoundError(f"alert {alert_id} not found")
            return found[0]

        return await self.engine.read(query)

    async def list_alerts(
        self,
        brand: str | None,
        status: str | None = None,
        vin: str | None = None,
        rule_id: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[Alert]:
        def query(conn: sqlite3.Connection) -> list[Alert]:
            params: list[Any] = [before if before is not None else _END]
            where = _scoped("WHERE a.raised_ts < ?", params, brand)
            if status == "open":
                where += " AND a.status != ?"
                params.append(CLEARED)
            elif status is not None:
                where += " AND a.status = ?"
                params.append(status)
            for column, value in (("v.vin", vin), ("a.rule_id", rule_id)):
                if value is not None:
                    where += f" AND {column} = ?"
                    params.append(value)
            where += " ORDER BY a.raised_ts DESC, a.id LIMIT ?"
            return _alerts(conn, where, [*params, limit])

        return await self.engine.read(query)

    async def acknowledge(
        self, alert_id: str, brand: str | None, by: str, at: int, emit: EmitAlert | None = None
    ) -> Alert | None:
        def write(conn: sqlite3.Connection) -> Alert | None:
            params: list[Any] = [alert_id]
            found = _alerts(conn, _scoped("WHERE a.id = ?", params, brand), params)
            if not found:
                raise NotFoundError(f"alert {alert_id} not found")
            changed = conn.execute(
                "UPDATE alerts SET status = ?, acknowledged_at = ?, acknowledged_by = ? "
                "WHERE id = ? AND status = ?",
                (ACKNOWLEDGED, at, by, alert_id, ACTIVE),
            ).rowcount
            if not changed:
                return None
            alert = _alerts(conn, "WHERE a.id = ?", (alert_id,))[0]
            append_events(self.engine, conn, list(emit(alert)) if emit is not None else [])
            return alert

        return await self.engine.write(write)
