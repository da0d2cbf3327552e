"""Notifications, cloud → car on `vehicles/{vin}/notifications`: a card shown to the driver.

    {"id": "ntf_7c1e…", "kind": "meeting", "title": "Design review in 10 min",
     "body": "Room 4.12 · 3 attendees", "expires_at": "2026-11-24T10:30:00.000000Z",
     "actions": [{"id": "join", "label": "Join call", "uri": "https://…"},
                 {"id": "navigate", "label": "Navigate"}]}

A head unit shows the card until the driver dismisses it or `expires_at` passes
(absent: until dismissed), and drops a card whose id it has already shown (QoS 1
delivers at least once). An action's `id` is what the car reports back when the
driver taps it; `uri` is an optional target (a conference link, a geo: URI).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard, get_args

import orjson

from carcloud_agent.errors import ProtocolError, ValidationError
from carcloud_agent.protocol._json import json_object
from carcloud_agent.timeutil import format_us, parse_rfc3339_us

__all__ = [
    "NOTIFICATION_KINDS",
    "Notification",
    "NotificationAction",
    "NotificationKind",
    "decode_notification",
    "encode_notification",
]

NotificationKind = Literal["info", "warning", "meeting", "call", "navigation"]
NOTIFICATION_KINDS: tuple[NotificationKind, ...] = get_args(NotificationKind)
MAX_ID = 64
MAX_TITLE = 80  # one line on a head unit
MAX_BODY = 500
MAX_LABEL = 24  # a button
MAX_ACTIONS = 3
MAX_URI = 2048


def _text(value: object, what: str, limit: int, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty):
        kind = "a string" if empty else "a non-empty string"
        raise ProtocolError(f"notification {what} must be {kind}, got {value!r}")
    if len(value) > limit:
        raise ProtocolError(f"notification {what} has {len(value)} characters; at most {limit}")
    return value


@dataclass(frozen=True, slots=True)
class NotificationAction:
    """A button on the card."""

    id: str
    label: str
    uri: str | None = None

    def __post_init__(self) -> None:
        _text(self.id, "action id", MAX_ID)
        _text(self.label, "action label", MAX_LABEL)
        if self.uri is not None:
            _text(self.uri, "action uri", MAX_URI)


def _is_kind(value: object) -> TypeGuard[NotificationKind]:
    return value in NOTIFICATION_KINDS


def _kind(value: object) -> NotificationKind:
    if not _is_kind(value):
        raise ProtocolError(
            f"notification kind {value!r} is not one of {', '.join(NOTIFICATION_KINDS)}"
        )
    return value


@dataclass(frozen=True, slots=True)
class Notification:
    """A card for the driver; validated on creation, on both sides of the link."""

    id: str
    kind: NotificationKind
    title: str
    body: str = ""
    actions: tuple[NotificationAction, ...] = ()
    expires_at: int | None = None  # epoch microseconds (UTC); None: until dismissed

    def __post_init__(self) -> None:
        _text(self.id, "id", MAX_ID)
        _kind(self.kind)
        _text(self.title, "title", MAX_TITLE)
        _text(self.body, "body", MAX_BODY, empty=True)
        if len(self.actions) > MAX_ACTIONS:
            raise ProtocolError(
                f"notification has {len(self.actions)} actions; at most {MAX_ACTIONS}"
            )
        ids = [action.id for action in self.actions]
        if len(set(ids)) != len(ids):
            raise ProtocolError(f"notification action ids must be unique, got {ids}")

    def expired(self, now_us: int) -> bool:
        """Whether the card should no longer be shown."""
        return self.expires_at is not None and self.expires_at < now_us


def encode_notification(notification: Notification) -> bytes:
    """The notification message's JSON body."""
    return orjson.dumps(
        {
            "id": notification.id,
            "kind": notification.kind,
            "title": notification.title,
            "body": notification.body,
            "actions": [
                {"id": a.id, "label": a.label, **({"uri": a.uri} if a.uri is not None else {})}
                for a in notification.actions
            ],
            "expires_at": format_us(notification.expires_at),
        }
    )


def _action(raw: object, index: int) -> NotificationAction:
    if not isinstance(raw, dict):
        raise ProtocolError(f"notification actions[{index}] must be an object with id and label")
    uri = raw.get("uri")
    try:
        return NotificationAction(
            _text(raw.get("id"), "action id", MAX_ID),
            _text(raw.get("label"), "action label", MAX_LABEL),
            None if uri is None else _text(uri, "action uri", MAX_URI),
        )
    except ProtocolError as exc:
        raise ProtocolError(f"actions[{index}]: {exc}") from exc


def decode_notification(payload: bytes) -> Notification:
    """A notification message; ProtocolError naming what is wrong with it."""
    body: Mapping[str, Any] = json_object(payload, "notification")
    actions = body.get("actions")
    if actions is None:
        actions = []
    elif not isinstance(actions, list):
        raise ProtocolError("notification actions must be an array of {id, label, uri}")
    expires = body.get("expires_at")
    try:
        expires_at = None if expires is None else parse_rfc3339_us(expires, "expires_at")
    except ValidationError as exc:
        raise ProtocolError(f"notification {exc}") from exc
    text = body.get("body")
    return Notification(
        id=_text(body.get("id"), "id", MAX_ID),
        kind=_kind(body.get("kind")),
        title=_text(body.get("title"), "title", MAX_TITLE),
        body="" if text is None else _text(text, "body", MAX_BODY, empty=True),
        actions=tuple(_action(raw, index) for index, raw in enumerate(actions)),
        expires_at=expires_at,
    )
