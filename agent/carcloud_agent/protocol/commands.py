"""Commands, cloud → car on `vehicles/{vin}/commands/{id}`, and the car's answers on `.../result`.

    {"id": "cmd_4f0c…", "kind": "set_charge_limit", "params": {"percent": 80},
     "issued_at": "2026-11-24T10:15:00.000000Z", "expires_at": "2026-11-25T10:15:00.000000Z"}

    {"status": "received"}   {"status": "succeeded"}   {"status": "failed", "reason": "…"}

A car receives a command more than once (docs/protocol.md, "Commands") and answers a
repeated id with the answer it already gave. Kinds and their parameters are the
cloud's (carcloud/commands/kinds.py); the codec checks only the envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard, get_args

import orjson

from carcloud_agent.errors import ProtocolError, ValidationError
from carcloud_agent.protocol._json import json_object
from carcloud_agent.timeutil import format_us, parse_rfc3339_us

__all__ = [
    "RESULT_STATUSES",
    "Command",
    "CommandResult",
    "ResultStatus",
    "decode_command",
    "decode_result",
    "encode_command",
    "encode_result",
]

ResultStatus = Literal["received", "succeeded", "failed"]
RESULT_STATUSES: tuple[ResultStatus, ...] = get_args(ResultStatus)


@dataclass(frozen=True, slots=True)
class Command:
    """One command for a car; times are epoch microseconds (UTC)."""

    id: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    issued_at: int | None = None
    expires_at: int | None = None

    def expired(self, now_us: int) -> bool:
        """Whether its time to live has passed (a car then refuses to run it)."""
        return self.expires_at is not None and self.expires_at < now_us


def encode_command(command: Command) -> bytes:
    """The command message's JSON body."""
    return orjson.dumps(
        {
            "id": command.id,
            "kind": command.kind,
            "params": dict(command.params),
            "issued_at": format_us(command.issued_at),
            "expires_at": format_us(command.expires_at),
        }
    )


def _time(body: Mapping[str, Any], name: str) -> int | None:
    raw = body.get(name)
    if raw is None:
        return None
    try:
        return parse_rfc3339_us(raw, name)
    except ValidationError as exc:
        raise ProtocolError(f"command {exc}") from exc


def _text(body: Mapping[str, Any], name: str, what: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{what} needs {name}: a non-empty string, got {value!r}")
    return value


def decode_command(payload: bytes) -> Command:
    """A command message; ProtocolError naming what is wrong with it."""
    body = json_object(payload, "command")
    params = body.get("params")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise ProtocolError(f"command params must be an object, got {type(params).__name__}")
    return Command(
        id=_text(body, "id", "command"),
        kind=_text(body, "kind", "command"),
        params=params,
        issued_at=_time(body, "issued_at"),
        expires_at=_time(body, "expires_at"),
    )


def _is_status(value: object) -> TypeGuard[ResultStatus]:
    return value in RESULT_STATUSES


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A car's answer to one command."""

    status: ResultStatus
    reason: str | None = None

    @property
    def is_final(self) -> bool:
        """succeeded or failed: the car will not answer this command again differently."""
        return self.status != "received"


def encode_result(result: CommandResult) -> bytes:
    """The result message's JSON body (no reason key when there is none)."""
    body: dict[str, str] = {"status": result.status}
    if result.reason is not None:
        body["reason"] = result.reason
    return orjson.dumps(body)


def decode_result(payload: bytes) -> CommandResult:
    """A command result; ProtocolError unless status is received, succeeded or failed."""
    body = json_object(payload, "command result")
    status = body.get("status")
    if not _is_status(status):
        raise ProtocolError(
            f"command result status {status!r} is not one of {', '.join(RESULT_STATUSES)}"
        )
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ProtocolError(f"command result reason must be a string, got {reason!r}")
    return CommandResult(status, reason)
