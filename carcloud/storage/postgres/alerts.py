"""AlertStore for PostgreSQL: rules, rule state per vehicle, alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
from carcloud.storage.postgres.engine import Conn, Params, PostgresEngine, Tx
from carcloud.storage.postgres.events import append_events

_INSERT_ALERT = (
    f"INSERT INTO alerts (id, brand_id, vehicle_id, {', '.join(ALERT_FIELDS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(ALERT_FIELDS) + 4))}) "
    "ON CONFLICT (id) DO NOTHING"
)
# A state never moves back in car time: an evaluation that read older data (a derive
# process that lost a race with another) does not overwrite a newer one.
_SAVE_STATE = (
    f"INSERT INTO alert_states (rule_id, vehicle_id, {', '.join(STATE_FIELDS)}) "
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (vehicle_id, rule_id, key) DO UPDATE SET "
    "pending_since = excluded.pending_since, alert_id = excluded.alert_id, "
    "evaluated_ts = excluded.evaluated_ts WHERE excluded.evaluated_ts >= alert_states.evaluated_ts"
)
_END = 2**62


async def _rules(conn: Conn, where: str, params: Params) -> list[AlertRule]:
    rows = await conn.fetch(RULE_SELECT + where, *params.values)
    return [rule_of(r[0], r[1], list(r)[2:]) for r in rows]


async def _alerts(conn: Conn, where: str, params: Params) -> list[Alert]:
    rows = await conn.fetch(ALERT_SELECT + where, *params.values)
    return [alert_of(r[0], r[1], r[2], list(r)[3:]) for r in rows]


def _one(column: str, value: str, brand: str | None) -> tuple[str, Params]:
    params = Params()
    where = f"WHERE {column} = {params.add(value)}"
    if brand is not None:
        where += f" AND b.slug = {params.add(brand)}"
    return where, params


class PostgresAlertStore:
    """AlertStore over the shared PostgreSQL engine."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    # ---- rules -------------------------------------------------------------------------------

    async def save_rule(self, rule: AlertRule) -> AlertRule:
        marks = ", ".join(f"${n}" for n in range(1, len(RULE_FIELDS) + 3))
        updates = ", ".join(f"{f} = excluded.{f}" for f in RULE_FIELDS)

        async def write(tx: Tx) -> AlertRule:
            brand_id = await tx.conn.fetchval("SELECT id FROM brands WHERE slug = $1", rule.brand)
            if brand_id is None:
                raise NotFoundError(f"brand {rule.brand!r} not found")
            await tx.conn.execute(
                f"INSERT INTO alert_rules (id, brand_id, {', '.join(RULE_FIELDS)}) "
                f"VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {updates}",
                rule.id,
                brand_id,
                *rule_values(rule),
            )
            return rule

        return await self.engine.write(write)

    async def _rule(self, conn: Conn, rule_id: str, brand: str | None) -> AlertRule:
        found = await _rules(conn, *_one("r.id", rule_id, brand))
        if not found:
            raise NotFoundError(f"alert rule {rule_id} not found")
        return found[0]

    async def get_rule(self, rule_id: str, brand: str | None) -> AlertRule:
        return await self.engine.read(lambda conn: self._rule(conn, rule_id, brand))

    async def list_rules(self, brand: str | None) -> list[AlertRule]:
        async def query(conn: Conn) -> list[AlertRule]:
            params = Params()
            where = f"WHERE b.slug = {params.add(brand)} " if brand is not None else ""
            return await _rules(conn, where + "ORDER BY r.created_at, r.id", params)

        return await self.engine.read(query)

    async def delete_rule(
        self, rule_id: str, brand: str | None, at: int, emit: EmitAlert | None = None
    ) -> tuple[AlertRule, list[Alert]]:
        async def delete(tx: Tx) -> tuple[AlertRule, list[Alert]]:
            rule = await self._rule(tx.conn, rule_id, brand)
            open_ids = await tx.conn.fetch(
                "SELECT id FROM alerts WHERE rule_id = $1 AND status != $2", rule_id, CLEARED
            )
            closed = await self._clear(tx, [(row[0], at) for row in open_ids], emit)
            await tx.conn.execute("DELETE FROM alert_rules WHERE id = $1", rule_id)
            return rule, closed

        return await self.engine.write(delete)

    # ---- state and evaluation ----------------------------------------------------------------

    async def load_states(self, vin: str, rule_id: str | None = None) -> list[RuleState]:
        async def query(conn: Conn) -> list[RuleState]:
            params = Params()
            where = f"WHERE v.vin = {params.add(vin)}"
            if rule_id is not None:
                where += f" AND s.rule_id = {params.add(rule_id)}"
            rows = await conn.fetch(
                STATE_SELECT + where + " ORDER BY s.rule_id, s.key", *params.values
            )
            return [state_of(row[0], vin, list(row)[1:]) for row in rows]

        return await self.engine.read(query)

    async def _clear(
        self, tx: Tx, cleared: Sequence[tuple[str, int]], emit: EmitAlert | None
    ) -> list[Alert]:
        done: list[Alert] = []
        events: list[NewEvent] = []
        for alert_id, at in cleared:
            changed = await tx.conn.fetchval(
                "UPDATE alerts SET status = $1, cleared_ts = $2 WHERE id = $3 AND status != $1 "
                "RETURNING id",
                CLEARED, at, alert_id,
            )  # fmt: skip
            if changed is not None:
                alert = (await _alerts(tx.conn, *_one("a.id", alert_id, None)))[0]
                done.append(alert)
                events += emit(alert) if emit is not None else []
        await append_events(tx, events)
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
        async def write(tx: Tx) -> list[Alert]:
            row = await tx.conn.fetchrow(
                "SELECT id, brand_id FROM vehicles WHERE vin = $1 FOR UPDATE", vin
            )  # one evaluation of a vehicle at a time
            if row is None:
                raise NotFoundError(f"vehicle {vin} not found")
            vehicle_id, brand_id = row[0], row[1]
            cursors = await tx.conn.fetch(CURSORS_SQL.format("$1"), vehicle_id)
            check_cursors(vin, {r[0]: r[1] for r in cursors}, expected)
            # Clear first: a rule may clear one alert and raise the next in one evaluation.
            fresh = {alert.id for alert in raised}
            done = await self._clear(tx, [c for c in cleared if c[0] not in fresh], emit)
            events: list[NewEvent] = []
            for alert in raised:
                inserted = await tx.conn.fetchval(
                    _INSERT_ALERT + " RETURNING id",
                    alert.id, brand_id, vehicle_id, *alert_values(alert),
                )  # fmt: skip
                if inserted is not None:
                    done.append(alert)
                    events += emit(alert) if emit is not None else []
            await append_events(tx, events)
            # One raised and cleared in this evaluation (a short spike) is cleared now.
            done += await self._clear(tx, [c for c in cleared if c[0] in fresh], emit)
            await tx.conn.executemany(
                "DELETE FROM alert_states WHERE vehicle_id = $1 AND rule_id = $2 AND key = $3",
                [(vehicle_id, rule_id, key) for rule_id, key in dropped],
            )
            await tx.conn.executemany(
                _SAVE_STATE,
                [(state.rule_id, vehicle_id, *state_values(state)) for state in states],
            )
            return done

        return await self.engine.write(write)

    # ---- alerts ------------------------------------------------------------------------------

    async def get_alert(self, alert_id: str, brand: str | None) -> Alert:
        async def query(conn: Conn) -> Alert:
            found = await _alerts(conn, *_one("a.id", alert_id, brand))
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
        async def query(conn: Conn) -> list[Alert]:
            params = Params()
            where = f"WHERE a.raised_ts < {params.add(before if before is not None else _END)}"
            if brand is not None:
                where += f" AND b.slug = {params.add(brand)}"
            if status == "open":
                where += f" AND a.status != {params.add(CLEARED)}"
            elif status is not None:
                where += f" AND a.status = {params.add(status)}"
            if vin is not None:
                where += f" AND v.vin = {params.add(vin)}"
            if rule_id is not None:
                where += f" AND a.rule_id = {params.add(rule_id)}"
            where += f" ORDER BY a.raised_ts DESC, a.id LIMIT {params.add(limit)}"
            return await _alerts(conn, where, params)

        return await self.engine.read(query)

    async def acknowledge(
        self, alert_id: str, brand: str | None, by: str, at: int, emit: EmitAlert | None = None
    ) -> Alert | None:
        async def write(tx: Tx) -> Alert | None:
            if not await _alerts(tx.conn, *_one("a.id", alert_id, brand)):
                raise NotFoundError(f"alert {alert_id} not found")
            changed = await tx.conn.fetchval(
                "UPDATE alerts SET status = $1, acknowledged_at = $2, acknowledged_by = $3 "
                "WHERE id = $4 AND status = $5 RETURNING id",
                ACKNOWLEDGED, at, by, alert_id, ACTIVE,
            )  # fmt: skip
            if changed is None:
                return None
            alert = (await _alerts(tx.conn, *_one("a.id", alert_id, None)))[0]
            await append_events(tx, list(emit(alert)) if emit is not None else [])
            return alert

        return await self.engine.write(write)
