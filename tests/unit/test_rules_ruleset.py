"""The rule set: segment references in dependency order, their errors, holdout groups, explain, the JSON Schema."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream.rules import RuleError, RuleSet, SegmentReference, Verdict, load_rules, rules_json_schema
from stream.state.profile import Event, Profile, iso

ROOT = Path(__file__).resolve().parents[2]
D = 86_400_000
NOW = 1_700_000_000_000


def rules(tmp_path: Path, text: str, name: str = "r.yaml") -> RuleSet:
    (tmp_path / name).write_text(text)
    return load_rules(tmp_path)


def errors_of(tmp_path: Path) -> list[str]:
    with pytest.raises(RuleError) as exc:
        load_rules(tmp_path)
    return exc.value.errors


def orders(*revenues: float) -> Profile:
    return Profile("alice", history=[Event(NOW - (i + 1) * D, "Order Completed", {"revenue": r}) for i, r in enumerate(revenues)])


HIERARCHY = """segments:
  - name: high_value_frequent
    condition:
      all:
        - segment: high_value
        - {event: Order Completed, within: 30d, count: {gte: 3}}
  - name: high_value
    holdout: 10
    condition: {event: Order Completed, within: 90d, sum: {of: revenue, gte: 200}}
"""


def test_segments_are_evaluated_after_the_segments_they_refer_to(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, HIERARCHY)
    assert list(ruleset.segments) == ["high_value_frequent", "high_value"], "file order is kept for the segments"
    verdicts = ruleset.evaluate(orders(100, 100, 50), NOW)
    assert list(verdicts) == ["high_value", "high_value_frequent"]
    assert verdicts["high_value_frequent"].holds
    assert verdicts["high_value_frequent"].reason.startswith("in segment high_value (sum(revenue of Order Completed within 90d) = 250 >= 200)")
    assert not ruleset.evaluate(orders(100, 50, 10), NOW)["high_value_frequent"].holds


def test_a_reference_keeps_the_referenced_deadline() -> None:
    deadline = NOW + 5
    reference = SegmentReference(segment="high_value")
    assert reference.evaluate(Profile("c"), NOW, {"high_value": Verdict(False, "x", deadline)}) == Verdict(
        False, "not in segment high_value (x)", deadline
    )
    assert reference.segments() == {"high_value"} and reference.lookback_ms() == 0
    with pytest.raises(KeyError, match="evaluate references through RuleSet.evaluate"):
        reference.evaluate(Profile("c"), NOW)


def test_unknown_segment_is_named_with_file_segment_and_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("segments:\n  - {name: a, condition: {not: {segment: high_valu}}}\n  - {name: high_value, condition: {trait: x, eq: 1}}\n")
    assert errors_of(tmp_path) == [f"{path}: segment 'a': refers to unknown segment 'high_valu' (did you mean 'high_value'?); define it or fix the name"]


def test_circular_references_are_errors_with_their_path(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(
        "segments:\n"
        "  - {name: a, condition: {segment: b}}\n"
        "  - {name: b, condition: {any: [{segment: c}, {trait: x, eq: 1}]}}\n"
        "  - {name: me, condition: {segment: me}}\n"
    )
    b.write_text("segments:\n  - {name: c, condition: {all: [{segment: a}]}}\n")
    assert errors_of(tmp_path) == [
        f"{a}: segment 'a': segments refer to each other in a circle: a -> b -> c -> a (c in {b}); remove one of these references",
        f"{a}: segment 'me': segments refer to each other in a circle: me -> me; remove one of these references",
    ]


def test_holdout_group_is_the_documented_hash_and_never_changes(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, HIERARCHY)
    assert ruleset.group("alice", "high_value_frequent") is None
    for customer in ("alice", "bob", "c-42"):
        position = int(hashlib.sha256(f"high_value:{customer}".encode()).hexdigest()[:8], 16) / 2**32 * 100
        expected = "control" if position < 10 else "treatment"
        assert ruleset.group(customer, "high_value") == expected == rules(tmp_path, HIERARCHY).group(customer, "high_value")
    with pytest.raises(KeyError, match="unknown segment 'nope'; the rules define high_value, high_value_frequent"):
        ruleset.group("alice", "nope")


@pytest.mark.parametrize("holdout", [10, 2.5, 50])
def test_holdout_share_is_close_to_the_percentage(tmp_path: Path, holdout: float) -> None:
    ruleset = rules(tmp_path, f"segments:\n  - {{name: s, holdout: {holdout}, condition: {{trait: x, eq: 1}}}}\n")
    share = sum(ruleset.group(f"customer-{i}", "s") == "control" for i in range(10_000)) / 100
    assert abs(share - holdout) < 1.5


def test_holdout_ends_and_other_segments_are_independent(tmp_path: Path) -> None:
    ruleset = rules(
        tmp_path,
        "segments:\n"
        "  - {name: none, holdout: 0, condition: {trait: x, eq: 1}}\n"
        "  - {name: all_held, holdout: 100, condition: {trait: x, eq: 1}}\n"
        "  - {name: s, holdout: 50, condition: {trait: x, eq: 1}}\n"
        "  - {name: t, holdout: 50, condition: {trait: x, eq: 1}}\n",
    )
    ids = [f"c{i}" for i in range(1000)]
    assert {ruleset.group(i, "none") for i in ids} == {"treatment"}
    assert {ruleset.group(i, "all_held") for i in ids} == {"control"}
    same = sum(ruleset.group(i, "s") == ruleset.group(i, "t") for i in ids)
    assert 400 < same < 600, "each segment hashes its own name"


@pytest.mark.parametrize("holdout", ["150", "-1", "'10%'", "true", ".nan"])
def test_holdout_must_be_a_percentage(tmp_path: Path, holdout: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"segments:\n  - {{name: s, holdout: {holdout}, condition: {{trait: x, eq: 1}}}}\n")
    [error] = errors_of(tmp_path)
    assert error.startswith(f"{path}: segment 's': holdout: expected a percentage from 0 to 100, e.g. 'holdout: 10'")


def test_explain_of_a_whole_segment(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, HIERARCHY)
    p = orders(100, 100, 50)
    tree = ruleset.explain(p, NOW, "high_value_frequent")
    verdict = ruleset.evaluate(p, NOW)["high_value_frequent"]
    assert set(tree) == {"segment", "holds", "reason", "deadline", "group", "condition"}
    assert tree["segment"] == "high_value_frequent" and tree["group"] is None
    assert (tree["holds"], tree["reason"], tree["deadline"]) == (verdict.holds, verdict.reason, iso(verdict.deadline))
    reference = tree["condition"]["children"][0]
    assert reference["kind"] == "segment" and reference["rule"] == {"segment": "high_value"} and reference["holds"] is True
    referenced = ruleset.explain(p, NOW, "high_value")
    assert referenced["group"] in ("control", "treatment") and referenced["condition"]["matched"] == 3
    assert ruleset.explain(Profile("x"), NOW, "high_value")["deadline"] is None
    with pytest.raises(KeyError, match="unknown segment 'nope'"):
        ruleset.explain(p, NOW, "nope")


# The JSON Schema, checked with a small validator of the keywords it uses (jsonschema is not a dependency).

TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def valid(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    """Whether ``value`` passes ``schema`` ($ref, oneOf, anyOf, type, properties, required, items and bounds)."""
    if "$ref" in schema:
        return valid(value, root["$defs"][schema["$ref"].removeprefix("#/$defs/")], root)
    if "oneOf" in schema and sum(valid(value, s, root) for s in schema["oneOf"]) != 1:
        return False
    if "anyOf" in schema and not any(valid(value, s, root) for s in schema["anyOf"]):
        return False
    types = schema.get("type", list(TYPES))
    if not any(TYPES[kind](value) for kind in ([types] if isinstance(types, str) else types)):
        return False
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", {})
        if not set(schema.get("required", [])) <= set(value) or (extra is False and not set(value) <= set(props)):
            return False
        return all(valid(v, props.get(k, extra if isinstance(extra, dict) else {}), root) for k, v in value.items())
    if isinstance(value, list):
        inside = schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value))
        return inside and all(valid(v, schema.get("items", {}), root) for v in value)
    if isinstance(value, str):
        return len(value) >= schema.get("minLength", 0)
    if TYPES["number"](value):
        return schema.get("minimum", value) <= value <= schema.get("maximum", value)
    return True


@pytest.mark.parametrize("file", sorted((ROOT / "rules").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_rule_file_validates_against_the_json_schema(file: Path) -> None:
    schema = rules_json_schema()
    assert schema["title"] == "RuleFile" and schema["anyOf"] == [{"required": ["segments"]}, {"required": ["scores"]}]
    assert valid(yaml.safe_load(file.read_text()), schema, schema)


@pytest.mark.parametrize(
    "segment",
    [
        {"name": "s", "condition": {"event": "A", "within": "1d", "withn": "1d"}},
        {"name": "s", "condition": {"trait": "a", "event": "A", "eq": 1}},
        {"name": "s", "condition": {"event": "A", "without": "B"}},
        {"name": "s", "condition": {"sequence": [{"event": "A"}, {"event": "B"}]}},
        {"name": "s", "holdout": 120, "condition": {"segment": "t"}},
        {"condition": {"segment": "t"}},
    ],
)
def test_the_json_schema_rejects_invalid_segments(segment: dict[str, Any]) -> None:
    schema = rules_json_schema()
    assert not valid({"segments": [segment]}, schema, schema)


def test_the_json_schema_describes_every_kind_briefly() -> None:
    defs = rules_json_schema()["$defs"]
    kinds = {"AllOf", "AnyOf", "NotOf", "TraitCondition", "RelativeDate", "EventCondition", "AbsenceCondition", "SequenceCondition", "SegmentReference"}
    assert kinds <= set(defs)
    assert defs["AbsenceCondition"]["properties"]["expires"]["default"] == "30d"
    assert all(">>>" not in d.get("description", "") for d in defs.values())
