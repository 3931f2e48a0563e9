"""Segment references: ``{segment: high_value}`` holds when that segment holds for the customer.

Segments build on each other this way (``high_value_frequent`` = ``segment:
high_value`` and 3+ orders). The rule set evaluates every segment after the
segments it refers to and passes their verdicts in; a reference to an unknown
segment, or references in a circle, are rule errors (see
:class:`stream.rules.ruleset.RuleSet`). The verdict's deadline is the
referenced verdict's, and the reason quotes its reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar

from pydantic import field_validator

from stream.rules.model import Compiled, ConditionModel
from stream.rules.verdict import Verdict
from stream.state.profile import Profile

_NAME = re.compile(r"[a-z0-9_]+")


def check_segment_name(value: str) -> str:
    """``value`` if it is a valid segment name (lowercase letters, digits, ``_``), else ``ValueError`` saying so."""
    if not _NAME.fullmatch(value):
        raise ValueError(f"use lowercase letters, digits and '_' only, e.g. 'cart_abandoners'; got {value!r}")
    return value


class SegmentReference(ConditionModel):
    """The verdict of another segment for the same customer.

    >>> SegmentReference(segment="vip").evaluate(Profile("c"), 0, {"vip": Verdict(True, "trait plan = \\"pro\\"")}).reason
    'in segment vip (trait plan = "pro")'
    """

    kind: ClassVar[str] = "segment"

    segment: str

    @field_validator("segment")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_segment_name(value)

    def compile(self) -> Compiled:
        segment, reason = self.segment, self._reason

        def evaluate(profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> Verdict:
            verdict = verdicts.get(segment)
            if verdict is None:
                raise KeyError(
                    f"segment {segment!r} has no verdict yet; evaluate references through RuleSet.evaluate, "
                    "which evaluates each segment after the ones it refers to"
                )
            return Verdict(verdict.holds, reason, verdict.deadline, verdict)

        return evaluate

    def _reason(self, verdict: Verdict) -> str:
        return f"{'in' if verdict.holds else 'not in'} segment {self.segment} ({verdict.reason})"

    def segments(self) -> set[str]:
        return {self.segment}
