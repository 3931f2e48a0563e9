"""Trait conditions and the operators shared with where filters: one test per operator and decision."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stream.rules import parse_condition
from stream.rules.operators import as_number
from stream.state.profile import Profile

MISSING = object()


def holds(value: Any, **test: Any) -> bool:
    """Whether ``{trait: x, **test}`` holds for a profile whose trait x is ``value``."""
    traits = {} if value is MISSING else {"x": value}
    return parse_condition({"trait": "x", **test}).evaluate(Profile("c", traits=traits), 0).holds


@pytest.mark.parametrize(
    ("op", "operand", "true_for", "false_for"),
    [
        ("eq", "New York", ["New York"], ["new york", "Boston", 5, None, MISSING]),
        ("eq", 29, [29, 29.0, "29", " 29 ", "29.0"], [30, "abc", True, "", None]),
        ("eq", True, [True], [1, "true", False]),
        ("ne", "New York", ["Boston", 5], ["New York", None, MISSING]),
        ("ne", 29, [30, "30", "abc"], [29, "29", MISSING]),
        ("in", ["a", "b", 3], ["a", "b", 3, "3", 3.0], ["c", 4, True, MISSING]),
        ("in", [True], [True], [1, False]),
        ("gt", 30, [31, "31", 30.5], [30, 29, "abc", True, MISSING]),
        ("gte", 30, [30, "30", 31], [29.9, "x"]),
        ("lt", 30, [29, "-5", "1e1"], [30, 31, "thirty", MISSING]),
        ("lte", 30, [30, 29], [30.01]),
        ("gt", "2024-01-01", ["2024-06-01"], ["2023-12-31", "2024-01-01", 20250101]),
        ("between", [25, 34], [25, 29, 34, "29", 34.0], [24, 35, 34.5, "old", MISSING]),
        ("between", ["a", "c"], ["a", "b", "c"], ["d", 1]),
        ("exists", True, ["x", 0, False, ""], [None, MISSING]),
        ("exists", False, [None, MISSING], ["x", 0]),
        ("contains", "ork", ["New York"], ["Boston", 5, MISSING]),
        ("contains", "vip", [["vip", "beta"]], [["beta"], "v", {"vip": 1}]),
        ("contains", 3, [[1, "3"], [3]], [[4], "3"]),
        ("starts_with", "New", ["New York"], ["York New", 5, MISSING]),
    ],
)
def test_operator(op: str, operand: Any, true_for: list[Any], false_for: list[Any]) -> None:
    for value in true_for:
        assert holds(value, **{op: operand}), f"{op} {operand!r} should hold for {value!r}"
    for value in false_for:
        assert not holds(value, **{op: operand}), f"{op} {operand!r} should fail for {value!r}"


def test_numeric_strings_are_numbers_only_when_the_rule_says_number() -> None:
    assert as_number("29") == 29 and as_number("2.5") == 2.5 and as_number("1e3") == 1000.0
    assert as_number("007") == 7 and as_number(True) is None and as_number("nan") is None and as_number("1e999") is None
    assert holds("007", eq=7)
    assert not holds("007", eq="7"), "a string operand compares text exactly"
    assert not holds(29, eq="29")


def test_dotted_path_reads_nested_traits_and_dotted_keys() -> None:
    condition = parse_condition({"trait": "address.city", "eq": "Paris"})
    assert condition.evaluate(Profile("c", traits={"address": {"city": "Paris"}}), 0).holds
    assert condition.evaluate(Profile("c", traits={"address.city": "Paris"}), 0).holds
    assert not condition.evaluate(Profile("c", traits={"address": "Paris"}), 0).holds
    verdict = condition.evaluate(Profile("c", traits={"address": {}}), 0)
    assert verdict == verdict.__class__(False, "trait address.city missing", None)


@pytest.mark.parametrize(
    ("test", "traits", "reason"),
    [
        ({"between": [25, 34]}, {"x": 29}, "trait x = 29 between [25, 34]"),
        ({"between": [25, 34]}, {"x": 41}, "trait x = 41, not between [25, 34]"),
        ({"eq": "New York"}, {"x": "Boston"}, 'trait x = "Boston", not == "New York"'),
        ({"in": ["a", "b"]}, {"x": "a"}, 'trait x = "a" in ["a", "b"]'),
        ({"gte": 3}, {}, "trait x missing"),
        ({"exists": False}, {}, "trait x missing"),
        ({"exists": False}, {"x": 1}, "trait x = 1, not missing"),
        ({"starts_with": "N"}, {"x": "No"}, 'trait x = "No" starts with "N"'),
    ],
)
def test_reasons_name_the_trait_the_value_and_the_operator(test: dict[str, Any], traits: dict[str, Any], reason: str) -> None:
    verdict = parse_condition({"trait": "x", **test}).evaluate(Profile("c", traits=traits), 0)
    assert verdict.reason == reason and verdict.deadline is None


@pytest.mark.parametrize(
    ("test", "message"),
    [
        ({}, "give one operator of eq, ne, in"),
        ({"gt": 1, "lt": 5}, "give only one operator, got gt and lt (for a range use between"),
        ({"between": [5, 1]}, "expected low <= high"),
        ({"between": [1, "z"]}, "expected [low, high] with two numbers or two strings"),
        ({"in": []}, "expected a non-empty list"),
        ({"eq": [1]}, "expected a string, number or boolean"),
        ({"eq": None}, "use 'exists: false'"),
        ({"exists": "yes"}, "expected true or false"),
        ({"starts_with": 5}, "expected a string"),
        ({"gt": True}, "expected a number or a string"),
    ],
)
def test_bad_operators_are_rejected_with_what_to_write(test: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_condition({"trait": "x", **test})
    assert message in str(exc.value)
