"""RegistryStore contract: brands, vehicles, presence, credentials, API keys, and events."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from carcloud.errors import ConflictError, NotFoundError
from carcloud.events.models import NewEvent
from carcloud.registry.models import NewVehicle, Vehicle
from carcloud.storage import Stores
from tests.storage.conftest import SECOND, VIN

OTHER = "WVWZZZ1JZXW000009"
UNKNOWN = "ZZZZZZZZZZZZ99999"


def recorder(event_type: str) -> tuple[list[Vehicle], Callable[[Vehicle], Sequence[NewEvent]]]:
    """An emit callback that remembers the vehicles it was called with."""
    seen: list[Vehicle] = []

    def emit(vehicle: Vehicle) -> Sequence[NewEvent]:
        seen.append(vehicle)
        # No brand: the store resolves it from the VIN in the same transaction.
        return (NewEvent(event_type, vin=vehicle.vin, data={"model": vehicle.model}),)

    return seen, emit


async def add_vehicles(stores: Stores) -> None:
    """Brand `nova` beside `volta`, and four more vehicles."""
    await stores.registry.create_brand("nova", "Nova")
    reg = stores.registry
    await reg.create_vehicle("WVWZZZ1JZXW000002", "volta", "E1", 2024, ["fleet:b"], "h")
    await reg.create_vehicle("WVWZZZ1JZXW000003", "volta", "E2", None, [], "h")
    await reg.create_vehicle("NOVAZZZ1JZXW00001", "nova", "N1", 2023, ["fleet:a"], "h")
    await reg.create_vehicle("NOVAZZZ1JZXW00002", "nova", "N1", 2022, ["fleet:a", "x"], "h")


# ---- the rules the registry relied on before the split (folded in) ----------------------


async def test_registry_rules(stores: Stores) -> None:
    registry = stores.registry
    with pytest.raises(ConflictError):
        await registry.create_vehicle(VIN, "volta", "E1", 2025, [], "h")
    with pytest.raises(NotFoundError):
        await registry.create_vehicle(OTHER, "nobrand", "E1", 2025, [], "h")
    with pytest.raises(NotFoundError):
        await registry.get_vehicle(VIN, brand="otherbrand")
    updated = await registry.update_vehicle(VIN, None, tags=["b", "a"])
    assert updated.tags == ("a", "b")
    assert [v.vin for v in await registry.list_vehicles(tag="a")] == [VIN]
    assert await registry.list_vehicles(tag="fleet:a") == []


async def test_presence_ignores_older_events(stores: Stores) -> None:
    registry = stores.registry
    assert await registry.set_presence(VIN, True, 10 * SECOND)
    assert await registry.set_presence(VIN, False, 5 * SECOND)  # an event that arrives late
    vehicle = await registry.get_vehicle(VIN)
    assert vehicle.online and vehicle.last_seen_at == 10 * SECOND
    assert not await registry.set_presence(UNKNOWN, True, SECOND)


# ---- brands -----------------------------------------------------------------------------


async def test_brands(empty_stores: Stores) -> None:
    registry = empty_stores.registry
    volta = await registry.create_brand("volta", "Volta")
    await registry.create_brand("aurora", "Aurora")
    assert (volta.slug, volta.name) == ("volta", "Volta") and volta.created_at > 0
    with pytest.raises(ConflictError):
        await registry.create_brand("volta", "Volta again")
    assert [b.slug for b in await registry.list_brands()] == ["aurora", "volta"]
    assert await registry.get_brand("volta") == volta
    with pytest.raises(NotFoundError):
        await registry.get_brand("nobrand")


async def test_create_brand_writes_its_events(empty_stores: Stores) -> None:
    created = NewEvent("brand.created", brand="volta", data={"slug": "volta"})
    await empty_stores.registry.create_brand("volta", "Volta", emit=[created])
    with pytest.raises(ConflictError):
        await empty_stores.registry.create_brand("volta", "Volta", emit=[created])
    events = await empty_stores.events.list_events(0, None)
    assert [(e.type, e.brand, e.vin, e.data) for e in events] == [
        ("brand.created", "volta", None, {"slug": "volta"})
    ]


# ---- vehicles ---------------------------------------------------------------------------


async def test_created_vehicle(stores: Stores) -> None:
    vehicle = await stores.registry.get_vehicle(VIN)
    assert (vehicle.vin, vehicle.brand, vehicle.model, vehicle.model_year) == (
        VIN,
        "volta",
        "E1",
        2025,
    )
    assert vehicle.tags == ("fleet:a",)
    assert vehicle.created_at > 0 and vehicle.revoked_at is None
    assert not vehicle.online and vehicle.last_seen_at is None and vehicle.connected_at is None
    assert await stores.registry.get_vehicle(VIN, brand="volta") == vehicle


async def test_get_vehicle_is_brand_scoped(stores: Stores) -> None:
    await stores.registry.create_brand("nova", "Nova")
    with pytest.raises(NotFoundError):
        await stores.registry.get_vehicle(VIN, brand="nova")
    with pytest.raises(NotFoundError):
        await stores.registry.get_vehicle(UNKNOWN)


async def test_list_filters_and_paging(stores: Stores) -> None:
    await add_vehicles(stores)
    registry = stores.registry
    await registry.set_presence("WVWZZZ1JZXW000002", True, SECOND)
    await registry.set_presence("NOVAZZZ1JZXW00002", True, SECOND)

    async def vins(**filters: object) -> list[str]:
        return [v.vin for v in await registry.list_vehicles(**filters)]  # type: ignore[arg-type]

    everything = sorted(
        [
            VIN,
            "WVWZZZ1JZXW000002",
            "WVWZZZ1JZXW000003",
            "NOVAZZZ1JZXW00001",
            "NOVAZZZ1JZXW00002",
        ]
    )
    assert await vins() == everything
    assert await vins(brand="volta") == [VIN, "WVWZZZ1JZXW000002", "WVWZZZ1JZXW000003"]
    assert await vins(brand="nova") == ["NOVAZZZ1JZXW00001", "NOVAZZZ1JZXW00002"]
    assert await vins(brand="nobrand") == []
    assert await vins(tag="fleet:a") == ["NOVAZZZ1JZXW00001", "NOVAZZZ1JZXW00002", VIN]
    assert await vins(tag="fleet:a", brand="nova") == ["NOVAZZZ1JZXW00001", "NOVAZZZ1JZXW00002"]
    assert await vins(online=True) == ["NOVAZZZ1JZXW00002", "WVWZZZ1JZXW000002"]
    assert await vins(online=False) == ["NOVAZZZ1JZXW00001", VIN, "WVWZZZ1JZXW000003"]
    assert await vins(online=True, brand="volta", tag="fleet:b") == ["WVWZZZ1JZXW000002"]
    assert await vins(online=True, tag="fleet:b") == ["WVWZZZ1JZXW000002"]
    assert await vins(limit=2) == everything[:2]
    assert await vins(limit=2, offset=2) == everything[2:4]
    assert await vins(limit=2, offset=4) == everything[4:]
    assert await vins(limit=10, offset=5) == []
    assert await vins(brand="volta", limit=1, offset=1) == ["WVWZZZ1JZXW000002"]


async def test_count_vehicles(stores: Stores) -> None:
    await add_vehicles(stores)
    registry = stores.registry
    assert await registry.count_vehicles() == (5, 0)
    await registry.set_presence("WVWZZZ1JZXW000002", True, SECOND)
    await registry.set_presence("NOVAZZZ1JZXW00001", True, SECOND)
    await registry.set_presence(VIN, True, SECOND)
    await registry.set_presence(VIN, False, 2 * SECOND)
    assert await registry.count_vehicles() == (5, 2)
    assert await registry.count_vehicles("volta") == (3, 1)
    assert await registry.count_vehicles("nova") == (2, 1)
    assert await registry.count_vehicles("nobrand") == (0, 0)


async def test_count_of_an_empty_registry(empty_stores: Stores) -> None:
    assert await empty_stores.registry.count_vehicles() == (0, 0)


async def test_update_vehicle(stores: Stores) -> None:
    registry = stores.registry
    updated = await registry.update_vehicle(VIN, "volta", tags=["x", "fleet:b", "x"])
    assert updated.tags == ("fleet:b", "x")  # replaced, not added to; by name; once each
    assert (updated.model, updated.model_year) == ("E1", 2025)
    updated = await registry.update_vehicle(VIN, None, model="E1 Long Range")
    assert (updated.model, updated.model_year, updated.tags) == (
        "E1 Long Range",
        2025,
        ("fleet:b", "x"),
    )
    updated = await registry.update_vehicle(VIN, None, model_year=2026)
    assert (updated.model, updated.model_year) == ("E1 Long Range", 2026)
    updated = await registry.update_vehicle(VIN, None, tags=[])
    assert updated.tags == ()
    assert await registry.get_vehicle(VIN) == updated
    assert await registry.list_vehicles(tag="x") == []


async def test_update_is_brand_scoped(stores: Stores) -> None:
    await stores.registry.create_brand("nova", "Nova")
    with pytest.raises(NotFoundError):
        await stores.registry.update_vehicle(VIN, "nova", tags=["stolen"])
    with pytest.raises(NotFoundError):
        await stores.registry.update_vehicle(UNKNOWN, None, tags=["x"])
    assert (await stores.registry.get_vehicle(VIN)).tags == ("fleet:a",)


async def test_revoke_then_new_secret_lifts_revocation(stores: Stores) -> None:
    registry = stores.registry
    credentials = await registry.get_credentials(VIN)
    assert credentials is not None
    assert (credentials.vin, credentials.brand, credentials.secret_hash) == (
        VIN,
        "volta",
        "scrypt$h",
    )
    assert not credentials.revoked

    revoked = await registry.revoke_vehicle(VIN, "volta")
    assert revoked.revoked_at is not None
    credentials = await registry.get_credentials(VIN)
    assert credentials is not None and credentials.revoked
    again = await registry.revoke_vehicle(VIN, None)  # revoking twice keeps the first time
    assert again.revoked_at == revoked.revoked_at

    renewed = await registry.set_vehicle_secret(VIN, "volta", "scrypt$new")
    assert renewed.revoked_at is None
    credentials = await registry.get_credentials(VIN)
    assert credentials is not None
    assert credentials.secret_hash == "scrypt$new" and not credentials.revoked
    assert await registry.get_credentials(UNKNOWN) is None


async def test_secret_and_revocation_are_brand_scoped(stores: Stores) -> None:
    await stores.registry.create_brand("nova", "Nova")
    with pytest.raises(NotFoundError):
        await stores.registry.revoke_vehicle(VIN, "nova")
    with pytest.raises(NotFoundError):
        await stores.registry.set_vehicle_secret(VIN, "nova", "stolen")
    credentials = await stores.registry.get_credentials(VIN)
    assert credentials is not None
    assert credentials.secret_hash == "scrypt$h" and not credentials.revoked


async def test_delete_returns_the_vehicle_and_removes_it(stores: Stores) -> None:
    registry = stores.registry
    await registry.create_brand("nova", "Nova")
    with pytest.raises(NotFoundError):
        await registry.delete_vehicle(VIN, "nova")
    before = await registry.get_vehicle(VIN)
    deleted = await registry.delete_vehicle(VIN, "volta")
    assert deleted == before
    with pytest.raises(NotFoundError):
        await registry.get_vehicle(VIN)
    assert await registry.get_credentials(VIN) is None
    assert await registry.list_vehicles() == []
    assert await registry.count_vehicles() == (0, 0)
    with pytest.raises(NotFoundError):
        await registry.delete_vehicle(VIN, None)
    # The VIN can be registered again.
    again = await registry.create_vehicle(VIN, "nova", "N1", None, [], "h2")
    assert again.brand == "nova" and again.tags == ()


# ---- events written with the change ----------------------------------------------------


async def test_emitted_events_are_stored_with_the_change(empty_stores: Stores) -> None:
    registry, events = empty_stores.registry, empty_stores.events
    await registry.create_brand("volta", "Volta")
    seen, registered = recorder("vehicle.registered")
    vehicle = await registry.create_vehicle(VIN, "volta", "E1", 2025, ["t"], "h", emit=registered)
    assert seen == [vehicle]
    _, updated = recorder("vehicle.updated")
    await registry.update_vehicle(VIN, None, model="E2", emit=updated)
    _, rotated = recorder("vehicle.secret_rotated")
    await registry.set_vehicle_secret(VIN, None, "h2", emit=rotated)
    _, revoked = recorder("vehicle.revoked")
    await registry.revoke_vehicle(VIN, None, emit=revoked)
    _, deleted = recorder("vehicle.deleted")
    await registry.delete_vehicle(VIN, None, emit=deleted)

    stored = await events.list_events(0, None)
    assert [(e.type, e.brand, e.vin, e.data) for e in stored] == [
        ("vehicle.registered", "volta", VIN, {"model": "E1"}),
        ("vehicle.updated", "volta", VIN, {"model": "E2"}),
        ("vehicle.secret_rotated", "volta", VIN, {"model": "E2"}),
        ("vehicle.revoked", "volta", VIN, {"model": "E2"}),
        ("vehicle.deleted", "volta", VIN, {"model": "E2"}),  # brand known though it is gone
    ]
    assert [e.id for e in stored] == sorted(e.id for e in stored)
    assert [e.id for e in await events.list_events(0, "volta")] == [e.id for e in stored]


async def test_a_failed_write_stores_no_event(stores: Stores) -> None:
    registry = stores.registry
    seen, emit = recorder("vehicle.registered")
    with pytest.raises(ConflictError):
        await registry.create_vehicle(VIN, "volta", "E9", 2020, [], "h", emit=emit)
    with pytest.raises(NotFoundError):
        await registry.create_vehicle(OTHER, "nobrand", "E9", 2020, [], "h", emit=emit)
    with pytest.raises(NotFoundError):
        await registry.update_vehicle(UNKNOWN, None, tags=["x"], emit=emit)
    with pytest.raises(NotFoundError):
        await registry.delete_vehicle(UNKNOWN, None, emit=emit)
    assert await stores.events.list_events(0, None) == []
    assert (await registry.get_vehicle(VIN)).model == "E1"


async def test_an_emit_that_fails_undoes_the_change(stores: Stores) -> None:
    def broken(vehicle: Vehicle) -> Sequence[NewEvent]:
        raise RuntimeError("emit failed")

    registry = stores.registry
    with pytest.raises(RuntimeError):
        await registry.create_vehicle(OTHER, "volta", "E1", 2025, [], "h", emit=broken)
    with pytest.raises(NotFoundError):
        await registry.get_vehicle(OTHER)
    with pytest.raises(RuntimeError):
        await registry.update_vehicle(VIN, None, tags=["changed"], emit=broken)
    assert (await registry.get_vehicle(VIN)).tags == ("fleet:a",)
    with pytest.raises(RuntimeError):
        await registry.delete_vehicle(VIN, None, emit=broken)
    assert (await registry.get_vehicle(VIN)).vin == VIN
    assert await stores.events.list_events(0, None) == []


# ---- many vehicles in one transaction ---------------------------------------------------


def new_vehicle(vin: str, brand: str = "volta", tags: tuple[str, ...] = ()) -> NewVehicle:
    return NewVehicle(vin, brand, "E1", 2025, tags, f"hash-{vin}")


async def test_create_vehicles_stores_good_rows_and_reports_bad_ones(stores: Stores) -> None:
    registry = stores.registry
    seen, emit = recorder("vehicle.registered")
    batch = [
        new_vehicle(OTHER, tags=("fleet:b", "lease")),
        new_vehicle(VIN),  # registered by the fixture
        new_vehicle("WVWZZZ1JZXW000010", brand="nobrand"),
        new_vehicle("WVWZZZ1JZXW000011"),
        new_vehicle(OTHER),  # twice in the batch
    ]
    outcome = await registry.create_vehicles(batch, emit=emit)

    assert len(outcome) == len(batch)
    first, already, unknown_brand, fourth, repeated = outcome
    assert isinstance(first, Vehicle) and first.vin == OTHER
    assert first.tags == ("fleet:b", "lease") and first.brand == "volta"
    assert first.model_year == 2025 and first.online is False
    assert isinstance(already, ConflictError) and "already registered" in str(already)
    assert isinstance(unknown_brand, NotFoundError) and "nobrand" in str(unknown_brand)
    assert isinstance(fourth, Vehicle) and fourth.vin == "WVWZZZ1JZXW000011"
    assert isinstance(repeated, ConflictError) and "twice" in str(repeated)
    assert seen == [first, fourth]

    credentials = await registry.get_credentials(OTHER)
    assert credentials is not None and credentials.secret_hash == f"hash-{OTHER}"
    assert await registry.get_credentials("WVWZZZ1JZXW000010") is None
    assert await registry.get_vehicle(OTHER) == first
    assert await registry.count_vehicles("volta") == (3, 0)
    stored = await stores.events.list_events(0, None)
    assert [(e.type, e.brand, e.vin) for e in stored] == [
        ("vehicle.registered", "volta", OTHER),
        ("vehicle.registered", "volta", "WVWZZZ1JZXW000011"),
    ]


async def test_create_vehicles_of_a_thousand_in_one_call(empty_stores: Stores) -> None:
    registry = empty_stores.registry
    await registry.create_brand("volta", "Volta")
    vins = [f"WVWZZZ1JZXW{index:06d}" for index in range(1000)]
    outcome = await registry.create_vehicles([new_vehicle(vin) for vin in vins])
    assert [v.vin for v in outcome if isinstance(v, Vehicle)] == vins
    assert await registry.count_vehicles() == (1000, 0)
    assert await registry.create_vehicles([]) == []


async def test_create_vehicles_undoes_everything_when_an_emit_fails(stores: Stores) -> None:
    def broken(vehicle: Vehicle) -> Sequence[NewEvent]:
        raise RuntimeError("emit failed")

    with pytest.raises(RuntimeError):
        await stores.registry.create_vehicles(
            [new_vehicle(OTHER), new_vehicle("WVWZZZ1JZXW000011")], emit=broken
        )
    assert await stores.registry.count_vehicles() == (1, 0)
    assert await stores.events.list_events(0, None) == []


async def test_upgrade_secret_hash_only_replaces_the_hash_it_was_given(stores: Stores) -> None:
    registry = stores.registry
    assert await registry.upgrade_secret_hash(VIN, "scrypt$h", "hmac$new")
    credentials = await registry.get_credentials(VIN)
    assert credentials is not None and credentials.secret_hash == "hmac$new"
    # A rotation in between wins: the upgrade of the old hash changes nothing.
    await registry.set_vehicle_secret(VIN, None, "rotated")
    assert not await registry.upgrade_secret_hash(VIN, "hmac$new", "hmac$late")
    credentials = await registry.get_credentials(VIN)
    assert credentials is not None and credentials.secret_hash == "rotated"
    assert not await registry.upgrade_secret_hash(UNKNOWN, "rotated", "x")
    assert await stores.events.list_events(0, None) == []  # not a change anyone follows


# ---- presence ---------------------------------------------------------------------------


async def test_presence_records_connects_and_disconnects(stores: Stores) -> None:
    registry = stores.registry
    assert await registry.set_presence(VIN, True, 10 * SECOND)
    vehicle = await registry.get_vehicle(VIN)
    assert vehicle.online
    assert (vehicle.connected_at, vehicle.last_seen_at) == (10 * SECOND, 10 * SECOND)
    assert await registry.set_presence(VIN, False, 20 * SECOND)
    vehicle = await registry.get_vehicle(VIN)
    assert not vehicle.online
    assert (vehicle.connected_at, vehicle.last_seen_at) == (10 * SECOND, 20 * SECOND)
    assert await registry.set_presence(VIN, True, 30 * SECOND)
    vehicle = await registry.get_vehicle(VIN)
    assert vehicle.online and vehicle.connected_at == 30 * SECOND


async def test_presence_emits_only_when_the_record_changed(stores: Stores) -> None:
    registry = stores.registry
    seen, online = recorder("vehicle.online")
    assert await registry.set_presence(VIN, True, 10 * SECOND, emit=online)
    assert [v.online for v in seen] == [True]
    assert seen[0].last_seen_at == 10 * SECOND
    _, offline = recorder("vehicle.offline")
    late: list[Vehicle] = []

    def late_emit(vehicle: Vehicle) -> Sequence[NewEvent]:
        late.append(vehicle)
        return offline(vehicle)

    assert await registry.set_presence(VIN, False, 5 * SECOND, emit=late_emit)  # older: loses
    assert late == []
    assert not await registry.set_presence(UNKNOWN, True, SECOND, emit=late_emit)
    assert late == []
    assert await registry.set_presence(VIN, False, 11 * SECOND, emit=late_emit)
    assert [v.online for v in late] == [False]
    stored = await stores.events.list_events(0, None)
    assert [(e.type, e.brand, e.vin) for e in stored] == [
        ("vehicle.online", "volta", VIN),
        ("vehicle.offline", "volta", VIN),
    ]


async def test_reconcile_presence(stores: Stores) -> None:
    registry = stores.registry
    await add_vehicles(stores)
    stale, still, arrives, away, newer = (
        VIN,
        "WVWZZZ1JZXW000002",
        "WVWZZZ1JZXW000003",
        "NOVAZZZ1JZXW00001",
        "NOVAZZZ1JZXW00002",
    )
    await registry.set_presence(stale, True, 10 * SECOND)  # online, but not connected any more
    await registry.set_presence(still, True, 10 * SECOND)  # online and connected: unchanged
    # `arrives` is offline and connected; `away` offline and not connected: unchanged.
    await registry.set_presence(newer, True, 60 * SECOND)  # an event newer than the snapshot
    seen, emit = recorder("vehicle.online")

    changed = await registry.reconcile_presence({still, arrives, UNKNOWN}, 50 * SECOND, emit=emit)

    assert sorted((v.vin, v.online) for v in changed) == [(stale, False), (arrives, True)]
    assert sorted(v.vin for v in seen) == sorted([stale, arrives])
    online = {v.vin: v for v in await registry.list_vehicles(online=True)}
    assert set(online) == {still, arrives, newer}
    assert online[arrives].connected_at == 50 * SECOND
    assert online[still].connected_at == 10 * SECOND
    assert online[newer].connected_at == 60 * SECOND
    gone = await registry.get_vehicle(stale)
    assert gone.last_seen_at == 50 * SECOND and gone.connected_at == 10 * SECOND
    assert not (await registry.get_vehicle(away)).online
    stored = await stores.events.list_events(0, None)
    assert sorted((e.vin, e.brand) for e in stored) == sorted(
        [(stale, "volta"), (arrives, "volta")]
    )

    # The same snapshot again changes nothing.
    assert await registry.reconcile_presence({still, arrives}, 51 * SECOND, emit=emit) == []
    assert len(seen) == 2


async def test_reconcile_with_nothing_connected(stores: Stores) -> None:
    registry = stores.registry
    await registry.set_presence(VIN, True, SECOND)
    changed = await registry.reconcile_presence(set(), 2 * SECOND)
    assert [(v.vin, v.online) for v in changed] == [(VIN, False)]
    assert await registry.count_vehicles() == (1, 0)


# ---- API keys ---------------------------------------------------------------------------


async def test_api_keys(stores: Stores) -> None:
    registry = stores.registry
    operator = await registry.create_api_key("key_op", "operator", None, "hash-op")
    brand_key = await registry.create_api_key("key_volta", "volta app", "volta", "hash-v")
    assert (operator.id, operator.name, operator.brand, operator.key_hash) == (
        "key_op",
        "operator",
        None,
        "hash-op",
    )
    assert operator.created_at > 0 and operator.revoked_at is None
    assert brand_key.brand == "volta"
    assert await registry.get_api_key("key_op") == operator
    assert await registry.get_api_key("key_volta") == brand_key
    assert await registry.get_api_key("key_missing") is None
    third = await registry.create_api_key("key_late", "later", None, "hash-l")
    assert [k.id for k in await registry.list_api_keys()] == [third.id, "key_volta", "key_op"]


async def test_api_key_of_an_unknown_brand(stores: Stores) -> None:
    with pytest.raises(NotFoundError):
        await stores.registry.create_api_key("key_x", "x", "nobrand", "hash")
    assert await stores.registry.get_api_key("key_x") is None
    assert await stores.registry.list_api_keys() == []
