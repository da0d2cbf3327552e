"""What the productivity slice keeps: cards sent to cars, and pre-conditioning scheduled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import orjson

from carcloud.timeutil import format_us
from carcloud_agent.protocol.notifications import (
    Notification,
    decode_notification,
    encode_notification,
)

CardPurpose = Literal["next_meeting", "leave_by", "late", "changed", "cancelled"]
CARD_PURPOSES: tuple[CardPurpose, ...] = get_args(CardPurpose)
# Cards that describe a meeting as it was sent (what "changed" is measured against).
MEETING_CARDS: tuple[CardPurpose, ...] = ("next_meeting", "changed")

PreconditionKind = Literal["climate_start", "charge_start", "set_charge_limit"]
PreconditionStatus = Literal["scheduled", "sent", "cancelled"]


@dataclass(frozen=True, slots=True)
class SentCard:
    """A card sent to a car: once per `key` and car (a meeting's reminder, its lateness…)."""

    vin: str
    key: str
    purpose: CardPurpose
    meeting_id: str | None
    fingerprint: str | None
    notification: Notification
    sent_at: int

    def document(self) -> dict[str, Any]:
        """The JSON form of the API: the card as the car got it, and why it was sent."""
        card = orjson.loads(encode_card(self.notification))
        return {
            "id": self.notification.id,
            "purpose": self.purpose,
            "meeting_id": self.meeting_id,
            "sent_at": format_us(self.sent_at),
            "card": card,
        }


def encode_card(notification: Notification) -> bytes:
    """The card's JSON (the protocol's notification message)."""
    return encode_notification(notification)


def decode_card(stored: bytes | str) -> Notification:
    """A stored card."""
    return decode_notification(stored.encode() if isinstance(stored, str) else stored)


@dataclass(frozen=True, slots=True)
class Precondition:
    """A command carcloud will send (or sent) so the car is ready for a meeting."""

    id: str
    vin: str
    meeting_id: str
    kind: PreconditionKind
    params: dict[str, object]
    due_at: int
    reason: str
    status: PreconditionStatus = "scheduled"
    command_id: str | None = None
    created_at: int = 0
    updated_at: int = 0

    def document(self) -> dict[str, Any]:
        """The JSON form of the API."""
        return {
            "id": self.id,
            "meeting_id": self.meeting_id,
            "kind": self.kind,
            "params": self.params,
            "due_at": format_us(self.due_at),
            "reason": self.reason,
            "status": self.status,
            "command_id": self.command_id,
            "created_at": format_us(self.created_at),
            "updated_at": format_us(self.updated_at),
        }
