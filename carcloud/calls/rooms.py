"""carcloud's audio rooms: the rules around the media server's AudioBridge rooms.

A room belongs to a brand; rooms and present participants are counted per brand
against the limits of the settings. Whoever joins needs a join token of an invite
to that room (a car gets it on a card, a person in a link); carcloud's API does
the signalling with it (an SDP offer in, the answer out), so Janus is never exposed.
A token joins until it expires; once used, the same token rejoins for
`rejoin_grace_s` after its connection ended (a dropped link), and replaces a
connection that is still there (a link that dropped unnoticed). A room with nobody
in it for `close_after_s` is closed. A participant kicked by an operator is not a
dropped link: its token is revoked and joins no more.

Who is present is kept in the store, shared by every API process; the media
server's room is the truth it follows. A participant's media handle belongs to the
process that signalled its join, and that process hears its hangup; a leave or kick
through another process ends the connection by the room and participant id, and
every API process's sweep (`reconcile`) marks gone whoever the media server no
longer has in a room (the process holding the handle stopped, or missed the event).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any

from carcloud.calls.models import (
    MAX_ROOM_PARTICIPANTS,
    Invite,
    InviteKind,
    Participant,
    Room,
    RoomStatus,
    check_name,
    check_pin,
    hash_token,
    new_id,
    new_token,
)
from carcloud.calls.store import CallStore
from carcloud.errors import (
    AuthError,
    CarcloudError,
    ConflictError,
    ForbiddenError,
    MessagingError,
    NotFoundError,
    ValidationError,
)
from carcloud.media.audiobridge import AudioBridge, BridgeParticipant
from carcloud.timeutil import now_us

log = logging.getLogger(__name__)

SECOND = 1_000_000
RECONCILE_AFTER_S = 2  # a participant younger than this is left to its join
DEFAULT_INVITE_TTL_S = 3600
MAX_INVITE_TTL_S = 7 * 86_400


class MediaUnavailable(MessagingError):
    """Audio rooms need the media server, and this process has none."""


@dataclass(frozen=True)
class RoomLimits:
    """Per-brand limits and the timers of rooms (from the settings)."""

    max_rooms_per_brand: int = 20
    max_participants_per_brand: int = 200
    rejoin_grace_s: int = 120
    close_after_s: int = 300


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    """An invite with its token, which is shown this once."""

    invite: Invite
    token: str
    link: str

    def document(self) -> dict[str, Any]:
        """The JSON form, with the token and the link."""
        return {**self.invite.document(), "token": self.token, "link": self.link}


@dataclass(frozen=True, slots=True)
class Joined:
    """A participant that joined, and the media server's SDP answer."""

    participant: Participant
    answer_sdp: str


class RoomService:
    """Rooms, invites, joins and leaves; the media server is attached once it runs."""

    def __init__(self, store: CallStore, limits: RoomLimits | None = None) -> None:
        self.store = store
        self.limits = limits or RoomLimits()
        self.bridge: AudioBridge | None = None
        self.public_url = ""

    def attach(self, bridge: AudioBridge, public_url: str) -> None:
        """Use this media server; links to the room page start with `public_url`."""
        self.bridge = bridge
        self.public_url = public_url.rstrip("/")

    def _media(self) -> AudioBridge:
        if self.bridge is None:
            raise MediaUnavailable(
                "audio rooms are off on this platform: install the Debian package janus, "
                "or start carcloud with --janus-url of a media server"
            )
        return self.bridge

    # ---- rooms --------------------------------------------------------------------------

    async def create_room(
        self, brand: str, name: str, pin: str | None, max_participants: int
    ) -> Room:
        """A new open room on the media server, within the brand's room limit."""
        if not 2 <= max_participants <= MAX_ROOM_PARTICIPANTS:
            raise ValidationError(f"max_participants: 2 to {MAX_ROOM_PARTICIPANTS}")
        checked_pin = check_pin(pin)
        bridge = self._media()
        open_rooms = await self.store.count_open_rooms(brand)
        if open_rooms >= self.limits.max_rooms_per_brand:
            raise ConflictError(
                f"brand {brand!r} has {open_rooms} open rooms, its limit "
                "(CARCLOUD_MAX_ROOMS_PER_BRAND); close one first"
            )
        now = now_us()
        room = Room(
            id=new_id("room"),
            brand=brand,
            name=check_name(name),
            max_participants=max_participants,
            status=RoomStatus.OPEN,
            created_at=now,
            pin_hash=hash_token(checked_pin) if checked_pin else None,
            empty_since=now,
        )
        await bridge.create_room(room.id, room.name)
        try:
            return await self.store.create_room(room)
        except CarcloudError:
            await bridge.destroy_room(room.id)
            raise

    async def get_room(self, room_id: str, brand: str | None) -> Room:
        """One room."""
        return await self.store.get_room(room_id, brand)

    async def list_rooms(self, brand: str | None, status: RoomStatus | None) -> list[Room]:
        """Rooms, newest first."""
        return await self.store.list_rooms(brand, status)

    async def _participants(self, room: Room) -> list[dict[str, Any]]:
        present = await self.store.list_participants(room.id, present_only=True)
        live: dict[str, BridgeParticipant] = {}
        if room.status == RoomStatus.OPEN and present:
            live = {p.id: p for p in await self._media().participants(room.id)}
        participants = []
        for participant in present:
            state = live.get(participant.media_id)
            participants.append(
                {
                    "id": participant.id,
                    "kind": str(participant.kind),
                    "display": participant.display,
                    "vin": participant.vin,
                    "joined_at": participant.joined_at,
                    "connected": bool(state and state.connected),
                    "talking": bool(state and state.talking),
                    "muted": bool(state and state.muted),
                }
            )
        return participants

    async def room_view(self, room_id: str, brand: str | None) -> dict[str, Any]:
        """A room with its present participants and their talking/muted state."""
        room = await self.store.get_room(room_id, brand)
        return {**room.document(), "participants": await self._participants(room)}

    # ---- what a token holder sees (the room page) ----------------------------------------

    async def lobby(self, room_id: str, token: str) -> dict[str, Any]:
        """Before joining: the room's name, whether a PIN is asked, who the token is for."""
        room, invite = await self._admit(room_id, token, pin=None, check_pin=False)
        return {
            "room": {"id": room.id, "name": room.name, "status": str(room.status)},
            "needs_pin": room.pin_hash is not None and invite.kind == InviteKind.PERSON,
            "display": invite.display,
            "kind": str(invite.kind),
            "expires_at": invite.document()["expires_at"],
        }

    async def roster(self, room_id: str, token: str) -> dict[str, Any]:
        """Who is in the room, for a token whose participant is in it; `you` is its id."""
        invite = await self._invite(room_id, token)
        latest = await self.store.latest_participant(invite.id)
        if latest is None or not latest.present:
            return {"you": None, "participants": []}
        room = await self.store.get_room(room_id, None)
        # Other participants' cars stay anonymous to people: no VIN on the page.
        participants = [
            {key: value for key, value in entry.items() if key != "vin"}
            for entry in await self._participants(room)
        ]
        return {"you": latest.id, "participants": participants}

    async def mute_self(self, room_id: str, token: str, muted: bool) -> str:
        """The token's participant mutes (or unmutes) itself for everyone; its id."""
        invite = await self._invite(room_id, token)
        latest = await self.store.latest_participant(invite.id)
        if latest is None or not latest.present:
            raise ConflictError("you are not in this room: join first")
        await self._media().mute(room_id, latest.media_id, muted)
        return latest.id

    async def close_room(self, room_id: str, brand: str | None) -> Room:
        """Close a room: everyone in it is disconnected."""
        room = await self.store.get_room(room_id, brand)
        if room.status == RoomStatus.CLOSED:
            return room
        now = now_us()
        if self.bridge is not None:
            await self.bridge.destroy_room(room_id)
        for participant in await self.store.list_participants(room_id, present_only=True):
            await self.store.participant_left(participant.id, now)
        await self.store.save_room_state(room_id, RoomStatus.CLOSED, None, now)
        return await self.store.get_room(room_id, brand)

    async def close_idle(self, now: int | None = None) -> list[str]:
        """Close every room that has been empty for `close_after_s`; their ids."""
        now = now_us() if now is None else now
        closed = []
        for room in await self.store.rooms_empty_since(now - self.limits.close_after_s * SECOND):
            await self.close_room(room.id, None)
            log.info("room %s closed: empty for %d s", room.id, self.limits.close_after_s)
            closed.append(room.id)
        return closed

    async def usage(self, brand: str) -> dict[str, int]:
        """What a brand uses of its limits."""
        return {
            "open_rooms": await self.store.count_open_rooms(brand),
            "max_rooms": self.limits.max_rooms_per_brand,
            "participants": await self.store.count_present(brand),
            "max_participants": self.limits.max_participants_per_brand,
        }

    # ---- invites -----------------------------------------------------------------------

    async def invite(
        self,
        room_id: str,
        brand: str | None,
        kind: InviteKind,
        display: str,
        vin: str | None = None,
        ttl_s: int = DEFAULT_INVITE_TTL_S,
    ) -> IssuedInvite:
        """A join token for one person or car, valid for `ttl_s`."""
        if not 60 <= ttl_s <= MAX_INVITE_TTL_S:
            raise ValidationError(f"ttl_s: 60 to {MAX_INVITE_TTL_S}")
        room = await self.store.get_room(room_id, brand)
        if room.status != RoomStatus.OPEN:
            raise ConflictError(f"room {room_id} is closed")
        token = new_token()
        now = now_us()
        invite = Invite(
            new_id("inv"), room_id, kind, check_name(display, "display"), hash_token(token),
            now, now + ttl_s * SECOND, vin,
        )  # fmt: skip
        await self.store.create_invite(invite)
        link = f"{self.public_url}/rooms/{room_id}#token={token}"
        return IssuedInvite(invite, token, link)

    # ---- joining -----------------------------------------------------------------------

    async def _invite(self, room_id: str, token: str) -> Invite:
        invite = await self.store.find_invite(hash_token(token))
        if invite is None or invite.room_id != room_id:
            raise AuthError("unknown join token for this room")
        if invite.revoked_at is not None:
            raise ForbiddenError(
                "you were removed from this room by an operator; this join token no longer works"
            )
        return invite

    async def _admit(
        self, room_id: str, token: str, pin: str | None, check_pin: bool = True
    ) -> tuple[Room, Invite]:
        invite = await self._invite(room_id, token)
        room = await self.store.get_room(room_id, None)
        if room.status != RoomStatus.OPEN:
            raise ForbiddenError(f"room {room_id} is closed")
        now = now_us()
        if now >= invite.expires_at:
            latest = await self.store.latest_participant(invite.id)
            grace = self.limits.rejoin_grace_s * SECOND
            rejoin = latest is not None and (
                latest.left_at is None or now - latest.left_at <= grace
            )
            if not rejoin:
                raise AuthError("this join token has expired")
        needs_pin = check_pin and room.pin_hash is not None and invite.kind == InviteKind.PERSON
        if needs_pin and (
            pin is None or not hmac.compare_digest(hash_token(pin), room.pin_hash or "")
        ):
            raise ForbiddenError("this room needs its PIN")
        return room, invite

    async def join(self, room_id: str, token: str, offer_sdp: str, pin: str | None) -> Joined:
        """Join with a token and an SDP offer; the answer comes back (no Janus exposed)."""
        room, invite = await self._admit(room_id, token, pin)
        bridge = self._media()
        # A connection of the same token that is still there is replaced, not doubled.
        previous = await self.store.latest_participant(invite.id)
        if previous is not None and previous.present:
            await self._disconnect(previous)
        present = await self.store.list_participants(room_id, present_only=True)
        if len(present) >= room.max_participants:
            raise ConflictError(f"room {room_id} is full ({room.max_participants} participants)")
        in_brand = await self.store.count_present(room.brand)
        if in_brand >= self.limits.max_participants_per_brand:
            raise ConflictError(
                f"brand {room.brand!r} has {in_brand} participants in its rooms, its limit "
                "(CARCLOUD_MAX_PARTICIPANTS_PER_BRAND)"
            )
        handle, media_id, answer = await bridge.join(room_id, invite.display, offer_sdp)
        participant = Participant(
            new_id("par"), room_id, invite.id, invite.kind, invite.display, now_us(),
            media_id, handle, invite.vin,
        )  # fmt: skip
        try:
            await self.store.add_participant(participant)
        except CarcloudError:
            await bridge.leave(handle)
            raise
        return Joined(participant, answer)

    async def leave(self, room_id: str, token: str) -> Participant | None:
        """The participant of a token hangs up."""
        invite = await self.store.find_invite(hash_token(token))
        if invite is None or invite.room_id != room_id:
            raise AuthError("unknown join token for this room")
        latest = await self.store.latest_participant(invite.id)
        if latest is None or not latest.present:
            return None
        return await self._disconnect(latest)

    async def _disconnect(self, participant: Participant) -> Participant | None:
        if self.bridge is not None:
            # Whichever API process holds the handle: by room and id from elsewhere.
            await self.bridge.hangup(
                participant.room_id, participant.media_id, participant.media_handle
            )
        return await self.store.participant_left(participant.id, now_us())

    async def reconcile(self, now: int | None = None) -> list[str]:
        """Mark gone the present participants the media server no longer has; their ids.

        Hangups reach the API process that holds a participant's handle only; this
        makes the store follow the media server whichever process that was, also
        when it stopped or missed the event.
        """
        if self.bridge is None:
            return []
        now = now_us() if now is None else now
        settled = now - RECONCILE_AFTER_S * SECOND
        gone: list[str] = []
        for room in await self.store.list_rooms(None, RoomStatus.OPEN):
            present = [
                participant
                for participant in await self.store.list_participants(room.id, present_only=True)
                if participant.joined_at <= settled
            ]
            if not present:
                continue
            try:
                live = {entry.id for entry in await self.bridge.participants(room.id)}
            except NotFoundError:
                live = set()  # the media server lost the room (it restarted): nobody is in it
            for participant in present:
                if participant.media_id in live:
                    continue
                if await self.store.participant_left(participant.id, now) is not None:
                    log.info(
                        "room %s: %s is no longer on the media server, marked gone",
                        room.id, participant.id,
                    )  # fmt: skip
                    gone.append(participant.id)
        return gone

    async def media_hangup(self, handle: int) -> None:
        """The media server says a participant's connection ended (link dropped, hung up)."""
        participant = await self.store.participant_by_handle(handle)
        if participant is not None:
            await self.store.participant_left(participant.id, now_us())

    # ---- moderation ----------------------------------------------------------------------

    async def _present(self, room_id: str, brand: str | None, participant_id: str) -> Participant:
        await self.store.get_room(room_id, brand)
        for participant in await self.store.list_participants(room_id, present_only=True):
            if participant.id == participant_id:
                return participant
        raise NotFoundError(f"participant {participant_id} is not in room {room_id}")

    async def mute(self, room_id: str, brand: str | None, participant_id: str, muted: bool) -> None:
        """Mute (or unmute) a participant for everyone in the room."""
        participant = await self._present(room_id, brand, participant_id)
        await self._media().mute(room_id, participant.media_id, muted)

    async def kick(self, room_id: str, brand: str | None, participant_id: str) -> None:
        """Remove a participant from the room; its token cannot join again (unlike a drop)."""
        participant = await self._present(room_id, brand, participant_id)
        # Revoked first: a client that rejoins the moment its link ends finds it refused.
        await self.store.revoke_invite(participant.invite_id, now_us())
        with contextlib.suppress(NotFoundError):
            await self._media().kick(room_id, participant.media_id)
        await self._disconnect(participant)
