"""Asking the control role to deliver now, and what a car receives.

The database is the durable truth of what a car should get; a dispatch request
only makes the control role send it at once instead of at the car's next
reconnect, so it is a plain (best-effort) NATS publish.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient

from carcloud.commands.models import CommandRecord
from carcloud.messaging import topics
from carcloud.twins.models import Twin
from carcloud_agent.protocol.commands import Command, encode_command
from carcloud_agent.protocol.twin import Desired, encode_desired


def command_message(command: CommandRecord) -> bytes:
    """What the car receives on vehicles/{vin}/commands/{id} (protocol.commands)."""
    return encode_command(
        Command(
            id=command.id,
            kind=command.kind,
            params=command.params,
            issued_at=command.created_at,
            expires_at=command.expires_at,
        )
    )


def desired_message(twin: Twin) -> bytes:
    """What the car receives on vehicles/{vin}/twin/desired: always the full document."""
    return encode_desired(Desired(twin.desired_version, twin.desired))


async def request_dispatch(nc: NatsClient, vin: str, command: CommandRecord | None = None) -> None:
    """Ask the control role to send a command (or, with none, the desired twin) now."""
    body: dict[str, Any] = {"vin": vin}
    if command is not None:
        # The command travels along: the control role need not read it back.
        body["command_id"] = command.id
        body["message"] = command_message(command).decode()
    else:
        body["twin"] = True
    with contextlib.suppress(nats.errors.Error):
        await nc.publish(topics.DISPATCH, json.dumps(body).encode())
