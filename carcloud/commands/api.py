"""Remote commands: send, follow, wait for, cancel, and stream their status."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.routes.telemetry import parse_duration_us
from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.commands.events import COMMAND_CHANGED, command_json
from carcloud.commands.kinds import KINDS
from carcloud.commands.models import CommandRecord
from carcloud.events.api import event_stream
from carcloud.timeutil import format_us
from carcloud.vin import Vin

router = APIRouter()


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


def _vin(raw: str) -> str:
    return str(Vin.parse(raw))


def _wait_us(wait: str | None) -> int | None:
    return None if wait is None else parse_duration_us(wait, "wait")


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
    ttl_us = parse_duration_us(body.ttl, "ttl") if body.ttl is not None else None
    command, created = await svc.commands.send(
        _vin(vin),
        who.brand,
        body.kind,
        body.params,
        ttl_us=ttl_us,
        idempotency_key=idempotency_key,
        wait_us=_wait_us(wait),
    )
    return command_response(command, status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


@router.get("/vehicles/{vin}/commands", tags=["commands"])
async def list_commands(
    vin: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    status_: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CommandOut]:
    """A vehicle's commands, newest first."""
    commands = await svc.commands.list_commands(_vin(vin), who.brand, status_, limit)
    return [CommandOut.of(command) for command in commands]


@router.get("/vehicles/{vin}/commands/events", tags=["commands"])
async def command_events(
    vin: str, request: Request, who: CurrentPrincipal, svc: CurrentServices
) -> StreamingResponse:
    """Server-sent events: every status change of this vehicle's commands, as it happens."""
    vin = _vin(vin)
    await svc.registry.get_vehicle(vin, who.brand)
    # From the newest event now, read before the stream starts: nothing after it is missed.
    follow = svc.events.follow(await svc.events.last_id(), who.brand, (COMMAND_CHANGED,), vin)

    return event_stream(
        request,
        follow,
        lambda event: ("command", {**event.data, "at": format_us(event.at)}),
        b": carcloud command events",
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
    return command_response(
        await svc.commands.get(_vin(vin), command_id, who.brand, _wait_us(wait))
    )


@router.post("/vehicles/{vin}/commands/{command_id}/cancel", tags=["commands"])
async def cancel_command(
    vin: str, command_id: str, who: CurrentPrincipal, svc: CurrentServices
) -> CommandOut:
    """Cancel a command that is not final yet (a car that already ran it still reports so)."""
    return CommandOut.of(await svc.commands.cancel(_vin(vin), command_id, who.brand, who.name))
