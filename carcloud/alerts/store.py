"""What the alerts slice needs persisted: rules, rule state per vehicle, and alerts.

An evaluation's new state, the alerts it raised or cleared and their events are
written in one transaction, so a restart finds the state the events describe.
Which events a change produces is the service's rule (`emit`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from carcloud.alerts.models import Alert, AlertRule, RuleState
from carcloud.events.models import NewEvent
from carcloud.ingest.models import SignalValue
from carcloud.registry.models import Vehicle
from carcloud.telematics.timeline import HistoryRow

# The events of an alert as stored after a change (raised, acknowledged or cleared).
EmitAlert = Callable[[Alert], Sequence[NewEvent]]


class HistoryReader(Protocol):
    """Committed telemetry history (the telematics store answers this)."""

    async def history_rows(
        self, vin: str, paths: Sequence[str], start: int, end: int | None = None
    ) -> list[HistoryRow]:
        """Rows in [start, end) that carry any of `paths`, oldest first, only those paths."""
        ...

    async def last_values(
        self, vin: str, paths: Sequence[str], before: int, within_us: int
    ) -> dict[str, SignalValue]:
        """Each path's newest value in [before - within_us, before), where there is one."""
        ...


class Fleet(Protocol):
    """Vehicles with their model, tags and presence (the registry service answers this)."""

    async def get_vehicle(self, vin: str, brand: str | None = None) -> Vehicle:
        """One vehicle; NotFoundError if it is not registered."""
        ...

    async def list_vehicles(
        self,
        brand: str | None = None,
        tag: str | None = None,
        online: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Vehicle]:
        """Vehicles matching every filter, by VIN."""
        ...


class AlertStore(Protocol):
    """Rules of each brand, their state per vehicle, and the alerts they raised."""

    async def save_rule(self, rule: AlertRule) -> AlertRule:
        """Create or replace a rule (by id); NotFoundError for an unknown brand."""
        ...

    async def get_rule(self, rule_id: str, brand: str | None) -> AlertRule:
        """One rule; NotFoundError if it is not there for the caller."""
        ...

    async def list_rules(self, brand: str | None) -> list[AlertRule]:
        """Rules of a brand (every brand for None), oldest first."""
        ...

    async def delete_rule(
        self, rule_id: str, brand: str | None, at: int, emit: EmitAlert | None = None
    ) -> tuple[AlertRule, list[Alert]]:
        """Delete a rule and its state; its open alerts are cleared at `at` (returned)."""
        ...

    async def load_states(self, vin: str, rule_id: str | None = None) -> list[RuleState]:
        """The stored rule states of a vehicle (of one rule, or of all)."""
        ...

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
        """Upsert `states`, delete the (rule id, key) states `dropped`, insert `raised`
        (an id already stored is kept as it is), clear the open alerts `cleared`
        (id, time); the raised and cleared alerts as stored, with their events.

        `expected`: rule id -> the evaluated time of its cursor state (key '') that the
        evaluation started from (None: none was stored). If another evaluation of the
        vehicle saved in between, PreconditionFailed and nothing is written."""
        ...

    async def get_alert(self, alert_id: str, brand: str | None) -> Alert:
        """One alert; NotFoundError if it is not there for the caller."""
        ...

    async def list_alerts(
        self,
        brand: str | None,
        status: str | None = None,
        vin: str | None = None,
        rule_id: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[Alert]:
        """Alerts newest first (raised before `before`), filtered."""
        ...

    async def acknowledge(
        self, alert_id: str, brand: str | None, by: str, at: int, emit: EmitAlert | None = None
    ) -> Alert | None:
        """Mark an active alert acknowledged; None if it is not active (any more)."""
        ...
