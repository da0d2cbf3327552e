"""Join tokens: valid until they expire; once used, the same token rejoins for the grace
time after its link dropped, and not after it (a real SQLite store, no media needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carcloud.calls.models import Invite, InviteKind, Participant, Room, RoomStatus, hash_token
from carcloud.calls.rooms import RoomLimits, RoomService
from carcloud.errors import AuthError, ForbiddenError
from carcloud.storage import Stores
from carcloud.storage.sqlite import sqlite_stores
from carcloud.timeutil import now_us

SECOND = 1_000_000


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    opened = sqlite_stores(tmp_path / "carcloud.db")
    await opened.open()
    await opened.registry.create_brand("volta", "Volta")
    now = now_us()
    await opened.calls.create_room(Room("room_1", "volta", "R", 5, RoomStatus.OPEN, now))
    await opened.calls.create_room(
        Room("room_2", "volta", "PIN", 5, RoomStatus.OPEN, now, hash_token("4321"))
    )
    yield opened
    await opened.close()


async def invite(stores: Stores, token: str, room: str, expires_in_s: float) -> Invite:
    now = now_us()
    made = Invite(
        f"inv_{token}", room, InviteKind.PERSON, "Ann", hash_token(token), now,
        now + int(expires_in_s * SECOND),
    )  # fmt: skip
    await stores.calls.create_invite(made)
    return made


async def test_a_used_token_rejoins_within_the_grace_time_only(stores: Stores) -> None:
    rooms = RoomService(stores.calls, RoomLimits(rejoin_grace_s=30))
    fresh = await invite(stores, "fresh", "room_1", 60)
    assert (await rooms._admit("room_1", "fresh", None))[1] == fresh
    with pytest.raises(AuthError, match="unknown join token"):
        await rooms._admit("room_2", "fresh", None)  # another room's token

    await invite(stores, "never-used", "room_1", -1)
    with pytest.raises(AuthError, match="expired"):
        await rooms._admit("room_1", "never-used", None)

    # Used, expired since, and its link dropped 10 s ago: it may come back.
    dropped = await invite(stores, "dropped", "room_1", -1)
    now = now_us()
    await stores.calls.add_participant(
        Participant(
            "par_1", "room_1", dropped.id, InviteKind.PERSON, "Ann", now - 60 * SECOND, "m1", 1
        )
    )
    await stores.calls.participant_left("par_1", now - 10 * SECOND)
    assert (await rooms._admit("room_1", "dropped", None))[1] == dropped

    # Dropped 40 s ago: past the 30 s grace.
    late = await invite(stores, "late", "room_1", -1)
    await stores.calls.add_participant(
        Participant("par_2", "room_1", late.id, InviteKind.PERSON, "Bo", now - 90 * SECOND, "m2", 2)
    )
    await stores.calls.participant_left("par_2", now - 40 * SECOND)
    with pytest.raises(AuthError, match="expired"):
        await rooms._admit("room_1", "late", None)


async def test_people_need_the_room_pin(stores: Stores) -> None:
    rooms = RoomService(stores.calls)
    await invite(stores, "pin-person", "room_2", 60)
    with pytest.raises(ForbiddenError, match="PIN"):
        await rooms._admit("room_2", "pin-person", None)
    with pytest.raises(ForbiddenError, match="PIN"):
        await rooms._admit("room_2", "pin-person", "0000")
    assert (await rooms._admit("room_2", "pin-person", "4321"))[0].id == "room_2"
