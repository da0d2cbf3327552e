"""The condition language's limits: every abuse is a ValidationError, never a crash."""

from __future__ import annotations

import time

import pytest

from carcloud.errors import ValidationError
from carcloud_agent import campaigns
from carcloud_agent.campaigns import (
    MAX_CONDITION_DEPTH,
    MAX_CONDITION_LENGTH,
    MAX_CONDITION_NODES,
    compile_condition,
    parse_campaign,
)

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
MOVING = "Vehicle.IsMoving"


def test_the_limits_are_the_documented_ones() -> None:
    assert (MAX_CONDITION_LENGTH, MAX_CONDITION_NODES, MAX_CONDITION_DEPTH) == (1000, 200, 20)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        (f"{SPEED} > 1 or " * 70 + f"{SPEED} > 1", "characters long; the limit is 1000"),
        (" or ".join(["1 < 2"] * 70), "more than 200 nodes"),  # 211 nodes in 489 characters
        ("1" + " + 1" * 25 + " > 0", "more than 20 levels"),  # a sum nests one level per +
        ("not " * 21 + MOVING, "more than 20 levels"),
    ],
    ids=["length", "nodes", "depth-sum", "depth-not"],
)
def test_each_limit_is_a_validation_error_that_names_it(expression: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        compile_condition(expression)


def test_just_inside_the_limits_compiles() -> None:
    assert compile_condition("not " * 19 + MOVING)[1] == {MOVING}  # depth 20
    assert compile_condition(" or ".join(["1 < 2"] * 66))[0]({})  # 199 nodes
    assert compile_condition(f"{SPEED} > 1".ljust(MAX_CONDITION_LENGTH))[0]({SPEED: 2.0})


def test_multiplying_a_string_is_rejected_at_once() -> None:
    started = time.perf_counter()
    with pytest.raises(ValidationError, match=r"\* works on numbers only, not on a string"):
        compile_condition('"x" * 4000000000 == "y"')
    assert time.perf_counter() - started < 0.5


def test_a_3000_term_sum_is_a_validation_error_not_a_recursion_error() -> None:
    started = time.perf_counter()
    with pytest.raises(ValidationError, match="the limit is 1000"):
        compile_condition(" + ".join([SPEED] * 3000) + " > 0")
    assert time.perf_counter() - started < 0.5


def test_the_parser_running_out_of_stack_is_a_validation_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Within 1,000 characters Python's parser does not recurse too deep; lifted, it
    # does, and that RecursionError must still come out as a ValidationError.
    monkeypatch.setattr(campaigns, "MAX_CONDITION_LENGTH", 1_000_000)
    with pytest.raises(ValidationError, match="nested too deeply to parse"):
        compile_condition("-" * 100_000 + "1 > 0")


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        (f'{SPEED} + "x" > 1', r"\+ works on numbers only, not on a string"),
        (f'-"x" == {SPEED}', "- works on numbers only, not on a string"),
        (f"{SPEED} * True > 1", r"\* works on numbers only, not on a boolean"),
        (f"({SPEED} > 1) / 2 > 0", "/ works on numbers only, not on a boolean"),
        (f'{SPEED} < "fast"', "compared with == or !="),
        (f'"a" and {SPEED} > 1', "operand of and/or"),
        ('not "a"', "operand of not"),
        ('"a"', "the whole condition"),
        (f"{SPEED} ** 2 > 1", "only signals, numbers"),
        (f"{SPEED} in (1, 2)", "only signals, numbers"),
    ],
)
def test_strings_and_booleans_are_not_numbers(expression: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        compile_condition(expression)


def test_valid_conditions_still_work() -> None:
    holds, used = compile_condition(f"{SOC} < 10 and not {MOVING}")
    assert used == {SOC, MOVING}
    assert holds({SOC: 5.0, MOVING: False}) and not holds({SOC: 5.0, MOVING: True})
    holds, _ = compile_condition(f"-{SPEED} * 2 + 300 / 3 < -{SOC} - 0.5")
    assert holds({SPEED: 100.0, SOC: 40}) and not holds({SPEED: 10.0, SOC: 40})
    holds, _ = compile_condition(f'{SPEED} != "n/a" and 0 < {SPEED} <= 130')
    assert holds({SPEED: 130}) and not holds({SPEED: "n/a"}) and not holds({SPEED: 131})
    holds, _ = compile_condition(f"{MOVING} == True or {SPEED} > 1")
    assert holds({MOVING: True}) and not holds({MOVING: False, SPEED: 0.0})


def test_a_string_signal_in_arithmetic_does_not_hold() -> None:
    for expression in (f"{SPEED} * 2 > 1", f"-{SPEED} < 0", f"{SPEED} + 1 == 6"):
        holds, _ = compile_condition(expression)
        assert holds({SPEED: 5.0})
        assert not holds({SPEED: "x" * 1000})  # never "x" repeated, never a TypeError
        assert not holds({SPEED: True})


def test_division_by_zero_does_not_hold() -> None:
    holds, _ = compile_condition(f"{SOC} / {SPEED} > 1")
    assert holds({SOC: 50.0, SPEED: 10.0})
    assert not holds({SOC: 50.0, SPEED: 0})
    assert not compile_condition(f"{SPEED} / 0 == 0")[0]({SPEED: 1.0})


def test_comparing_a_string_and_a_number_does_not_hold() -> None:
    holds, _ = compile_condition(f"{SPEED} > {SOC}")
    assert holds({SPEED: 2, SOC: 1.0})
    assert not holds({SPEED: "fast", SOC: 1.0})  # not a TypeError
    assert not holds({SPEED: True, SOC: 0.5})
    assert holds({SPEED: "b", SOC: "a"})  # two strings have an order


def test_the_limits_hold_for_campaign_definitions() -> None:
    body = {"signals": [SPEED], "trigger": "condition", "condition": "1 + " * 300 + "1 > 0"}
    with pytest.raises(ValidationError, match="the limit is 1000"):
        parse_campaign("big", body)
