"""Remote commands: send, follow, wait for, cancel, and stream their status."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from nats.aio.msg import Msg
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.routes.telemetry import parse_duration_us
from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.commands.dispatcher import request_dispatch
from carcloud.commands.events import CommandWaiter, announce, command_json
from carcloud.commands.kinds import KINDS, parse_command
from carcloud.errors import ValidationError
from carcloud.messaging import topics
from carcloud.services import Services
from carcloud.storage.models import CommandRecord
from carcloud.timeutil import now_us
from carcloud.vin import Vin

router = APIRouter()

MAX_TTL_US = 30 * 86_400 * 1_000_000
MAX_WAIT_US = 120 * 1_000_000
IDEMPOTENCY_KEY_MAX = 200


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(examples=["lock"], description="See GET /api/v1/command-kinds")
    params: dict[str, Any] = Field(default_factory=dict, examples=[{}])
    ttl: str | None = Field(
        default=None,
        examples=["2h"],
        description="How long the command may wait for an offline car (up to 30d); "
        "default per kind",
    )


class TransitionOut(BaseModel):
    status: str
    at: str | None
    reason: str | None = None


class CommandOut(BaseModel):
    id: str
    vin: str
    kind: str
    params: dict[str, Any]
    status: str = Field(description="queued, delivered, succeeded, failed, expired or cancelled")
    reason: str | None
    idempotency_key: str | None
    created_at: str | None
    expires_at: str | None
    delivered_at: str | None
    completed_at: str | None
    transitions: list[TransitionOut]

    @classmethod
    def of(cls, command: CommandRecord) -> CommandOut:
        return cls.model_validate(command_json(command))


def command_response(
    command: CommandRecord | dict[str, Any], status_code: int = status.HTTP_200_OK
) -> Response:
    """A command as JSON in the `CommandOut` shape, serialised once (the hot path)."""
    body = command if isinstance(command, dict) else command_json(command)
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


class ParamOut(BaseModel):
    name: str
    type: str
    required: bool
    default: Any = None
    min: float | None = None
    max: float | None = None
    description: str = ""


class CommandKindOut(BaseModel):
    name: str
    description: str
    params: list[ParamOut]
    default_ttl_s: int


# Seeded from the OS once. Ids only need to be unique (80 random bits): reading a
# command always checks its vehicle and brand. Not os.urandom per request: that
# syscall gives up the GIL, and under load the event loop waits to get it back.
_ids = random.Random()


def new_command_id() -> str:
    """A new command id, e.g. cmd_3f9a0c12d4e5b6a7c8d9."""
    return f"cmd_{_ids.getrandbits(80):020x}"


def _vin(raw: str) -> str:
    return str(Vin.parse(raw))


async def _await_final(
    svc: Services, waiter: CommandWaiter, command: CommandRecord, brand: str | None, deadline: float
) -> CommandRecord | dict[str, Any]:
    """The command once it is final, or as it is when the wait is over.

    `command` is its state read (or created) after `waiter` was registered, so no
    change can fall in between.
    """
    if command.is_final:
        return command
    announced = await waiter.wait(deadline - asyncio.get_running_loop().time())
    if announced is not None:
        return announced
    return await svc.storage.get_command(command.vin, command.id, brand)


async def _wait_for(
    svc: Services, vin: str, command_id: str, brand: str | None, deadline: float
) -> CommandRecord | dict[str, Any]:
    assert svc.commands is not None
    with svc.commands.waiting_for(command_id) as waiter:
        command = await svc.storage.get_command(vin, command_id, brand)
        return await _await_final(svc, waiter, command, brand, deadline)


def _deadline(wait_us: int) -> float:
    return asyncio.get_running_loop().time() + wait_us / 1e6


def _wait_us(wait: str | None) -> int | None:
    if wait is None:
        return None
    wait_us = parse_duration_us(wait, "wait")
    if wait_us > MAX_WAIT_US:
        raise ValidationError("wait may be at most 120s")
    return wait_us


WaitQuery = Annotated[
    str | None,
    Query(description="Return when the command is final or after this long, e.g. 30s (max 120s)"),
]


@router.get("/command-kinds", tags=["commands"])
async def command_kinds(who: CurrentPrincipal) -> list[CommandKindOut]:
    """Every command kind with its parameters (the schema requests are checked against)."""
    return [
        CommandKindOut(
            name=kind.name,
            description=kind.description,
            default_ttl_s=kind.default_ttl_s,
            params=[
                ParamOut(
                    name=p.name,
                    type=p.kind,
                    required=p.required,
                    default=p.default,
                    min=p.min,
                    max=p.max,
                    description=p.description,
                )
                for p in kind.params
            ],
        )
        for kind in KINDS.values()
    ]


@router.post(
    "/vehicles/{vin}/commands",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["commands"],
    response_model=CommandOut,
    responses={200: {"description": "An earlier command with the same Idempotency-Key"}},
)
async def send_command(
    vin: str,
    body: CommandIn,
    who: CurrentPrincipal,
    svc: CurrentServices,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    wait: WaitQuery = None,
) -> Response:
    """Queue a command; it reaches the car now, or when it is next online, within its TTL.

    With `wait`, the answer comes when the command is final (or the wait is over): one
    request for apps that want the outcome.
    """
    vin = _vin(vin)
    kind, params = parse_command(body.kind, body.params)
    ttl_us = (
        parse_duration_us(body.ttl, "ttl") if body.ttl is not None else kind.default_ttl_s * 10**6
    )
    if ttl_us > MAX_TTL_US:
        raise ValidationError(f"ttl {body.ttl} is longer than the maximum of 30d")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        raise ValidationError(f"Idempotency-Key must have 1 to {IDEMPOTENCY_KEY_MAX} characters")
    wait_us = _wait_us(wait)
    command_id = new_command_id()

    async def create() -> tuple[CommandRecord, bool]:
        command, created = await svc.storage.create_command(
            command_id, vin, who.brand, kind.name, dict(params), now_us() + ttl_us, idempotency_key
        )
        if created and svc.nats is not None:
            await announce(svc.nats, command)
            await request_dispatch(svc.nats, vin, command)
        return command, created

    if wait_us is None or svc.commands is None:
        command, created = await create()
        return command_response(
            command, status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        )
    deadline = _deadline(wait_us)
    with svc.commands.waiting_for(command_id) as waiter:
        command, created = await create()
        if created:
            final = await _await_final(svc, waiter, command, who.brand, deadline)
            return command_response(final, status.HTTP_202_ACCEPTED)
    # The same Idempotency-Key as an earlier command: that command, once final.
    return command_response(await _wait_for(svc, vin, command.id, who.brand, deadline))


@router.get("/vehicles/{vin}/commands", tags=["commands"])
async def list_commands(
    vin: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    status_: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CommandOut]:
    """A vehicle's commands, newest first."""
    commands = await svc.storage.list_commands(_vin(vin), who.brand, status_, limit)
    return [CommandOut.of(command) for command in commands]


@router.get("/vehicles/{vin}/commands/events", tags=["commands"])
async def command_events(
    vin: str, request: Request, who: CurrentPrincipal, svc: CurrentServices
) -> StreamingResponse:
    """Server-sent events: every status change of this vehicle's commands, as it happens."""
    vin = _vin(vin)
    await svc.storage.get_vehicle(vin, who.brand)
    if svc.nats is None:
        raise ValidationError("event streams need the platform's NATS connection")
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)

    async def on_event(msg: Msg) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(msg.data)

    subscription = await svc.nats.subscribe(topics.command_events_subject(vin), cb=on_event)
    await svc.nats.flush()

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b": carcloud command events\n\n"
            while not await request.is_disconnected():
                try:
                    data = await asyncio.wait_for(queue.get(), 15.0)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield b"event: command\ndata: " + data + b"\n\n"
        finally:
            await subscription.unsubscribe()

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/vehicles/{vin}/commands/{command_id}", tags=["commands"], response_model=CommandOut)
async def get_command(
    vin: str,
    command_id: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    wait: WaitQuery = None,
) -> Response:
    """A command and its transitions; with `wait`, once it is final (or the wait is over)."""
    vin = _vin(vin)
    wait_us = _wait_us(wait)
    if wait_us is None or svc.commands is None:
        return command_response(await svc.storage.get_command(vin, command_id, who.brand))
    return command_response(await _wait_for(svc, vin, command_id, who.brand, _deadline(wait_us)))


@router.post("/vehicles/{vin}/commands/{command_id}/cancel", tags=["commands"])
async def cancel_command(
    vin: str, command_id: str, who: CurrentPrincipal, svc: CurrentServices
) -> CommandOut:
    """Cancel a command that is not final yet (a car that already ran it still reports so)."""
    vin = _vin(vin)
    command = await svc.storage.get_command(vin, command_id, who.brand)
    if command.is_final:
        raise ValidationError(f"command {command_id} is already {command.status}")
    updated = await svc.storage.transition_command(
        command_id, "cancelled", now_us(), f"cancelled by {who.name}"
    )
    if updated is None:
        updated = await svc.storage.get_command(vin, command_id, who.brand)
    elif svc.nats is not None:
        await announce(svc.nats, updated)
    return CommandOut.of(updated)
