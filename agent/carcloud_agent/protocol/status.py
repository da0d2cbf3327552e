"""The car's status, car → cloud on `vehicles/{vin}/status`: online, or gone (its will).

    {"online": true}

A car publishes `{"online": true}` after each connect, once it has subscribed; the
same topic carries its will, `{"online": false}`, which the server publishes when
the link drops without DISCONNECT. The control role resyncs a car that says online.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from carcloud_agent.errors import ProtocolError
from carcloud_agent.protocol._json import json_object

__all__ = ["OFFLINE", "ONLINE", "Status", "decode_status", "encode_status"]


@dataclass(frozen=True, slots=True)
class Status:
    """Whether the car is connected."""

    online: bool


def encode_status(status: Status) -> bytes:
    """The status message's JSON body."""
    return orjson.dumps({"online": status.online})


def decode_status(payload: bytes) -> Status:
    """A status message; ProtocolError unless it is {"online": true|false}."""
    body = json_object(payload, "status")
    online = body.get("online")
    if not isinstance(online, bool):
        raise ProtocolError(f"status needs online: true or false, got {online!r}")
    return Status(online)


ONLINE = encode_status(Status(True))
OFFLINE = encode_status(Status(False))  # the will
