"""Loading rule files: YAML in, a validated :class:`RuleSet` out, or every error at once.

A rules path is a directory (every ``*.yaml`` / ``*.yml`` in it, in name order)
or one file. A file is a mapping with one key, ``segments:``, a list of
segments (``name``, ``description``, ``condition``, ``holdout``; its JSON Schema
is :func:`stream.rules.schema.rules_json_schema`). Segment names are unique
across all files, and references between segments are checked once all files
are read. Every problem found in any file is reported in one
:class:`RuleError`, one line each, naming the file, the segment and the field:

    rules/cart.yaml: segment 'cart_abandoners': condition.all[1].within: expected a duration like '24h', got '24 hours'
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from stream.rules.conditions import KIND_ERROR, KINDS, TAGS
from stream.rules.errors import RuleError
from stream.rules.ruleset import RuleSet, Segment

RULE_FILE_PATTERNS = ("*.yaml", "*.yml")
_HINTS = {
    "name": "add e.g. 'name: cart_abandoners'",
    "condition": "add e.g. 'condition: {event: Order Completed, within: 30d}'",
    "within": "add a window, e.g. 'within: 7d'",
    "lookback": "add the window the whole sequence must lie in, e.g. 'lookback: 7d'",
    "without": "name the event that cancels the trigger, e.g. 'without: Order Completed'",
    "of": "name the property to measure, e.g. 'of: revenue'",
}


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key repeated in one mapping is an error instead of silently winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


def load_rules(path: Path | str) -> RuleSet:
    """The rule set in ``path`` (a directory of YAML files, or one file); raises :class:`RuleError` listing every problem."""
    errors: list[str] = []
    segments: dict[str, Segment] = {}
    for file in _rule_files(Path(path)):
        for segment in _load_file(file, errors):
            if segment.name in segments:
                other = segments[segment.name].source
                errors.append(f"{file}: segment '{segment.name}': duplicate name, already defined in {other}; rename one")
            else:
                segments[segment.name] = segment
    if errors:
        raise RuleError(errors)
    return RuleSet(segments)


def _rule_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise RuleError([f"{path}: no such file or directory; point SEGSTREAM_RULES at the rules directory"])
    files = sorted({f for pattern in RULE_FILE_PATTERNS for f in path.glob(pattern) if f.is_file()})
    if not files:
        raise RuleError([f"no rule files (*.yaml, *.yml) in {path}; add one, e.g. a copy of the shipped rules/behaviour.yaml"])
    return files


def _load_file(file: Path, errors: list[str]) -> list[Segment]:
    """The valid segments of one file; its problems are appended to ``errors``."""
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (a safe loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        errors.append(f"{file}: invalid YAML{where}: {exc.problem or exc.context}; fix the syntax there")
        return []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        errors.append(f"{file}: cannot read the file ({exc}); make it readable UTF-8 YAML")
        return []
    if data is None:
        errors.append(f"{file}: the file is empty; add a 'segments:' list (see rules/ for examples)")
        return []
    if not isinstance(data, dict) or "segments" not in data:
        errors.append(f"{file}: expected a mapping with a 'segments:' list, got {_short(data)}; see rules/ for examples")
        return []
    if set(data) != {"segments"}:
        extra = ", ".join(repr(str(k)) for k in data if k != "segments")
        errors.append(f"{file}: unknown top-level key {extra}; a rule file holds only 'segments:'")
    if not isinstance(data["segments"], list):
        errors.append(f"{file}: segments: expected a list of segments, got {_short(data['segments'])}")
        return []
    valid = []
    for i, raw in enumerate(data["segments"]):
        name = raw.get("name") if isinstance(raw, dict) else None
        prefix = f"{file}: segment '{name}'" if isinstance(name, str) else f"{file}: segments[{i}]"
        try:
            valid.append(Segment.model_validate(raw, context={"source": file}))
        except ValidationError as exc:
            errors.extend(f"{prefix}: {_message(error)}" for error in exc.errors())
    return valid


def _message(error: ErrorDetails) -> str:
    """One pydantic error as ``field.path: what is wrong and what to do``."""
    path = ""
    for part in error["loc"]:
        if part in TAGS:
            continue
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    kind, got = error["type"], error.get("input")
    if kind == "missing":
        key = str(error["loc"][-1])
        text = f"missing; {_HINTS.get(key, f'add {key!r}')}"
    elif kind == "value_error":
        text = str(error.get("ctx", {}).get("error", error["msg"]))
    elif kind == KIND_ERROR:
        text = _kind_message(got)
    elif kind == "too_short":
        text = "must not be empty"
    elif kind in ("unknown_key", "not_a_mapping"):
        text = error["msg"]
    else:
        text = f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_short(got)}"
    return f"{path}: {text}" if path else text


def _kind_message(got: Any) -> str:
    kinds = ", ".join(KINDS)
    if not isinstance(got, dict):
        return f"expected a condition (a mapping with one of the keys {kinds}), got {_short(got)}"
    present = [key for key in KINDS if key in got]
    if present:
        return f"a condition has exactly one of the keys {kinds}, got {' and '.join(present)}; combine them with all: [...]"
    close = [m for key in got for m in difflib.get_close_matches(str(key), KINDS, n=1)]
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"a condition needs one of the keys {kinds}{hint}, got keys {', '.join(map(str, got)) or 'none'}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
