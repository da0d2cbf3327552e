"""Rows of the rooms and calls tables, shared by both backends: one SQL, one decoding.

The statements are written with `?` placeholders; PostgreSQL runs them through
`rows.numbered` ($1, $2, …).
"""

from __future__ import annotations

from typing import Any

from carcloud.calls.models import (
    Call,
    CallState,
    Invite,
    InviteKind,
    Participant,
    Room,
    RoomStatus,
)
from carcloud.storage.rows import Row

ROOM_SELECT = (
    "SELECT r.id, b.slug, r.name, r.max_participants, r.status, r.created_at, r.pin_hash, "
    "r.empty_since, r.closed_at FROM rooms r JOIN brands b ON b.id = r.brand_id"
)
INSERT_ROOM = (
    "INSERT INTO rooms (id, brand_id, name, max_participants, status, created_at, pin_hash, "
    "empty_since, closed_at) SELECT ?, b.id, ?, ?, ?, ?, ?, ?, ? FROM brands b WHERE b.slug = ?"
)
SAVE_ROOM = "UPDATE rooms SET status = ?, empty_since = ?, closed_at = ? WHERE id = ?"
COUNT_OPEN_ROOMS = (
    "SELECT count(*) FROM rooms r JOIN brands b ON b.id = r.brand_id "
    "WHERE b.slug = ? AND r.status = 'open'"
)
COUNT_PRESENT = (
    "SELECT count(*) FROM room_participants p JOIN rooms r ON r.id = p.room_id "
    "JOIN brands b ON b.id = r.brand_id WHERE b.slug = ? AND r.status = 'open' "
    "AND p.left_at IS NULL"
)
EMPTY_ROOMS = f"{ROOM_SELECT} WHERE r.status = 'open' AND r.empty_since <= ? ORDER BY r.id"

INVITE_FIELDS = "id, room_id, kind, display, token_hash, created_at, expires_at, vin, revoked_at"
INSERT_INVITE = f"INSERT INTO room_invites ({INVITE_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
FIND_INVITE = f"SELECT {INVITE_FIELDS} FROM room_invites WHERE token_hash = ?"
REVOKE_INVITE = "UPDATE room_invites SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"

PARTICIPANT_FIELDS = (
    "id, room_id, invite_id, kind, display, joined_at, media_id, media_handle, vin, left_at"
)
INSERT_PARTICIPANT = (
    f"INSERT INTO room_participants ({PARTICIPANT_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
PARTICIPANT_SELECT = f"SELECT {PARTICIPANT_FIELDS} FROM room_participants"
ROOM_OCCUPIED = "UPDATE rooms SET empty_since = NULL WHERE id = ?"
PARTICIPANT_LEAVES = "UPDATE room_participants SET left_at = ? WHERE id = ? AND left_at IS NULL"
ROOM_EMPTIED = (
    "UPDATE rooms SET empty_since = ? WHERE id = ? AND status = 'open' AND NOT EXISTS "
    "(SELECT 1 FROM room_participants p WHERE p.room_id = ? AND p.left_at IS NULL)"
)

CALL_SELECT = (
    "SELECT c.id, v.vin, b.slug, c.state, c.created_at, c.updated_at, c.title, c.url, c.tel, "
    "c.provider, c.event_id, c.room_id, c.command_id, c.reason, c.joined_at, c.ended_at "
    "FROM calls c JOIN vehicles v ON v.id = c.vehicle_id JOIN brands b ON b.id = v.brand_id"
)
INSERT_CALL = (
    "INSERT INTO calls (id, vehicle_id, state, created_at, updated_at, title, url, tel, "
    "provider, event_id, room_id, command_id, reason, joined_at, ended_at) "
    "SELECT ?, v.id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM vehicles v WHERE v.vin = ?"
)
SAVE_CALL = (
    "UPDATE calls SET state = ?, updated_at = ?, command_id = ?, reason = ?, joined_at = ?, "
    "ended_at = ? WHERE id = ?"
)


def room_values(room: Room) -> tuple[Any, ...]:
    """The parameters of INSERT_ROOM."""
    return (
        room.id, room.name, room.max_participants, str(room.status), room.created_at,
        room.pin_hash, room.empty_since, room.closed_at, room.brand,
    )  # fmt: skip


def room_of(row: Row) -> Room:
    """A room from a row of ROOM_SELECT."""
    return Room(
        id=row[0], brand=row[1], name=row[2], max_participants=int(row[3]),
        status=RoomStatus(row[4]), created_at=int(row[5]), pin_hash=row[6],
        empty_since=row[7], closed_at=row[8],
    )  # fmt: skip


def invite_values(invite: Invite) -> tuple[Any, ...]:
    """The parameters of INSERT_INVITE."""
    return (
        invite.id, invite.room_id, str(invite.kind), invite.display, invite.token_hash,
        invite.created_at, invite.expires_at, invite.vin, invite.revoked_at,
    )  # fmt: skip


def invite_of(row: Row) -> Invite:
    """An invite from a row of INVITE_FIELDS."""
    return Invite(
        id=row[0], room_id=row[1], kind=InviteKind(row[2]), display=row[3], token_hash=row[4],
        created_at=int(row[5]), expires_at=int(row[6]), vin=row[7], revoked_at=row[8],
    )  # fmt: skip


def participant_values(participant: Participant) -> tuple[Any, ...]:
    """The parameters of INSERT_PARTICIPANT."""
    p = participant
    return (
        p.id, p.room_id, p.invite_id, str(p.kind), p.display, p.joined_at, p.media_id,
        p.media_handle, p.vin, p.left_at,
    )  # fmt: skip


def participant_of(row: Row) -> Participant:
    """A participant from a row of PARTICIPANT_FIELDS."""
    return Participant(
        id=row[0], room_id=row[1], invite_id=row[2], kind=InviteKind(row[3]), display=row[4],
        joined_at=int(row[5]), media_id=row[6], media_handle=int(row[7]), vin=row[8],
        left_at=row[9],
    )  # fmt: skip


def call_values(call: Call) -> tuple[Any, ...]:
    """The parameters of INSERT_CALL."""
    c = call
    return (
        c.id, str(c.state), c.created_at, c.updated_at, c.title, c.url, c.tel, c.provider,
        c.event_id, c.room_id, c.command_id, c.reason, c.joined_at, c.ended_at, c.vin,
    )  # fmt: skip


def call_state_values(call: Call) -> tuple[Any, ...]:
    """The parameters of SAVE_CALL."""
    c = call
    return (str(c.state), c.updated_at, c.command_id, c.reason, c.joined_at, c.ended_at, c.id)


def call_of(row: Row) -> Call:
    """A call from a row of CALL_SELECT."""
    return Call(
        id=row[0], vin=row[1], brand=row[2], state=CallState(row[3]), created_at=int(row[4]),
        updated_at=int(row[5]), title=row[6], url=row[7], tel=row[8], provider=row[9],
        event_id=row[10], room_id=row[11], command_id=row[12], reason=row[13],
        joined_at=row[14], ended_at=row[15],
    )  # fmt: skip
