"""Normalization: one YAML file of rules that clean events before they reach the events topic.

Pure apart from :func:`load_normalization` (which reads the file). Four rules, each
optional, applied in this order by :meth:`Normalizer.apply`:

1. ``traits``: trait names in one case (``case: snake``: ``firstName``, ``First Name``,
   ``first-name`` -> ``first_name``; or ``camel``, or ``none``) in ``traits`` (identify,
   group) and ``context.traits``; trait values named in ``timestamps`` become UTC ISO times.
2. ``timestamps``: record fields (``timestamp``, ``sentAt``, ``originalTimestamp``,
   ``receivedAt`` by default; any dotted path) as ``2024-05-01T12:00:00.000Z``. ISO 8601
   with any offset, epoch seconds or milliseconds (numbers or digit strings) are read.
3. ``labels``: canonical values per field path, matched case-insensitively by exact alias,
   then substring (``contains``), then regex (``matches``, searched); e.g. ``iPhone`` ->
   ``Mobile``. Unmatched values are kept (and reported when ``report_unmapped``).
4. ``currency``: amounts in ``properties`` converted to ``base`` by ``rates`` (units of
   base per unit of the currency named by ``properties.currency``); the originals are kept
   as ``properties.original_currency`` and ``properties.original_<field>``.

Nothing here drops an event: what could not be normalized stays as sent and is reported
as a :class:`Note` (``kind`` one of :data:`NOTE_KINDS`). The caller counts notes by kind
(e.g. collector counters ``normalize_unknown_currency``); none is a reason to dead-letter,
since the event stays valid and says what it is (an unknown currency keeps its
``properties.currency``). Applying twice gives what applying once gives.

>>> n = Normalizer(NormalizationConfig.model_validate(
...     {"labels": [{"fields": ["context.device.type"], "values": {"Mobile": ["iphone"]}}]}))
>>> n.apply({"type": "track", "context": {"device": {"type": "iPhone"}}}).record["context"]
{'device': {'type': 'Mobile'}}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from stream.rules.loader import BoundedLoader
from stream.rules.model import RuleModel
from stream.state.profile import iso, parse_time

UNMAPPED_LABEL = "unmapped_label"
UNKNOWN_CURRENCY = "unknown_currency"
BAD_AMOUNT = "bad_amount"
BAD_TIMESTAMP = "bad_timestamp"
TRAIT_COLLISION = "trait_collision"
#: Every :attr:`Note.kind`.
NOTE_KINDS = (UNMAPPED_LABEL, UNKNOWN_CURRENCY, BAD_AMOUNT, BAD_TIMESTAMP, TRAIT_COLLISION)
#: Where :meth:`Normalizer.apply` looks for traits.
TRAIT_PATHS = ("traits", "context.traits")

_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_EPOCH = re.compile(r"-?\d+(\.\d+)?")
_Model = TypeVar("_Model", bound=BaseModel)


# --- configuration files (shared with stream.enrich) ----------------------------------


class ConfigFileError(ValueError):
    """A configuration file that cannot be used; ``errors`` lists every problem, one line each.

    Each line names the file and the field path, then what to do, e.g.
    ``normalize.yaml: currency.rates.EUR: input should be greater than 0, got -1``.
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        message = errors[0] if len(errors) == 1 else f"{len(errors)} errors:\n" + "\n".join(f"  {e}" for e in errors)
        super().__init__(message)


class NormalizationError(ConfigFileError):
    """A normalization file that cannot be used (see :class:`ConfigFileError`)."""


def read_config(path: Path | str, model: type[_Model], error: type[ConfigFileError], context: Any = None) -> _Model:
    """The YAML file at ``path`` validated as ``model``; raises ``error`` listing every problem."""
    file = Path(path)
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=BoundedLoader)  # noqa: S506 (a safe loader)
    except FileNotFoundError:
        raise error([f"{file}: no such file; create it (see the shipped example at the project root)"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error([f"{file}: invalid YAML{where}: {exc.problem or exc.context}; fix the syntax there"]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise error([f"{file}: cannot read the file ({exc}); make it readable UTF-8 YAML"]) from None
    try:
        return model.model_validate({} if data is None else data, context=context)
    except ValidationError as exc:
        raise error([f"{file}: {config_problem(e)}" for e in exc.errors()]) from None


def config_problem(error: ErrorDetails) -> str:
    """One pydantic error as ``field.path: what is wrong``."""
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    if error["type"] == "value_error":
        text = str(error.get("ctx", {}).get("error", error["msg"]))
    elif error["type"] == "union_tag_invalid":
        ctx = error.get("ctx", {})
        text = f"unknown {str(ctx.get('discriminator')).strip(chr(39))} {ctx.get('tag')!r}; use one of {ctx.get('expected_tags')}"
    elif error["type"] == "union_tag_not_found":
        text = f"missing {str(error.get('ctx', {}).get('discriminator')).strip(chr(39))}; add it (the kind of entry this is)"
    elif error["type"] in ("unknown_key", "not_a_mapping", "missing"):
        text = error["msg"].lower()
    else:
        got = repr(error.get("input"))
        text = f"{error['msg'][0].lower()}{error['msg'][1:]}, got {got if len(got) <= 60 else got[:57] + '...'}"
    return f"{path}: {text}" if path else text


# --- the normalization file --------------------------------------------------------------


FieldPath = str


def _check_path(path: str) -> str:
    if not path or any(not part for part in path.split(".")):
        raise ValueError(f"expected a dotted field path like 'context.device.type', got {path!r}")
    return path


class LabelMap(RuleModel):
    """Canonical values for some fields: ``values`` (exact aliases), ``contains`` (substrings), ``matches`` (regexes).

    Each maps a canonical value to the lower-case spellings that mean it; every canonical
    value is also an alias of itself.
    """

    fields: list[FieldPath] = Field(min_length=1)
    values: dict[str, list[str]] = {}
    contains: dict[str, list[str]] = {}
    matches: dict[str, list[str]] = {}
    report_unmapped: bool = True

    @field_validator("fields")
    @classmethod
    def _paths(cls, fields: list[str]) -> list[str]:
        return [_check_path(f) for f in fields]

    @field_validator("matches")
    @classmethod
    def _regexes(cls, matches: dict[str, list[str]]) -> dict[str, list[str]]:
        for canonical, patterns in matches.items():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{canonical}: {pattern!r} is not a regular expression ({exc}); fix or quote it") from None
        return matches

    @model_validator(mode="after")
    def _unambiguous(self) -> LabelMap:
        owner: dict[str, str] = {c.strip().casefold(): c for c in (*self.values, *self.contains, *self.matches)}
        for canonical, aliases in self.values.items():
            for alias in aliases:
                folded = alias.strip().casefold()
                if not folded:
                    raise ValueError(f"values.{canonical}: an alias is empty; remove it")
                if owner.setdefault(folded, canonical) != canonical:
                    raise ValueError(f"values: {alias!r} means both {owner[folded]!r} and {canonical!r}; keep it under one")
        return self


class CurrencyConfig(RuleModel):
    """Amounts converted to ``base``: ``rates`` are units of base per unit of each currency."""

    base: str = "USD"
    rates: dict[str, float] = {}
    fields: list[str] = ["revenue", "total", "price", "value", "subtotal", "shipping", "tax", "discount"]
    decimals: int = Field(2, ge=0, le=12)

    @field_validator("base")
    @classmethod
    def _code(cls, base: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{3}", base):
            raise ValueError(f"expected an ISO 4217 code like 'USD', got {base!r}")
        return base.upper()

    @field_validator("rates")
    @classmethod
    def _rates(cls, rates: dict[str, float]) -> dict[str, float]:
        for code, rate in rates.items():
            if not re.fullmatch(r"[A-Za-z]{3}", code):
                raise ValueError(f"{code!r} is not an ISO 4217 code like 'EUR'")
            if not rate > 0:
                raise ValueError(f"{code}: a rate is units of base per unit of {code} and must be > 0, got {rate}")
        return {code.upper(): rate for code, rate in rates.items()}


class TraitsConfig(RuleModel):
    """Trait names in one ``case``; trait values named in ``timestamps`` (in that case) become UTC ISO times."""

    case: Literal["snake", "camel", "none"] = "snake"
    timestamps: list[str] = []

    @model_validator(mode="after")
    def _names_in_case(self) -> TraitsConfig:
        for name in self.timestamps:
            if trait_name(name, self.case) != name:
                raise ValueError(f"timestamps: write {trait_name(name, self.case)!r} instead of {name!r}: traits are renamed to {self.case} case first")
        return self


class TimestampsConfig(RuleModel):
    """Record fields (dotted paths) rewritten as UTC ISO 8601 times with milliseconds."""

    fields: list[FieldPath] = ["timestamp", "sentAt", "originalTimestamp", "receivedAt"]

    @field_validator("fields")
    @classmethod
    def _paths(cls, fields: list[str]) -> list[str]:
        return [_check_path(f) for f in fields]


class NormalizationConfig(RuleModel):
    """The normalization file: ``labels``, ``currency``, ``traits``, ``timestamps`` (see the module docstring)."""

    labels: list[LabelMap] = []
    currency: CurrencyConfig | None = None
    traits: TraitsConfig = TraitsConfig()
    timestamps: TimestampsConfig = TimestampsConfig()

    @model_validator(mode="after")
    def _one_map_per_field(self) -> NormalizationConfig:
        seen: dict[str, int] = {}
        for i, label_map in enumerate(self.labels):
            for path in label_map.fields:
                if seen.setdefault(path, i) != i:
                    raise ValueError(f"labels: {path} is in labels[{seen[path]}] and labels[{i}]; merge them into one")
        return self


def load_normalization(path: Path | str) -> Normalizer:
    """The :class:`Normalizer` of the YAML file at ``path``; raises :class:`NormalizationError` listing every problem."""
    return Normalizer(read_config(path, NormalizationConfig, NormalizationError))


# --- applying it -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Note:
    """Something :meth:`Normalizer.apply` left as sent: its ``kind`` (a counter name), the field and the value."""

    kind: str
    field: str
    value: Any


@dataclass(frozen=True, slots=True)
class NormalizeResult:
    """The normalized record and the :class:`Note` of each thing left as sent."""

    record: dict[str, Any]
    notes: tuple[Note, ...] = ()


class _Draft:
    """A record being normalized: the input is copied only along the paths that change."""

    __slots__ = ("root", "_owned")

    def __init__(self, record: dict[str, Any]) -> None:
        self.root = dict(record)
        self._owned = {id(self.root)}

    def writable(self, keys: tuple[str, ...]) -> dict[str, Any]:
        """The dict at ``keys`` (which must exist), copied from the input on first write."""
        node = self.root
        for key in keys:
            child = node[key]
            if id(child) not in self._owned:
                child = node[key] = dict(child)
                self._owned.add(id(child))
            node = child
        return node


def _lookup(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    node: Any = record
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


Step = Callable[[_Draft, list[Note]], None]


class Normalizer:
    """The compiled rules of a :class:`NormalizationConfig`; :meth:`apply` one record at a time."""

    def __init__(self, config: NormalizationConfig) -> None:
        self.config = config
        self._steps: list[Step] = []
        if config.traits.case != "none" or config.traits.timestamps:
            self._steps.append(self._traits_step(config.traits))
        if config.timestamps.fields:
            self._steps.append(_timestamps_step(config.timestamps.fields))
        if config.labels:
            self._steps.append(_labels_step(config.labels))
        if config.currency is not None:
            self._steps.append(_currency_step(config.currency))

    def apply(self, record: dict[str, Any]) -> NormalizeResult:
        """``record`` normalized, as a new dict (the input is not changed; unchanged parts are shared, so treat both as read-only)."""
        draft = _Draft(record)
        notes: list[Note] = []
        for step in self._steps:
            step(draft, notes)
        return NormalizeResult(draft.root, tuple(notes))

    @staticmethod
    def _traits_step(config: TraitsConfig) -> Step:
        rename = lru_cache(maxsize=4096)(lambda name: trait_name(name, config.case))
        time_traits = tuple(config.timestamps)
        places = [(path, tuple(path.split("."))) for path in TRAIT_PATHS]

        def step(draft: _Draft, notes: list[Note]) -> None:
            for path, keys in places:
                traits = _lookup(draft.root, keys)
                if not isinstance(traits, dict) or not traits:
                    continue
                out = _renamed(traits, rename, path, notes)
                for name in time_traits:
                    if name in out and (when := _utc(out[name], f"{path}.{name}", notes)) != out[name]:
                        if out is traits:
                            out = dict(traits)
                        out[name] = when
                if out is not traits:
                    draft.writable(keys[:-1])[keys[-1]] = out

        return step


def _renamed(traits: dict[str, Any], rename: Callable[[str], str], path: str, notes: list[Note]) -> dict[str, Any]:
    """``traits`` with canonical names (the same dict when none changes); a name already canonical wins a collision."""
    if all(not isinstance(k, str) or rename(k) == k for k in traits):
        return traits
    out = {k: v for k, v in traits.items() if not isinstance(k, str) or rename(k) == k}
    for key, value in traits.items():
        if isinstance(key, str) and (name := rename(key)) != key:
            if name in out:
                notes.append(Note(TRAIT_COLLISION, f"{path}.{key}", value))
            else:
                out[name] = value
    return out


def trait_name(name: str, case: str) -> str:
    """``name`` in ``case`` (``snake``, ``camel`` or ``none``); names with no letters or digits stay as they are.

    >>> trait_name("First Name", "snake"), trait_name("userID", "snake"), trait_name("first_name", "camel")
    ('first_name', 'user_id', 'firstName')
    """
    if case == "none":
        return name
    words = _words(name)
    if not words:
        return name
    if case == "snake":
        return "_".join(_alnum(w.lower()) for w in words)
    return _alnum(words[0].lower()) + "".join(_alnum(w[:1].upper() + w[1:]) for w in words[1:])


def _words(name: str) -> list[str]:
    """The words of a name: runs of letters and digits, split before an upper-case letter that follows
    a letter or digit not in upper case (``userId``), or that ends an acronym (``HTTPStatus``)."""
    words: list[str] = []
    for chunk in re.split(r"[\W_]+", name):
        start = 0
        for i in range(1, len(chunk)):
            here, before = chunk[i], chunk[i - 1]
            after = chunk[i + 1] if i + 1 < len(chunk) else ""
            if _upper(here) and (not _upper(before) or after.islower()):
                words.append(chunk[start:i])
                start = i
        if chunk:
            words.append(chunk[start:])
    return [w for w in words if _alnum(w)]


def _upper(char: str) -> bool:
    # Upper case that lower-casing changes: 'A', not '𝜜' (upper case without a lower-case form),
    # which would otherwise split again after being "lower-cased" (names must stay canonical).
    return char.isupper() and char.lower() != char


def _alnum(text: str) -> str:
    # Case mapping may add combining marks (e.g. 'İ'.lower()); keep letters and digits only.
    return text if text.isalnum() else "".join(c for c in text if c.isalnum())


def _utc(value: Any, field: str, notes: list[Note]) -> Any:
    """``value`` as ``2024-05-01T12:00:00.000Z``, or unchanged with a note when it is not a time."""
    if isinstance(value, str):
        if _CANONICAL_TIME.fullmatch(value):
            return value
    try:
        epoch = float(value) if isinstance(value, str) and _EPOCH.fullmatch(value.strip()) else value
        return iso(parse_time(epoch))
    except (ValueError, OverflowError, OSError, TypeError):
        notes.append(Note(BAD_TIMESTAMP, field, value))
        return value


def _timestamps_step(paths: list[str]) -> Step:
    places = [(path, tuple(path.split("."))) for path in paths]

    def step(draft: _Draft, notes: list[Note]) -> None:
        for path, keys in places:
            value = _lookup(draft.root, keys)
            if value is None or (type(value) is str and len(value) == 24 and _CANONICAL_TIME.fullmatch(value)):
                continue
            if (when := _utc(value, path, notes)) != value:
                draft.writable(keys[:-1])[keys[-1]] = when

    return step


def _label_matcher(label_map: LabelMap) -> Callable[[str], str | None]:
    exact = {c.strip().casefold(): c for c in (*label_map.values, *label_map.contains, *label_map.matches)}
    exact.update({a.strip().casefold(): c for c, aliases in label_map.values.items() for a in aliases})
    contains = [(needle.casefold(), c) for c, needles in label_map.contains.items() for needle in needles]
    matches = [(re.compile(p, re.IGNORECASE), c) for c, patterns in label_map.matches.items() for p in patterns]

    @lru_cache(maxsize=8192)
    def match(value: str) -> str | None:
        folded = value.strip().casefold()
        if folded in exact:
            return exact[folded]
        for needle, canonical in contains:
            if needle in folded:
                return canonical
        for pattern, canonical in matches:
            if pattern.search(value):
                return canonical
        return None

    return match


def _labels_step(label_maps: list[LabelMap]) -> Step:
    places = [
        (path, tuple(path.split(".")), match, label_map.report_unmapped)
        for label_map in label_maps
        for match in [_label_matcher(label_map)]
        for path in label_map.fields
    ]

    def step(draft: _Draft, notes: list[Note]) -> None:
        for path, keys, match, report in places:
            value = _lookup(draft.root, keys)
            if type(value) is not str:
                continue
            canonical = match(value)
            if canonical is None:
                if report:
                    notes.append(Note(UNMAPPED_LABEL, path, value))
            elif canonical != value:
                draft.writable(keys[:-1])[keys[-1]] = canonical

    return step


def _currency_step(config: CurrencyConfig) -> Step:
    base, rates, fields, decimals = config.base, config.rates, tuple(config.fields), config.decimals

    def step(draft: _Draft, notes: list[Note]) -> None:
        props = draft.root.get("properties")
        if not isinstance(props, dict) or (sent := props.get("currency")) is None:
            return
        code = sent.strip().upper() if isinstance(sent, str) else None
        if code == base:
            if sent != base:
                draft.writable(("properties",))["currency"] = base
            return
        if code not in rates:
            notes.append(Note(UNKNOWN_CURRENCY, "properties.currency", sent))
            return
        amounts = {name: props[name] for name in fields if name in props}
        numbers = {name: _number(value) for name, value in amounts.items()}
        bad = [name for name, number in numbers.items() if number is None]
        if bad or not amounts:
            notes.extend(Note(BAD_AMOUNT, f"properties.{name}", amounts[name]) for name in bad)
            return
        out = draft.writable(("properties",))
        for name, number in numbers.items():
            out[f"original_{name}"] = amounts[name]
            out[name] = round(number * rates[code], decimals)  # type: ignore[operator]
        out["original_currency"] = code
        out["currency"] = base

    return step


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        try:
            return _number(float(value))
        except ValueError:
            return None
    return None

