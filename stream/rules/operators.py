"""Comparison operators shared by trait conditions, ``where`` filters and measures.

=================  ==========================================================
``eq`` / ``ne``    equal / present and not equal (string, number or boolean)
``in``             equal to one of a list
``gt`` ``gte``     greater than (or equal); ``lt`` ``lte`` less than (or equal)
``between``        ``[low, high]``, both ends included
``exists``         ``true``: present; ``false``: missing
``contains``       a string containing a string, or a list containing a value
``starts_with``    a string starting with a string
=================  ==========================================================

Types: the operand written in the rule decides. A number operand compares
numerically and accepts numeric strings in the data (``"29"`` equals ``29``); a
string operand compares text exactly (case-sensitive; ``gt: "2024-01-01"`` orders
ISO dates); a boolean matches only booleans. Anything else — a string against a
number operand, a number against a string operand — is simply false, never an
error. A missing value (absent or ``null``) fails every operator except
``exists: false``; ``ne`` needs a present value too, so to include customers
without the value write ``not: {trait: city, eq: …}``.

>>> ValueTest(between=[25, 34]).predicate("29")
True
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable
from functools import cached_property
from operator import ge as _ge
from operator import gt as _gt
from operator import le as _le
from operator import lt as _lt
from typing import Annotated, Any, ClassVar

import orjson
from pydantic import Field, ValidationInfo, WithJsonSchema, field_validator, model_validator

from stream.rules.model import RuleModel

Predicate = Callable[[Any], bool]

_NUMERIC = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")
_INTEGER = re.compile(r"\s*[-+]?\d+\s*")
_SCALAR_SCHEMA = WithJsonSchema({"type": ["string", "number", "boolean"]})
_NUMBER_SCHEMA = WithJsonSchema({"type": "number"})
_ORDERED_SCHEMA = WithJsonSchema({"type": ["string", "number"]})
_PAIR_SCHEMA = WithJsonSchema({"type": "array", "items": {"type": ["string", "number"]}, "minItems": 2, "maxItems": 2})
_BOOL_SCHEMA = WithJsonSchema({"type": "boolean"})
_LIST_SCHEMA = WithJsonSchema({"type": "array", "items": {"type": ["string", "number", "boolean"]}, "minItems": 1})

#: How each operator reads in reasons, e.g. ``trait age = 41, not <= 34``.
SYMBOLS = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def as_number(value: Any) -> int | float | None:
    """``value`` as a finite number (numbers, numeric strings such as ``"29"``), else ``None``; booleans are not numbers."""
    kind = type(value)
    if kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str and _NUMERIC.fullmatch(value):
        if _INTEGER.fullmatch(value):
            return int(value)
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def show(value: Any) -> str:
    """``value`` as it reads in a reason: JSON (strings quoted), ``none`` for ``None``."""
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(item) for item in value) + "]"
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    return type(value) in (str, bool) or _is_number(value)


def _equals(operand: Any) -> Predicate:
    if type(operand) is bool:
        return lambda value: value is operand
    if type(operand) is str:
        return lambda value: value == operand
    return lambda value: as_number(value) == operand


def _ordered(operand: Any, compare: Callable[[Any, Any], bool], numbers_only: bool) -> Predicate:
    if type(operand) is str:
        return lambda value: type(value) is str and compare(value, operand)
    if numbers_only:
        return lambda value: value is not None and compare(value, operand)

    def numeric(value: Any) -> bool:
        number = value if type(value) is int else as_number(value)  # an int is its own number: no call
        return number is not None and compare(number, operand)

    return numeric


def _one_of(operands: list[Any]) -> Predicate:
    texts = frozenset(o for o in operands if type(o) is str)
    flags = frozenset(o for o in operands if type(o) is bool)
    numbers = frozenset(o for o in operands if type(o) in (int, float))

    def member(value: Any) -> bool:
        kind = type(value)
        if kind is bool:
            return value in flags
        if kind is str and value in texts:
            return True
        return bool(numbers) and as_number(value) in numbers

    return member


def _contains(operand: Any) -> Predicate:
    equal = _equals(operand)

    def contains(value: Any) -> bool:
        if type(value) is str:
            return type(operand) is str and operand in value
        if isinstance(value, list):
            return any(equal(item) for item in value)
        return False

    return contains


def compile_operator(op: str, operand: Any, numbers_only: bool = False) -> Predicate:
    """A predicate over one value (``None`` = missing) for a validated operator and operand.

    With ``numbers_only`` the values are known to be numbers or ``None`` (measures),
    so ordering skips the conversion of numeric strings.
    """
    if op == "exists":
        return lambda value: (value is not None) is operand
    if op == "eq":
        return _equals(operand)
    if op == "ne":
        equal = _equals(operand)
        return lambda value: value is not None and not equal(value)
    if op == "in":
        return _one_of(operand)
    if op == "gt":
        return _ordered(operand, _gt, numbers_only)
    if op == "gte":
        return _ordered(operand, _ge, numbers_only)
    if op == "lt":
        return _ordered(operand, _lt, numbers_only)
    if op == "lte":
        return _ordered(operand, _le, numbers_only)
    if op == "between":
        low, high = operand
        return _ordered(low, lambda a, b: b <= a <= high, numbers_only)
    if op == "contains":
        return _contains(operand)
    if op == "starts_with":
        return lambda value: type(value) is str and value.startswith(operand)
    raise ValueError(f"unknown operator {op!r}")


def operator_text(op: str, operand: Any) -> str:
    """How an operator reads in reasons: ``>= 3``, ``between [25, 34]``, ``in ["a", "b"]``, ``exists``."""
    if op == "exists":
        return "exists" if operand else "missing"
    return f"{SYMBOLS.get(op, op.replace('_', ' '))} {show(operand)}"


def check_operand(op: str, operand: Any, numeric_only: bool) -> Any:
    """``operand`` if it suits ``op``, else ``ValueError`` saying what to write."""
    hint = "; quote dates and times to compare them as text" if isinstance(operand, (datetime.date, datetime.time)) else ""
    got = f"got {operand!r}{hint}"
    if operand is None:
        raise ValueError("null is not a value to compare with; use 'exists: false' to match a missing value")
    if op == "exists":
        if type(operand) is not bool:
            raise ValueError(f"expected true or false, {got}")
    elif op in ("eq", "ne", "contains") and not numeric_only:
        if not _is_scalar(operand):
            raise ValueError(f"expected a string, number or boolean, {got}")
    elif op == "in":
        if not isinstance(operand, list) or not operand or not all(_is_scalar(o) for o in operand):
            raise ValueError(f"expected a non-empty list of strings, numbers or booleans, {got}")
    elif op == "starts_with":
        if type(operand) is not str:
            raise ValueError(f"expected a string, {got}")
    elif op == "between":
        if not isinstance(operand, list) or len(operand) != 2:
            raise ValueError(f"expected [low, high], {got}")
        low, high = operand
        both_numbers = _is_number(low) and _is_number(high)
        both_text = type(low) is str and type(high) is str and not numeric_only
        if not (both_numbers or both_text):
            kinds = "numbers" if numeric_only else "numbers or two strings"
            raise ValueError(f"expected [low, high] with two {kinds}, {got}")
        if low > high:
            raise ValueError(f"expected low <= high, got [{show(low)}, {show(high)}]; swap them")
    elif not _is_number(operand) and (numeric_only or type(operand) is not str):
        raise ValueError(f"expected a number, {got}" if numeric_only else f"expected a number or a string, {got}")
    return operand


class _Operator(RuleModel):
    """Exactly one operator field is set; compiled to :attr:`predicate` and :attr:`text`."""

    _numeric_only: ClassVar[bool] = False

    @classmethod
    def operators(cls) -> list[str]:
        """The operator keys this model accepts."""
        return [field.alias or name for name, field in cls.model_fields.items() if (field.alias or name) in OPERATORS]

    @field_validator("*", mode="before")
    @classmethod
    def _operand(cls, value: Any, info: ValidationInfo) -> Any:
        op = cls.model_fields[info.field_name].alias or info.field_name
        return check_operand(op, value, cls._numeric_only) if op in OPERATORS else value

    @model_validator(mode="after")
    def _exactly_one(self) -> _Operator:
        given = [op for op in self.operators() if self._operand_of(op) is not None]
        if not given:
            raise ValueError(f"give one operator of {', '.join(self.operators())}")
        if len(given) > 1:
            hint = " (for a range use between: [low, high])" if {"gt", "gte", "lt", "lte"} >= set(given) else ""
            raise ValueError(f"give only one operator, got {' and '.join(given)}{hint}")
        return self

    def _operand_of(self, op: str) -> Any:
        return getattr(self, "in_" if op == "in" else op)

    @cached_property
    def operator(self) -> tuple[str, Any]:
        """The ``(operator, operand)`` pair as written."""
        return next((op, self._operand_of(op)) for op in self.operators() if self._operand_of(op) is not None)

    @cached_property
    def predicate(self) -> Predicate:
        """The compiled test of one value (``None`` meaning missing)."""
        return compile_operator(*self.operator, numbers_only=self._numeric_only)

    @cached_property
    def text(self) -> str:
        """The operator as it reads in reasons, e.g. ``between [25, 34]``."""
        return operator_text(*self.operator)


class ValueTest(_Operator):
    """One operator applied to a trait or event property, e.g. ``{eq: USD}`` or ``{between: [25, 34]}``."""

    eq: Annotated[Any, _SCALAR_SCHEMA] = None
    ne: Annotated[Any, _SCALAR_SCHEMA] = None
    in_: Annotated[Any, _LIST_SCHEMA] = Field(None, alias="in")
    gt: Annotated[Any, _ORDERED_SCHEMA] = None
    gte: Annotated[Any, _ORDERED_SCHEMA] = None
    lt: Annotated[Any, _ORDERED_SCHEMA] = None
    lte: Annotated[Any, _ORDERED_SCHEMA] = None
    between: Annotated[Any, _PAIR_SCHEMA] = None
    exists: Annotated[Any, _BOOL_SCHEMA] = None
    contains: Annotated[Any, _SCALAR_SCHEMA] = None
    starts_with: Annotated[Any, WithJsonSchema({"type": "string"})] = None


class Comparison(_Operator):
    """A numeric comparison of a measure, e.g. ``{gte: 3}``; the ``count`` measure is one."""

    _numeric_only: ClassVar[bool] = True

    gt: Annotated[Any, _NUMBER_SCHEMA] = None
    gte: Annotated[Any, _NUMBER_SCHEMA] = None
    lt: Annotated[Any, _NUMBER_SCHEMA] = None
    lte: Annotated[Any, _NUMBER_SCHEMA] = None
    eq: Annotated[Any, _NUMBER_SCHEMA] = None
    between: Annotated[Any, _PAIR_SCHEMA] = None

    @cached_property
    def whole_range(self) -> tuple[float, float]:
        """The whole numbers the comparison accepts, as ``low <= n <= high`` (open ends infinite)."""
        op, operand = self.operator
        if op == "between":
            return math.ceil(operand[0]), math.floor(operand[1])
        if op == "eq":
            return (operand, operand) if operand == math.floor(operand) else (1, 0)
        return {
            "gt": (math.floor(operand) + 1, math.inf),
            "gte": (math.ceil(operand), math.inf),
            "lt": (-math.inf, math.ceil(operand) - 1),
            "lte": (-math.inf, math.floor(operand)),
        }[op]


#: Every operator key a rule file may use.
OPERATORS = frozenset({"eq", "ne", "in", "gt", "gte", "lt", "lte", "between", "exists", "contains", "starts_with"})
