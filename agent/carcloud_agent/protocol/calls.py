"""Calls: the join action (cloud → car, the `call_join` command's `join` parameter) and the
car's call reports (car → cloud on `vehicles/{vin}/events`).

    command kind call_join, params:
    {"call_id": "call_1f…", "join": {"title": "Design review", "provider": "zoom",
      "url": "https://zoom.us/j/123", "tel": "tel:+4930123456,,123456789#",
      "video_allowed": false,
      "room": {"id": "room_…", "token": "rjt_…", "signalling": "https://…/api/v1/rooms/room_…/join"}}}

    report on vehicles/{vin}/events:
    {"type": "call", "call_id": "call_1f…", "state": "joined", "reason": null}

The head unit opens `url` in the provider's app when it has one, dials `tel` (audio
only, works with every provider) otherwise, or joins a carcloud `room` over WebRTC
by posting its SDP offer with the token to `signalling`. It never starts video while
`video_allowed` is false, and follows the desired twin property
`calls.video_allowed` as it changes during the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard, get_args

import orjson

from carcloud_agent.errors import ProtocolError
from carcloud_agent.protocol._json import json_object

__all__ = [
    "CALL_STATES",
    "CallJoin",
    "CallReport",
    "CallState",
    "RoomJoin",
    "decode_call_report",
    "encode_call_report",
    "join_of_params",
]

CallState = Literal["joined", "left", "failed"]
CALL_STATES: tuple[CallState, ...] = get_args(CallState)
MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class RoomJoin:
    """How to join a carcloud audio room: its id, the join token, the signalling URL."""

    id: str
    token: str
    signalling: str


@dataclass(frozen=True, slots=True)
class CallJoin:
    """A join action: at least one of url, tel and room."""

    call_id: str
    title: str = ""
    provider: str | None = None
    url: str | None = None
    tel: str | None = None
    room: RoomJoin | None = None
    video_allowed: bool = False

    def params(self) -> dict[str, Any]:
        """The `call_join` command's parameters."""
        join: dict[str, Any] = {"title": self.title, "video_allowed": self.video_allowed}
        for name in ("provider", "url", "tel"):
            if getattr(self, name) is not None:
                join[name] = getattr(self, name)
        if self.room is not None:
            join["room"] = {
                "id": self.room.id,
                "token": self.room.token,
                "signalling": self.room.signalling,
            }
        return {"call_id": self.call_id, "join": join}


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise ProtocolError(f"call join {name} must be a non-empty string, got {value!r}")
    return value


def join_of_params(params: Mapping[str, Any]) -> CallJoin:
    """The join action of a `call_join` command; ProtocolError naming what is wrong."""
    call_id, join = params.get("call_id"), params.get("join")
    if not isinstance(call_id, str) or not call_id:
        raise ProtocolError("call_join needs call_id, a non-empty string")
    if not isinstance(join, dict):
        raise ProtocolError("call_join needs join, an object")
    room_body = join.get("room")
    room = None
    if room_body is not None:
        if not isinstance(room_body, dict) or not all(
            isinstance(room_body.get(key), str) and room_body.get(key)
            for key in ("id", "token", "signalling")
        ):
            raise ProtocolError("call join room needs id, token and signalling strings")
        room = RoomJoin(room_body["id"], room_body["token"], room_body["signalling"])
    title = join.get("title") or ""
    video = join.get("video_allowed", False)
    if not isinstance(title, str) or not isinstance(video, bool):
        raise ProtocolError("call join title must be a string and video_allowed a boolean")
    found = CallJoin(
        call_id, title, _optional_text(join, "provider"), _optional_text(join, "url"),
        _optional_text(join, "tel"), room, video,
    )  # fmt: skip
    if found.url is None and found.tel is None and found.room is None:
        raise ProtocolError("call join has none of url, tel and room")
    return found


def _is_state(value: object) -> TypeGuard[CallState]:
    return value in CALL_STATES


@dataclass(frozen=True, slots=True)
class CallReport:
    """What the car says about a call."""

    call_id: str
    state: CallState
    reason: str | None = None


def encode_call_report(report: CallReport) -> bytes:
    """The report's JSON body."""
    return orjson.dumps(
        {"type": "call", "call_id": report.call_id, "state": report.state, "reason": report.reason}
    )


def decode_call_report(payload: bytes) -> CallReport:
    """A call report; ProtocolError naming what is wrong."""
    body = json_object(payload, "call report")
    if body.get("type") != "call":
        raise ProtocolError(f"not a call report: type {body.get('type')!r}")
    call_id, state, reason = body.get("call_id"), body.get("state"), body.get("reason")
    if not isinstance(call_id, str) or not call_id:
        raise ProtocolError("call report needs call_id, a non-empty string")
    if not _is_state(state):
        raise ProtocolError(f"call report state {state!r} is not one of {', '.join(CALL_STATES)}")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise ProtocolError(f"call report reason must be a string of at most {MAX_REASON}")
    return CallReport(call_id, state, reason)
