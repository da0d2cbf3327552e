"""What a car's screen shows: the next meeting with its leave-by countdown, navigate and
join targets, and the cards still shown (sent, not expired, newest first)."""

from __future__ import annotations

from typing import Any

from carcloud.productivity.cards import shown_cards
from carcloud.productivity.models import SentCard
from carcloud.productivity.service import Outlook
from carcloud.timeutil import datetime_to_us, format_us

SHOWN_CARDS = 5


def screen(outlook: Outlook, cards: list[SentCard], now: int) -> dict[str, Any]:
    """The head unit's view as JSON (the page at /headunit/{vin} renders it)."""
    driver = outlook.driver
    document: dict[str, Any] = {
        "vin": outlook.vin,
        "now": format_us(now),
        "driver": {"id": driver.id, "name": driver.name, "timezone": driver.timezone}
        if driver is not None
        else None,
        "next_meeting": None,
        "cards": [card.document() for card in shown_cards(cards, now)][:SHOWN_CARDS],
    }
    if not outlook.upcoming:
        return document
    entry = outlook.upcoming[0]
    plan = outlook.plans.get(entry.id)
    best = entry.join.best
    document["next_meeting"] = {
        "id": entry.id,
        "title": entry.title,
        "start_at": format_us(datetime_to_us(entry.start)),
        "start_local": entry.start.astimezone(driver.zone).strftime("%H:%M") if driver else None,
        "location": entry.location,
        "navigate": {"lat": entry.coordinates.lat, "lon": entry.coordinates.lon}
        if entry.coordinates is not None
        else None,
        "join": {"provider": best.provider, "url": best.url} if best is not None else None,
        "dial_in": entry.join.dial_in[0].uri if entry.join.dial_in else None,
        "leave_by": plan.document() if plan is not None else None,
        "leave_in_s": round((plan.leave_by - now) / 1e6) if plan is not None else None,
    }
    return document
