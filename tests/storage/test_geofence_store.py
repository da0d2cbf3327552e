"""GeofenceStore contract: fences round-trip and stay in their brand, visits are replaced
with their events, and a fence's deletion takes its visits."""

from __future__ import annotations

import dataclasses

import pytest

from carcloud.errors import NotFoundError
from carcloud.geofences.models import Geofence, Visit, visit_id
from carcloud.geofences.service import visit_events
from carcloud.storage import Stores
from carcloud.telematics.timeline import Position
from tests.storage.conftest import SECOND, VIN

OTHER_VIN = "WVWZZZ1JZXW000002"


def fence(fence_id: str, brand: str = "volta", shape: str = "polygon") -> Geofence:
    if shape == "circle":
        return Geofence(fence_id, brand, "depot", "circle", (Position(48.1, 11.5),),
                        radius_m=150.0, created_at=1, updated_at=1)  # fmt: skip
    if shape == "corridor":
        return Geofence(fence_id, brand, "route", "corridor",
                        (Position(48.1, 11.5), Position(48.11, 11.52)), width_m=60.0,
                        margin_m=10.0, min_dwell_s=5.0, created_at=2, updated_at=2)  # fmt: skip
    return Geofence(fence_id, brand, "yard", "polygon",
                    (Position(48.1, 11.5), Position(48.1, 11.51), Position(48.11, 11.505)),
                    created_at=3, updated_at=3)  # fmt: skip


def visit(fence_id: str, enter_s: int, exit_s: int | None, last_s: int | None = None) -> Visit:
    return Visit(visit_id(VIN, fence_id, enter_s * SECOND), fence_id, VIN, enter_s * SECOND,
                 exit_s * SECOND if exit_s is not None else None,
                 (last_s if last_s is not None else exit_s or enter_s) * SECOND)  # fmt: skip


async def test_fences_round_trip_per_brand(stores: Stores) -> None:
    await stores.registry.create_brand("other", "Other")
    store = stores.geofences
    mine = [fence("gfn_a", shape="circle"), fence("gfn_b", shape="corridor"), fence("gfn_c")]
    for item in mine:
        assert await store.save_geofence(item) == item
    theirs = await store.save_geofence(fence("gfn_x", brand="other"))
    assert await store.list_geofences("volta") == mine
    assert await store.list_geofences(None) == [*mine, theirs]
    assert await store.get_geofence("gfn_b", "volta") == mine[1]
    with pytest.raises(NotFoundError):
        await store.get_geofence("gfn_x", "volta")  # another brand's: not there
    changed = dataclasses.replace(mine[0], name="depot 2", radius_m=300.0, updated_at=9)
    await store.save_geofence(changed)
    assert await store.get_geofence("gfn_a", None) == changed
    with pytest.raises(NotFoundError):
        await store.delete_geofence("gfn_x", "volta")
    assert await store.delete_geofence("gfn_x", "other") == theirs
    assert await store.list_geofences("other") == []
    with pytest.raises(NotFoundError):
        await store.save_geofence(fence("gfn_y", brand="nobody"))
    assert await store.vehicle_brand(VIN) == "volta"
    assert await store.vehicle_brand(OTHER_VIN) is None


async def test_visits_are_replaced_with_their_events(stores: Stores) -> None:
    store = stores.geofences
    fences = {f.id: f for f in (fence("gfn_a", shape="circle"), fence("gfn_c"))}
    for item in fences.values():
        await store.save_geofence(item)
    emit = visit_events(fences)
    done, open_one = visit("gfn_a", 100, 400), visit("gfn_c", 500, None, 600)
    changes = await store.replace_visits(VIN, 0, [done, open_one], emit)
    assert changes.created == (done.id, open_one.id)
    assert await store.visits_since(VIN, 450 * SECOND) == [open_one]  # open: always
    assert await store.visits_since(VIN, 0) == [done, open_one]
    # The open visit ends; a replace from later still sees it (it was open).
    closed = dataclasses.replace(open_one, exit_ts=700 * SECOND, last_ts=700 * SECOND)
    again = await store.replace_visits(VIN, 650 * SECOND, [closed], emit)
    assert again.updated == (closed.id,) and again.removed == ()
    assert await store.replace_visits(VIN, 650 * SECOND, [closed], emit) == type(again)()
    # Late data shows the first visit was no visit.
    gone = await store.replace_visits(VIN, 0, [closed], emit)
    assert gone.removed == (done.id,)
    events = await stores.events.list_events(0, "volta", ["geofence"])
    assert [(e.type, e.data["id"]) for e in events] == [
        ("geofence.entered", done.id),
        ("geofence.exited", done.id),
        ("geofence.entered", open_one.id),
        ("geofence.exited", open_one.id),
    ]
    assert events[1].data["dwell_s"] == 300.0 and events[1].data["geofence_name"] == "depot"
    assert events[2].data["exited_at"] is None and events[0].vin == VIN
    assert await stores.events.list_events(0, "other", ["geofence"]) == []


async def test_visit_reads_are_scoped_and_deleting_a_fence_takes_its_visits(
    stores: Stores,
) -> None:
    await stores.registry.create_brand("other", "Other")
    await stores.registry.create_vehicle(OTHER_VIN, "other", "X", 2025, [], "scrypt$h")
    store = stores.geofences
    await store.save_geofence(fence("gfn_a", shape="circle"))
    await store.save_geofence(fence("gfn_x", brand="other"))
    first, second = visit("gfn_a", 100, 200), visit("gfn_a", 300, None, 350)
    await store.replace_visits(VIN, 0, [first, second])
    theirs = Visit(visit_id(OTHER_VIN, "gfn_x", 10), "gfn_x", OTHER_VIN, 10, None, 10)
    await store.replace_visits(OTHER_VIN, 0, [theirs])
    assert await store.list_visits("volta") == [second, first]
    assert await store.list_visits(None, vin=OTHER_VIN) == [theirs]
    assert await store.list_visits("volta", vin=OTHER_VIN) == []
    assert await store.list_visits("volta", "gfn_x") == []
    assert await store.list_visits("volta", "gfn_a", VIN, before=300 * SECOND) == [first]
    assert await store.list_visits(None, limit=1) == [second]
    await store.delete_geofence("gfn_a", "volta")
    assert await store.list_visits("volta") == []
    assert await store.visits_since(VIN, 0) == []
