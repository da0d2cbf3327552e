"""The events router: a page of events by id, and a server-sent event stream that resumes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.errors import ValidationError
from carcloud.events.models import EVENT_TYPES, DomainEvent, check_event_type
from carcloud.vin import Vin

router = APIRouter()


class EventOut(BaseModel):
    id: int = Field(description="Orders events; resume after the last id you saw")
    type: str = Field(examples=["command.status_changed"])
    brand: str | None
    vin: str | None
    at: str | None
    data: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventOut]
    last_id: int = Field(description="Pass as ?after= for the next page")


class EventTypeOut(BaseModel):
    type: str
    description: str


TypeQuery = Annotated[
    list[str] | None,
    Query(
        alias="type",
        description="Only these types; a prefix such as `command` or `vehicle.*` matches a group",
    ),
]


def _vin(raw: str | None) -> str | None:
    return None if raw is None else str(Vin.parse(raw))


@router.get("/event-types", tags=["events"])
async def event_types(who: CurrentPrincipal) -> list[EventTypeOut]:
    """Every event type carcloud produces (docs/events.md has their payloads)."""
    return [EventTypeOut(type=name, description=text) for name, text in EVENT_TYPES.items()]


@router.get("/events", tags=["events"])
async def list_events(
    who: CurrentPrincipal,
    svc: CurrentServices,
    after: Annotated[int, Query(ge=0, description="Events with a greater id")] = 0,
    types: TypeQuery = None,
    vin: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    """Events the caller may see (a brand key: its brand's), oldest first."""
    events = await svc.events.list_events(after, who.brand, types or (), _vin(vin), limit)
    return EventPage(
        events=[EventOut.model_validate(event.to_json()) for event in events],
        last_id=events[-1].id if events else after,
    )


@router.get(
    "/events/stream",
    tags=["events"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(
    request: Request,
    who: CurrentPrincipal,
    svc: CurrentServices,
    after: Annotated[
        int | None, Query(ge=0, description="Start after this id (default: from now on)")
    ] = None,
    types: TypeQuery = None,
    vin: str | None = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-sent events as they commit; reconnecting with Last-Event-ID resumes without gaps."""
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise ValidationError(f"Last-Event-ID {last_event_id!r} is not an event id")
        after = int(last_event_id)
    for name in types or ():
        check_event_type(name)  # a bad filter is a 422, before the stream starts
    if after is None:  # from now on: the newest id read before the stream starts
        after = await svc.events.last_id()
    follow = svc.events.follow(after, who.brand, types or (), _vin(vin))

    return event_stream(request, follow, lambda event: (event.type, event.to_json()))


def event_stream(
    request: Request,
    follow: AsyncIterator[DomainEvent | None],
    render: Callable[[DomainEvent], tuple[str, object]],
    greeting: bytes = b": carcloud events",
) -> StreamingResponse:
    """Events as server-sent events: `id:` the event id, `event:` and `data:` from `render`."""

    async def stream() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n" + greeting + b"\n\n"
        async for event in follow:
            if await request.is_disconnected():
                return
            if event is None:
                yield b": keep-alive\n\n"
                continue
            name, body = render(event)
            yield f"id: {event.id}\nevent: {name}\ndata: ".encode() + orjson.dumps(body) + b"\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
