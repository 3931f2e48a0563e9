"""Hostile rule files (and normalization files): a ``RuleError`` (``NormalizationError``) naming the file, or a
rule set; never another exception, never a hang.

Generated files: rule-shaped structures with hostile values, and the shipped rule files
mutated as text (anchors, aliases, tags, brackets, NUL, BOM, huge numbers). Known bombs:
billion laughs, aliases inside themselves, nesting thousands deep, 5000-digit integers,
February 30th, bad UTF-8.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from stream.cli import main
from stream.ingest.normalize import NormalizationError, load_normalization
from stream.rules import RuleError, load_rules
from stream.rules.loader import MAX_ALIAS_NODES, MAX_NESTING
from tests.e2e.harness import ROOT
from tests.unit.test_fuzz_collector import hostile_event, weighted

#: Loading one generated file must take less than this (a hang or a bomb would not).
SECONDS = 5.0
RULES = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
)
SHIPPED = {path.name: path.read_text() for path in sorted((ROOT / "rules").glob("*.yaml"))}
VOCABULARY = [
    "segments", "scores", "models", "name", "description", "holdout", "purpose", "condition", "all", "any", "not", "trait",
    "event", "within", "where", "count", "sum", "min", "max", "distinct", "of", "without", "without_where", "expires",
    "sequence", "lookback", "segment", "score", "eq", "ne", "in", "gt", "gte", "lt", "lte", "between", "exists", "contains",
    "starts_with", "older_than", "newer_than", "half_life", "points", "churn", "ltv", "clusters", "horizon", "$revenue",
]  # fmt: skip
SNIPPETS = [
    "&a ", "*a", "*b", "&b [*a, *a, *a]", "<<: *a\n", "!!binary ", "!!timestamp ", "!!int ", "!!float ", "!!set ", "!!omap ",
    "!!python/object:os.system ", "!!str ", "!<tag:yaml.org,2002:map> ", "{", "}", "[", "]", ":", ": ", "- ", "? ", ",", "\t",
    "\x00", "\ufeff", "%YAML 1.1\n", "---\n", "...\n", "'", '"\\x', "9" * 5000, "2001-02-30", "1e999", "-.inf", ".nan",
    "999999999999999999999w", "\n  " * 3, "{" * 200, "[" * 200, "~", "null", "true", "0x1F", "0o17", "1_000", "é", "\U0001f600",
]  # fmt: skip

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # YAML cannot write lone surrogates
scalars = weighted(
    (3, st.sampled_from(["24h", "7d", "1h30m", "0s", "-1d", "99999999999999999999w", "Order Completed", "$any", "page", "revenue"])),
    (2, st.integers(min_value=-(2**70), max_value=2**70)),
    (1, st.floats()),
    (2, text),
    (1, st.sampled_from(VOCABULARY)),
    (1, st.none() | st.booleans()),
    (1, st.dates()),
)
rule_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(weighted((4, st.sampled_from(VOCABULARY)), (1, text)), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def rule_file(draw: st.DrawFn) -> str:
    """A rule file: rule-shaped structures with hostile values, or a shipped file mutated as text."""
    if draw(st.booleans()):
        segments = draw(st.lists(st.fixed_dictionaries({"name": weighted((3, st.sampled_from(["a", "b", "c_1"])), (1, scalars)), "condition": rule_values}), max_size=3))
        data: dict[Any, Any] = {"segments": segments}
        for key in draw(st.lists(st.sampled_from(["scores", "models", "extra", "segments"]), max_size=2, unique=True)):
            data[key] = draw(rule_values)
        return yaml.safe_dump(data, allow_unicode=True, width=1_000_000)
    source = draw(st.sampled_from(sorted(SHIPPED.values())))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(source)))
        edit = draw(st.sampled_from(["insert", "delete", "duplicate"]))
        if edit == "insert":
            source = source[:at] + draw(weighted((4, st.sampled_from(SNIPPETS)), (1, text))) + source[at:]
        elif edit == "delete":
            source = source[:at] + source[at + draw(st.integers(1, 80)) :]
        else:
            source = source[:at] + source[at : at + draw(st.integers(1, 300))] * draw(st.integers(2, 20)) + source[at:]
    return source


def check_loads_or_rule_error(path: Path) -> None:
    """``load_rules`` gives a rule set, or a ``RuleError`` whose every line names the file; quickly."""
    started = time.monotonic()
    try:
        load_rules(path)
    except RuleError as exc:
        assert exc.errors and all(line.startswith(str(path)) for line in exc.errors), exc.errors
    assert time.monotonic() - started < SECONDS


@RULES
@given(source=rule_file())
def test_generated_rule_files_load_or_raise_rule_error(tmp_path_factory: pytest.TempPathFactory, source: str) -> None:
    path = tmp_path_factory.mktemp("rules") / "fuzz.yaml"
    path.write_text(source, encoding="utf-8", errors="surrogatepass")
    check_loads_or_rule_error(path)


def billion_laughs(levels: int = 9, fan: int = 10) -> str:
    lines = ["segments:", "  - name: s0", "    condition: &c0 {event: A, within: 1d}"]
    for i in range(1, levels):
        lines += [f"  - name: s{i}", f"    condition: &c{i} {{all: [{', '.join([f'*c{i - 1}'] * fan)}]}}"]
    return "\n".join(lines) + "\n"


BOMBS: dict[str, str | bytes] = {
    "billion-laughs-of-conditions": billion_laughs(),
    "billion-laughs-of-lists": "segments: []\n" + "\n".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)).replace("*l0", "1"),
    "alias-inside-itself": "segments:\n  - name: s\n    condition: &c {all: [*c]}\n",
    "list-inside-itself": "segments: &a [*a]\n",
    "conditions-3000-deep": "segments:\n  - {name: s, condition: " + "{not: " * 3000 + "{event: A, within: 1d}" + "}" * 3000 + "}\n",
    "flow-5000-deep": "segments: " + "[" * 5000 + "]" * 5000 + "\n",
    "blocks-deep": "segments:\n" + "".join("  " * i + "- \n" for i in range(1, 200)),
    "alias-nesting-deeper": "a: &a " + "[" * 40 + "1" + "]" * 40 + "\nsegments: " + "[" * 30 + "*a" + "]" * 30 + "\n",
    "int-5000-digits": "segments:\n  - {name: s, holdout: " + "9" * 5000 + ", condition: {event: A, within: 1d}}\n",
    "february-30th": "segments:\n  - {name: s, condition: {trait: a, eq: 2001-02-30}}\n",
    "february-30th-key": "segments:\n  - {2001-02-30: 1, name: s}\n",
    "int-tag-on-text": "segments: !!int x\n",
    "python-tag": "segments: !!python/object/apply:os.system [echo]\n",
    "unhashable-key": "segments:\n  - {? [1, 2] : 3, name: s}\n",
    "bad-utf8": b"segments:\n  - {name: \xff\xfe, condition: {event: A, within: 1d}}\n",
    "nul-byte": "segments:\n  - {name: s, condition: {event: A\x00, within: 1d}}\n",
    "bom-only": "\ufeff",
    "empty": "",
    "top-level-list": "- segments: []\n",
    "2mb-event-name": "segments:\n  - {name: s, condition: {event: " + "A" * 2_000_000 + ", within: 1d}}\n",
    "nan-and-inf": "segments:\n  - {name: s, holdout: .nan, condition: {trait: a, between: [.nan, .inf]}}\n",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_known_bombs_are_rule_errors(tmp_path: Path, name: str) -> None:
    """Regressions: the laughs hung (10^8 conditions), deep nesting raised RecursionError, long integers and
    impossible dates raised ValueError."""
    path = tmp_path / "bomb.yaml"
    content = BOMBS[name]
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    check_loads_or_rule_error(path)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("billion-laughs-of-conditions", f"more than {MAX_ALIAS_NODES}"),
        ("alias-inside-itself", "refers to a node that contains it"),
        ("conditions-3000-deep", f"nested more than {MAX_NESTING} levels"),
        ("alias-nesting-deeper", f"more than {MAX_NESTING} levels"),
        ("int-5000-digits", "line 2"),
        ("february-30th", "cannot read '2001-02-30' as timestamp"),
    ],
)
def test_bombs_are_explained(tmp_path: Path, name: str, says: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(str(BOMBS[name]))
    with pytest.raises(RuleError) as caught:
        load_rules(path)
    assert says in str(caught.value)


def test_rules_check_reports_a_bomb_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs())
    assert main(["rules", "check", str(path)]) == 1
    assert f"{path}: invalid YAML at line 1" in capsys.readouterr().err


def test_aliases_within_bounds_still_load(tmp_path: Path) -> None:
    """Anchors are a legitimate way to share a condition."""
    path = tmp_path / "shared.yaml"
    path.write_text(
        "segments:\n  - {name: a, condition: &recent {event: Order Completed, within: 30d}}\n  - {name: b, condition: {not: *recent}}\n"
    )
    assert sorted(load_rules(path).segments) == ["a", "b"]


NORMALIZE_VOCABULARY = [
    "labels", "fields", "values", "contains", "matches", "report_unmapped", "currency", "base", "rates", "decimals", "traits",
    "case", "timestamps", "snake", "camel", "none", "USD", "EUR", "context.device.type", "properties.revenue", "Mobile",
]  # fmt: skip
normalize_values = st.recursive(
    weighted((3, st.sampled_from(NORMALIZE_VOCABULARY)), (2, scalars)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NORMALIZE_VOCABULARY), inner, max_size=4),
    max_leaves=16,
)


@RULES
@given(data=st.dictionaries(st.sampled_from(NORMALIZE_VOCABULARY), normalize_values, max_size=4), events=st.lists(hostile_event(), max_size=3))
def test_generated_normalization_files_load_or_raise_and_apply(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any], events: list[dict[str, Any]]
) -> None:
    """A normalization file gives a normalizer that takes any event, or a ``NormalizationError`` naming the file."""
    path = tmp_path_factory.mktemp("normalize") / "normalize.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        normalizer = load_normalization(path)
    except NormalizationError as exc:
        assert all(line.startswith(str(path)) for line in exc.errors), exc.errors
        return
    for event in events:
        normalizer.apply(event)


@pytest.mark.parametrize("name", ["billion-laughs-of-lists", "list-inside-itself", "flow-5000-deep", "int-5000-digits", "february-30th-key", "bad-utf8"])
def test_normalization_bombs_are_normalization_errors(tmp_path: Path, name: str) -> None:
    path = tmp_path / "normalize.yaml"
    content = BOMBS[name]
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(NormalizationError) as caught:
        load_normalization(path)
    assert str(caught.value).startswith(str(path))
