"""Remote commands: send, follow, wait for, cancel, and stream their status."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.routes.telemetry import parse_duration_us
from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.commands.dispatcher import announce, request_dispatch
from carcloud.commands.kinds import KINDS, parse_command
from carcloud.errors import ValidationError
from carcloud.messaging import topics
from carcloud.services import Services
from carcloud.storage.models import CommandRecord
from carcloud.timeutil import format_us, now_us
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
        return cls(
            id=command.id,
            vin=command.vin,
            kind=command.kind,
            params=command.params,
            status=command.status,
            reason=command.reason,
            idempotency_key=command.idempotency_key,
            created_at=format_us(command.created_at),
            expires_at=format_us(command.expires_at),
            delivered_at=format_us(command.delivered_at),
            completed_at=format_us(command.completed_at),
            transitions=[
                TransitionOut(status=t.status, at=format_us(t.at), reason=t.reason)
                for t in command.transitions
            ],
        )


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


def _vin(raw: str) -> str:
    return str(Vin.parse(raw))


class _Waiter:
    """Wakes when a command's status changes; subscribed before its state is read."""

    def __init__(self, svc: Services, vin: str, command_id: str) -> None:
        self.svc, self.vin, self.command_id = svc, vin, command_id
        self.changed = asyncio.Event()
        self.subscription: Subscription | None = None

    async def __aenter__(self) -> _Waiter:
        assert self.svc.nats is not None

        async def on_event(msg: Msg) -> None:
            self.changed.set()

        self.subscription = await self.svc.nats.subscribe(
            topics.command_events_subject(self.vin, self.command_id), cb=on_event
        )
        await self.svc.nats.flush()  # the server knows the subscription before we read
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.subscription is not None:
            await self.subscription.unsubscribe()

    async def final(
        self, brand: str | None, wait_us: int, fresh: CommandRecord | None = None
    ) -> CommandRecord:
        """The command once it is final, or as it is when the wait is over.

        `fresh` is the command as just created: nothing can have happened to it before
        the subscription, so the first read is skipped.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_us / 1e6
        while True:
            if fresh is not None:
                command, fresh = fresh, None
            else:
                self.changed.clear()  # before reading: a change after the read wakes us
                command = await self.svc.storage.get_command(self.vin, self.command_id, brand)
            left = deadline - loop.time()
            if command.is_final or left <= 0:
                return command
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)


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
    responses={200: {"description": "An earlier command with the same Idempotency-Key"}},
)
async def send_command(
    vin: str,
    body: CommandIn,
    response: Response,
    who: CurrentPrincipal,
    svc: CurrentServices,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    wait: WaitQuery = None,
) -> CommandOut:
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
    command_id = f"cmd_{secrets.token_hex(10)}"

    async def create() -> tuple[CommandRecord, bool]:
        command, created = await svc.storage.create_command(
            command_id, vin, who.brand, kind.name, dict(params), now_us() + ttl_us, idempotency_key
        )
        if not created:
            response.status_code = status.HTTP_200_OK
        elif svc.nats is not None:
            await announce(svc.nats, command)
            await request_dispatch(svc.nats, vin, command)
        return command, created

    if wait_us is None or svc.nats is None:
        return CommandOut.of((await create())[0])
    async with _Waiter(svc, vin, command_id) as waiter:
        command, created = await create()
        if not created:
            async with _Waiter(svc, vin, command.id) as earlier:
                return CommandOut.of(await earlier.final(who.brand, wait_us))
        return CommandOut.of(await waiter.final(who.brand, wait_us, fresh=command))


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


@router.get("/vehicles/{vin}/commands/{command_id}", tags=["commands"])
async def get_command(
    vin: str,
    command_id: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    wait: WaitQuery = None,
) -> CommandOut:
    """A command and its transitions; with `wait`, once it is final (or the wait is over)."""
    vin = _vin(vin)
    wait_us = _wait_us(wait)
    if wait_us is None or svc.nats is None:
        return CommandOut.of(await svc.storage.get_command(vin, command_id, who.brand))
    async with _Waiter(svc, vin, command_id) as waiter:
        return CommandOut.of(await waiter.final(who.brand, wait_us))


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
