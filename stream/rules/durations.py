"""Durations in rule files: ``500ms``, ``30s``, ``15m``, ``24h``, ``7d``, ``2w``, ``1h30m``.

A duration is one or more ``<integer><unit>`` parts (units ``ms``, ``s``, ``m``, ``h``,
``d``, ``w``, each at most once) and means their sum; a bare integer is seconds.
Months and years are not durations (their length varies): write days.

>>> parse_duration("1h30m")
5400000
>>> format_duration(5400000)
'1h30m'
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

UNITS_MS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
_PART = re.compile(r"(\d+)(ms|w|d|h|m|s)")
_SHAPE = re.compile(r"(?:\d+(?:ms|w|d|h|m|s))+")
#: The longest duration a rule may use: deadlines stay far inside 64-bit epoch milliseconds.
MAX_DURATION_MS = 5218 * UNITS_MS["w"]
_EXPECTED = "expected a duration like '24h'"
_UNITS = "units ms, s, m, h, d, w, combined as in '1h30m'; a bare integer is seconds"


def parse_duration(value: Any) -> int:
    """A duration in milliseconds; raises ``ValueError`` saying what a duration looks like."""
    if isinstance(value, int) and not isinstance(value, bool):
        ms = value * 1000
    elif isinstance(value, str) and value.strip().isdigit():
        ms = int(value.strip()) * 1000
    elif isinstance(value, str) and _SHAPE.fullmatch(value.strip()):
        parts = _PART.findall(value.strip())
        units = [unit for _, unit in parts]
        if len(set(units)) != len(units):
            raise ValueError(f"{_EXPECTED}, got {value!r} (each unit at most once)")
        ms = sum(int(number) * UNITS_MS[unit] for number, unit in parts)
    else:
        raise ValueError(f"{_EXPECTED}, got {value!r} ({_UNITS})")
    if ms <= 0:
        raise ValueError(f"a duration must be longer than 0, got {value!r}")
    if ms > MAX_DURATION_MS:
        raise ValueError(f"a duration must be at most 100 years (5218w), got {value!r}")
    return ms


def format_duration(ms: int) -> str:
    """The shortest text for ``ms`` in days, hours, minutes, seconds and milliseconds (``'7d'``, ``'1h30m'``)."""
    parts = []
    for unit in ("d", "h", "m", "s", "ms"):
        count, ms = divmod(ms, UNITS_MS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0ms"


#: A rule-file field holding a duration: parsed to milliseconds, written back as text.
Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": ["string", "integer"], "examples": ["24h", "7d", "1h30m", 30]}),
]
