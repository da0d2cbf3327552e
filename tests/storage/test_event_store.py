"""EventStore contract: the outbox, read in order and filtered, relayed once, pruned."""

from __future__ import annotations

import asyncio
import threading

from carcloud.events.models import DomainEvent, NewEvent
from carcloud.ingest.models import DeadLetter, Sample, TelemetryMessage
from carcloud.ingest.worker import INGEST_POLICY
from carcloud.storage import Stores
from carcloud.timeutil import now_us
from tests.storage.conftest import SECOND, VIN

OTHER = "NOVAZZZ1JZXW00001"
UNKNOWN = "ZZZZZZZZZZZZ99999"


async def fill(stores: Stores) -> list[DomainEvent]:
    """Events of two brands, of no brand, and of two vehicles, in this order."""
    await stores.registry.create_brand("nova", "Nova")
    await stores.registry.create_vehicle(OTHER, "nova", "N1", 2024, [], "h")
    return await stores.events.append(
        [
            NewEvent("vehicle.online", vin=VIN),  # brand from the VIN: volta
            NewEvent("command.status_changed", vin=VIN, data={"id": "cmd_1"}),
            NewEvent("vehicle.offline", vin=OTHER),  # nova
            NewEvent("brand.created", brand="nova", data={"slug": "nova"}),
            NewEvent("configuration.saved", data={"id": "cfg_all"}),  # every brand: None
            NewEvent("dead_letter.recorded", vin=VIN, data={"reason": "x"}),
            NewEvent("twin.desired_changed", vin=OTHER, data={"version": 1}),
        ]
    )


def types_of(events: list[DomainEvent]) -> list[str]:
    return [e.type for e in events]


async def test_append_resolves_brands_and_orders_by_id(stores: Stores) -> None:
    appended = await fill(stores)
    assert [(e.type, e.brand, e.vin) for e in appended] == [
        ("vehicle.online", "volta", VIN),
        ("command.status_changed", "volta", VIN),
        ("vehicle.offline", "nova", OTHER),
        ("brand.created", "nova", None),
        ("configuration.saved", None, None),
        ("dead_letter.recorded", "volta", VIN),
        ("twin.desired_changed", "nova", OTHER),
    ]
    ids = [e.id for e in appended]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] > 0
    assert all(e.at > 0 for e in appended)
    assert await stores.events.list_events(0, None) == appended
    assert await stores.events.list_events(0, None, limit=3) == appended[:3]
    assert await stores.events.list_events(ids[2], None) == appended[3:]
    assert await stores.events.list_events(ids[2], None, limit=2) == appended[3:5]
    assert await stores.events.list_events(ids[-1], None) == []
    assert appended[1].data == {"id": "cmd_1"}


async def test_an_event_of_an_unknown_vin_has_no_brand(stores: Stores) -> None:
    stored = await stores.events.append([NewEvent("dead_letter.recorded", vin=UNKNOWN)])
    assert [(e.brand, e.vin) for e in stored] == [(None, UNKNOWN)]
    assert await stores.events.list_events(0, "volta") == []


async def test_append_nothing(empty_stores: Stores) -> None:
    assert await empty_stores.events.append([]) == []
    assert await empty_stores.events.last_id() == 0


async def test_brand_filter(stores: Stores) -> None:
    appended = await fill(stores)
    events = stores.events
    assert await events.list_events(0, None) == appended  # an operator sees every brand
    assert types_of(await events.list_events(0, "volta")) == [
        "vehicle.online",
        "command.status_changed",
        "dead_letter.recorded",
    ]
    assert types_of(await events.list_events(0, "nova")) == [
        "vehicle.offline",
        "brand.created",
        "twin.desired_changed",
    ]
    # An event of no brand is only seen by a caller of no brand.
    assert await events.list_events(0, "nobrand") == []
    assert all(e.brand is not None for e in await events.list_events(0, "volta"))
    assert types_of(await events.list_events(appended[1].id, "volta", limit=1)) == [
        "dead_letter.recorded"
    ]


async def test_vin_filter(stores: Stores) -> None:
    await fill(stores)
    events = stores.events
    assert types_of(await events.list_events(0, None, vin=VIN)) == [
        "vehicle.online",
        "command.status_changed",
        "dead_letter.recorded",
    ]
    assert types_of(await events.list_events(0, "nova", vin=OTHER)) == [
        "vehicle.offline",
        "twin.desired_changed",
    ]
    assert await events.list_events(0, "nova", vin=VIN) == []  # another brand's vehicle
    assert await events.list_events(0, None, vin=UNKNOWN) == []


async def test_type_filter(stores: Stores) -> None:
    await fill(stores)

    async def types(*names: str, brand: str | None = None) -> list[str]:
        return types_of(await stores.events.list_events(0, brand, types=names))

    assert await types("vehicle.online") == ["vehicle.online"]
    assert await types("command") == ["command.status_changed"]
    assert await types("vehicle.*") == ["vehicle.online", "vehicle.offline"]
    assert await types("vehicle") == ["vehicle.online", "vehicle.offline"]
    assert await types("vehicle.*", brand="nova") == ["vehicle.offline"]
    assert await types("vehicle.online", "twin") == ["vehicle.online", "twin.desired_changed"]
    assert await types("command", "brand.created", "configuration.*") == [
        "command.status_changed",
        "brand.created",
        "configuration.saved",
    ]
    assert await types("dead_letter") == ["dead_letter.recorded"]
    assert await types("dead_letter.*") == ["dead_letter.recorded"]
    # A prefix is a whole segment, not the start of one.
    assert await types("vehicle.on") == []
    assert await types("twin.desired") == []
    assert await types("vehic") == []
    assert await types("twin.reported_changed") == []


async def test_type_filter_matches_literally(stores: Stores) -> None:
    """'_' and '%' in a type filter are characters, not wildcards (raw strings, unchecked)."""
    await fill(stores)

    async def types(*names: str) -> list[str]:
        return types_of(await stores.events.list_events(0, None, types=names))

    assert await types("dead_lette_") == []  # '_' as a wildcard would match dead_letter
    assert await types("dead_lette_.*") == []
    assert await types("vehicle_online") == []
    assert await types("dead%") == []  # '%' as a wildcard would match dead_letter.recorded
    assert await types("%") == []
    assert await types("%.*") == []
    assert await types("vehicle%") == []


async def test_last_id(empty_stores: Stores) -> None:
    events = empty_stores.events
    assert await events.last_id() == 0
    appended = await events.append(
        [NewEvent("configuration.saved"), NewEvent("configuration.deleted")]
    )
    assert await events.last_id() == appended[-1].id
    assert await events.list_events(await events.last_id(), None) == []


async def test_unrelayed_and_mark_relayed(stores: Stores) -> None:
    appended = await fill(stores)
    events = stores.events
    assert await events.unrelayed(100) == appended
    assert await events.unrelayed(2) == appended[:2]
    await events.mark_relayed([e.id for e in appended[:2]], now_us())
    assert await events.unrelayed(100) == appended[2:]
    await events.mark_relayed([e.id for e in appended], now_us())
    assert await events.unrelayed(100) == []
    # Marking again (a relay that retries after a crash) is harmless.
    await events.mark_relayed([e.id for e in appended], now_us())
    await events.mark_relayed([], now_us())
    await events.mark_relayed([10_000_000], now_us())  # no such event
    assert await events.unrelayed(100) == []
    # Relayed events are still listed for readers.
    assert await events.list_events(0, None) == appended
    later = await events.append([NewEvent("vehicle.online", vin=VIN)])
    assert await events.unrelayed(100) == later


async def test_prune_deletes_only_relayed_events_older_than_the_cut(stores: Stores) -> None:
    events = stores.events
    old_relayed = await events.append([NewEvent("vehicle.online", vin=VIN)])
    old_unrelayed = await events.append([NewEvent("vehicle.offline", vin=VIN)])
    cut = max(e.at for e in old_relayed + old_unrelayed) + 1
    await asyncio.sleep(0.005)  # the clock moves past the cut
    new_relayed = await events.append([NewEvent("vehicle.online", vin=VIN)])
    assert new_relayed[0].at >= cut
    await events.mark_relayed([old_relayed[0].id, new_relayed[0].id], now_us())

    assert await events.prune(cut) == 1
    assert await events.list_events(0, None) == old_unrelayed + new_relayed
    assert await events.unrelayed(10) == old_unrelayed
    assert await events.prune(cut) == 0
    # Once relayed, the old one goes too; the new one is not older than the cut.
    await events.mark_relayed([old_unrelayed[0].id], now_us())
    assert await events.prune(cut) == 1
    assert await events.list_events(0, None) == new_relayed
    assert await events.last_id() == new_relayed[0].id


async def test_prune_cuts_exactly_at_the_time_among_many_events(stores: Stores) -> None:
    events = stores.events
    appended: list[DomainEvent] = []
    for index in range(37):  # singles and pairs that share their time
        appended += await events.append([NewEvent("vehicle.online", vin=VIN)] * (1 + index % 2))
    assert [e.at for e in appended] == sorted(e.at for e in appended)
    await events.mark_relayed([e.id for e in appended], now_us())
    left = appended
    for cut_index in (0, 1, 20, 21, 40, 41):
        cut = appended[cut_index].at
        assert await events.prune(cut) == sum(1 for e in left if e.at < cut)
        left = [e for e in left if e.at >= cut]
        assert await events.list_events(0, None, limit=1000) == left
    assert await events.prune(appended[-1].at + 1) == len(left)
    assert await events.list_events(0, None) == []
    assert await events.prune(now_us()) == 0  # nothing left


async def test_on_commit_after_a_write_with_events(stores: Stores) -> None:
    called = threading.Event()
    calls: list[str] = []

    def listener() -> None:
        calls.append(threading.current_thread().name)
        called.set()

    stores.events.on_commit(listener)
    # Reads and writes that store no event do not call it.
    await stores.registry.list_vehicles()
    await stores.events.list_events(0, None)
    await stores.registry.create_brand("nova", "Nova", emit=())
    await stores.registry.create_vehicle(OTHER, "nova", "N1", 2024, [], "h")
    await stores.registry.set_presence(VIN, True, SECOND)
    await stores.events.append([])
    assert calls == []

    await stores.registry.set_presence(
        VIN, False, 2 * SECOND, emit=lambda v: [NewEvent("vehicle.offline", vin=v.vin)]
    )
    assert await asyncio.to_thread(called.wait, 5.0)
    assert len(calls) == 1
    called.clear()
    await stores.events.append([NewEvent("configuration.saved")])
    assert await asyncio.to_thread(called.wait, 5.0)
    assert len(calls) == 2


async def test_dead_letters_of_ingest_are_events(stores: Stores) -> None:
    stranger = TelemetryMessage(UNKNOWN, 1, SECOND, SECOND, (Sample("Vehicle.Speed", SECOND, 1.0),))
    letter = DeadLetter(SECOND, f"vehicles.{VIN}.telemetry", VIN, "malformed JSON: x", b"{oops")
    result = await stores.telemetry.write_telemetry([stranger], [letter], INGEST_POLICY)
    assert result.dead_letters == 2

    recorded = await stores.events.list_events(0, None, types=["dead_letter.recorded"])
    assert sorted((e.vin, e.brand) for e in recorded) == sorted([(VIN, "volta"), (UNKNOWN, None)])
    stored = await stores.telemetry.list_dead_letters(None, None, 10)
    assert {e.data["id"] for e in recorded} == {d.id for d in stored}
    by_vin = {e.vin: e for e in recorded}
    assert by_vin[UNKNOWN].data["reason"].startswith(f"unknown VIN {UNKNOWN}")
    assert by_vin[VIN].data["reason"] == "malformed JSON: x"
    assert [e.vin for e in await stores.events.list_events(0, "volta")] == [VIN]
    assert await stores.events.unrelayed(10) == recorded


async def test_no_policy_writes_no_event(stores: Stores) -> None:
    stranger = TelemetryMessage(UNKNOWN, 1, SECOND, SECOND, (Sample("Vehicle.Speed", SECOND, 1.0),))
    await stores.telemetry.write_telemetry([stranger], [])
    assert await stores.events.list_events(0, None) == []
