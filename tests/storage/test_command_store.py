"""CommandStore contract: queueing, brand scope, lifecycle transitions, expiry, events."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from carcloud.commands.models import CommandRecord, CommandTransition
from carcloud.commands.service import changed_event, plan
from carcloud.commands.store import CommandStore
from carcloud.errors import NotFoundError
from carcloud.events.models import NewEvent
from carcloud.storage import Stores
from carcloud.timeutil import now_us
from tests.storage.conftest import SECOND, VIN

OTHER = "WVWZZZ1JZXW000009"
HOUR = 3600 * SECOND


def later() -> int:
    """An expiry an hour from now."""
    return now_us() + HOUR


async def queue(
    commands: CommandStore,
    command_id: str,
    vin: str = VIN,
    expires_at: int | None = None,
    key: str | None = None,
) -> CommandRecord:
    record, created = await commands.create_command(
        command_id, vin, None, "lock", {}, later() if expires_at is None else expires_at, key
    )
    assert created
    return record


async def test_create_queues_the_command(stores: Stores) -> None:
    commands = stores.commands
    expires = later()
    record, created = await commands.create_command(
        "cmd_1", VIN, "volta", "set_climate", {"temperature": 21.5}, expires, None
    )
    assert created
    assert (record.id, record.vin, record.kind, record.params) == (
        "cmd_1",
        VIN,
        "set_climate",
        {"temperature": 21.5},
    )
    assert (record.status, record.reason, record.idempotency_key) == ("queued", None, None)
    assert record.expires_at == expires and record.created_at > 0
    assert record.delivered_at is None and record.completed_at is None
    assert record.transitions == (CommandTransition("queued", record.created_at),)
    assert not record.is_final
    assert await commands.get_command(VIN, "cmd_1", "volta") == record


async def test_idempotency_key_returns_the_earlier_command(stores: Stores) -> None:
    commands = stores.commands
    first, created = await commands.create_command(
        "cmd_1", VIN, None, "lock", {}, later(), "key-1", emit=changed_event
    )
    assert created
    again, created = await commands.create_command(
        "cmd_2", VIN, None, "unlock", {"x": 1}, later(), "key-1", emit=changed_event
    )
    assert not created and again == first
    with pytest.raises(NotFoundError):
        await commands.get_command(VIN, "cmd_2", None)
    # Another key, or the same key for another vehicle, is a new command.
    _, created = await commands.create_command("cmd_3", VIN, None, "lock", {}, later(), "key-2")
    assert created
    await stores.registry.create_vehicle(OTHER, "volta", "E1", 2025, [], "h")
    other, created = await commands.create_command(
        "cmd_4", OTHER, None, "lock", {}, later(), "key-1"
    )
    assert created and other.id == "cmd_4"
    # The repeat changed nothing, so it wrote no event.
    assert len(await stores.events.list_events(0, None, types=["command"])) == 1


async def test_commands_are_brand_scoped(stores: Stores) -> None:
    commands = stores.commands
    await stores.registry.create_brand("nova", "Nova")
    record = await queue(commands, "cmd_1")
    with pytest.raises(NotFoundError):
        await commands.get_command(VIN, "cmd_1", "nova")
    with pytest.raises(NotFoundError):
        await commands.list_commands(VIN, "nova", None, 10)
    with pytest.raises(NotFoundError):
        await commands.create_command("cmd_2", VIN, "nova", "lock", {}, later(), None)
    assert await commands.get_command(VIN, "cmd_1", None) == record  # an operator sees it
    assert await commands.get_command(VIN, "cmd_1", "volta") == record
    with pytest.raises(NotFoundError):
        await commands.get_command(VIN, "cmd_missing", None)
    await stores.registry.create_vehicle(OTHER, "volta", "E1", 2025, [], "h")
    with pytest.raises(NotFoundError):  # the command of another vehicle
        await commands.get_command(OTHER, "cmd_1", None)
    with pytest.raises(NotFoundError):
        await commands.create_command("cmd_3", "ZZZZZZZZZZZZ99999", None, "lock", {}, later(), None)


async def test_list_newest_first_and_by_status(stores: Stores) -> None:
    commands = stores.commands
    for number in range(1, 5):
        await queue(commands, f"cmd_{number}")
    await stores.registry.create_vehicle(OTHER, "volta", "E1", 2025, [], "h")
    await queue(commands, "cmd_other", vin=OTHER)
    await commands.transition_command("cmd_2", plan("delivered", now_us()))
    await commands.transition_command("cmd_3", plan("delivered", now_us()))

    async def ids(status: str | None = None, limit: int = 10) -> list[str]:
        return [c.id for c in await commands.list_commands(VIN, "volta", status, limit)]

    assert await ids() == ["cmd_4", "cmd_3", "cmd_2", "cmd_1"]
    assert await ids(limit=2) == ["cmd_4", "cmd_3"]
    assert await ids("delivered") == ["cmd_3", "cmd_2"]
    assert await ids("queued") == ["cmd_4", "cmd_1"]
    assert await ids("succeeded") == []
    listed = await commands.list_commands(VIN, None, "delivered", 1)
    assert [t.status for t in listed[0].transitions] == ["queued", "delivered"]


async def test_delivered_then_succeeded(stores: Stores) -> None:
    commands = stores.commands
    record = await queue(commands, "cmd_1")
    t0 = record.created_at
    delivered = await commands.transition_command("cmd_1", plan("delivered", t0 + 10 * SECOND))
    assert delivered is not None
    assert (delivered.status, delivered.delivered_at, delivered.completed_at) == (
        "delivered",
        t0 + 10 * SECOND,
        None,
    )
    done = await commands.transition_command(
        "cmd_1", plan("succeeded", t0 + 20 * SECOND, "ok"), VIN
    )
    assert done is not None and done.is_final
    assert (done.status, done.reason) == ("succeeded", "ok")
    assert (done.delivered_at, done.completed_at) == (t0 + 10 * SECOND, t0 + 20 * SECOND)
    assert done.transitions == (
        CommandTransition("queued", t0),
        CommandTransition("delivered", t0 + 10 * SECOND),
        CommandTransition("succeeded", t0 + 20 * SECOND, "ok"),
    )
    assert await commands.get_command(VIN, "cmd_1", "volta") == done


async def test_a_queued_command_that_succeeds_passes_through_delivered(stores: Stores) -> None:
    commands = stores.commands
    record = await queue(commands, "cmd_1")
    at = record.created_at + 5 * SECOND
    done = await commands.transition_command("cmd_1", plan("succeeded", at), VIN)
    assert done is not None
    assert done.transitions == (
        CommandTransition("queued", record.created_at),
        CommandTransition("delivered", at),
        CommandTransition("succeeded", at),
    )
    assert (done.status, done.delivered_at, done.completed_at) == ("succeeded", at, at)


async def test_failed_keeps_its_reason(stores: Stores) -> None:
    commands = stores.commands
    record = await queue(commands, "cmd_1")
    at = record.created_at + SECOND
    failed = await commands.transition_command("cmd_1", plan("failed", at, "door open"))
    assert failed is not None
    assert (failed.status, failed.reason, failed.delivered_at) == ("failed", "door open", at)
    assert [t.status for t in failed.transitions] == ["queued", "delivered", "failed"]
    assert failed.transitions[-1] == CommandTransition("failed", at, "door open")


async def test_a_final_command_does_not_move(stores: Stores) -> None:
    commands = stores.commands
    record = await queue(commands, "cmd_1")
    at = record.created_at + SECOND
    done = await commands.transition_command("cmd_1", plan("succeeded", at))
    assert done is not None
    calls: list[CommandRecord] = []

    def emit(command: CommandRecord) -> Sequence[NewEvent]:
        calls.append(command)
        return changed_event(command)

    for status in ("delivered", "succeeded", "failed", "cancelled", "expired"):
        moved = await commands.transition_command("cmd_1", plan(status, at + SECOND), emit=emit)
        assert moved is None
    assert calls == []
    assert await commands.get_command(VIN, "cmd_1", None) == done
    assert await stores.events.list_events(0, None) == []


async def test_delivered_cannot_be_delivered_again(stores: Stores) -> None:
    commands = stores.commands
    record = await queue(commands, "cmd_1")
    at = record.created_at + SECOND
    first = await commands.transition_command("cmd_1", plan("delivered", at))
    assert first is not None
    assert await commands.transition_command("cmd_1", plan("delivered", at + SECOND)) is None
    assert await commands.get_command(VIN, "cmd_1", None) == first


async def test_vin_mismatch_and_unknown_command(stores: Stores) -> None:
    commands = stores.commands
    record = await queue(commands, "cmd_1")
    await stores.registry.create_vehicle(OTHER, "volta", "E1", 2025, [], "h")
    # A car can only answer its own commands.
    assert await commands.transition_command("cmd_1", plan("succeeded", SECOND), OTHER) is None
    assert await commands.transition_command("cmd_missing", plan("succeeded", SECOND)) is None
    assert await commands.get_command(VIN, "cmd_1", None) == record


async def test_open_commands(stores: Stores) -> None:
    commands = stores.commands
    await stores.registry.create_vehicle(OTHER, "volta", "E1", 2025, [], "h")
    await queue(commands, "cmd_queued")
    await queue(commands, "cmd_delivered")
    await commands.transition_command("cmd_delivered", plan("delivered", now_us()))
    await queue(commands, "cmd_expired", expires_at=now_us() - SECOND)  # not alive any more
    await queue(commands, "cmd_done")
    await commands.transition_command("cmd_done", plan("succeeded", now_us()))
    await queue(commands, "cmd_cancelled")
    await commands.transition_command("cmd_cancelled", plan("cancelled", now_us(), "by test"))
    await queue(commands, "cmd_other", vin=OTHER)

    everything = await commands.open_commands()
    assert [c.id for c in everything] == ["cmd_queued", "cmd_delivered", "cmd_other"]
    assert {c.id: c.status for c in everything} == {
        "cmd_queued": "queued",
        "cmd_delivered": "delivered",
        "cmd_other": "queued",
    }
    assert [c.id for c in await commands.open_commands(VIN)] == ["cmd_queued", "cmd_delivered"]
    assert [c.id for c in await commands.open_commands(OTHER)] == ["cmd_other"]
    assert await commands.open_commands("ZZZZZZZZZZZZ99999") == []
    # Among given ids (the control role's redelivery check): final, expired and unknown
    # ones are left out.
    among = ["cmd_other", "cmd_done", "cmd_expired", "cmd_missing", "cmd_queued"]
    assert [c.id for c in await commands.open_commands(ids=among)] == ["cmd_queued", "cmd_other"]
    assert [c.id for c in await commands.open_commands(VIN, ids=among)] == ["cmd_queued"]
    assert await commands.open_commands(ids=[]) == []


async def test_expire_commands(stores: Stores) -> None:
    commands = stores.commands
    t0 = now_us()
    due = t0 + 100 * SECOND
    await queue(commands, "cmd_due", expires_at=due)
    await queue(commands, "cmd_due_delivered", expires_at=due)
    await commands.transition_command("cmd_due_delivered", plan("delivered", t0 + 50 * SECOND))
    await queue(commands, "cmd_alive", expires_at=t0 + 10 * HOUR)
    await queue(commands, "cmd_final", expires_at=due)
    done = await commands.transition_command("cmd_final", plan("succeeded", t0 + 60 * SECOND))

    now = t0 + 200 * SECOND
    expired = await commands.expire_commands(now, plan("expired", now, "too late"))
    assert sorted(c.id for c in expired) == ["cmd_due", "cmd_due_delivered"]
    for command in expired:
        assert (command.status, command.reason, command.completed_at) == (
            "expired",
            "too late",
            now,
        )
        assert command.transitions[-1] == CommandTransition("expired", now, "too late")
        assert await commands.get_command(VIN, command.id, None) == command
    delivered = next(c for c in expired if c.id == "cmd_due_delivered")
    assert delivered.delivered_at == t0 + 50 * SECOND
    assert [t.status for t in delivered.transitions] == ["queued", "delivered", "expired"]
    assert (await commands.get_command(VIN, "cmd_alive", None)).status == "queued"
    assert await commands.get_command(VIN, "cmd_final", None) == done
    assert await commands.expire_commands(now + SECOND, plan("expired", now + SECOND)) == []


async def test_expiry_is_by_the_given_time(stores: Stores) -> None:
    commands = stores.commands
    t0 = now_us()
    await queue(commands, "cmd_1", expires_at=t0 + 100 * SECOND)
    early = t0 + 99 * SECOND
    assert await commands.expire_commands(early, plan("expired", early)) == []
    on_time = t0 + 100 * SECOND
    expired = await commands.expire_commands(on_time, plan("expired", on_time))
    assert [c.id for c in expired] == ["cmd_1"]


async def test_each_change_writes_one_event(stores: Stores) -> None:
    commands, events = stores.commands, stores.events

    async def command_events() -> list[tuple[str | None, str | None, str, str]]:
        return [
            (e.brand, e.vin, e.data["id"], e.data["status"])
            for e in await events.list_events(0, None, types=["command.status_changed"])
        ]

    await commands.create_command("cmd_1", VIN, None, "lock", {}, later(), None, changed_event)
    assert await command_events() == [("volta", VIN, "cmd_1", "queued")]
    await commands.transition_command("cmd_1", plan("delivered", now_us()), emit=changed_event)
    assert len(await command_events()) == 2
    # Two transitions in one call (queued -> delivered -> succeeded): still one event.
    await commands.create_command("cmd_2", VIN, None, "lock", {}, later(), None, changed_event)
    await commands.transition_command("cmd_2", plan("succeeded", now_us()), VIN, emit=changed_event)
    await commands.create_command("cmd_3", VIN, None, "lock", {}, 100 * SECOND, None, changed_event)
    await commands.create_command("cmd_4", VIN, None, "lock", {}, 100 * SECOND, None, changed_event)
    now = now_us()
    expired = await commands.expire_commands(now, plan("expired", now), emit=changed_event)
    assert len(expired) == 2
    assert sorted(await command_events()) == sorted(
        [
            ("volta", VIN, "cmd_1", "queued"),
            ("volta", VIN, "cmd_1", "delivered"),
            ("volta", VIN, "cmd_2", "queued"),
            ("volta", VIN, "cmd_2", "succeeded"),
            ("volta", VIN, "cmd_3", "queued"),
            ("volta", VIN, "cmd_4", "queued"),
            ("volta", VIN, "cmd_3", "expired"),
            ("volta", VIN, "cmd_4", "expired"),
        ]
    )
    assert len(await events.list_events(0, "volta")) == 8
    # A change that is not allowed writes none.
    await commands.transition_command("cmd_2", plan("failed", now_us()), emit=changed_event)
    assert len(await command_events()) == 8
