"""TwinStore contract: versioned desired documents, reported state, configurations, targeting."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from carcloud.errors import ConflictError, NotFoundError, PreconditionFailed
from carcloud.events.models import NewEvent
from carcloud.storage import Stores
from carcloud.twins.documents import matches, merge_patch
from carcloud.twins.models import Configuration, Twin
from carcloud.twins.service import desired_event, effective_desired, reported_event
from tests.storage.conftest import SECOND, VIN

OTHER = "WVWZZZ1JZXW000002"
THIRD = "WVWZZZ1JZXW000003"


def recorder() -> tuple[list[Twin], Callable[[Twin], Sequence[NewEvent]]]:
    """A desired-changed emit that remembers the twins it was called with."""
    seen: list[Twin] = []

    def emit(twin: Twin) -> Sequence[NewEvent]:
        seen.append(twin)
        return desired_event(twin)

    return seen, emit


def configuration(
    config_id: str,
    name: str,
    target: dict[str, object],
    desired: dict[str, object],
    priority: int = 0,
) -> Configuration:
    return Configuration(config_id, name, target, priority, desired, SECOND, 2 * SECOND)


def patch(changes: dict[str, Any]) -> Callable[[Twin], dict[str, Any]]:
    """The update callable of a car's report: a merge patch of its reported document."""
    return lambda twin: merge_patch(twin.reported, changes)


# ---- one vehicle ------------------------------------------------------------------------


async def test_twin_of_a_fresh_vehicle_is_empty(stores: Stores) -> None:
    twin = await stores.twins.get_twin(VIN, "volta")
    assert twin == Twin(VIN, 0, {}, {}, None, {}, None, None)
    assert await stores.twins.get_twin(VIN, None) == twin


async def test_get_twin_is_brand_scoped(stores: Stores) -> None:
    await stores.registry.create_brand("nova", "Nova")
    with pytest.raises(NotFoundError):
        await stores.twins.get_twin(VIN, "nova")
    with pytest.raises(NotFoundError):
        await stores.twins.get_twin("ZZZZZZZZZZZZ99999", None)
    with pytest.raises(NotFoundError):
        await stores.twins.set_desired(VIN, "nova", {"a": 1}, None, effective_desired)
    assert (await stores.twins.get_twin(VIN, None)).desired_version == 0


async def test_one_own_desired_value(stores: Stores) -> None:
    twins = stores.twins
    assert await twins.own_desired_value(VIN, "calls") is None  # nothing set yet
    own = {"calls": {"video_allowed": True}, "a.b": [1, "x"], 'q"x': False}
    await twins.set_desired(VIN, "volta", own, None, effective_desired)
    await twins.save_configuration(configuration("c", "fleet", {"brand": "volta"}, {"seats": 2}))
    await twins.refresh_desired(effective_desired, vins=[VIN])
    assert await twins.own_desired_value(VIN, "calls") == {"video_allowed": True}
    assert await twins.own_desired_value(VIN, "a.b") == [1, "x"]
    assert await twins.own_desired_value(VIN, 'q"x') is False
    assert (await twins.get_twin(VIN, None)).desired["seats"] == 2
    assert await twins.own_desired_value(VIN, "seats") is None  # a configuration's, not own
    with pytest.raises(NotFoundError):
        await twins.own_desired_value("ZZZZZZZZZZZZ99999", "calls")


async def test_set_desired_with_if_match(stores: Stores) -> None:
    twins = stores.twins
    first = await twins.set_desired(VIN, "volta", {"climate": {"temp": 21}}, 0, effective_desired)
    assert first.desired_version == 1
    assert first.desired_own == first.desired == {"climate": {"temp": 21}}
    assert first.desired_updated_at is not None
    with pytest.raises(PreconditionFailed):  # read at version 0, now at 1
        await twins.set_desired(VIN, "volta", {"climate": {"temp": 18}}, 0, effective_desired)
    with pytest.raises(PreconditionFailed):
        await twins.set_desired(VIN, "volta", {"climate": {"temp": 18}}, 7, effective_desired)
    assert await twins.get_twin(VIN, None) == first
    second = await twins.set_desired(VIN, None, {"climate": {"temp": 18}}, 1, effective_desired)
    assert second.desired_version == 2 and second.desired == {"climate": {"temp": 18}}
    third = await twins.set_desired(VIN, None, {"lights": "auto"}, None, effective_desired)
    assert third.desired_version == 3 and third.desired == {"lights": "auto"}  # replaced
    assert await twins.get_twin(VIN, "volta") == third


async def test_version_changes_only_with_the_effective_document(stores: Stores) -> None:
    twins = stores.twins
    seen, emit = recorder()
    first = await twins.set_desired(VIN, None, {"a": 1}, None, effective_desired, emit=emit)
    assert first.desired_version == 1 and [t.desired_version for t in seen] == [1]
    same = await twins.set_desired(VIN, None, {"a": 1}, 1, effective_desired, emit=emit)
    assert same.desired_version == 1 and same.desired == {"a": 1}
    assert len(seen) == 1

    # A configuration gives the vehicle {"b": 2}: a new effective document.
    await twins.save_configuration(configuration("cfg_b", "b", {"brand": "volta"}, {"b": 2}))
    changed = await twins.refresh_desired(effective_desired, vins=[VIN], emit=emit)
    assert [(t.desired_version, t.desired) for t in changed] == [(2, {"a": 1, "b": 2})]
    assert len(seen) == 2

    # Own properties that repeat the configuration change own, not the effective document.
    own = await twins.set_desired(VIN, None, {"a": 1, "b": 2}, 2, effective_desired, emit=emit)
    assert own.desired_version == 2
    assert own.desired_own == {"a": 1, "b": 2} and own.desired == {"a": 1, "b": 2}
    assert len(seen) == 2
    assert (await twins.get_twin(VIN, None)).desired_own == {"a": 1, "b": 2}

    # An empty own document on a fresh vehicle changes nothing either.
    await stores.registry.create_vehicle(OTHER, "volta", "X", None, [], "h")
    await twins.delete_configuration("cfg_b")
    empty = await twins.set_desired(OTHER, None, {}, 0, effective_desired, emit=emit)
    assert empty.desired_version == 0 and len(seen) == 2

    stored = await stores.events.list_events(0, None, types=["twin.desired_changed"])
    assert [(e.brand, e.vin, e.data["version"]) for e in stored] == [
        ("volta", VIN, 1),
        ("volta", VIN, 2),
    ]


async def test_resolve_gets_the_vehicle_own_and_configurations(stores: Stores) -> None:
    calls: list[tuple[str, dict[str, Any], list[str]]] = []

    def resolve(
        vehicle: Any, own: dict[str, Any], configs: Sequence[Configuration]
    ) -> dict[str, Any]:
        calls.append((vehicle.vin, own, [c.id for c in configs]))
        return {"resolved": True, **own}

    await stores.twins.save_configuration(configuration("cfg_2", "z", {}, {}, priority=5))
    await stores.twins.save_configuration(configuration("cfg_1", "a", {}, {}, priority=5))
    await stores.twins.save_configuration(configuration("cfg_0", "m", {}, {}, priority=1))
    twin = await stores.twins.set_desired(VIN, None, {"a": 1}, None, resolve)
    assert calls == [(VIN, {"a": 1}, ["cfg_0", "cfg_1", "cfg_2"])]
    assert twin.desired == {"resolved": True, "a": 1} and twin.desired_own == {"a": 1}


async def test_set_reported_merges_and_keeps_the_desired_version(stores: Stores) -> None:
    twins = stores.twins
    await twins.set_desired(VIN, None, {"a": 1}, None, effective_desired)
    seen: list[Twin] = []

    def update(changes: dict[str, Any]) -> Callable[[Twin], dict[str, Any]]:
        def apply(twin: Twin) -> dict[str, Any]:
            seen.append(twin)
            return merge_patch(twin.reported, changes)

        return apply

    first = await twins.set_reported(
        VIN, update({"a": 1, "nested": {"x": 1}}), 1, 10 * SECOND, emit=reported_event
    )
    assert first is not None
    assert first.reported == {"a": 1, "nested": {"x": 1}}
    assert (first.reported_desired_version, first.reported_updated_at) == (1, 10 * SECOND)
    assert seen[0].reported == {} and seen[0].desired == {"a": 1}
    second = await twins.set_reported(
        VIN, update({"nested": {"y": 2}, "a": None}), None, 20 * SECOND, emit=reported_event
    )
    assert second is not None
    assert seen[1].reported == {"a": 1, "nested": {"x": 1}}  # the twin as it was
    assert second.reported == {"nested": {"x": 1, "y": 2}}
    assert (second.reported_desired_version, second.reported_updated_at) == (1, 20 * SECOND)
    assert (second.desired_version, second.desired) == (1, {"a": 1})  # desired untouched
    assert await twins.get_twin(VIN, "volta") == second
    stored = await stores.events.list_events(0, None, types=["twin.reported_changed"])
    assert [(e.brand, e.vin, e.data["reported"]) for e in stored] == [
        ("volta", VIN, {"a": 1, "nested": {"x": 1}}),
        ("volta", VIN, {"nested": {"x": 1, "y": 2}}),
    ]


async def test_set_reported_for_an_unknown_vin(stores: Stores) -> None:
    calls: list[Twin] = []

    def emit(twin: Twin) -> Sequence[NewEvent]:
        calls.append(twin)
        return reported_event(twin)

    unknown = await stores.twins.set_reported(
        "ZZZZZZZZZZZZ99999", patch({"a": 1}), 1, SECOND, emit=emit
    )
    assert unknown is None and calls == []
    assert await stores.events.list_events(0, None) == []


# ---- configurations ---------------------------------------------------------------------


async def test_configurations(empty_stores: Stores) -> None:
    twins = empty_stores.twins
    low = configuration("cfg_low", "zeta", {"brand": "volta"}, {"a": 1}, priority=1)
    high_b = configuration("cfg_b", "beta", {"tags": ["x"]}, {"b": 2}, priority=10)
    high_a = configuration("cfg_a", "alpha", {}, {"c": {"d": 3}}, priority=10)
    for config in (high_b, low, high_a):
        assert await twins.save_configuration(config) == config
    assert [c.id for c in await twins.list_configurations()] == ["cfg_low", "cfg_a", "cfg_b"]
    assert await twins.get_configuration("cfg_b") == high_b
    assert await twins.find_configuration("alpha") == high_a
    assert await twins.find_configuration("nobody") is None
    with pytest.raises(NotFoundError):
        await twins.get_configuration("cfg_missing")

    # Saving an id again replaces it, name included.
    renamed = Configuration("cfg_b", "aardvark", {"tags": ["y"]}, 0, {"e": 5}, SECOND, 9 * SECOND)
    assert await twins.save_configuration(renamed) == renamed
    assert await twins.get_configuration("cfg_b") == renamed
    assert await twins.find_configuration("beta") is None
    assert [c.id for c in await twins.list_configurations()] == ["cfg_b", "cfg_low", "cfg_a"]

    # A name in use by another configuration is a conflict, and changes nothing.
    with pytest.raises(ConflictError):
        await twins.save_configuration(configuration("cfg_new", "zeta", {}, {"f": 6}))
    with pytest.raises(ConflictError):
        await twins.save_configuration(configuration("cfg_a", "zeta", {}, {"f": 6}))
    assert await twins.get_configuration("cfg_a") == high_a
    with pytest.raises(NotFoundError):
        await twins.get_configuration("cfg_new")

    assert await twins.delete_configuration("cfg_low") == low
    with pytest.raises(NotFoundError):
        await twins.get_configuration("cfg_low")
    with pytest.raises(NotFoundError):
        await twins.delete_configuration("cfg_low")
    assert [c.id for c in await twins.list_configurations()] == ["cfg_b", "cfg_a"]


async def test_configuration_events(stores: Stores) -> None:
    twins = stores.twins

    def saved(config: Configuration) -> Sequence[NewEvent]:
        return (NewEvent("configuration.saved", brand=None, data={"id": config.id}),)

    def deleted(config: Configuration) -> Sequence[NewEvent]:
        return (NewEvent("configuration.deleted", brand="volta", data={"id": config.id}),)

    await twins.save_configuration(configuration("cfg_1", "one", {}, {"a": 1}), emit=saved)
    with pytest.raises(ConflictError):
        await twins.save_configuration(configuration("cfg_2", "one", {}, {}), emit=saved)
    await twins.delete_configuration("cfg_1", emit=deleted)
    with pytest.raises(NotFoundError):
        await twins.delete_configuration("cfg_1", emit=deleted)
    stored = await stores.events.list_events(0, None)
    assert [(e.type, e.brand, e.vin, e.data) for e in stored] == [
        ("configuration.saved", None, None, {"id": "cfg_1"}),
        ("configuration.deleted", "volta", None, {"id": "cfg_1"}),
    ]


async def test_name_prefix_matches_literally(empty_stores: Stores) -> None:
    twins = empty_stores.twins
    for config_id, name in [
        ("c1", "fleet_a"),
        ("c2", "fleetXa"),
        ("c3", "fleet%a"),
        ("c4", "fleet-a"),
        ("c5", "fleet_b"),
        ("c6", "other"),
        ("c8", "back\\slash"),
        ("c9", "backXslash"),
    ]:
        await twins.save_configuration(configuration(config_id, name, {}, {}))

    async def names(prefix: str | None) -> list[str]:
        return sorted(c.name for c in await twins.list_configurations(prefix))

    assert await names("fleet_") == ["fleet_a", "fleet_b"]
    assert await names("fleet%") == ["fleet%a"]
    assert await names("fleet_a") == ["fleet_a"]
    assert await names("fleet") == ["fleet%a", "fleet-a", "fleetXa", "fleet_a", "fleet_b"]
    assert await names("%") == []
    assert await names("_") == []
    assert await names("back\\") == ["back\\slash"]
    assert await names("") == sorted(
        [
            "fleet_a",
            "fleetXa",
            "fleet%a",
            "fleet-a",
            "fleet_b",
            "other",
            "back\\slash",
            "backXslash",
        ]
    )
    assert len(await twins.list_configurations(None)) == 8


async def test_name_prefix_is_case_sensitive(empty_stores: Stores) -> None:
    # Names are case-sensitive (both of these can exist), so a prefix is too: a configuration
    # named "CAMPAIGN:x" is not one of the campaigns listed by the prefix "campaign:".
    twins = empty_stores.twins
    await twins.save_configuration(configuration("c1", "campaign:trip", {}, {}))
    await twins.save_configuration(configuration("c2", "CAMPAIGN:hand-made", {}, {}))
    assert [c.name for c in await twins.list_configurations("campaign:")] == ["campaign:trip"]
    assert [c.name for c in await twins.list_configurations("CAMP")] == ["CAMPAIGN:hand-made"]


# ---- fleet targeting --------------------------------------------------------------------


async def test_refresh_desired_by_target(stores: Stores) -> None:
    twins, registry = stores.twins, stores.registry
    await registry.create_brand("nova", "Nova")
    await registry.create_vehicle(OTHER, "volta", "E1", 2024, ["fleet:b"], "h")
    await registry.create_vehicle(THIRD, "volta", "E2", 2025, ["fleet:a", "beta"], "h")
    await registry.create_vehicle("NOVAZZZ1JZXW00001", "nova", "N1", 2025, ["fleet:a"], "h")
    target: dict[str, object] = {"brand": "volta", "tags": ["fleet:a"]}
    await twins.save_configuration(configuration("cfg_eco", "eco", target, {"mode": "eco"}))
    seen, emit = recorder()

    changed = await twins.refresh_desired(effective_desired, targets=[target], emit=emit)

    assert sorted((t.vin, t.desired, t.desired_version) for t in changed) == [
        (VIN, {"mode": "eco"}, 1),
        (THIRD, {"mode": "eco"}, 1),
    ]
    assert sorted(t.vin for t in seen) == [VIN, THIRD]
    assert (await twins.get_twin(OTHER, None)).desired_version == 0
    assert (await twins.get_twin("NOVAZZZ1JZXW00001", None)).desired_version == 0
    stored = await stores.events.list_events(0, None, types=["twin.desired_changed"])
    assert sorted((e.vin, e.brand) for e in stored) == [(VIN, "volta"), (THIRD, "volta")]

    # Nothing changed since: nothing returned, nothing emitted.
    assert await twins.refresh_desired(effective_desired, targets=[target], emit=emit) == []
    assert len(seen) == 2
    # No target matches nobody.
    assert await twins.refresh_desired(effective_desired, targets=[], emit=emit) == []

    # The configuration now targets fleet:b instead: refresh the old and the new target.
    moved: dict[str, object] = {"tags": ["fleet:b"]}
    await twins.save_configuration(configuration("cfg_eco", "eco", moved, {"mode": "eco"}))
    changed = await twins.refresh_desired(effective_desired, targets=[moved, target], emit=emit)
    assert sorted((t.vin, t.desired, t.desired_version) for t in changed) == [
        (VIN, {}, 2),
        (OTHER, {"mode": "eco"}, 1),
        (THIRD, {}, 2),
    ]
    assert len(seen) == 5


async def test_refresh_desired_by_vins_and_all(stores: Stores) -> None:
    twins, registry = stores.twins, stores.registry
    await registry.create_vehicle(OTHER, "volta", "E1", 2024, ["fleet:a"], "h")
    await registry.create_vehicle(THIRD, "volta", "E2", 2025, [], "h")
    await twins.save_configuration(
        configuration("cfg_a", "a", {"tags": ["fleet:a"]}, {"mode": "a"})
    )
    seen, emit = recorder()

    changed = await twins.refresh_desired(effective_desired, vins=[OTHER, THIRD], emit=emit)
    assert [t.vin for t in changed] == [OTHER]  # THIRD is not targeted: unchanged
    assert [t.vin for t in seen] == [OTHER]
    assert (await twins.get_twin(VIN, None)).desired_version == 0  # not asked for
    assert await twins.refresh_desired(effective_desired, vins=[], emit=emit) == []
    assert await twins.refresh_desired(effective_desired, vins=["ZZZZZZZZZZZZ99999"]) == []

    everything = await twins.refresh_desired(effective_desired, emit=emit)
    assert [t.vin for t in everything] == [VIN]
    assert [t.vin for t in seen] == [OTHER, VIN]
    assert (await twins.get_twin(VIN, None)).desired == {"mode": "a"}


async def test_refresh_keeps_own_properties_on_top(stores: Stores) -> None:
    twins = stores.twins
    await twins.set_desired(VIN, None, {"mode": "sport", "x": 1}, None, effective_desired)
    await twins.save_configuration(
        configuration("cfg", "c", {"brand": "volta"}, {"mode": "eco", "y": 2})
    )
    changed = await twins.refresh_desired(effective_desired, vins=[VIN])
    assert [(t.desired_version, t.desired, t.desired_own) for t in changed] == [
        (2, {"mode": "sport", "x": 1, "y": 2}, {"mode": "sport", "x": 1})
    ]


async def test_unsynced_twins(stores: Stores) -> None:
    twins, registry = stores.twins, stores.registry
    await registry.create_vehicle(OTHER, "volta", "E1", 2024, [], "h")
    assert await twins.unsynced_twins() == []  # nothing desired yet
    await twins.set_desired(VIN, None, {"a": 1}, None, effective_desired)
    await twins.set_desired(OTHER, None, {"b": 1}, None, effective_desired)
    assert [t.vin for t in await twins.unsynced_twins()] == [VIN, OTHER]

    await twins.set_reported(VIN, patch({"a": 1}), 1, SECOND)
    assert [t.vin for t in await twins.unsynced_twins()] == [OTHER]
    await twins.set_reported(OTHER, patch({"b": 0}), None, SECOND)  # no version: still behind
    unsynced = await twins.unsynced_twins()
    assert [(t.vin, t.desired_version, t.reported_desired_version) for t in unsynced] == [
        (OTHER, 1, None)
    ]

    await twins.set_desired(VIN, None, {"a": 2}, None, effective_desired)
    assert sorted(t.vin for t in await twins.unsynced_twins()) == sorted([VIN, OTHER])
    await twins.set_reported(VIN, patch({"a": 2}), 2, 2 * SECOND)
    await twins.set_reported(OTHER, patch({"b": 1}), 1, 2 * SECOND)
    assert await twins.unsynced_twins() == []


# Eight vehicles of two brands, and the targets SQL and Python must agree on.
FLEET: list[tuple[str, str, str, int | None, list[str]]] = [
    ("VOLTA000000000001", "volta", "E1", 2025, ["fleet:a"]),
    ("VOLTA000000000002", "volta", "E1", 2022, ["fleet:a", "beta"]),
    ("VOLTA000000000003", "volta", "E2", None, ["beta"]),
    ("VOLTA000000000004", "volta", "E2", 2020, []),
    ("NOVA0000000000001", "nova", "E1", 2024, ["fleet:a", "beta", "x"]),
    ("NOVA0000000000002", "nova", "N7", 2023, ["fleet:b"]),
    ("NOVA0000000000003", "nova", "N7", None, ["fleet:a"]),
    ("NOVA0000000000004", "nova", "e1", 2021, ["beta", "fleet:b"]),
]

TARGETS: list[dict[str, Any]] = [
    {},
    {"brand": "volta"},
    {"brand": "nova"},
    {"brand": "nobrand"},
    {"model": "E1"},
    {"model": "e1"},
    {"model": "N7", "brand": "nova"},
    {"model_year_min": 2023},
    {"model_year_max": 2022},
    {"model_year_min": 2021, "model_year_max": 2023},
    {"model_year_min": 2024, "model_year_max": 2022},
    {"tags": []},
    {"tags": ["fleet:a"]},
    {"tags": ["beta"]},
    {"tags": ["fleet:a", "beta"]},
    {"tags": ["fleet:b", "beta"]},
    {"tags": ["beta", "beta"]},
    {"tags": ["missing"]},
    {"brand": "volta", "model": "E1", "model_year_min": 2023, "tags": ["fleet:a"]},
    {"brand": "nova", "model_year_max": 2024, "tags": ["beta"]},
]


@pytest.mark.parametrize("target", TARGETS, ids=[repr(t) for t in TARGETS])
async def test_twins_matching_agrees_with_matches(
    empty_stores: Stores, target: dict[str, Any]
) -> None:
    registry = empty_stores.registry
    await registry.create_brand("volta", "Volta")
    await registry.create_brand("nova", "Nova")
    for vin, brand, model, year, tags in FLEET:
        await registry.create_vehicle(vin, brand, model, year, tags, "h")
    vehicles = await registry.list_vehicles(limit=100)
    assert len(vehicles) == len(FLEET)

    in_python = {v.vin for v in vehicles if matches(target, v)}
    twins = await empty_stores.twins.twins_matching(target)
    assert {t.vin for t in twins} == in_python
    assert len(twins) == len(in_python)  # each vehicle once

    # refresh_desired by target selects the same vehicles.
    config = configuration("cfg", "c", target, {"targeted": True})
    await empty_stores.twins.save_configuration(config)
    changed = await empty_stores.twins.refresh_desired(effective_desired, targets=[target])
    assert {t.vin for t in changed} == in_python


async def test_twins_matching_returns_the_twins(stores: Stores) -> None:
    await stores.twins.set_desired(VIN, None, {"a": 1}, None, effective_desired)
    await stores.twins.set_reported(VIN, patch({"a": 1}), 1, SECOND)
    twins = await stores.twins.twins_matching({"tags": ["fleet:a"]})
    assert twins == [await stores.twins.get_twin(VIN, None)]
    assert twins[0].desired == {"a": 1} and twins[0].reported == {"a": 1}
