"""Alert rules as data and their evaluation in the car's time: pure, no platform."""

from __future__ import annotations

import pytest

from carcloud.alerts.builtins import BUILTINS
from carcloud.alerts.evaluation import CURSOR, Moment, evaluate, moments_of
from carcloud.alerts.models import DTC_LIST, AlertRule, RuleState, Target
from carcloud.errors import ValidationError

SECOND = 1_000_000
VIN = "WVWZZZ1JZXW000001"
SPEED = "Vehicle.Speed"


def rule(**changes: object) -> AlertRule:
    fields: dict[str, object] = {"id": "alr_1", "brand": "volta", "name": "fast",
                                 "condition": f"{SPEED} > 100", "for_s": 30.0}  # fmt: skip
    return AlertRule(**{**fields, **changes})  # type: ignore[arg-type]


def speeds(*pairs: tuple[int, float]) -> list[Moment]:
    """Moments at second `s` with the speed; a car sends once a second."""
    return [(s * SECOND, {SPEED: v}) for s, v in pairs]


def each_second(start: int, end: int, speed: float) -> list[tuple[int, float]]:
    return [(s, speed) for s in range(start, end)]


def test_for_timer_raises_once_after_it_held_and_clears_once() -> None:
    moments = speeds(*each_second(0, 10, 50), *each_second(10, 60, 120), *each_second(60, 70, 40))
    states, transitions = evaluate(rule(), VIN, {}, moments)
    assert [(t.kind, t.ts // SECOND) for t in transitions] == [("raise", 40), ("clear", 60)]
    assert transitions[0].pending_since == 10 * SECOND
    assert transitions[0].values == {SPEED: 120}
    assert states[CURSOR] == RuleState("alr_1", VIN, "", None, None, 69 * SECOND)


def test_a_break_resets_the_timer_and_a_clear_condition_holds_the_alert() -> None:
    bumpy = speeds(*each_second(0, 20, 120), (20, 90), *each_second(21, 45, 120))
    _, transitions = evaluate(rule(), VIN, {}, bumpy)
    assert transitions == []  # 20 s, a dip, 24 s: never 30 s at a stretch
    sticky = rule(clear_condition=f"{SPEED} < 60")
    moments = speeds(*each_second(0, 31, 120), *each_second(31, 40, 90), (40, 50))
    _, transitions = evaluate(sticky, VIN, {}, moments)
    assert [(t.kind, t.ts // SECOND) for t in transitions] == [("raise", 30), ("clear", 40)]


def test_stopping_anywhere_and_going_on_from_the_state_gives_the_same_alerts() -> None:
    """What a restart does: the state is stored, evaluation resumes from it."""
    moments = speeds(*each_second(0, 25, 120), *each_second(25, 50, 130), *each_second(50, 60, 0))
    whole_states, whole = evaluate(rule(), VIN, {}, moments)
    for cut in (5, 20, 29, 30, 31, 45, 50, 55):
        states, first = evaluate(rule(), VIN, {}, moments[:cut])
        # Moments already evaluated are skipped when they come again.
        states, rest = evaluate(rule(), VIN, states, moments)
        assert first + rest == whole and states == whole_states, cut


def test_trouble_codes_go_pending_confirmed_cleared() -> None:
    dtc = rule(kind="dtc", condition=None, for_s=60.0, name="dtc")
    moments: list[Moment] = [
        (0, {DTC_LIST: []}),
        (10 * SECOND, {DTC_LIST: ["P0301"]}),
        (40 * SECOND, {DTC_LIST: ["P0301", "U0100"]}),
        (50 * SECOND, {DTC_LIST: ["P0301"]}),  # U0100 gone while pending: nothing
        (70 * SECOND, {DTC_LIST: ["P0301"]}),  # confirmed after 60 s
        (90 * SECOND, {SPEED: 3}),  # the list not sent: nothing known to change
        (100 * SECOND, {DTC_LIST: []}),
    ]
    states, transitions = evaluate(dtc, VIN, {}, moments)
    assert [(t.kind, t.key, t.ts // SECOND) for t in transitions] == [
        ("raise", "P0301", 70),
        ("clear", "P0301", 100),
    ]
    assert transitions[0].pending_since == 10 * SECOND
    assert set(states) == {CURSOR}


def test_moments_forward_fill_signals_sent_apart() -> None:
    both = rule(condition=f"{SPEED} > 100 and Vehicle.Exterior.AirTemperature < 0", for_s=0.0)
    rows = [(1, {SPEED: 120.0}), (2, {"Vehicle.Exterior.AirTemperature": -3.0}), (3, {SPEED: 90.0})]
    moments = moments_of({}, rows)
    assert moments[1][1] == {SPEED: 120.0, "Vehicle.Exterior.AirTemperature": -3.0}
    _, transitions = evaluate(both, VIN, {}, moments)
    assert [(t.kind, t.ts) for t in transitions] == [("raise", 2), ("clear", 3)]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"condition": "Vehicle.Sped > 100"}, "condition: .*unknown signal Vehicle.Sped"),
        ({"clear_condition": "Vehicle.Nope < 1"}, "clear_condition: .*unknown signal Vehicle.Nope"),
        ({"condition": "Vehicle.Speed >"}, "condition: .*does not parse"),
        ({"condition": None}, "condition must be a condition"),
        ({"for_s": -1}, "for_s must be 0 to"),
        ({"severity": "meh"}, "severity must be one of"),
        ({"kind": "offline"}, "condition: a offline rule has no condition"),
        ({"target": Target(vins=("WVWZZZ1JZXW000001", "nope"))}, r"target.vins\[1\]"),
    ],
)
def test_invalid_rules_name_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(**changes)


def test_every_builtin_is_a_valid_rule_and_targets_match() -> None:
    for key, spec in BUILTINS.items():
        made = AlertRule("r", "volta", spec.name, spec.kind, spec.condition, spec.for_s,
                         spec.clear_condition, spec.severity, builtin=key)  # fmt: skip
        assert made.kind in ("condition", "offline", "dtc")
    target = Target(models=("E1",), tags=("fleet:a",))
    assert target.matches(VIN, "E1", ("fleet:a", "x"))
    assert not target.matches(VIN, "E2", ("fleet:a",)) and not target.matches(VIN, "E1", ())
