"""The alerts slice's rules: evaluate rules over committed telemetry, keep their state,
raise and clear alerts with their events, acknowledge, check presence for `offline`.

`derive(vin, since)` is called by the derive worker after ingest committed new data.
Each rule goes on from the vehicle time it evaluated last (its stored cursor), so a
restart neither loses an open alert nor restarts a `for` timer. Evaluation moves
forward in the car's time: rows older than a rule's stored cursor (late data behind
newer data already evaluated) are not evaluated again; an alert is a notice of
something that happened, with a person's acknowledgement on it, not a derived record.

An evaluation that changes nothing but the cursors (no timer started or reset, no
alert raised or cleared) saves them only once they are CHECKPOINT_ROWS rows or
CHECKPOINT_SPAN_US of vehicle time on, as the trips checkpoint does: a parked car's
data then costs no write a derivation. The process keeps the cursors it did not save
and goes on from them while the stored states are still the ones they moved on from;
another process (or this one after a restart) goes on from the stored cursors and
reads those rows again, from the same states over the same rows finding the same
nothing, so no alert is raised twice and no timer restarts. A row that came late but
is newer than the stored cursor is then evaluated in its place among them: no alert
was raised or cleared there, so nothing a person was told is taken back.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import logging
import secrets
import time
from dataclasses import dataclass

from carcloud.alerts.evaluation import CURSOR, Transition, alert_id, evaluate, moments_of
from carcloud.alerts.models import (
    ACKNOWLEDGED,
    ACTIVE,
    CLEARED,
    SECOND,
    STATUSES,
    Alert,
    AlertRule,
    RuleState,
    alert_document,
)
from carcloud.alerts.store import AlertStore, Fleet, HistoryReader
from carcloud.errors import (
    CarcloudError,
    ConflictError,
    NotFoundError,
    PreconditionFailed,
    ValidationError,
)
from carcloud.events.models import NewEvent
from carcloud.registry.models import Vehicle
from carcloud.telematics.service import CHECKPOINT_ROWS, CHECKPOINT_SPAN_US
from carcloud.timeutil import now_us

log = logging.getLogger(__name__)

# How far back forward-fill looks for a signal's value before the evaluated window.
SEED_WINDOW_US = 24 * 3600 * SECOND
# Rules and vehicle profiles changed by another process are seen after at most this long.
CACHE_S = 5.0
STALE_RETRIES = 3  # evaluations in a row that another process's may overtake
MAX_AHEAD = 50_000  # vehicles whose unsaved cursors a process keeps (oldest dropped)
OFFLINE_CHECK_S = 60.0
_EVENT = {ACTIVE: "alert.raised", ACKNOWLEDGED: "alert.acknowledged", CLEARED: "alert.cleared"}


def alert_events(alert: Alert) -> list[NewEvent]:
    """The event of an alert's change: raised, acknowledged or cleared (the whole alert)."""
    return [NewEvent(_EVENT[alert.status], vin=alert.vin, data=alert_document(alert))]


def _alert(rule: AlertRule, brand: str, transition: Transition) -> Alert:
    return Alert(
        id=transition.alert_id,
        rule_id=rule.id,
        rule_name=rule.name,
        brand=brand,
        vin=transition.vin,
        severity=rule.severity,
        status=ACTIVE,
        raised_ts=transition.ts,
        key=transition.key,
        pending_since=transition.pending_since,
        values=dict(transition.values),
    )


@dataclass(frozen=True, slots=True)
class _Ahead:
    """A vehicle's cursors evaluated past the stored ones and not saved, with the stored
    states they moved on from and how many moments each moved on since its stored one."""

    base: list[RuleState]
    cursors: dict[str, tuple[RuleState, int]]


def _only_moved(stored: RuleState, state: RuleState) -> bool:
    """Whether a rule's cursor state differs from the stored one in its time alone."""
    return dataclasses.replace(stored, evaluated_ts=state.evaluated_ts) == state


def _newer(times: list[int], after: int, until: int) -> int:
    """How many of the moments' `times` (oldest first) are in (after, until]."""
    return bisect.bisect_right(times, until) - bisect.bisect_right(times, after)


def _cursors_due(moved: list[tuple[int, int, RuleState]]) -> bool:
    """Whether cursors that only moved on are to be saved: when one of them is
    CHECKPOINT_ROWS moments or CHECKPOINT_SPAN_US on from where it is stored, which bounds
    what an evaluation from the stored ones reads again."""
    return any(
        rows >= CHECKPOINT_ROWS or state.evaluated_ts - stored_ts >= CHECKPOINT_SPAN_US
        for stored_ts, rows, state in moved
    )


class AlertService:
    """Alert rules, their evaluation, and alerts."""

    def __init__(self, store: AlertStore, history: HistoryReader, fleet: Fleet) -> None:
        self.store = store
        self.history = history
        self.fleet = fleet
        self._rules: dict[str, tuple[float, list[AlertRule]]] = {}
        self._vehicles: dict[str, tuple[float, Vehicle]] = {}
        self._ahead: dict[str, _Ahead] = {}  # by VIN

    # ---- evaluation over committed telemetry -------------------------------------------------

    async def derive(self, vin: str, since: int) -> list[Alert]:
        """Evaluate the vehicle's rules over committed data they have not evaluated yet.

        An evaluation saves only over the rule states it started from: if another one
        (another derive process) saved first, this one's transitions may be stale, so it
        evaluates again from what that one stored.
        """
        for _ in range(STALE_RETRIES):
            try:
                return await self._evaluate(vin, since)
            except PreconditionFailed as exc:
                log.info("alerts of %s: %s", vin, exc)
        return await self._evaluate(vin, since)

    async def _evaluate(self, vin: str, since: int) -> list[Alert]:
        vehicle = await self._vehicle(vin)
        if vehicle is None:
            return []
        rules = [
            rule
            for rule in await self._rules_of(vehicle.brand)
            if rule.enabled
            and rule.kind != "offline"
            and rule.target.matches(vin, vehicle.model, vehicle.tags)
        ]
        if not rules:
            return []
        loaded = await self.store.load_states(vin)
        stored: dict[str, dict[str, RuleState]] = {}
        for state in loaded:
            stored.setdefault(state.rule_id, {})[state.key] = state
        # This process's unsaved cursors, while the states they moved on from are stored.
        kept = self._ahead.pop(vin, None)
        ahead = kept.cursors if kept is not None and kept.base == loaded else {}
        expected = {
            rule.id: (cursor.evaluated_ts if (cursor := stored.get(rule.id, {}).get(CURSOR))
                      else None)
            for rule in rules
        }  # fmt: skip
        # A rule met for the first time starts with the data that woke it.
        cursors = {
            rule.id: ahead[rule.id][0]
            if rule.id in ahead
            else stored.get(rule.id, {}).get(
                CURSOR, RuleState(rule.id, vin, evaluated_ts=since - 1)
            )
            for rule in rules
        }
        start = min(cursor.evaluated_ts + 1 for cursor in cursors.values())
        paths = sorted(set().union(*(rule.signals for rule in rules)))
        seed = await self.history.last_values(vin, paths, start, SEED_WINDOW_US)
        moments = moments_of(seed, await self.history.history_rows(vin, paths, start))
        times = [ts for ts, _ in moments]
        changed: list[RuleState] = []
        moved: list[tuple[int, int, RuleState]] = []  # only moved on: from, by how many
        dropped: list[tuple[str, str]] = []
        raised: list[Alert] = []
        cleared: list[tuple[str, int]] = []
        for rule in rules:
            before = {**stored.get(rule.id, {}), CURSOR: cursors[rule.id]}
            after, transitions = evaluate(rule, vin, before, moments)
            for key, state in after.items():
                old = stored.get(rule.id, {}).get(key)
                if old == state:
                    continue
                if key == CURSOR and old is not None and _only_moved(old, state):
                    rows = ahead[rule.id][1] if rule.id in ahead else 0
                    rows += _newer(times, cursors[rule.id].evaluated_ts, state.evaluated_ts)
                    moved.append((old.evaluated_ts, rows, state))
                else:
                    changed.append(state)
            dropped += [(rule.id, key) for key in before if key not in after]
            for transition in transitions:
                if transition.kind == "raise":
                    raised.append(_alert(rule, vehicle.brand, transition))
                else:
                    cleared.append((transition.alert_id, transition.ts))
        # An alert raised and cleared among these rows leaves the states as they were.
        if not (changed or dropped or raised or cleared) and not _cursors_due(moved):
            if moved:
                self._keep(vin, _Ahead(loaded, {s.rule_id: (s, rows) for _, rows, s in moved}))
            return []
        return await self.store.save_evaluation(
            vin, changed + [state for _, _, state in moved], dropped, raised, cleared,
            alert_events, expected,
        )  # fmt: skip

    def _keep(self, vin: str, ahead: _Ahead) -> None:
        if len(self._ahead) >= MAX_AHEAD:
            del self._ahead[next(iter(self._ahead))]
        self._ahead[vin] = ahead

    async def _vehicle(self, vin: str) -> Vehicle | None:
        cached = self._vehicles.get(vin)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            vehicle = await self.fleet.get_vehicle(vin)
        except NotFoundError:
            return None
        self._vehicles[vin] = (time.monotonic() + CACHE_S, vehicle)
        return vehicle

    async def _rules_of(self, brand: str) -> list[AlertRule]:
        cached = self._rules.get(brand)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        rules = await self.store.list_rules(brand)
        self._rules[brand] = (time.monotonic() + CACHE_S, rules)
        return rules

    # ---- presence: offline longer than a rule's for_s ----------------------------------------

    async def check_offline(self, now: int | None = None) -> list[Alert]:
        """Raise `offline` alerts for cars offline longer than the rule's `for_s`; clear
        them for cars that came back. Times are the platform's (presence), not the car's."""
        at = now if now is not None else now_us()
        changed: list[Alert] = []
        for rule in await self.store.list_rules(None):
            if rule.kind != "offline" or not rule.enabled:
                continue
            offline = await self._all(rule.brand, online=False)
            open_states = {}
            for vehicle in offline:
                for state in await self.store.load_states(vehicle.vin, rule.id):
                    open_states[vehicle.vin] = state
            for vehicle in offline:
                if not rule.target.matches(vehicle.vin, vehicle.model, vehicle.tags):
                    continue
                since = (
                    vehicle.last_seen_at if vehicle.last_seen_at is not None else vehicle.created_at
                )
                state = open_states.get(vehicle.vin) or RuleState(rule.id, vehicle.vin)
                if state.alert_id is not None or at - since < rule.for_s * SECOND:
                    continue
                # One id per offline period: two derive processes raise it once.
                raised = alert_id(rule.id, vehicle.vin, "offline", since)
                transition = Transition("raise", rule.id, vehicle.vin, CURSOR, at, raised, since)
                alert = _alert(rule, rule.brand, transition)
                state = dataclasses.replace(state, alert_id=alert.id, evaluated_ts=at)
                changed += await self.store.save_evaluation(
                    vehicle.vin, [state], [], [alert], [], alert_events
                )
            # A car that came back: its open offline alert clears.
            for alert in await self.store.list_alerts(
                rule.brand, status=None, rule_id=rule.id, limit=1000
            ):
                if not alert.open or any(v.vin == alert.vin for v in offline):
                    continue
                state = RuleState(rule.id, alert.vin, evaluated_ts=at)
                changed += await self.store.save_evaluation(
                    alert.vin, [state], [], [], [(alert.id, at)], alert_events
                )
        return changed

    async def _all(self, brand: str, online: bool) -> list[Vehicle]:
        found: list[Vehicle] = []
        while True:
            page = await self.fleet.list_vehicles(brand, None, online, 1000, len(found))
            found += page
            if len(page) < 1000:
                return found

    async def run_offline_checks(self, stop: asyncio.Event) -> None:
        """Check presence every OFFLINE_CHECK_S until `stop` (a worker's runner)."""
        failing = False
        while not stop.is_set():
            try:
                await self.check_offline()
                if failing:
                    log.info("alerts: offline checks work again")
                    failing = False
            except CarcloudError as exc:
                if not failing:
                    log.error("alerts: offline check failed: %s; retrying", exc)
                    failing = True
            try:
                await asyncio.wait_for(stop.wait(), OFFLINE_CHECK_S)
            except TimeoutError:
                continue

    # ---- rules -------------------------------------------------------------------------------

    async def create_rule(self, draft: AlertRule) -> AlertRule:
        """Store a new rule (the draft's id and times are replaced)."""
        now = now_us()
        rule = dataclasses.replace(
            draft, id=f"alr_{secrets.token_hex(8)}", created_at=now, updated_at=now
        )
        saved = await self.store.save_rule(rule)
        self._rules.pop(saved.brand, None)
        return saved

    async def replace_rule(self, rule_id: str, brand: str | None, draft: AlertRule) -> AlertRule:
        """Replace a rule the caller may see; its id, brand and creation time stay, and so
        does its state (an open alert stays open until the new rule clears it)."""
        current = await self.store.get_rule(rule_id, brand)
        if draft.brand != current.brand:
            raise ValidationError(f"brand: an alert rule keeps its brand ({current.brand})")
        rule = dataclasses.replace(
            draft, id=current.id, created_at=current.created_at, updated_at=now_us()
        )
        saved = await self.store.save_rule(rule)
        self._rules.pop(saved.brand, None)
        return saved

    async def delete_rule(self, rule_id: str, brand: str | None) -> AlertRule:
        """Delete a rule; its open alerts are cleared (with their events)."""
        rule, _ = await self.store.delete_rule(rule_id, brand, now_us(), alert_events)
        self._rules.pop(rule.brand, None)
        return rule

    async def get_rule(self, rule_id: str, brand: str | None) -> AlertRule:
        """One rule the caller may see."""
        return await self.store.get_rule(rule_id, brand)

    async def list_rules(self, brand: str | None) -> list[AlertRule]:
        """Rules of a brand, or every rule for None."""
        return await self.store.list_rules(brand)

    async def rule_states(self, rule_id: str, brand: str | None, vin: str) -> list[RuleState]:
        """Where a rule stands for a vehicle: its evaluated time, `for` timer, open alert."""
        await self.store.get_rule(rule_id, brand)  # NotFound for another brand's rule
        return await self.store.load_states(vin, rule_id)

    # ---- alerts ------------------------------------------------------------------------------

    async def list_alerts(
        self,
        brand: str | None,
        status: str | None = None,
        vin: str | None = None,
        rule_id: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[Alert]:
        """Alerts newest first."""
        if status is not None and status not in (*STATUSES, "open"):
            raise ValidationError(
                f"status must be one of {', '.join(STATUSES)}, open, not {status!r}"
            )
        if not 1 <= limit <= 1000:
            raise ValidationError(f"limit must be 1 to 1000, not {limit}")
        return await self.store.list_alerts(brand, status, vin, rule_id, before, limit)

    async def get_alert(self, alert_id: str, brand: str | None) -> Alert:
        """One alert the caller may see."""
        return await self.store.get_alert(alert_id, brand)

    async def acknowledge(self, alert_id: str, brand: str | None, by: str) -> Alert:
        """Acknowledge an active alert: who and when are kept; it stays open until cleared."""
        done = await self.store.acknowledge(alert_id, brand, by, now_us(), alert_events)
        if done is None:
            current = await self.store.get_alert(alert_id, brand)
            raise ConflictError(
                f"alert {alert_id} is {current.status}: only an active alert can be acknowledged"
            )
        return done
