"""Reading one JSON object off the wire, with the error a protocol message needs."""

from __future__ import annotations

from typing import Any, TypeGuard

import orjson

from carcloud_agent.errors import ProtocolError


def json_object(payload: bytes, what: str) -> dict[str, Any]:
    """The JSON object in `payload`; ProtocolError naming `what` for anything else."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ProtocolError(f"{what} must be a JSON object, got {type(body).__name__}")
    return body


def is_int(value: object) -> TypeGuard[int]:
    """An integer in JSON: true for 7, false for 7.0, "7" and true."""
    return type(value) is int
