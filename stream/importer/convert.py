"""Rows to events-topic records, pure: the mapping's conversions, then the collector's own validation and normalization.

A row is a dict of column -> value (strings from CSV, JSON values from JSON lines,
typed values from Parquet). :meth:`Converter.convert` builds the Segment call the
mapping describes, validates it with :func:`stream.ingest.events.normalise` (the
collector's code: same record shape, same errors), marks it as imported
(:data:`stream.worker.processor.IMPORT_MARKER`, in place of the collector's
``receivedAt``) and normalizes it like the collector would. A row that cannot be
used is a :class:`RowError` naming the reason, the field and what to do.

``messageId`` is deterministic: ``import:<name>:<digest>`` of the mapping's ``id``
columns, else of the row's number and content, so a re-run produces the same ids.

>>> from stream.importer.mapping import Mapping
>>> m = Mapping.model_validate({"kind": "profiles", "user_id": "id", "traits": {"age": {"column": "Age", "type": "int"}}})
>>> c = Converter(m, "crm", imported_at=0)
>>> c.convert(1, {"id": "u1", "Age": "x"}).message
"traits.age: column 'Age' holds 'x', expected an integer; fix the cell or change the column's type"
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

from stream.importer.mapping import Column, Constant, Mapping
from stream.ingest.events import normalise
from stream.ingest.normalize import Normalizer
from stream.state.profile import iso, parse_time
from stream.worker.processor import IMPORT_MARKER

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_EXPECTED = {"int": "an integer", "float": "a number", "bool": "true or false (yes/no, 1/0)", "string": "text"}


@dataclass(frozen=True, slots=True)
class RowError:
    """Why a row was not imported: ``reason`` (counted in the summary), the ``field`` at fault and what to do."""

    row: int
    reason: str
    field: str
    message: str

    def to_bytes(self) -> bytes:
        """The line of the rejected-rows file."""
        return orjson.dumps({"row": self.row, "reason": self.reason, "field": self.field, "message": self.message})


@dataclass(frozen=True, slots=True)
class Converted:
    """A row as a record of the events topic."""

    key: bytes
    value: bytes
    message_id: str


class _Bad(ValueError):
    def __init__(self, reason: str, field: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.field = reason, field


class Converter:
    """Converts rows by one mapping; ``imported_at`` (epoch ms) times rows without a timestamp column."""

    def __init__(self, mapping: Mapping, name: str, imported_at: int, normalizer: Normalizer | None = None) -> None:
        self.mapping, self.name, self.imported_at, self.normalizer = mapping, name, imported_at, normalizer
        self.kind = "identify" if mapping.kind == "profiles" else "track"
        self.marker = {"name": name, "at": iso(imported_at)}

    def convert(self, row_number: int, row: dict[str, Any]) -> Converted | RowError:
        """The record of ``row`` (1-based ``row_number`` among the data rows), or why not."""
        try:
            payload = self._payload(row_number, row)
        except _Bad as exc:
            return RowError(row_number, exc.reason, exc.field, str(exc))
        size = len(orjson.dumps(payload))
        outcome = normalise(payload, self.kind, received_at=self.imported_at, size=size)
        if outcome.errors:
            error = outcome.errors[0]
            return RowError(row_number, "invalid_event", error.field, error.message)
        accepted = outcome.records[0]
        record = orjson.loads(accepted.value)
        del record["receivedAt"]  # the collector's stamp: this record never passed the collector
        record[IMPORT_MARKER] = {**self.marker, "row": row_number}
        if self.normalizer is not None:
            record = self.normalizer.apply(record).record
        return Converted(accepted.key, orjson.dumps(record), payload["messageId"])

    def _payload(self, row_number: int, row: dict[str, Any]) -> dict[str, Any]:
        m = self.mapping
        payload: dict[str, Any] = {"type": self.kind}
        user = _text(row.get(m.user_id))
        anonymous = _text(row.get(m.anonymous_id)) if m.anonymous_id else None
        if user is None and anonymous is None:
            either = f" or {m.anonymous_id!r}" if m.anonymous_id else ""
            raise _Bad("missing_user_id", "userId", f"userId: column {m.user_id!r}{either} is empty; every row needs the customer's id")
        if user is not None:
            payload["userId"] = user
        if anonymous is not None:
            payload["anonymousId"] = anonymous
        payload["messageId"] = self._message_id(row_number, row)
        payload["timestamp"] = iso(self._time(row))
        if self.kind == "identify":
            traits = self._fields(row, m.traits, "traits")
            if m.email and (email := _text(row.get(m.email))) is not None:
                traits["email"] = email
            payload["traits"] = traits
        else:
            payload["event"] = m.event if isinstance(m.event, str) else self._value(row, m.event, "event")  # type: ignore[arg-type]
            if payload["event"] is None:
                raise _Bad("missing_value", "event", f"event: column {m.event.column!r} is empty; every row needs the event's name")  # type: ignore[union-attr]
            properties = self._fields(row, m.properties, "properties")
            for name, source in (("revenue", m.revenue), ("currency", m.currency)):
                if source is not None and (value := self._value(row, source, f"properties.{name}")) is not None:
                    properties[name] = value
            payload["properties"] = properties
        return payload

    def _message_id(self, row_number: int, row: dict[str, Any]) -> str:
        if self.mapping.id:
            values = [row.get(c) for c in self.mapping.id]
            if any(_text(v) is None for v in values):
                raise _Bad("missing_value", "messageId", f"id: a column of {self.mapping.id} is empty; the id columns identify each row")
            basis = orjson.dumps(values, default=str)
        else:
            basis = str(row_number).encode() + b"\x1f" + orjson.dumps(row, default=str)
        return f"import:{self.name}:{hashlib.blake2b(basis, digest_size=12).hexdigest()}"

    def _time(self, row: dict[str, Any]) -> int:
        spec = self.mapping.timestamp
        if spec is None:
            return self.imported_at
        raw = row.get(spec.column)
        if _text(raw) is None:
            raise _Bad("missing_timestamp", "timestamp", f"timestamp: column {spec.column!r} is empty; every row needs its time")
        try:
            return parse_when(raw, spec.format)
        except (ValueError, TypeError, OverflowError):
            how = "an ISO 8601 time" if spec.format == "iso" else f"format {spec.format!r}"
            raise _Bad("bad_timestamp", "timestamp", f"timestamp: column {spec.column!r} holds {raw!r}, not a time in {how}; fix the cell or the format") from None

    def _fields(self, row: dict[str, Any], sources: dict[str, Column | Constant], where: str) -> dict[str, Any]:
        out = {}
        for name, source in sources.items():
            value = self._value(row, source, f"{where}.{name}")
            if value is not None:
                out[name] = value
        return out

    def _value(self, row: dict[str, Any], source: Column | Constant, field: str) -> Any:
        if isinstance(source, Constant):
            return source.value
        raw = row.get(source.column)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if source.required:
                raise _Bad("missing_value", field, f"{field}: column {source.column!r} is empty and required; fill it or drop 'required'")
            return None
        try:
            return convert_value(raw, source.type, source.format)
        except (ValueError, TypeError, OverflowError):
            expected = _EXPECTED.get(source.type) or f"a {source.type} in {source.format or 'ISO 8601'}"
            shown = repr(raw) if len(repr(raw)) <= 60 else repr(raw)[:57] + "..."
            raise _Bad("bad_value", field, f"{field}: column {source.column!r} holds {shown}, expected {expected}; fix the cell or change the column's type") from None


def convert_value(raw: Any, kind: str, fmt: str | None = None) -> Any:
    """``raw`` as ``kind`` (string, int, float, bool, date, datetime); raises ``ValueError`` when it is not one.

    Dates become ``YYYY-MM-DD``, datetimes ISO 8601 UTC with milliseconds.

    >>> convert_value("3.0", "int"), convert_value("yes", "bool"), convert_value("01/05/2024", "date", "%d/%m/%Y")
    (3, True, '2024-05-01')
    """
    if kind == "string":
        return raw.strip() if isinstance(raw, str) else str(raw)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError(raw)
    if kind in ("int", "float"):
        if isinstance(raw, bool):
            raise ValueError(raw)
        number = float(raw.strip()) if isinstance(raw, str) else float(raw) if isinstance(raw, (int, float, Decimal)) else None
        if number is None or not math.isfinite(number):
            raise ValueError(raw)
        if kind == "float":
            return number
        if not number.is_integer():
            raise ValueError(raw)
        return int(raw.strip()) if isinstance(raw, str) and raw.strip().lstrip("-").isdigit() else int(number)
    ms = parse_when(raw, fmt or "iso")
    return iso(ms)[:10] if kind == "date" else iso(ms)  # type: ignore[index]


def parse_when(raw: Any, fmt: str | None) -> int:
    """A time cell as epoch ms: ``iso`` (ISO 8601 or epoch numbers), ``epoch_s``, ``epoch_ms`` or a strptime pattern; naive is UTC."""
    if isinstance(raw, datetime):
        return int((raw if raw.tzinfo else raw.replace(tzinfo=timezone.utc)).timestamp() * 1000)
    if isinstance(raw, date):
        return int(datetime(raw.year, raw.month, raw.day, tzinfo=timezone.utc).timestamp() * 1000)
    if fmt in ("epoch_s", "epoch_ms"):
        number = float(raw)
        if not math.isfinite(number):
            raise ValueError(raw)
        return int(number * 1000) if fmt == "epoch_s" else int(number)
    if fmt in (None, "iso"):
        return parse_time(raw.strip() if isinstance(raw, str) else raw)
    return _strptime_ms(str(raw).strip(), fmt)


@lru_cache(maxsize=1 << 16)
def _strptime_ms(text: str, fmt: str) -> int:
    """``strptime`` as epoch ms, cached: history files repeat their dates (strptime costs ~10 µs)."""
    parsed = datetime.strptime(text, fmt)
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp() * 1000)


def _text(value: Any) -> str | None:
    """An id cell as text (``None`` when empty); integral floats lose their ``.0``."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None
