"""Relative dates on traits: ``{trait: signed_up_at, older_than: 90d}``.

The trait (a stored trait or a computed one such as ``$last_seen``, see
:mod:`stream.rules.traits`) holds a date: an ISO 8601 string (``2024-05-01``,
``2024-05-01T12:00:00Z``; without a zone it is UTC) or epoch seconds or
milliseconds as a number (below 1e11 it is seconds; ``$first_seen`` and
``$last_seen`` are always ms). Its age at ``now`` is ``now - date``.

* ``older_than: 90d`` holds when the age is at least 90 days ("signed up more
  than 90 days ago"): from ``date + 90d`` on, which is its deadline before then.
* ``newer_than: 7d`` holds when the age is less than 7 days: until
  ``date + 7d``, its deadline. A date in the future is newer than any duration.
* both: ``{trait: signed_up_at, older_than: 7d, newer_than: 30d}`` holds from
  ``date + 7d`` until ``date + 30d``.

A missing trait, or a value that is not a date, is false with a reason saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar

from pydantic import model_validator

from stream.rules.computed import TIMES
from stream.rules.durations import Duration, format_duration
from stream.rules.model import Compiled, ConditionModel
from stream.rules.operators import show
from stream.rules.traits import TraitReader
from stream.rules.verdict import Verdict
from stream.state.profile import EARLIEST_MS, LATEST_MS, Profile, parse_time


def as_date(value: Any) -> int | None:
    """``value`` (an ISO 8601 string or epoch seconds/ms number) in epoch ms, or ``None`` when it is not a date.

    >>> as_date("1970-01-02"), as_date(86400), as_date("soon")
    (86400000, 86400000, None)
    """
    try:
        ms = parse_time(value)
    except (ValueError, OverflowError):
        return None
    return ms if EARLIEST_MS <= ms <= LATEST_MS else None  # the dates a trait may hold


def _age(ms: int) -> str:
    return f"{format_duration(ms)} ago" if ms >= 0 else f"in {format_duration(-ms)}"


class RelativeDate(TraitReader, ConditionModel):
    """A date-valued trait older than ``older_than`` and/or newer than ``newer_than``.

    >>> day = 86_400_000
    >>> RelativeDate(trait="$first_seen", older_than="90d").evaluate(Profile("c", first_seen=0), 100 * day).reason
    'trait $first_seen = 0 (100d ago), older than 90d'
    """

    kind: ClassVar[str] = "relative_date"

    older_than: Duration | None = None
    newer_than: Duration | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RelativeDate:
        if self.older_than is None and self.newer_than is None:
            raise ValueError("give older_than, newer_than or both, e.g. 'older_than: 90d'")
        if self.older_than is not None and self.newer_than is not None and self.newer_than <= self.older_than:
            raise ValueError(
                f"newer_than ({format_duration(self.newer_than)}) must be longer than older_than "
                f"({format_duration(self.older_than)}) or nothing is both; swap them"
            )
        return self

    @cached_property
    def text(self) -> str:
        """The test as it reads in reasons, e.g. ``older than 7d and newer than 30d``."""
        parts = [f"{word} than {format_duration(d)}" for word, d in (("older", self.older_than), ("newer", self.newer_than)) if d]
        return " and ".join(parts)

    def compile(self) -> Compiled:
        def evaluate(profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> Verdict:
            value = self.read(profile)
            if value is None:
                return Verdict(False, f"trait {self.trait} missing")
            date = value if self.trait in TIMES else as_date(value)
            if date is None:
                return Verdict(False, f"trait {self.trait} = {show(value)} is not a date (expected ISO 8601 or epoch seconds/ms)")
            begin = None if self.older_than is None else date + self.older_than
            end = None if self.newer_than is None else date + self.newer_than
            if begin is not None and now < begin:
                return Verdict(False, self._reason, begin, value, now - date, False)
            if end is not None and now >= end:
                return Verdict(False, self._reason, None, value, now - date, False)
            return Verdict(True, self._reason, end, value, now - date, True)

        return evaluate

    def _reason(self, value: Any, age: int, holds: bool) -> str:
        shown = f"trait {self.trait} = {show(value)} ({_age(age)})"
        return f"{shown}, {self.text}" if holds else f"{shown}, not {self.text}"
