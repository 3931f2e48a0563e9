"""Loading rule files: YAML in, a validated :class:`RuleSet` out, or every error at once.

A rules path is a directory (every ``*.yaml`` / ``*.yml`` in it, in name order)
or one file. A file is a mapping with a ``segments:`` list (``name``,
``description``, ``condition``, ``holdout``), a ``scores:`` list of declared
scores (``name``, ``description``, ``half_life``, ``points``; see
:mod:`stream.rules.scores`), or both, and optionally ``models:`` (see
:mod:`stream.models.config`; in one file at most). Its JSON Schema is
:func:`stream.rules.schema.rules_json_schema`. Segment and score names are
unique across all files; every file's scores are read before any segment, so a
segment may read a score declared in another file, and references between
segments are checked once all files are read. Every problem found in any file is
reported in one :class:`RuleError`, one line each, naming the file, the segment
(or score) and the field:

    rules/cart.yaml: segment 'cart_abandoners': condition.all[1].within: expected a duration like '24h', got '24 hours'

Hostile files get a :class:`RuleError` too, never a hang or another exception: YAML is
read by :class:`BoundedLoader` (PyYAML's safe loader with at most :data:`MAX_NESTING`
levels, aliases adding at most :data:`MAX_ALIAS_NODES` values — no "billion laughs" —
no alias inside itself, and values PyYAML cannot build, such as 2001-02-30 or an
integer of 5000 digits, reported where they are).
"""

from __future__ import annotations

import difflib
from collections.abc import Hashable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from stream.models import config  # a module: stream.models.config imports stream.rules
from stream.rules.conditions import KIND_ERROR, KINDS, TAGS
from stream.rules.errors import RuleError
from stream.rules.model import NamedRule
from stream.rules.ruleset import RuleSet, Segment
from stream.rules.scores import ScoreDefinition

RULE_FILE_PATTERNS = ("*.yaml", "*.yml")
_HINTS = {
    "name": "add e.g. 'name: cart_abandoners'",
    "condition": "add e.g. 'condition: {event: Order Completed, within: 30d}'",
    "within": "add a window, e.g. 'within: 7d'",
    "lookback": "add the window the whole sequence must lie in, e.g. 'lookback: 7d'",
    "without": "name the event that cancels the trigger, e.g. 'without: Order Completed'",
    "of": "name the property to measure, e.g. 'of: revenue'",
    "points": "add e.g. 'points: [{event: Order Completed, points: 10}]'",
}
#: The top-level keys of a rule file; a file needs at least one of the lists.
TOP_LEVEL = ("segments", "scores", "models")
#: Deepest nesting of YAML mappings and sequences in a file, counting what aliases bring in.
MAX_NESTING = 64
#: Most values aliases (``*name``) may add to a file beyond those written in it.
MAX_ALIAS_NODES = 100_000
_Named = TypeVar("_Named", bound=NamedRule)


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded for files nobody checked: nesting, alias expansion, unbuildable values.

    Every refusal is a :class:`yaml.MarkedYAMLError` naming the line; also used for the
    normalization and enrichment files (:func:`stream.ingest.normalize.read_config`).

    >>> yaml.load("a: &x [1, 2]\\nb: *x", Loader=BoundedLoader)
    {'a': [1, 2], 'b': [1, 2]}
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_NESTING} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        _check_aliases(node)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError, AttributeError) as exc:  # e.g. !!int x, 2001-02-30, 5000 digits, !!timestamp x
            what = _short(node.value) if isinstance(node, yaml.ScalarNode) else "this value"
            problem = f"cannot read {what} as {node.tag.rpartition(':')[2]} ({str(exc).partition(';')[0]})"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


def _check_aliases(root: yaml.Node) -> None:
    """Refuse a document whose aliases nest past :data:`MAX_NESTING`, add more than :data:`MAX_ALIAS_NODES`
    values, or sit inside the node they name; linear in the nodes written, whatever they expand to."""
    seen: dict[int, tuple[int, int] | None] = {}  # node -> (expanded size, height); None while being walked

    def walk(node: yaml.Node, depth: int) -> tuple[int, int]:
        if id(node) in seen:
            known = seen[id(node)]
            if known is None:
                raise yaml.composer.ComposerError(None, None, "an alias (*name) refers to a node that contains it", node.start_mark)
            if depth + known[1] - 1 > MAX_NESTING:
                raise yaml.composer.ComposerError(
                    None, None, f"an alias of the node here nests the file more than {MAX_NESTING} levels deep", node.start_mark
                )
            return known
        seen[id(node)] = None
        children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else []
        size, height = 1, 1
        for child in children:
            child_size, child_height = walk(child, depth + 1)
            size, height = size + child_size, max(height, child_height + 1)
        seen[id(node)] = (size, height)
        return size, height

    size, _ = walk(root, 1)
    if size - len(seen) > MAX_ALIAS_NODES:
        raise yaml.composer.ComposerError(
            None, None, f"aliases (*name) expand the file by {size - len(seen)} values, more than {MAX_ALIAS_NODES}", root.start_mark
        )


class _StrictLoader(BoundedLoader):
    """The bounded loader, and a key repeated in one mapping is an error instead of silently winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if not isinstance(key, Hashable):  # e.g. a scalar tagged !!seq or !!pairs
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark, f"found a key that is not a name: {key!r}", key_node.start_mark
                    )
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


def load_rules(path: Path | str) -> RuleSet:
    """The rule set in ``path`` (a directory of YAML files, or one file); raises :class:`RuleError` listing every problem."""
    errors: list[str] = []
    files = [(file, data) for file in _rule_files(Path(path)) if (data := _read_file(file, errors)) is not None]
    before = len(errors)
    scores = _unique([s for file, data in files for s in _entries(file, data, "scores", ScoreDefinition, {}, errors)], errors)
    context = {"scores": scores} if len(errors) == before else {}  # else unknown names would be noise
    models = _models(files, errors)
    segments = _unique([s for file, data in files for s in _entries(file, data, "segments", Segment, context, errors)], errors)
    if errors:
        raise RuleError(errors)
    return RuleSet(segments, scores, models)


def _unique(entries: list[_Named], errors: list[str]) -> dict[str, _Named]:
    """``entries`` by name; a name defined twice is an error naming both files."""
    unique: dict[str, _Named] = {}
    for entry in entries:
        if entry.name in unique:
            errors.append(f"{entry.location}: duplicate name, already defined in {unique[entry.name].source}; rename one")
        else:
            unique[entry.name] = entry
    return unique


def _models(files: list[tuple[Path, dict[str, Any]]], errors: list[str]) -> config.ModelsConfig | None:
    """The one ``models:`` section of all files (``None`` when there is none)."""
    models, first = None, None
    for file, data in files:
        if "models" not in data:
            continue
        if first is not None:
            errors.append(f"{file}: models: already defined in {first}; keep one 'models:' section, in one file")
            continue
        first = file
        try:
            models = config.ModelsConfig.model_validate(data["models"])
        except ValidationError as exc:
            errors.extend(f"{file}: models: {_message(error)}" for error in exc.errors())
    return models


def _rule_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise RuleError([f"{path}: no such file or directory; point SEGSTREAM_RULES at the rules directory"])
    files = sorted({f for pattern in RULE_FILE_PATTERNS for f in path.glob(pattern) if f.is_file()})
    if not files:
        raise RuleError([f"no rule files (*.yaml, *.yml) in {path}; add one, e.g. a copy of the shipped rules/behaviour.yaml"])
    return files


def _read_file(file: Path, errors: list[str]) -> dict[str, Any] | None:
    """The top-level mapping of one file, checked for its keys; its problems are appended to ``errors``."""
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (a safe loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        errors.append(f"{file}: invalid YAML{where}: {exc.problem or exc.context}; fix the syntax there")
        return None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        errors.append(f"{file}: cannot read the file ({exc}); make it readable UTF-8 YAML")
        return None
    if data is None:
        errors.append(f"{file}: the file is empty; add a 'segments:' list (see rules/ for examples)")
        return None
    if not isinstance(data, dict) or not any(key in data for key in TOP_LEVEL):
        errors.append(
            f"{file}: expected a mapping with a 'segments:' or 'scores:' list or a 'models:' section, got {_short(data)}; "
            "see rules/ for examples"
        )
        return None
    for key in data:
        if key not in TOP_LEVEL:
            close = difflib.get_close_matches(str(key), TOP_LEVEL, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            errors.append(f"{file}: unknown top-level key {str(key)!r}{hint}; a rule file holds only 'segments:', 'scores:' and 'models:'")
    return data


def _entries(file: Path, data: dict[str, Any], key: str, model: type[_Named], context: dict[str, Any], errors: list[str]) -> list[_Named]:
    """The valid entries of the ``key`` list of one file (segments or scores); their problems are appended to ``errors``."""
    if key not in data:
        return []
    if not isinstance(data[key], list):
        errors.append(f"{file}: {key}: expected a list of {key}, got {_short(data[key])}")
        return []
    valid = []
    for i, raw in enumerate(data[key]):
        name = raw.get("name") if isinstance(raw, dict) else None
        prefix = f"{file}: {model.noun} '{name}'" if isinstance(name, str) else f"{file}: {key}[{i}]"
        try:
            valid.append(model.model_validate(raw, context={"source": file, **context}))
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
