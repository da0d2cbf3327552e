"""Calls and audio rooms over REST.

Rooms and calls are scoped by brand like every read. Joining a room is the one call
without an API key: the invite's join token is the credential, and carcloud does
the signalling (an SDP offer in, the media server's answer out).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.calls.models import InviteKind, RoomStatus
from carcloud.calls.rooms import DEFAULT_INVITE_TTL_S
from carcloud.errors import ValidationError

router = APIRouter()


class CallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(default=None, description="An entry of the car's agenda")
    url: str | None = Field(default=None, description="A meeting link, or a tel: URI")
    tel: str | None = Field(
        default=None,
        examples=["tel:+4930123456,,123456789#"],
        description="The dial-in, alone or as the fallback of url",
    )
    title: str = ""


class RoomIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    brand: str | None = Field(default=None, description="Needed with an operator key")
    pin: str | None = Field(default=None, description="4 to 12 digits, asked of people")
    max_participants: int = 10


class InviteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vehicles: list[str] = Field(default_factory=list, description="VINs of the room's brand")
    people: list[str] = Field(default_factory=list, description="Display names")
    ttl_s: int = DEFAULT_INVITE_TTL_S


class JoinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str
    sdp: str = Field(description="The WebRTC offer (audio), with its ICE candidates")
    pin: str | None = None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str


class SelfMuteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str
    muted: bool = True


class MuteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    muted: bool = True


# ---- calls from the car ----------------------------------------------------------------


@router.post("/vehicles/{vin}/calls", tags=["calls"], status_code=status.HTTP_201_CREATED)
async def join_call(
    vin: str, body: CallIn, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Send the car a join action now: a meeting of its agenda, a link or a tel: URI."""
    call = await svc.calls.join(vin, who.brand, body.event_id, body.url, body.tel, body.title)
    return call.document()


@router.get("/vehicles/{vin}/calls", tags=["calls"])
async def list_calls(
    vin: str,
    who: CurrentPrincipal,
    svc: CurrentServices,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The car's calls, newest first, with what the car reported."""
    calls = await svc.calls.list_calls(vin, who.brand, limit)
    return {"calls": [call.document() for call in calls]}


@router.get("/vehicles/{vin}/calls/{call_id}", tags=["calls"])
async def get_call(
    vin: str, call_id: str, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """One call."""
    return (await svc.calls.get_call(vin, call_id, who.brand)).document()


# ---- rooms -----------------------------------------------------------------------------


@router.post("/rooms", tags=["rooms"], status_code=status.HTTP_201_CREATED)
async def create_room(body: RoomIn, who: CurrentPrincipal, svc: CurrentServices) -> Any:
    """Open an audio room on the media server."""
    brand = body.brand or who.brand
    if brand is None:
        raise ValidationError("brand: an operator key must name the room's brand")
    who.check_brand(brand)
    room = await svc.rooms.create_room(brand, body.name, body.pin, body.max_participants)
    return room.document()


@router.get("/rooms", tags=["rooms"])
async def list_rooms(
    who: CurrentPrincipal,
    svc: CurrentServices,
    status_filter: Annotated[RoomStatus | None, Query(alias="status")] = None,
) -> dict[str, Any]:
    """Rooms the caller may see, newest first."""
    rooms = await svc.rooms.list_rooms(who.brand, status_filter)
    return {"rooms": [room.document() for room in rooms]}


@router.get("/room-usage/{brand}", tags=["rooms"])
async def room_usage(brand: str, who: CurrentPrincipal, svc: CurrentServices) -> Any:
    """What a brand uses of its room and participant limits."""
    who.check_brand(brand)
    return await svc.rooms.usage(brand)


@router.get("/rooms/{room_id}", tags=["rooms"])
async def get_room(room_id: str, who: CurrentPrincipal, svc: CurrentServices) -> Any:
    """A room and who is in it: connected, talking, muted."""
    return await svc.rooms.room_view(room_id, who.brand)


@router.delete("/rooms/{room_id}", tags=["rooms"])
async def close_room(room_id: str, who: CurrentPrincipal, svc: CurrentServices) -> Any:
    """Close a room; everyone in it is disconnected."""
    return (await svc.rooms.close_room(room_id, who.brand)).document()


@router.post("/rooms/{room_id}/invite", tags=["rooms"], status_code=status.HTTP_201_CREATED)
async def invite(
    room_id: str, body: InviteIn, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Invite cars (a join action with a join token) and people (a link to the room page)."""
    if not body.vehicles and not body.people:
        raise ValidationError("invite at least one of vehicles and people")
    invites = []
    for vin in body.vehicles:
        call, issued = await svc.calls.invite_vehicle(room_id, who.brand, vin)
        invites.append({**issued.document(), "call_id": call.id})
    for name in body.people:
        issued = await svc.rooms.invite(
            room_id, who.brand, InviteKind.PERSON, name, None, body.ttl_s
        )
        invites.append(issued.document())
    return {"invites": invites}


@router.post("/rooms/{room_id}/participants/{participant_id}/mute", tags=["rooms"])
async def mute(
    room_id: str, participant_id: str, body: MuteIn, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Mute or unmute a participant for everyone."""
    await svc.rooms.mute(room_id, who.brand, participant_id, body.muted)
    return {"participant_id": participant_id, "muted": body.muted}


@router.post("/rooms/{room_id}/participants/{participant_id}/kick", tags=["rooms"])
async def kick(
    room_id: str, participant_id: str, who: CurrentPrincipal, svc: CurrentServices
) -> dict[str, Any]:
    """Remove a participant from the room."""
    await svc.rooms.kick(room_id, who.brand, participant_id)
    return {"participant_id": participant_id, "kicked": True}


@router.post("/rooms/{room_id}/join", tags=["rooms"])
async def join_room(room_id: str, body: JoinIn, svc: CurrentServices) -> dict[str, Any]:
    """Join with an invite's token and an SDP offer; the SDP answer comes back."""
    joined = await svc.rooms.join(room_id, body.token, body.sdp, body.pin)
    return {"participant_id": joined.participant.id, "type": "answer", "sdp": joined.answer_sdp}


@router.post("/rooms/{room_id}/leave", tags=["rooms"])
async def leave_room(room_id: str, body: TokenIn, svc: CurrentServices) -> dict[str, Any]:
    """Hang up the connection of a token."""
    left = await svc.rooms.leave(room_id, body.token)
    return {"left": left is not None}


# ---- the room page: what a token holder may ask ------------------------------------------


@router.post("/rooms/{room_id}/lobby", tags=["rooms"])
async def lobby(room_id: str, body: TokenIn, svc: CurrentServices) -> dict[str, Any]:
    """Before joining: the room's name, whether its PIN is asked, who the token is for."""
    return await svc.rooms.lobby(room_id, body.token)


@router.post("/rooms/{room_id}/roster", tags=["rooms"])
async def roster(room_id: str, body: TokenIn, svc: CurrentServices) -> dict[str, Any]:
    """Who is in the room (talking, muted), for the token's participant while it is in it."""
    return await svc.rooms.roster(room_id, body.token)


@router.post("/rooms/{room_id}/self-mute", tags=["rooms"])
async def mute_self(room_id: str, body: SelfMuteIn, svc: CurrentServices) -> dict[str, Any]:
    """The token's participant mutes or unmutes itself for everyone."""
    participant_id = await svc.rooms.mute_self(room_id, body.token, body.muted)
    return {"participant_id": participant_id, "muted": body.muted}
