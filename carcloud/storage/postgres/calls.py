"""CallStore for PostgreSQL: the statements of call_rows with numbered placeholders."""

from __future__ import annotations

from typing import Any

from carcloud.calls.models import Call, Invite, Participant, Room, RoomStatus
from carcloud.errors import NotFoundError
from carcloud.storage import call_rows as sql
from carcloud.storage.postgres.engine import PostgresEngine, Tx
from carcloud.storage.rows import numbered


def _scoped(base: str, where: list[str], brand: str | None, params: list[Any]) -> str:
    if brand is not None:
        where.append("b.slug = ?")
        params.append(brand)
    return numbered(base + (" WHERE " + " AND ".join(where) if where else ""))


def _rows_changed(status: str) -> int:
    """The row count of an asyncpg status line such as 'INSERT 0 1' or 'UPDATE 1'."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresCallStore:
    """CallStore over the shared PostgreSQL engine."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    async def _fetch(self, query: str, *params: Any) -> list[Any]:
        return await self.engine.read(lambda conn: conn.fetch(query, *params))

    async def _execute(self, query: str, *params: Any) -> int:
        async def run(tx: Tx) -> int:
            return _rows_changed(await tx.conn.execute(query, *params))

        return await self.engine.write(run)

    async def create_room(self, room: Room) -> Room:
        if await self._execute(numbered(sql.INSERT_ROOM), *sql.room_values(room)) == 0:
            raise NotFoundError(f"brand {room.brand!r} not found")
        return room

    async def get_room(self, room_id: str, brand: str | None) -> Room:
        params: list[Any] = [room_id]
        rows = await self._fetch(_scoped(sql.ROOM_SELECT, ["r.id = ?"], brand, params), *params)
        if not rows:
            raise NotFoundError(f"room {room_id} not found")
        return sql.room_of(rows[0])

    async def list_rooms(self, brand: str | None, status: RoomStatus | None) -> list[Room]:
        params: list[Any] = []
        where = []
        if status is not None:
            where.append("r.status = ?")
            params.append(str(status))
        query = _scoped(sql.ROOM_SELECT, where, brand, params) + " ORDER BY r.created_at DESC"
        return [sql.room_of(row) for row in await self._fetch(query, *params)]

    async def save_room_state(
        self, room_id: str, status: RoomStatus, empty_since: int | None, closed_at: int | None
    ) -> None:
        await self._execute(numbered(sql.SAVE_ROOM), str(status), empty_since, closed_at, room_id)

    async def count_open_rooms(self, brand: str) -> int:
        rows = await self._fetch(numbered(sql.COUNT_OPEN_ROOMS), brand)
        return int(rows[0][0])

    async def count_present(self, brand: str) -> int:
        rows = await self._fetch(numbered(sql.COUNT_PRESENT), brand)
        return int(rows[0][0])

    async def rooms_empty_since(self, before: int) -> list[Room]:
        return [sql.room_of(row) for row in await self._fetch(numbered(sql.EMPTY_ROOMS), before)]

    async def create_invite(self, invite: Invite) -> None:
        await self._execute(numbered(sql.INSERT_INVITE), *sql.invite_values(invite))

    async def find_invite(self, token_hash: str) -> Invite | None:
        rows = await self._fetch(numbered(sql.FIND_INVITE), token_hash)
        return sql.invite_of(rows[0]) if rows else None

    async def revoke_invite(self, invite_id: str, at: int) -> None:
        await self._execute(numbered(sql.REVOKE_INVITE), at, invite_id)

    async def add_participant(self, participant: Participant) -> None:
        async def insert(tx: Tx) -> None:
            await tx.conn.execute(
                numbered(sql.INSERT_PARTICIPANT), *sql.participant_values(participant)
            )
            await tx.conn.execute(numbered(sql.ROOM_OCCUPIED), participant.room_id)

        await self.engine.write(insert)

    async def participant_left(self, participant_id: str, at: int) -> Participant | None:
        async def leave(tx: Tx) -> Participant | None:
            status = await tx.conn.execute(numbered(sql.PARTICIPANT_LEAVES), at, participant_id)
            if _rows_changed(status) == 0:
                return None
            row = await tx.conn.fetchrow(
                numbered(f"{sql.PARTICIPANT_SELECT} WHERE id = ?"), participant_id
            )
            assert row is not None  # updated just above, in this transaction
            gone = sql.participant_of(row)
            await tx.conn.execute(numbered(sql.ROOM_EMPTIED), at, gone.room_id, gone.room_id)
            return gone

        return await self.engine.write(leave)

    async def list_participants(self, room_id: str, present_only: bool) -> list[Participant]:
        query = f"{sql.PARTICIPANT_SELECT} WHERE room_id = ?"
        if present_only:
            query += " AND left_at IS NULL"
        query += " ORDER BY joined_at, id"
        return [sql.participant_of(row) for row in await self._fetch(numbered(query), room_id)]

    async def latest_participant(self, invite_id: str) -> Participant | None:
        query = f"{sql.PARTICIPANT_SELECT} WHERE invite_id = ? ORDER BY joined_at DESC LIMIT 1"
        rows = await self._fetch(numbered(query), invite_id)
        return sql.participant_of(rows[0]) if rows else None

    async def participant_by_handle(self, media_handle: int) -> Participant | None:
        query = f"{sql.PARTICIPANT_SELECT} WHERE media_handle = ? AND left_at IS NULL"
        rows = await self._fetch(numbered(query), media_handle)
        return sql.participant_of(rows[0]) if rows else None

    async def create_call(self, call: Call) -> Call:
        if await self._execute(numbered(sql.INSERT_CALL), *sql.call_values(call)) == 0:
            raise NotFoundError(f"vehicle {call.vin} not found")
        return call

    async def get_call(self, call_id: str, brand: str | None) -> Call:
        params: list[Any] = [call_id]
        rows = await self._fetch(_scoped(sql.CALL_SELECT, ["c.id = ?"], brand, params), *params)
        if not rows:
            raise NotFoundError(f"call {call_id} not found")
        return sql.call_of(rows[0])

    async def list_calls(self, vin: str, brand: str | None, limit: int) -> list[Call]:
        params: list[Any] = [vin]
        query = _scoped(sql.CALL_SELECT, ["v.vin = ?"], brand, params)
        query += f" ORDER BY c.created_at DESC, c.id LIMIT {int(limit)}"
        return [sql.call_of(row) for row in await self._fetch(query, *params)]

    async def save_call(self, call: Call) -> None:
        await self._execute(numbered(sql.SAVE_CALL), *sql.call_state_values(call))
