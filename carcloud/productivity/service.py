"""The productivity rules: a car's leave-by plans, the cards it gets, and pre-conditioning.

`refresh(vin)` is the whole computation for one car, run by the `productivity` worker as
the car moves and the calendars change: it reads the current driver's agenda and the
car's latest committed state, plans each upcoming meeting with a place, records each card
that is due (once per key) and asks the control role to deliver it, and schedules,
sends or cancels pre-conditioning commands.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient

from carcloud.calendars.agenda import AgendaEntry
from carcloud.calendars.service import CalendarService
from carcloud.commands.service import CommandService
from carcloud.drivers.models import Driver
from carcloud.drivers.service import DriverService
from carcloud.errors import CarcloudError
from carcloud.ingest.store import TelemetryStore
from carcloud.messaging import topics
from carcloud.productivity import cards as card_rules
from carcloud.productivity.energy import ModelEnergy, RangePolicy, known_models
from carcloud.productivity.leaveby import (
    CarSituation,
    LeaveBy,
    model_energy,
    plan_meeting,
    situation_of,
)
from carcloud.productivity.models import MEETING_CARDS, Precondition, SentCard, encode_card
from carcloud.productivity.precondition import planned_preconditions
from carcloud.productivity.routing import Point, RouterChain
from carcloud.productivity.store import ProductivityStore
from carcloud.registry.service import RegistryService
from carcloud.timeutil import datetime_to_us, now_us, to_datetime

log = logging.getLogger(__name__)

MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US
PLAN_HORIZON_US = 24 * HOUR_US  # meetings planned (travel, cards, pre-conditioning)
PRESENCE_DAYS = 7  # a meeting moved within this stays "changed", not "cancelled"
MAX_PLANNED = 5
MAX_AGENDA_PLANNED = 20  # meetings of an agenda given a leave-by plan
RESENT_CARDS = (
    20  # the newest cards looked at when a car comes online  # routes computed per car and refresh
)
PRECONDITION_CANCELLED = "carcloud: the meeting it was for is cancelled"


@dataclass
class Outlook:
    """What a car's screen is about: the driver, the meetings ahead with their plans."""

    vin: str
    driver: Driver | None
    situation: CarSituation | None = None
    upcoming: list[AgendaEntry] = field(default_factory=list)
    plans: dict[str, LeaveBy] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)  # meetings in the calendar, not cancelled
    sent: list[SentCard] = field(default_factory=list)
    preconditions: list[Precondition] = field(default_factory=list)
    computed_at: int = 0


class ProductivityService:
    """Leave-by, cards and pre-conditioning for the cars that have a current driver."""

    def __init__(
        self,
        store: ProductivityStore,
        drivers: DriverService,
        calendars: CalendarService,
        registry: RegistryService,
        telemetry: TelemetryStore,
        commands: CommandService,
        router: RouterChain,
        nats: NatsClient | None = None,
        models: Mapping[str, ModelEnergy] | None = None,
        policy: RangePolicy | None = None,
    ) -> None:
        self.store = store
        self.drivers = drivers
        self.calendars = calendars
        self.registry = registry
        self.telemetry = telemetry
        self.commands = commands
        self.router = router
        self.nats = nats
        self.models = dict(models) if models is not None else known_models()
        self.policy = policy or RangePolicy()

    async def driven_vehicles(self) -> list[str]:
        """The cars to refresh: those with a current driver."""
        return await self.store.driven_vehicles()

    async def outlook(self, vin: str, brand: str | None, now: int | None = None) -> Outlook:
        """The car's meetings ahead with their leave-by plans (nothing sent)."""
        await self.registry.get_vehicle(vin, brand)  # NotFoundError for another brand's car
        return await self._outlook(vin, now_us() if now is None else now)

    async def _outlook(self, vin: str, now: int) -> Outlook:
        driver = await self.drivers.vehicle_driver(vin, None)
        if driver is None:
            return Outlook(vin, None, computed_at=now)
        entries = await self.calendars.agenda(
            driver, to_datetime(now - HOUR_US), to_datetime(now) + dt.timedelta(PRESENCE_DAYS)
        )
        upcoming = [
            entry for entry in entries
            if not entry.busy_only and not entry.all_day and entry.status != "CANCELLED"
            and now < datetime_to_us(entry.start) <= now + PLAN_HORIZON_US
        ]  # fmt: skip
        vehicle = await self.registry.get_vehicle(vin, None)
        situation = situation_of(
            await self.telemetry.latest_state(vin), model_energy(self.models, vehicle.model)
        )
        present = {entry.id for entry in entries if entry.status != "CANCELLED"}
        outlook = Outlook(vin, driver, situation, upcoming, present=present, computed_at=now)
        if situation.position is not None:
            for entry in [e for e in upcoming if e.coordinates is not None][:MAX_PLANNED]:
                assert entry.coordinates is not None
                destination = Point(entry.coordinates.lat, entry.coordinates.lon)
                travel = await self.router.travel(situation.position, destination)
                outlook.plans[entry.id] = plan_meeting(
                    entry, travel, situation, driver.preferences.buffer_min, now, self.policy
                )
        return outlook

    async def agenda(
        self, vin: str, brand: str | None, start: dt.datetime, end: dt.datetime,
        now: int | None = None,
    ) -> Outlook:  # fmt: skip
        """The current driver's agenda in [start, end) with a leave-by plan, from the car's
        live position, for each upcoming meeting with a place (the first MAX_AGENDA_PLANNED);
        NotFoundError when the car has no current driver."""
        at = now_us() if now is None else now
        driver, entries = await self.calendars.vehicle_agenda(vin, brand, start, end)
        vehicle = await self.registry.get_vehicle(vin, None)
        situation = situation_of(
            await self.telemetry.latest_state(vin), model_energy(self.models, vehicle.model)
        )
        outlook = Outlook(vin, driver, situation, entries, computed_at=at)
        plannable = [
            entry for entry in entries
            if entry.coordinates is not None and not entry.busy_only and not entry.all_day
            and entry.status != "CANCELLED" and datetime_to_us(entry.start) > at
        ][:MAX_AGENDA_PLANNED]  # fmt: skip
        if situation.position is not None:
            for entry in plannable:
                assert entry.coordinates is not None
                destination = Point(entry.coordinates.lat, entry.coordinates.lon)
                travel = await self.router.travel(situation.position, destination)
                outlook.plans[entry.id] = plan_meeting(
                    entry, travel, situation, driver.preferences.buffer_min, at, self.policy
                )
        return outlook

    async def refresh(self, vin: str, now: int | None = None) -> Outlook:
        """Plan the car's meetings, send the cards that are due, keep pre-conditioning."""
        at = now_us() if now is None else now
        outlook = await self._outlook(vin, at)
        if outlook.driver is None:
            return outlook
        due = self.due_cards(outlook, await self.store.meeting_cards(vin), at)
        for card in due:
            if await self.store.record_card(card):
                outlook.sent.append(card)
                await self.deliver(card)
        outlook.preconditions = await self._precondition(outlook, at)
        return outlook

    def due_cards(self, outlook: Outlook, sent: list[SentCard], now: int) -> list[SentCard]:
        """The cards to send now (the store drops those already sent)."""
        assert outlook.driver is not None
        zone = outlook.driver.zone
        lead_us = outlook.driver.preferences.reminder_lead_min * MINUTE_US
        last_meeting_card: dict[str, SentCard] = {}
        cancelled: set[str] = set()
        for card in sent:
            if card.meeting_id is None:
                continue
            if card.purpose == "cancelled":
                cancelled.add(card.meeting_id)
            elif card.purpose in MEETING_CARDS:
                known = last_meeting_card.get(card.meeting_id)
                if known is None or card.sent_at >= known.sent_at:
                    last_meeting_card[card.meeting_id] = card
        due: list[SentCard] = []
        vin = outlook.vin
        for index, entry in enumerate(outlook.upcoming):
            plan = outlook.plans.get(entry.id)
            last = last_meeting_card.get(entry.id)
            if last is not None and last.fingerprint != card_rules.fingerprint(entry):
                due.append(card_rules.next_meeting_card(vin, entry, plan, zone, now, True))
            elif last is None and index == 0:
                due.append(card_rules.next_meeting_card(vin, entry, plan, zone, now, False))
            if plan is not None and now >= plan.leave_by - lead_us:
                due.append(card_rules.leave_by_card(vin, entry, plan, zone, now))
            if plan is not None and plan.late_by_min > 0:
                due.append(card_rules.late_card(vin, entry, plan, zone, now))
        for meeting_id, last in last_meeting_card.items():
            ends = last.notification.expires_at
            if meeting_id in outlook.present or meeting_id in cancelled:
                continue
            if ends is not None and ends > now:
                due.append(card_rules.cancelled_card(vin, last, now))
        return due

    async def deliver(self, card: SentCard) -> None:
        """Ask the control role to publish the card into the car's session (QoS 1)."""
        if self.nats is None:
            return
        body = {"vin": card.vin, "notification": encode_card(card.notification).decode()}
        try:
            await self.nats.publish(topics.DISPATCH, json.dumps(body).encode())
        except nats.errors.Error as exc:
            log.warning("productivity: could not ask for delivery of %s: %s", card.key, exc)

    async def cards(self, vin: str, brand: str | None, limit: int = 50) -> list[SentCard]:
        """The cards sent to a car, newest first."""
        return await self.store.list_cards(vin, brand, limit)

    async def cards_to_resend(self, vin: str) -> list[bytes]:
        """The cards a car that just came online should still show, oldest first (the
        control role sends them with its open commands; the car drops ids it has)."""
        recent = await self.store.list_cards(vin, None, RESENT_CARDS)
        return [
            encode_card(card.notification)
            for card in reversed(card_rules.shown_cards(recent, now_us()))
        ]

    async def preconditions(self, vin: str, brand: str | None) -> list[Precondition]:
        """A car's pre-conditioning, scheduled, sent and cancelled."""
        return await self.store.preconditions(vin, brand, None)

    async def _precondition(self, outlook: Outlook, now: int) -> list[Precondition]:
        """Schedule what the plans need, send what is due, cancel what lost its meeting."""
        assert outlook.driver is not None
        wanted = (
            planned_preconditions(outlook.vin, outlook.driver, outlook.situation,
                                  outlook.upcoming, outlook.plans, now, self.policy)
            if outlook.driver.preferences.precondition
            else []
        )  # fmt: skip
        for draft in wanted:
            stored = await self.store.schedule(draft)
            if stored.status == "scheduled" and stored.due_at <= now:
                await self._send(stored, now)
        keep = {(p.meeting_id, p.kind) for p in wanted}
        active = await self.store.preconditions(outlook.vin, None, ("scheduled", "sent"))
        cancelled: list[Precondition] = []
        for stored in active:
            gone = stored.meeting_id not in outlook.present
            unwanted = stored.status == "scheduled" and (stored.meeting_id, stored.kind) not in keep
            if gone or unwanted:
                await self._cancel(stored, now)
                cancelled.append(stored)
        raises = [p for p in active if p.kind == "set_charge_limit"]
        if any(p in cancelled for p in raises) and all(p in cancelled for p in raises):
            await self._restore_limit(outlook.vin, min(p.created_at for p in raises))
        return await self.store.preconditions(outlook.vin, None, None)

    async def _restore_limit(self, vin: str, since: int) -> None:
        """Put the charge limit back where it was before the raises the car applied, once
        no meeting needs them: the lowest limit they started from (the raises cancelled
        since the oldest of those that were still active: they overlapped)."""
        applied: list[Precondition] = []
        for raised in await self.store.preconditions(vin, None, ("cancelled",)):
            if raised.kind != "set_charge_limit" or raised.command_id is None:
                continue
            if raised.updated_at < since:
                continue
            try:
                command = await self.commands.record(vin, raised.command_id)
            except CarcloudError:
                continue
            if command.status == "succeeded":
                applied.append(raised)
        previous = [p.params.get("restore_percent") for p in applied]
        earlier = min((p for p in previous if isinstance(p, int)), default=None)
        if earlier is None:
            return
        last = max(applied, key=lambda p: p.updated_at)
        try:
            await self.commands.send(
                vin, None, "set_charge_limit",
                {"percent": earlier, "reason": f"carcloud: back to {earlier} % (the meetings "
                 "it was raised for are over or cancelled)"},
                idempotency_key=f"precondition:{last.id}:restore",
            )  # fmt: skip
        except CarcloudError as exc:
            log.info("productivity: cannot restore the charge limit of %s: %s", vin, exc)

    async def _send(self, precondition: Precondition, now: int) -> None:
        params: dict[str, Any] = {**precondition.params, "reason": precondition.reason[:200]}
        params.pop("restore_percent", None)  # for the restore, not the car
        try:
            command, _ = await self.commands.send(
                precondition.vin, None, precondition.kind, params,
                idempotency_key=f"precondition:{precondition.id}",
            )  # fmt: skip
        except CarcloudError as exc:
            log.warning("productivity: cannot send %s: %s", precondition.kind, exc)
            return
        command_id = command.id if not isinstance(command, dict) else str(command["id"])
        await self.store.set_precondition_status(precondition.id, "sent", command_id, now)

    async def _cancel(self, precondition: Precondition, now: int) -> None:
        if precondition.command_id is not None:
            try:
                command = await self.commands.record(precondition.vin, precondition.command_id)
                if not command.is_final:
                    await self.commands.cancel(
                        precondition.vin, command.id, None, "carcloud (the meeting is cancelled)"
                    )
            except CarcloudError as exc:
                log.info("productivity: cannot cancel command %s: %s", precondition.command_id, exc)
        await self.store.set_precondition_status(precondition.id, "cancelled", None, now)
