"""Calls from the car and carcloud's audio rooms: what is stored and shown.

A Room is an audio room of one brand on the media server (Janus AudioBridge). An
Invite is a short-lived join token for one person or one car; only its hash is
stored. A Participant is one connection of an invite to a room (a dropped link that
rejoins with the same token is a new participant of the same invite). A Call is one
join action sent to a car: a meeting of its calendar, a URL or `tel:` URI, or a
carcloud room, and what the car reported about it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from carcloud.errors import ValidationError
from carcloud.timeutil import format_us

MAX_NAME = 80
MAX_ROOM_PARTICIPANTS = 100
MAX_PIN = 12
MAX_URI = 2048
_PIN = re.compile(r"^\d{4,12}$")


class RoomStatus(StrEnum):
    """A room is open until it is closed (by an operator, or empty for too long)."""

    OPEN = "open"
    CLOSED = "closed"


class InviteKind(StrEnum):
    """Who an invite is for: a car (a card on its head unit) or a person (a web link)."""

    VEHICLE = "vehicle"
    PERSON = "person"


class CallState(StrEnum):
    """A call's life: sent to the car, joined, left; or failed."""

    REQUESTED = "requested"
    JOINED = "joined"
    LEFT = "left"
    FAILED = "failed"


FINAL_CALL_STATES = (CallState.LEFT, CallState.FAILED)


def new_id(prefix: str) -> str:
    """An id with its kind in front: room_…, inv_…, par_…, call_…."""
    return f"{prefix}_{secrets.token_hex(8)}"


def new_token() -> str:
    """A join token: shown once, stored as its hash."""
    return "rjt_" + secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """The stored form of a join token or PIN."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(raw: str, what: str = "name") -> str:
    """A display name: 1 to 80 printable characters."""
    name = raw.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ValidationError(f"{what}: 1 to {MAX_NAME} printable characters")
    return name


def check_pin(raw: str | None) -> str | None:
    """A room PIN: 4 to 12 digits, or none."""
    if raw is None or raw == "":
        return None
    if not _PIN.match(raw):
        raise ValidationError("pin: 4 to 12 digits")
    return raw


def check_join_uri(raw: str) -> str:
    """A meeting link (https) or a dial-in `tel:` URI."""
    uri = raw.strip()
    if not uri or len(uri) > MAX_URI:
        raise ValidationError(f"url: 1 to {MAX_URI} characters")
    if uri.lower().startswith("tel:"):
        if not re.match(r"^tel:\+?[\d\-.() ]{3,}[\d,;#*=a-zA-Z\-]*$", uri):
            raise ValidationError("url: a tel: URI such as tel:+4930123456,,123456#")
        return uri
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError("url: an https meeting link or a tel: URI")
    return uri


@dataclass(frozen=True, slots=True)
class Room:
    """An audio room of one brand."""

    id: str
    brand: str
    name: str
    max_participants: int
    status: RoomStatus
    created_at: int
    pin_hash: str | None = None
    empty_since: int | None = None  # set while nobody is in it
    closed_at: int | None = None

    def document(self) -> dict[str, Any]:
        """The JSON form (never the PIN)."""
        return {
            "id": self.id,
            "brand": self.brand,
            "name": self.name,
            "max_participants": self.max_participants,
            "status": str(self.status),
            "has_pin": self.pin_hash is not None,
            "created_at": format_us(self.created_at),
            "empty_since": format_us(self.empty_since),
            "closed_at": format_us(self.closed_at),
        }


@dataclass(frozen=True, slots=True)
class Invite:
    """A join token for one person or car; the token itself is not kept."""

    id: str
    room_id: str
    kind: InviteKind
    display: str
    token_hash: str
    created_at: int
    expires_at: int
    vin: str | None = None
    revoked_at: int | None = None  # set when an operator kicked its participant

    def document(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "id": self.id,
            "room_id": self.room_id,
            "kind": str(self.kind),
            "display": self.display,
            "vin": self.vin,
            "created_at": format_us(self.created_at),
            "expires_at": format_us(self.expires_at),
            "revoked_at": format_us(self.revoked_at),
        }


@dataclass(frozen=True, slots=True)
class Participant:
    """One connection of an invite to a room; `left_at` None while connected."""

    id: str
    room_id: str
    invite_id: str
    kind: InviteKind
    display: str
    joined_at: int
    media_id: str
    media_handle: int
    vin: str | None = None
    left_at: int | None = None

    @property
    def present(self) -> bool:
        """Still in the room."""
        return self.left_at is None


@dataclass(frozen=True, slots=True)
class Call:
    """A join action sent to a car, and what the car reported."""

    id: str
    vin: str
    brand: str
    state: CallState
    created_at: int
    updated_at: int
    title: str = ""
    url: str | None = None
    tel: str | None = None
    provider: str | None = None
    event_id: str | None = None
    room_id: str | None = None
    command_id: str | None = None
    reason: str | None = None
    joined_at: int | None = None
    ended_at: int | None = None

    def document(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "id": self.id,
            "vin": self.vin,
            "brand": self.brand,
            "state": str(self.state),
            "title": self.title,
            "url": self.url,
            "tel": self.tel,
            "provider": self.provider,
            "event_id": self.event_id,
            "room_id": self.room_id,
            "command_id": self.command_id,
            "reason": self.reason,
            "created_at": format_us(self.created_at),
            "updated_at": format_us(self.updated_at),
            "joined_at": format_us(self.joined_at),
            "ended_at": format_us(self.ended_at),
        }
