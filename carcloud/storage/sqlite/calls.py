"""CallStore for SQLite: rooms, invites, participants and calls over the shared engine."""

from __future__ import annotations

import sqlite3
from typing import Any

from carcloud.calls.models import Call, Invite, Participant, Room, RoomStatus
from carcloud.errors import NotFoundError
from carcloud.storage import call_rows as sql
from carcloud.storage.sqlite.engine import SqliteEngine


def _scoped(base: str, where: list[str], brand: str | None, params: list[Any]) -> str:
    if brand is not None:
        where.append("b.slug = ?")
        params.append(brand)
    return base + (" WHERE " + " AND ".join(where) if where else "")


class SqliteCallStore:
    """CallStore over the shared SQLite engine."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    async def create_room(self, room: Room) -> Room:
        def insert(conn: sqlite3.Connection) -> Room:
            if conn.execute(sql.INSERT_ROOM, sql.room_values(room)).rowcount == 0:
                raise NotFoundError(f"brand {room.brand!r} not found")
            return room

        return await self.engine.write(insert)

    async def get_room(self, room_id: str, brand: str | None) -> Room:
        params: list[Any] = [room_id]
        query = _scoped(sql.ROOM_SELECT, ["r.id = ?"], brand, params)
        row = await self.engine.read(lambda conn: conn.execute(query, params).fetchone())
        if row is None:
            raise NotFoundError(f"room {room_id} not found")
        return sql.room_of(row)

    async def list_rooms(self, brand: str | None, status: RoomStatus | None) -> list[Room]:
        params: list[Any] = []
        where = []
        if status is not None:
            where.append("r.status = ?")
            params.append(str(status))
        query = _scoped(sql.ROOM_SELECT, where, brand, params) + " ORDER BY r.created_at DESC"
        rows = await self.engine.read(lambda conn: conn.execute(query, params).fetchall())
        return [sql.room_of(row) for row in rows]

    async def save_room_state(
        self, room_id: str, status: RoomStatus, empty_since: int | None, closed_at: int | None
    ) -> None:
        values = (str(status), empty_since, closed_at, room_id)
        await self.engine.write(lambda conn: conn.execute(sql.SAVE_ROOM, values))

    async def count_open_rooms(self, brand: str) -> int:
        row = await self.engine.read(
            lambda conn: conn.execute(sql.COUNT_OPEN_ROOMS, (brand,)).fetchone()
        )
        return int(row[0])

    async def count_present(self, brand: str) -> int:
        row = await self.engine.read(
            lambda conn: conn.execute(sql.COUNT_PRESENT, (brand,)).fetchone()
        )
        return int(row[0])

    async def rooms_empty_since(self, before: int) -> list[Room]:
        rows = await self.engine.read(
            lambda conn: conn.execute(sql.EMPTY_ROOMS, (before,)).fetchall()
        )
        return [sql.room_of(row) for row in rows]

    async def create_invite(self, invite: Invite) -> None:
        values = sql.invite_values(invite)
        await self.engine.write(lambda conn: conn.execute(sql.INSERT_INVITE, values))

    async def find_invite(self, token_hash: str) -> Invite | None:
        row = await self.engine.read(
            lambda conn: conn.execute(sql.FIND_INVITE, (token_hash,)).fetchone()
        )
        return None if row is None else sql.invite_of(row)

    async def revoke_invite(self, invite_id: str, at: int) -> None:
        await self.engine.write(lambda conn: conn.execute(sql.REVOKE_INVITE, (at, invite_id)))

    async def add_participant(self, participant: Participant) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(sql.INSERT_PARTICIPANT, sql.participant_values(participant))
            conn.execute(sql.ROOM_OCCUPIED, (participant.room_id,))

        await self.engine.write(insert)

    async def participant_left(self, participant_id: str, at: int) -> Participant | None:
        def leave(conn: sqlite3.Connection) -> Participant | None:
            if conn.execute(sql.PARTICIPANT_LEAVES, (at, participant_id)).rowcount == 0:
                return None
            row = conn.execute(
                f"{sql.PARTICIPANT_SELECT} WHERE id = ?", (participant_id,)
            ).fetchone()
            gone = sql.participant_of(row)
            conn.execute(sql.ROOM_EMPTIED, (at, gone.room_id, gone.room_id))
            return gone

        return await self.engine.write(leave)

    async def list_participants(self, room_id: str, present_only: bool) -> list[Participant]:
        query = f"{sql.PARTICIPANT_SELECT} WHERE room_id = ?"
        if present_only:
            query += " AND left_at IS NULL"
        query += " ORDER BY joined_at, id"
        rows = await self.engine.read(lambda conn: conn.execute(query, (room_id,)).fetchall())
        return [sql.participant_of(row) for row in rows]

    async def latest_participant(self, invite_id: str) -> Participant | None:
        query = f"{sql.PARTICIPANT_SELECT} WHERE invite_id = ? ORDER BY joined_at DESC LIMIT 1"
        row = await self.engine.read(lambda conn: conn.execute(query, (invite_id,)).fetchone())
        return None if row is None else sql.participant_of(row)

    async def participant_by_handle(self, media_handle: int) -> Participant | None:
        query = f"{sql.PARTICIPANT_SELECT} WHERE media_handle = ? AND left_at IS NULL"
        row = await self.engine.read(lambda conn: conn.execute(query, (media_handle,)).fetchone())
        return None if row is None else sql.participant_of(row)

    async def create_call(self, call: Call) -> Call:
        def insert(conn: sqlite3.Connection) -> Call:
            if conn.execute(sql.INSERT_CALL, sql.call_values(call)).rowcount == 0:
                raise NotFoundError(f"vehicle {call.vin} not found")
            return call

        return await self.engine.write(insert)

    async def get_call(self, call_id: str, brand: str | None) -> Call:
        params: list[Any] = [call_id]
        query = _scoped(sql.CALL_SELECT, ["c.id = ?"], brand, params)
        row = await self.engine.read(lambda conn: conn.execute(query, params).fetchone())
        if row is None:
            raise NotFoundError(f"call {call_id} not found")
        return sql.call_of(row)

    async def list_calls(self, vin: str, brand: str | None, limit: int) -> list[Call]:
        params: list[Any] = [vin]
        query = _scoped(sql.CALL_SELECT, ["v.vin = ?"], brand, params)
        query += f" ORDER BY c.created_at DESC, c.id LIMIT {int(limit)}"
        rows = await self.engine.read(lambda conn: conn.execute(query, params).fetchall())
        return [sql.call_of(row) for row in rows]

    async def save_call(self, call: Call) -> None:
        values = sql.call_state_values(call)
        await self.engine.write(lambda conn: conn.execute(sql.SAVE_CALL, values))
