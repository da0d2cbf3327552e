"""What the calls slice needs persisted: rooms, invites, participants and calls."""

from __future__ import annotations

from typing import Protocol

from carcloud.calls.models import Call, Invite, Participant, Room, RoomStatus


class CallStore(Protocol):
    """Rooms (scoped by brand: None sees every brand), their invites and participants, calls."""

    async def create_room(self, room: Room) -> Room:
        """Insert a room; NotFoundError if its brand does not exist."""
        ...

    async def get_room(self, room_id: str, brand: str | None) -> Room:
        """One room; NotFoundError if missing or of another brand."""
        ...

    async def list_rooms(self, brand: str | None, status: RoomStatus | None) -> list[Room]:
        """Rooms, newest first."""
        ...

    async def save_room_state(
        self, room_id: str, status: RoomStatus, empty_since: int | None, closed_at: int | None
    ) -> None:
        """Record a room's status and since when it is empty."""
        ...

    async def count_open_rooms(self, brand: str) -> int:
        """Open rooms of a brand."""
        ...

    async def count_present(self, brand: str) -> int:
        """Participants present in the open rooms of a brand."""
        ...

    async def rooms_empty_since(self, before: int) -> list[Room]:
        """Open rooms empty since `before` or earlier."""
        ...

    async def create_invite(self, invite: Invite) -> None:
        """Insert an invite."""
        ...

    async def find_invite(self, token_hash: str) -> Invite | None:
        """The invite of a token's hash."""
        ...

    async def revoke_invite(self, invite_id: str, at: int) -> None:
        """Stop an invite's token from joining again (its participant was kicked)."""
        ...

    async def add_participant(self, participant: Participant) -> None:
        """A new connection to a room; the room is no longer empty."""
        ...

    async def participant_left(self, participant_id: str, at: int) -> Participant | None:
        """Mark a participant gone (if present); the room's empty_since when it was the last."""
        ...

    async def list_participants(self, room_id: str, present_only: bool) -> list[Participant]:
        """A room's participants in joining order."""
        ...

    async def latest_participant(self, invite_id: str) -> Participant | None:
        """The newest connection made with an invite."""
        ...

    async def participant_by_handle(self, media_handle: int) -> Participant | None:
        """The present participant on a media server handle."""
        ...

    async def create_call(self, call: Call) -> Call:
        """Insert a call; NotFoundError if its vehicle does not exist."""
        ...

    async def get_call(self, call_id: str, brand: str | None) -> Call:
        """One call; NotFoundError if missing or of another brand."""
        ...

    async def list_calls(self, vin: str, brand: str | None, limit: int) -> list[Call]:
        """A vehicle's calls, newest first."""
        ...

    async def save_call(self, call: Call) -> None:
        """Record a call's state, command, reason and times."""
        ...
