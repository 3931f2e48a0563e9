"""The mapping file of ``segstream import``: how a row of a file becomes a Segment call.

Two kinds: ``profiles`` (CRM records, one ``identify`` per row, with traits) and
``events`` (order tables and other histories, one ``track`` per row at the row's own
time). Unknown keys are errors naming the key meant, as in every YAML file of segstream.

>>> m = Mapping.model_validate({"kind": "events", "user_id": "customer", "event": "Order Completed",
...     "timestamp": {"column": "date", "format": "%Y%m%d"}, "revenue": "amount"})
>>> m.revenue.column, m.revenue.type
('amount', 'float')
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from stream.ingest.normalize import ConfigFileError, read_config
from stream.rules.model import RuleModel

#: The types a column can be read as.
FieldType = Literal["string", "int", "float", "bool", "date", "datetime"]
#: How time columns are written: ISO 8601 (or epoch numbers), epoch seconds, epoch milliseconds, or a strptime pattern.
TIME_FORMATS = ("iso", "epoch_s", "epoch_ms")


class MappingError(ConfigFileError):
    """A mapping file that cannot be used; each line names the file and the key at fault."""


def _check_format(value: str | None) -> str | None:
    if value is None or value in TIME_FORMATS:
        return value
    if "%" not in value:
        raise ValueError(f"expected one of {', '.join(TIME_FORMATS)} or a strptime pattern like '%Y-%m-%d', got {value!r}")
    try:
        datetime.now().strftime(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a strptime pattern ({exc})") from None
    return value


TimeFormat = Annotated[str | None, BeforeValidator(_check_format)]


class Column(RuleModel):
    """A value read from a column, converted to ``type`` (``format`` for dates and times); empty cells are left out."""

    column: str = Field(min_length=1)
    type: FieldType = "string"
    format: TimeFormat = None
    required: bool = False

    @model_validator(mode="after")
    def _format_for_times(self) -> Column:
        if self.format is not None and self.type not in ("date", "datetime"):
            raise ValueError(f"format applies to date and datetime columns; column {self.column!r} is read as {self.type}")
        return self


class Constant(RuleModel):
    """The same value on every row."""

    value: str | int | float | bool


def _column_shorthand(value: object) -> object:
    return {"column": value} if isinstance(value, str) else value


#: A column (``name`` or ``{column, type, format, required}``) or ``{value: ...}``.
Source = Annotated[Column | Constant, BeforeValidator(_column_shorthand)]


def _float_shorthand(value: object) -> object:
    return {"column": value, "type": "float"} if isinstance(value, str) else value


class Timestamp(RuleModel):
    """The column holding each row's time, and how it is written (naive times are UTC)."""

    column: str = Field(min_length=1)
    format: TimeFormat = "iso"


class CsvOptions(RuleModel):
    """How a CSV file is split: ``delimiter`` one character or ``whitespace`` (runs of spaces and tabs); ``columns`` when it has no header."""

    delimiter: str = ","
    header: bool = True
    columns: list[str] | None = None

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        if value != "whitespace" and len(value) != 1:
            raise ValueError(f"expected one character like ',' or ';', or 'whitespace', got {value!r}")
        return value

    @model_validator(mode="after")
    def _names(self) -> CsvOptions:
        if not self.header and not self.columns:
            raise ValueError("a file without a header needs columns: [name, ...] in the order of the file")
        return self


class Mapping(RuleModel):
    """One mapping file: which rows, read how, become which calls."""

    kind: Literal["profiles", "events"]
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")
    format: Literal["csv", "jsonl", "parquet"] | None = None
    csv: CsvOptions = CsvOptions()
    user_id: str = Field(min_length=1)
    anonymous_id: str | None = None
    id: list[str] = []
    timestamp: Timestamp | None = None
    # profiles
    email: str | None = None
    traits: dict[str, Source] = {}
    # events
    event: str | Column | None = None
    properties: dict[str, Source] = {}
    revenue: Annotated[Column | None, BeforeValidator(_float_shorthand)] = None
    currency: Source | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        if self.kind == "events":
            if self.event is None:
                raise ValueError("an events mapping needs event: a name like 'Order Completed', or {column: NAME}")
            if self.timestamp is None:
                raise ValueError("an events mapping needs timestamp: {column: NAME, format: ...}, the time of each row")
            if self.email is not None or self.traits:
                raise ValueError("email and traits belong to kind: profiles; an events mapping has properties")
        elif self.event is not None or self.properties or self.revenue is not None or self.currency is not None:
            raise ValueError("event, properties, revenue and currency belong to kind: events; a profiles mapping has traits")
        if isinstance(self.event, Column) and self.event.type != "string":
            raise ValueError("event: {column: NAME} names the event; its type is string")
        return self

    def columns(self) -> list[str]:
        """Every column the mapping reads (checked against the file before importing)."""
        sources = [*self.traits.values(), *self.properties.values(), self.revenue, self.currency, self.event]
        named = [self.user_id, self.anonymous_id, self.email, *self.id, self.timestamp.column if self.timestamp else None]
        named += [s.column for s in sources if isinstance(s, Column)]
        return list(dict.fromkeys(c for c in named if c))


def load_mapping(path: Path | str) -> Mapping:
    """The mapping file at ``path``; raises :class:`MappingError` listing every problem (``crm.yaml: traits.age.type: ...``)."""
    return read_config(path, Mapping, MappingError)
