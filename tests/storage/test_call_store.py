"""CallStore contract: rooms scoped by brand and counted, invites by token hash,
participants that leave (the room's empty_since), calls of a vehicle."""

from __future__ import annotations

import pytest

from carcloud.calls.models import (
    Call,
    CallState,
    Invite,
    InviteKind,
    Participant,
    Room,
    RoomStatus,
    hash_token,
)
from carcloud.errors import NotFoundError
from carcloud.storage import Stores
from tests.storage.conftest import SECOND, VIN


def room(room_id: str, brand: str = "volta", created_at: int = 1) -> Room:
    return Room(
        room_id, brand, f"Room {room_id}", 10, RoomStatus.OPEN, created_at, None, created_at
    )


def participant(pid: str, room_id: str, invite_id: str, at: int, handle: int) -> Participant:
    return Participant(pid, room_id, invite_id, InviteKind.PERSON, pid, at, f"m-{pid}", handle)


async def test_rooms_are_scoped_by_brand_and_counted(stores: Stores) -> None:
    await stores.registry.create_brand("other", "Other")
    await stores.calls.create_room(room("room_a", created_at=1))
    await stores.calls.create_room(room("room_b", created_at=2))
    await stores.calls.create_room(room("room_c", "other", created_at=3))
    with pytest.raises(NotFoundError):
        await stores.calls.create_room(room("room_x", "nobody"))

    assert [r.id for r in await stores.calls.list_rooms("volta", None)] == ["room_b", "room_a"]
    assert len(await stores.calls.list_rooms(None, RoomStatus.OPEN)) == 3
    with pytest.raises(NotFoundError):
        await stores.calls.get_room("room_c", "volta")
    assert (await stores.calls.get_room("room_c", None)).brand == "other"
    assert await stores.calls.count_open_rooms("volta") == 2

    await stores.calls.save_room_state("room_a", RoomStatus.CLOSED, None, 5 * SECOND)
    closed = await stores.calls.get_room("room_a", "volta")
    assert (closed.status, closed.closed_at, closed.empty_since) == (
        RoomStatus.CLOSED,
        5 * SECOND,
        None,
    )
    assert await stores.calls.count_open_rooms("volta") == 1
    assert [r.id for r in await stores.calls.list_rooms("volta", RoomStatus.CLOSED)] == ["room_a"]


async def test_participants_fill_and_empty_a_room(stores: Stores) -> None:
    await stores.calls.create_room(room("room_a"))
    invite = Invite("inv_1", "room_a", InviteKind.PERSON, "Ann", hash_token("t1"), 1, 100 * SECOND)
    await stores.calls.create_invite(invite)
    assert await stores.calls.find_invite(hash_token("t1")) == invite
    assert await stores.calls.find_invite(hash_token("other")) is None

    await stores.calls.add_participant(participant("par_1", "room_a", "inv_1", 10, 71))
    await stores.calls.add_participant(participant("par_2", "room_a", "inv_1", 20, 72))
    assert (await stores.calls.get_room("room_a", None)).empty_since is None
    assert await stores.calls.count_present("volta") == 2
    assert (
        await stores.calls.participant_by_handle(72) or participant("", "", "", 0, 0)
    ).id == "par_2"
    assert (
        await stores.calls.latest_participant("inv_1") or participant("", "", "", 0, 0)
    ).id == "par_2"

    left = await stores.calls.participant_left("par_1", 30)
    assert left is not None and left.left_at == 30
    assert await stores.calls.participant_left("par_1", 31) is None  # already gone
    assert (await stores.calls.get_room("room_a", None)).empty_since is None  # par_2 is there
    assert [p.id for p in await stores.calls.list_participants("room_a", True)] == ["par_2"]
    assert [p.id for p in await stores.calls.list_participants("room_a", False)] == [
        "par_1",
        "par_2",
    ]

    await stores.calls.participant_left("par_2", 40)
    assert (await stores.calls.get_room("room_a", None)).empty_since == 40
    assert await stores.calls.participant_by_handle(72) is None
    assert await stores.calls.count_present("volta") == 0
    assert [r.id for r in await stores.calls.rooms_empty_since(40)] == ["room_a"]
    assert await stores.calls.rooms_empty_since(39) == []


async def test_a_revoked_invite_stays_revoked(stores: Stores) -> None:
    await stores.calls.create_room(room("room_a"))
    invite = Invite("inv_1", "room_a", InviteKind.PERSON, "Ann", hash_token("t1"), 1, 100 * SECOND)
    await stores.calls.create_invite(invite)
    await stores.calls.revoke_invite("inv_1", 7 * SECOND)
    await stores.calls.revoke_invite("inv_1", 9 * SECOND)  # the first kick's time is kept
    found = await stores.calls.find_invite(hash_token("t1"))
    assert found is not None and found.revoked_at == 7 * SECOND
    assert found.document()["revoked_at"] is not None


async def test_calls_of_a_vehicle(stores: Stores) -> None:
    first = Call(
        "call_1", VIN, "volta", CallState.REQUESTED, 1, 1, "Standup", "https://zoom.us/j/1"
    )
    second = Call("call_2", VIN, "volta", CallState.REQUESTED, 2, 2, tel="tel:+4930123456,,1#")
    await stores.calls.create_call(first)
    await stores.calls.create_call(second)
    with pytest.raises(NotFoundError):
        await stores.calls.create_call(
            Call("call_x", "WVWZZZ1JZXW000009", "volta", CallState.REQUESTED, 1, 1)
        )

    assert [c.id for c in await stores.calls.list_calls(VIN, "volta", 10)] == ["call_2", "call_1"]
    assert await stores.calls.list_calls(VIN, "other", 10) == []
    assert await stores.calls.get_call("call_1", None) == first

    joined = Call(
        "call_1", VIN, "volta", CallState.JOINED, 1, 5, "Standup", "https://zoom.us/j/1",
        command_id="cmd_1", joined_at=5,
    )  # fmt: skip
    await stores.calls.save_call(joined)
    assert await stores.calls.get_call("call_1", "volta") == joined
    with pytest.raises(NotFoundError):
        await stores.calls.get_call("call_1", "other")
