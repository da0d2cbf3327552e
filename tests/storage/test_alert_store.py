"""AlertStore contract: rules per brand, rule state, raise/clear/acknowledge with events, scope."""

from __future__ import annotations

import dataclasses

import pytest

from carcloud.alerts.models import (
    ACKNOWLEDGED,
    ACTIVE,
    CLEARED,
    Alert,
    AlertRule,
    RuleState,
    Target,
)
from carcloud.alerts.service import alert_events
from carcloud.errors import NotFoundError, PreconditionFailed
from carcloud.storage import Stores
from tests.storage.conftest import SECOND, VIN

OTHER_VIN = "WVWZZZ1JZXW000002"


def rule(rule_id: str, brand: str = "volta", **changes: object) -> AlertRule:
    fields: dict[str, object] = {
        "id": rule_id, "brand": brand, "name": "fast", "condition": "Vehicle.Speed > 100",
        "for_s": 30.0, "created_at": 1, "updated_at": 1,
    }  # fmt: skip
    return AlertRule(**{**fields, **changes})  # type: ignore[arg-type]


def alert(alert_id: str, rule_id: str = "alr_a", vin: str = VIN, brand: str = "volta",
          raised_s: int = 100, key: str = "") -> Alert:  # fmt: skip
    pending = (raised_s - 30) * SECOND
    return Alert(alert_id, rule_id, "fast", brand, vin, "warning", ACTIVE, raised_s * SECOND,
                 key=key, pending_since=pending, values={"Vehicle.Speed": 120})  # fmt: skip


async def test_rules_round_trip_per_brand(stores: Stores) -> None:
    await stores.registry.create_brand("other", "Other")
    store = stores.alerts
    mine = await store.save_rule(rule("alr_a", target=Target(("E1",), ("fleet:a",), (VIN,))))
    dtc = await store.save_rule(rule("alr_b", kind="dtc", condition=None, builtin="new_dtc"))
    theirs = await store.save_rule(rule("alr_x", brand="other", enabled=False))
    assert await store.list_rules("volta") == [mine, dtc]
    assert await store.list_rules(None) == [mine, dtc, theirs]
    assert (await store.get_rule("alr_a", "volta")).target.vins == (VIN,)
    assert (await store.get_rule("alr_x", None)).enabled is False
    with pytest.raises(NotFoundError):
        await store.get_rule("alr_x", "volta")
    changed = dataclasses.replace(mine, for_s=60.0, clear_condition="Vehicle.Speed < 90")
    await store.save_rule(changed)
    assert await store.get_rule("alr_a", None) == changed
    with pytest.raises(NotFoundError):
        await store.save_rule(rule("alr_y", brand="nobody"))


async def test_evaluation_state_alerts_and_events_in_one_write(
    stores: Stores,
) -> None:
    store = stores.alerts
    await store.save_rule(rule("alr_a"))
    pending = RuleState("alr_a", VIN, "", 70 * SECOND, None, 80 * SECOND)
    assert await store.save_evaluation(VIN, [pending], [], [], [], alert_events) == []
    assert await store.load_states(VIN) == [pending]
    raised = alert("alt_1")
    state = RuleState("alr_a", VIN, "", None, "alt_1", 100 * SECOND)
    code = RuleState("alr_a", VIN, "P0301", 90 * SECOND, None, 0)
    done = await store.save_evaluation(VIN, [state, code], [], [raised], [], alert_events)
    assert done == [raised]
    # The same alert again (another process evaluated it too) is stored and told once.
    assert await store.save_evaluation(VIN, [state], [], [raised], [], alert_events) == []
    assert await store.load_states(VIN, "alr_a") == [state, code]
    await store.save_evaluation(VIN, [], [("alr_a", "P0301")], [], [], alert_events)
    assert await store.load_states(VIN) == [state]
    acked = await store.acknowledge("alt_1", "volta", "ops desk", 150 * SECOND, alert_events)
    assert acked is not None and acked.status == ACKNOWLEDGED
    assert (acked.acknowledged_by, acked.acknowledged_at) == ("ops desk", 150 * SECOND)
    assert await store.acknowledge("alt_1", "volta", "again", 151 * SECOND) is None
    cleared = RuleState("alr_a", VIN, "", None, None, 200 * SECOND)
    [gone] = await store.save_evaluation(VIN, [cleared], [], [], [("alt_1", 200 * SECOND)],
                                         alert_events)  # fmt: skip
    assert gone.status == CLEARED and gone.cleared_ts == 200 * SECOND
    assert gone.acknowledged_by == "ops desk"  # clearing keeps who acknowledged
    assert await store.save_evaluation(VIN, [], [], [], [("alt_1", 300 * SECOND)]) == []
    events = await stores.events.list_events(0, "volta", ["alert"])
    assert [(e.type, e.data["status"]) for e in events] == [
        ("alert.raised", ACTIVE),
        ("alert.acknowledged", ACKNOWLEDGED),
        ("alert.cleared", CLEARED),
    ]
    assert events[0].data["values"] == {"Vehicle.Speed": 120}
    assert events[0].data["pending_since"] is not None and events[0].vin == VIN


async def test_an_alert_raised_and_cleared_in_one_evaluation_is_stored_cleared(
    stores: Stores,
) -> None:
    # A spike shorter than the rows one evaluation read (or late data among them): the
    # alert is raised and cleared by the same save, and its events come in that order.
    store = stores.alerts
    await store.save_rule(rule("alr_a", for_s=0.0))
    older, spike = alert("alt_old", raised_s=50), alert("alt_spike", raised_s=100)
    await store.save_evaluation(VIN, [], [], [older], [], alert_events)
    state = RuleState("alr_a", VIN, "", None, None, 110 * SECOND)
    cleared = [("alt_old", 90 * SECOND), ("alt_spike", 101 * SECOND)]
    await store.save_evaluation(VIN, [state], [], [spike], cleared, alert_events)
    both = await store.list_alerts("volta")
    assert [(a.id, a.status, a.cleared_ts) for a in both] == [
        ("alt_spike", CLEARED, 101 * SECOND),
        ("alt_old", CLEARED, 90 * SECOND),
    ]
    events = await stores.events.list_events(0, "volta", ["alert"])
    assert [(e.type, e.data["id"]) for e in events] == [
        ("alert.raised", "alt_old"),
        ("alert.cleared", "alt_old"),
        ("alert.raised", "alt_spike"),
        ("alert.cleared", "alt_spike"),
    ]


async def test_alert_reads_are_scoped_and_deleting_a_rule_clears_its_alerts(
    stores: Stores,
) -> None:
    await stores.registry.create_brand("other", "Other")
    await stores.registry.create_vehicle(OTHER_VIN, "other", "X", 2025, [], "scrypt$h")
    store = stores.alerts
    await store.save_rule(rule("alr_a"))
    await store.save_rule(rule("alr_x", brand="other"))
    first, second = alert("alt_1", raised_s=100), alert("alt_2", raised_s=200, key="P0301")
    await store.save_evaluation(VIN, [RuleState("alr_a", VIN)], [], [first, second], [])
    theirs = alert("alt_9", "alr_x", OTHER_VIN, "other", 150)
    await store.save_evaluation(OTHER_VIN, [RuleState("alr_x", OTHER_VIN)], [], [theirs], [])
    assert [a.id for a in await store.list_alerts("volta")] == ["alt_2", "alt_1"]
    assert [a.id for a in await store.list_alerts(None)] == ["alt_2", "alt_9", "alt_1"]
    assert await store.list_alerts("volta", vin=OTHER_VIN) == []
    assert [a.id for a in await store.list_alerts(None, before=200 * SECOND, limit=1)] == ["alt_9"]
    assert (await store.get_alert("alt_2", "volta")).key == "P0301"
    with pytest.raises(NotFoundError):
        await store.get_alert("alt_9", "volta")
    with pytest.raises(NotFoundError):
        await store.acknowledge("alt_9", "volta", "nosy", 1)
    await store.acknowledge("alt_1", None, "ops", 1)
    assert [a.id for a in await store.list_alerts("volta", status="acknowledged")] == ["alt_1"]
    rule_gone, closed = await store.delete_rule("alr_a", "volta", 500 * SECOND, alert_events)
    assert rule_gone.id == "alr_a" and {a.id for a in closed} == {"alt_1", "alt_2"}
    assert await store.list_alerts("volta", status="open") == []
    assert len(await store.list_alerts("volta", status="cleared")) == 2  # kept as history
    assert await store.load_states(VIN) == []
    assert [a.id for a in await store.list_alerts(None, status="open")] == ["alt_9"]


async def test_a_rule_state_never_moves_back_in_car_time(stores: Stores) -> None:
    """Two derive processes evaluated the same car: the one that read less (older data)
    saves last, and the newer state stays, timer and open alert included."""
    store = stores.alerts
    await store.save_rule(rule("alr_a"))
    newer = RuleState("alr_a", VIN, "", 150 * SECOND, None, 200 * SECOND)
    older = RuleState("alr_a", VIN, "", None, None, 120 * SECOND)
    await store.save_evaluation(VIN, [newer], [], [], [], alert_events)
    await store.save_evaluation(VIN, [older], [], [], [], alert_events)
    assert await store.load_states(VIN) == [newer]
    onward = RuleState("alr_a", VIN, "", None, "alt_9", 230 * SECOND)
    await store.save_evaluation(VIN, [onward], [], [], [], alert_events)
    assert await store.load_states(VIN) == [onward]


async def test_an_evaluation_saves_only_over_the_states_it_started_from(stores: Stores) -> None:
    """Two derive processes read the same states; the second to save gets
    PreconditionFailed and writes nothing (no alert, no clear, no state), so it can
    evaluate again from what the first stored."""
    store = stores.alerts
    await store.save_rule(rule("alr_a"))
    first = RuleState("alr_a", VIN, "", 150 * SECOND, None, 200 * SECOND)
    # Both started with no cursor stored: the first saves.
    await store.save_evaluation(VIN, [first], [], [], [], alert_events, {"alr_a": None})
    stale = RuleState("alr_a", VIN, "", None, "alt_1", 260 * SECOND)
    with pytest.raises(PreconditionFailed, match="alr_a"):
        await store.save_evaluation(
            VIN, [stale], [], [alert("alt_1")], [], alert_events, {"alr_a": None}
        )
    assert await store.load_states(VIN) == [first]
    assert await store.list_alerts("volta") == []
    # Evaluated again from the stored cursor, it saves.
    done = await store.save_evaluation(
        VIN, [stale], [], [alert("alt_1")], [], alert_events, {"alr_a": 200 * SECOND}
    )
    assert [a.id for a in done] == ["alt_1"]
    assert await store.load_states(VIN) == [stale]
