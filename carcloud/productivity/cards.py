"""The cards a car gets about the driver's meetings, and the key each is sent once under.

- next meeting (kind `meeting`): title, time, place, Navigate and Join buttons; key
  `next:{meeting}:{fingerprint}`; once a meeting's time, title or place changes, a
  `changed` card (kind `info`) goes instead, with the new details;
- leave-by reminder (kind `navigation`) once it is `reminder_lead_min` before leave-by;
- "you will be late by N min" (kind `warning`) once leaving now arrives after the start;
- cancelled (kind `warning`) when a meeting that had a card is gone or cancelled.

A card's id is derived from the car and its key, so a card sent again (a retry) has
the same id, and the car shows it once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

from carcloud.calendars.agenda import AgendaEntry
from carcloud.productivity.leaveby import LeaveBy
from carcloud.productivity.models import CardPurpose, SentCard
from carcloud.timeutil import datetime_to_us
from carcloud_agent.protocol.notifications import (
    MAX_BODY,
    MAX_TITLE,
    Notification,
    NotificationAction,
    NotificationKind,
)

SECOND_US = 1_000_000
CANCELLED_SHOWN_US = 3600 * SECOND_US


def fingerprint(entry: AgendaEntry) -> str:
    """What the driver would notice changing: time, title, place."""
    where = f"{entry.coordinates.lat:.5f},{entry.coordinates.lon:.5f}" if entry.coordinates else ""
    text = (
        f"{entry.start.isoformat()}|{entry.end.isoformat()}|{entry.title}|{entry.location}|{where}"
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def card_id(vin: str, key: str) -> str:
    """The card's id: the same for the same car and key."""
    return "ntf_" + hashlib.sha256(f"{vin}\n{key}".encode()).hexdigest()[:20]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clock(moment: int | dt.datetime, zone: ZoneInfo) -> str:
    at = moment if isinstance(moment, dt.datetime) else dt.datetime.fromtimestamp(
        moment / SECOND_US, dt.UTC
    )  # fmt: skip
    return at.astimezone(zone).strftime("%H:%M")


def actions(entry: AgendaEntry) -> tuple[NotificationAction, ...]:
    """Navigate (a geo: URI), Join (the best link) and Dial in (tel: with PIN), at most 3."""
    found: list[NotificationAction] = []
    if entry.coordinates is not None:
        uri = f"geo:{entry.coordinates.lat:.6f},{entry.coordinates.lon:.6f}"
        found.append(NotificationAction("navigate", "Navigate", uri))
    best = entry.join.best
    if best is not None:
        found.append(NotificationAction("join", "Join call", best.url))
    if entry.join.dial_in:
        found.append(NotificationAction("dial", "Dial in", entry.join.dial_in[0].uri))
    return tuple(found[:3])


def _card(
    vin: str, key: str, purpose: CardPurpose, kind: NotificationKind, entry: AgendaEntry,
    title: str, body: str, expires_at: int, now: int, with_actions: bool = True,
) -> SentCard:  # fmt: skip
    notification = Notification(
        id=card_id(vin, key),
        kind=kind,
        title=_clip(title, MAX_TITLE),
        body=_clip(body, MAX_BODY),
        actions=actions(entry) if with_actions else (),
        expires_at=expires_at,
    )
    return SentCard(vin, key, purpose, entry.id, fingerprint(entry), notification, now)


def _details(entry: AgendaEntry, plan: LeaveBy | None, zone: ZoneInfo) -> str:
    parts = [f"{_clock(entry.start, zone)}–{_clock(entry.end, zone)}"]
    if entry.location:
        parts.append(entry.location)
    if plan is not None:
        parts.append(
            f"leave by {_clock(plan.leave_by, zone)} ({plan.travel.duration_s / 60:.0f} min drive)"
        )
        if plan.charging is not None:
            parts.append(f"charging stop {plan.charging.minutes:.0f} min")
    if entry.join.best is not None:
        parts.append(f"join: {entry.join.best.provider}")
    return " · ".join(parts)


def next_meeting_card(
    vin: str, entry: AgendaEntry, plan: LeaveBy | None, zone: ZoneInfo, now: int, changed: bool
) -> SentCard:
    """The next-meeting card, or (`changed`) the card saying the meeting changed."""
    end = datetime_to_us(entry.end)
    if changed:
        key = f"changed:{entry.id}:{fingerprint(entry)}"
        return _card(vin, key, "changed", "info", entry, f"Changed: {entry.title}",
                     _details(entry, plan, zone), end, now)  # fmt: skip
    key = f"next:{entry.id}:{fingerprint(entry)}"
    return _card(vin, key, "next_meeting", "meeting", entry,
                 f"{_clock(entry.start, zone)} {entry.title}", _details(entry, plan, zone), end,
                 now)  # fmt: skip


def leave_by_card(
    vin: str, entry: AgendaEntry, plan: LeaveBy, zone: ZoneInfo, now: int
) -> SentCard:
    """Time to leave (sent at the reminder lead before leave-by)."""
    key = f"leave:{entry.id}:{plan.start}"
    body = f"{entry.title} at {_clock(entry.start, zone)}" + (
        f" · {entry.location}" if entry.location else ""
    ) + f" · {plan.travel.duration_s / 60:.0f} min drive"  # fmt: skip
    if plan.charging is not None:
        body += f" + {plan.charging.minutes:.0f} min charging"
    return _card(vin, key, "leave_by", "navigation", entry,
                 f"Leave by {_clock(plan.leave_by, zone)} for {entry.title}", body, plan.start,
                 now)  # fmt: skip


def late_card(vin: str, entry: AgendaEntry, plan: LeaveBy, zone: ZoneInfo, now: int) -> SentCard:
    """Leaving now arrives after the start."""
    key = f"late:{entry.id}:{plan.start}"
    body = (
        f"{entry.title} starts {_clock(entry.start, zone)}; arriving about "
        f"{_clock(plan.eta_if_now, zone)}"
    )
    return _card(vin, key, "late", "warning", entry,
                 f"You will be late by {plan.late_by_min} min", body,
                 datetime_to_us(entry.end), now)  # fmt: skip


def cancelled_card(vin: str, last: SentCard, now: int) -> SentCard:
    """A meeting the car had a card for is gone (deleted, cancelled, declined)."""
    title = last.notification.title
    notification = Notification(
        id=card_id(vin, f"cancelled:{last.meeting_id}"),
        kind="warning",
        title=_clip(f"Cancelled: {title}", MAX_TITLE),
        body=last.notification.body,
        actions=(),
        expires_at=last.notification.expires_at,
    )
    return SentCard(vin, f"cancelled:{last.meeting_id}", "cancelled", last.meeting_id,
                    last.fingerprint, notification, now)  # fmt: skip


def shown_cards(cards: list[SentCard], now: int) -> list[SentCard]:
    """Cards still on the screen: not expired, not about a meeting since cancelled (the
    cancellation itself shows for an hour)."""
    cancelled = {card.meeting_id for card in cards if card.purpose == "cancelled"}
    shown: list[SentCard] = []
    for card in cards:
        if card.purpose == "cancelled":
            if now - card.sent_at < CANCELLED_SHOWN_US:
                shown.append(card)
        elif card.meeting_id not in cancelled and not card.notification.expired(now):
            shown.append(card)
    return shown
