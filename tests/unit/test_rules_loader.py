"""Loading rule files: the shipped rules, the rule set, and every error named by file, segment and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.rules import RuleError, RuleSet, load_rules
from stream.state.profile import STANDARD_PROPERTIES, Event, Profile

ROOT = Path(__file__).resolve().parents[2]
D = 86_400_000


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(RuleError) as exc:
        load_rules(path)
    assert isinstance(exc.value, ValueError)
    return exc.value.errors


SHIPPED = {
    "demographics.yaml": {"ny_25_34"},
    "behaviour.yaml": {"product_browsers", "recent_buyers", "repeat_buyers"},
    "lifecycle.yaml": {"cart_abandoners", "viewed_not_added", "abandoned_then_checkout", "new_signups", "lapsed_members"},
    "funnels.yaml": {"funnel_view_add_checkout"},
    "value.yaml": {"high_value", "high_value_frequent", "lifetime_vips"},
    "scores.yaml": {
        "hot_leads", "highly_engaged", "moderately_engaged", "inactive", "high_predicted_value", "at_risk", "high_propensity", "champions",
        *(f"cluster_{k}" for k in range(4)),
    },
}


def test_shipped_rules_load_with_all_their_segments() -> None:
    ruleset = load_rules(ROOT / "rules")
    assert {p.name for p in (ROOT / "rules").glob("*.yaml")} == set(SHIPPED)
    assert {s.name: s.source.name for s in ruleset.segments.values() if s.source} == {
        name: file for file, names in SHIPPED.items() for name in names
    }
    assert all(s.description for s in ruleset.segments.values())
    now = 100 * D
    alice = Profile(
        "alice",
        traits={"age": 29, "city": "New York"},
        history=[Event(now - 3 * D + i, "Product Viewed") for i in range(3)] + [Event(now - D, "Order Completed")],
    )
    verdicts = ruleset.evaluate(alice, now)
    assert {name for name, v in verdicts.items() if v.holds} == {"ny_25_34", "product_browsers", "recent_buyers", "viewed_not_added", "inactive"}
    assert verdicts["product_browsers"].reason == "count(Product Viewed within 7d) = 3 >= 3"
    assert verdicts["product_browsers"].deadline == now - 3 * D + 7 * D
    assert verdicts["viewed_not_added"].deadline == now - 3 * D + 2 + 30 * D, "the last view expires"


def test_shipped_playbook_segments() -> None:
    ruleset = load_rules(ROOT / "rules")
    h = 3_600_000
    now = 100 * D
    shopper = Profile(
        "s",
        history=[
            Event(now - 5 * h, "Product Viewed"),
            Event(now - 4 * h, "Product Added"),
            Event(now - 3 * h, "page", {"name": "Checkout"}),
        ],
    )
    verdicts = ruleset.evaluate(shopper, now)
    assert {name for name, v in verdicts.items() if v.holds} == {"abandoned_then_checkout", "funnel_view_add_checkout", "inactive"}
    assert verdicts["cart_abandoners"].deadline == now - 4 * h + 24 * h
    assert verdicts["abandoned_then_checkout"].deadline == now - 3 * h + D, "the checkout view leaves the day"
    assert ruleset.group("s", "high_value") in ("control", "treatment") and ruleset.group("s", "cart_abandoners") is None
    buyer = Profile("b", revenue=1200.0, counts={"Order Completed": 5}, history=[Event(now - i * D, "Order Completed", {"revenue": 80}) for i in range(3)])
    verdicts = ruleset.evaluate(buyer, now)
    assert {"high_value", "high_value_frequent", "lifetime_vips"} <= {name for name, v in verdicts.items() if v.holds}
    member = Profile("m", traits={"signed_up_at": "1970-01-01"}, last_seen=now - 31 * D)
    verdicts = ruleset.evaluate(member, now)
    assert verdicts["lapsed_members"].holds and not verdicts["new_signups"].holds


def test_policy_keeps_the_longest_window_and_every_property_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "segments:\n"
        "  - name: big\n"
        "    condition: {event: Order Completed, within: 90d, where: {coupon: {exists: true}}, sum: {of: net, gte: 1}}\n",
    )
    policy = load_rules(tmp_path).policy(50)
    assert policy.horizon_ms == 90 * D and policy.max_events == 50
    assert policy.properties == STANDARD_PROPERTIES | {"coupon", "net"}
    assert load_rules(ROOT / "rules").policy(1000).horizon_ms == 90 * D


def test_policy_covers_absence_expiry_and_sequence_lookback(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "segments:\n"
        "  - {name: a, condition: {event: A, without: B, without_where: {coupon: {exists: true}}, within: 1d, expires: 60d}}\n"
        "  - {name: s, condition: {sequence: [{event: A}, {event: C, where: {step: {eq: 2}}}], lookback: 45d}}\n",
    )
    ruleset = load_rules(tmp_path)
    assert ruleset.lookback_ms() == 60 * D
    assert ruleset.policy(10).properties == STANDARD_PROPERTIES | {"coupon", "step"}


def test_version_is_stable_and_follows_contents(tmp_path: Path) -> None:
    one = write(tmp_path, "one.yaml", "segments:\n  - {name: a, condition: {trait: x, eq: 1}}\n  - {name: b, condition: {trait: y, eq: 2}}\n")
    first = load_rules(tmp_path).version
    one.write_text("segments:\n  - name: b\n    condition: {trait: y, eq: 2}\n  - name: a\n    condition: {trait: x, eq: 1}\n")
    assert load_rules(tmp_path).version == first, "order and formatting do not matter"
    one.write_text("segments:\n  - {name: a, condition: {trait: x, eq: 1}}\n  - {name: b, condition: {trait: y, eq: 3}}\n")
    assert load_rules(tmp_path).version != first


def test_a_single_file_loads_and_yml_counts(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yml", "segments:\n  - {name: a, description: A, condition: {event: $any, within: 30}}\n")
    ruleset = load_rules(str(path))
    assert isinstance(ruleset, RuleSet) and ruleset.segments["a"].condition.lookback_ms() == 30_000
    assert load_rules(tmp_path).version == ruleset.version


def test_bad_duration_names_file_segment_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cart.yaml",
        "segments:\n"
        "  - name: cart_abandoners\n"
        "    condition:\n"
        "      all:\n"
        "        - {event: Cart Viewed, within: 1d}\n"
        "        - {event: Order Completed, within: 24 hours}\n",
    )
    [error] = errors_of(tmp_path)
    assert error.startswith(
        f"{path}: segment 'cart_abandoners': condition.all[1].within: expected a duration like '24h', got '24 hours'"
    )


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("{event: X, withn: 7d}", "condition: unknown key 'withn' (did you mean 'within'?); allowed keys: event, where, within"),
        ("{trait: age, betwen: [1, 2]}", "condition: unknown key 'betwen' (did you mean 'between'?)"),
        ("{event: X, within: 1d, count: {gte: 1, of: x}}", "condition.count: unknown key 'of'"),
        ("{evnt: X, within: 7d}", "condition: a condition needs one of the keys all, any, not, trait, event, sequence, segment, score (did you mean 'event'?)"),
        ("{trait: a, event: X, eq: 1}", "condition: a condition has exactly one of the keys all, any, not, trait, event, sequence, segment, score, got trait and event"),
        ("{event: X}", "condition.within: missing; add a window, e.g. 'within: 7d'"),
        ("{event: X, within: 1d, sum: {gte: 1}}", "condition.sum.of: missing"),
        ("{event: X, within: 1d, count: {gte: 1}, max: {of: v, gt: 1}}", "condition: give at most one measure of count, sum, min, max, distinct"),
        ("{event: X, within: 1d, count: {gte: abc}}", "condition.count.gte: expected a number, got 'abc'"),
        ("{event: X, within: 1d, where: {currency: USD}}", "condition.where.currency: expected a mapping with keys eq, ne, in"),
        ("{any: [{trait: a, exists: true}, {not: [1]}]}", "condition.any[1].not: expected a condition"),
        ("{all: []}", "condition.all: must not be empty"),
        ("{trait: signup, gt: 2024-01-01}", "condition.gt: expected a number or a string, got datetime.date(2024, 1, 1); quote dates"),
        ("{trait: signup, older_than: 90 days}", "condition.older_than: expected a duration like '24h', got '90 days'"),
        ("{trait: $revnue, gte: 1}", "condition.trait: unknown computed trait '$revnue'; use one of $revenue"),
        ("{event: A, without_where: {x: {eq: 1}}, within: 1d}", "condition.without: missing; name the event that cancels the trigger"),
        ("{event: A, without: B, within: 2d, expires: 1d}", "condition: expires (1d) must be longer than within (2d)"),
        ("{event: A, without: B, within: 1d, count: {gte: 2}}", "condition: unknown key 'count'; allowed keys: event, where, without"),
        ("{sequence: [{event: A}], lookback: 1d}", "condition.sequence: a sequence needs at least two steps"),
        ("{sequence: [{event: A}, {evnt: B}], lookback: 1d}", "condition.sequence[1]: unknown key 'evnt' (did you mean 'event'?)"),
        ("{sequence: [{event: A}, {event: B}]}", "condition.lookback: missing; add the window the whole sequence must lie in"),
        ("{segment: High Value}", "condition.segment: use lowercase letters, digits and '_' only"),
    ],
)
def test_condition_errors(tmp_path: Path, condition: str, message: str) -> None:
    path = write(tmp_path, "r.yaml", f"segments:\n  - name: s\n    condition: {condition}\n")
    [error] = errors_of(tmp_path)
    assert error.startswith(f"{path}: segment 's': {message}"), error


def test_segment_level_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.yaml",
        "segments:\n"
        "  - {name: Bad Name, condition: {trait: a, exists: true}}\n"
        "  - {name: no_condition}\n"
        "  - {condition: {trait: a, exists: true}}\n"
        "  - just a string\n"
        "  - {name: extra, condition: {trait: a, exists: true}, owner: me}\n",
    )
    assert errors_of(tmp_path) == [
        f"{path}: segment 'Bad Name': name: use lowercase letters, digits and '_' only, e.g. 'cart_abandoners'; got 'Bad Name'",
        f"{path}: segment 'no_condition': condition: missing; add e.g. 'condition: {{event: Order Completed, within: 30d}}'",
        f"{path}: segments[2]: name: missing; add e.g. 'name: cart_abandoners'",
        f"{path}: segments[3]: expected a mapping with keys name, description, condition, holdout, purpose, got 'just a string'",
        f"{path}: segment 'extra': unknown key 'owner'; allowed keys: name, description, condition, holdout, purpose",
    ]


def test_all_errors_of_all_files_in_one_rule_error(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "segments:\n  - {name: dup, condition: {trait: a, exists: true}}\n  - {name: x, condition: {event: X}}\n")
    b = write(tmp_path, "b.yaml", "segments:\n  - {name: dup, condition: {trait: b, exists: true}}\n")
    c = write(tmp_path, "c.yaml", "segments:\n  - name: y\n    condition: {trait: a\n")
    d = write(tmp_path, "d.yaml", "segments:\n  - {name: z, condition: {trait: a, exists: true, exists: false}}\n")
    e = write(tmp_path, "e.yaml", "")
    f = write(tmp_path, "f.yaml", "segment: []\n")
    write(tmp_path, "notes.txt", "not a rule file")
    errors = errors_of(tmp_path)
    assert errors[:4] == [
        f"{c}: invalid YAML at line 4, column 1: expected ',' or '}}', but got '<stream end>'; fix the syntax there",
        f"{d}: invalid YAML at line 2, column 51: found duplicate key 'exists'; fix the syntax there",
        f"{e}: the file is empty; add a 'segments:' list (see rules/ for examples)",
        f"{f}: expected a mapping with a 'segments:' or 'scores:' list or a 'models:' section, got {{'segment': []}}; "
        "see rules/ for examples",
    ], "files that cannot be read come first, then their scores, models and segments"
    assert errors[4].startswith(f"{a}: segment 'x': condition.within: missing")
    assert errors[5] == f"{b}: segment 'dup': duplicate name, already defined in {a}; rename one"
    with pytest.raises(RuleError, match=r"^6 errors in the rules:\n  "):
        load_rules(tmp_path)


def test_empty_or_missing_rules_directory(tmp_path: Path) -> None:
    assert errors_of(tmp_path) == [
        f"no rule files (*.yaml, *.yml) in {tmp_path}; add one, e.g. a copy of the shipped rules/behaviour.yaml"
    ]
    [error] = errors_of(tmp_path / "nope")
    assert error == f"{tmp_path / 'nope'}: no such file or directory; point SEGSTREAM_RULES at the rules directory"


def test_a_mapping_key_that_is_not_a_name_is_a_rule_error(tmp_path: Path) -> None:
    # A scalar tagged !!pairs becomes a list, which cannot be a key (the API's rule fuzzing found this 500).
    bad = write(tmp_path, "a.yaml", '? !!pairs ""\n: 1\n')
    assert errors_of(tmp_path) == [f"{bad}: invalid YAML at line 1, column 3: found a key that is not a name: []; fix the syntax there"]


def test_a_value_tagged_as_a_timestamp_it_is_not_is_a_rule_error(tmp_path: Path) -> None:
    # PyYAML fails on !!timestamp of a non-date with an AttributeError (the API's rule fuzzing found this 500).
    write(tmp_path, "a.yaml", "segments:\n  - {name: s, condition: {trait: city, eq: !!timestamp New York}}\n")
    [error] = errors_of(tmp_path)
    assert "invalid YAML at line 2" in error and "cannot read 'New York' as timestamp" in error
