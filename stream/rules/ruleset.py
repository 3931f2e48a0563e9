"""Segments and the rule set that evaluates all of them for one profile.

A segment is ``name``, ``description``, ``condition`` and an optional
``holdout`` percentage (see :mod:`stream.rules.holdout`). Segments may refer
to each other (``{segment: high_value}``, see :mod:`stream.rules.references`):
the rule set evaluates each segment after the segments it refers to, and
rejects references to unknown segments and references in a circle.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import Field, PrivateAttr, field_validator

from stream.rules.conditions import Condition
from stream.rules.errors import RuleError
from stream.rules.holdout import holdout_group
from stream.rules.model import ConditionModel, RuleModel
from stream.rules.references import check_segment_name
from stream.rules.verdict import Verdict
from stream.state.profile import STANDARD_PROPERTIES, HistoryPolicy, Profile


class Segment(RuleModel):
    """One named segment: its description, its condition, its holdout and the file it came from.

    ``source`` comes from the validation context (``{"source": path}``), not from the file.
    """

    name: str
    description: str = ""
    condition: Condition
    holdout: Annotated[float | None, Field(ge=0, le=100)] = None
    _source: Path | None = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_segment_name(value)

    @field_validator("holdout", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        if value is not None and (type(value) not in (int, float) or not 0 <= value <= 100):
            raise ValueError(f"expected a percentage from 0 to 100, e.g. 'holdout: 10' keeps 10% as a control group; got {value!r}")
        return value

    def model_post_init(self, context: Any) -> None:
        if isinstance(context, dict) and context.get("source") is not None:
            self._source = Path(context["source"])

    @property
    def source(self) -> Path | None:
        """The rule file that defines this segment."""
        return self._source

    @property
    def location(self) -> str:
        """The segment as errors name it: ``rules/cart.yaml: segment 'cart_abandoners'``."""
        return f"{self.source}: segment '{self.name}'" if self.source else f"segment '{self.name}'"


def evaluation_order(segments: Mapping[str, Segment]) -> list[str]:
    """The segment names, each after the segments it refers to (else in the given order).

    Raises :class:`RuleError` naming each reference to an unknown segment, or
    else each circle of references with its path (``a -> b -> a``).
    """
    errors = []
    for segment in segments.values():
        for name in sorted(segment.condition.segments() - set(segments)):
            close = difflib.get_close_matches(name, list(segments), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            errors.append(f"{segment.location}: refers to unknown segment '{name}'{hint}; define it or fix the name")
    if errors:
        raise RuleError(errors)
    order: list[str] = []
    path: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in path:
            circle = [*path[path.index(name) :], name]
            first = segments[name]
            elsewhere = [f"{n} in {segments[n].source}" for n in circle[1:-1] if segments[n].source != first.source]
            files = f" ({', '.join(elsewhere)})" if elsewhere else ""
            errors.append(f"{first.location}: segments refer to each other in a circle: {' -> '.join(circle)}{files}; remove one of these references")
            return
        path.append(name)
        for reference in sorted(segments[name].condition.segments()):
            visit(reference)
        path.pop()
        order.append(name)

    for name in segments:
        visit(name)
    if errors:
        raise RuleError(errors)
    return order


@dataclass
class RuleSet:
    """Every segment; evaluates them all for one profile, each after the segments it refers to.

    ``version`` is a stable hash of the segments' contents (not of their files or
    order). Raises :class:`RuleError` for references to unknown segments or in a circle.
    """

    segments: dict[str, Segment]
    version: str = field(init=False)
    _conditions: tuple[tuple[str, ConditionModel], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        contents = [s.model_dump(mode="json", by_alias=True, exclude_defaults=True) for s in self.segments.values()]
        contents.sort(key=lambda s: s["name"])
        self.version = hashlib.sha256(orjson.dumps(contents, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
        self._conditions = tuple((name, self.segments[name].condition) for name in evaluation_order(self.segments))

    def evaluate(self, profile: Profile, now: int) -> dict[str, Verdict]:
        """Every segment's verdict for ``profile`` at ``now`` (epoch ms), by segment name."""
        verdicts: dict[str, Verdict] = {}
        for name, condition in self._conditions:
            verdicts[name] = condition.evaluate(profile, now, verdicts)
        return verdicts

    def group(self, customer_id: str, segment: str) -> str | None:
        """The customer's holdout group in ``segment``: ``"control"`` or ``"treatment"``, ``None`` without ``holdout``.

        Deterministic: ``"control"`` iff ``int(sha256(f"{segment}:{customer_id}").hexdigest()[:8], 16) / 2**32 * 100 < holdout``,
        so a customer's group in a segment never changes (see :mod:`stream.rules.holdout`). ``KeyError`` for an unknown segment.
        """
        holdout = self._segment(segment).holdout
        return None if holdout is None else holdout_group(customer_id, segment, holdout)

    def explain(self, profile: Profile, now: int, segment: str) -> dict[str, Any]:
        """Why ``segment`` holds or not for ``profile`` at ``now``; ``KeyError`` for an unknown segment.

        Returns ``{"segment", "holds", "reason", "deadline" (ISO or None), "group", "condition"}``
        where ``condition`` is the condition's explanation tree; a segment it refers
        to appears there by name (``{"kind": "segment", "rule": {"segment": …}, …}``):
        explain that one in turn for its details.
        """
        condition = self._segment(segment).condition
        tree = condition.explain(profile, now, self.evaluate(profile, now))
        return {
            "segment": segment,
            "holds": tree["holds"],
            "reason": tree["reason"],
            "deadline": tree["deadline"],
            "group": self.group(profile.customer_id, segment),
            "condition": tree,
        }

    def _segment(self, name: str) -> Segment:
        if name not in self.segments:
            raise KeyError(f"unknown segment {name!r}; the rules define {', '.join(sorted(self.segments)) or 'none'}")
        return self.segments[name]

    def lookback_ms(self) -> int:
        """The longest history any segment reads (event windows, absence expiry, sequence lookback)."""
        return max((condition.lookback_ms() for _, condition in self._conditions), default=0)

    def policy(self, max_events: int) -> HistoryPolicy:
        """The history profiles must keep for these rules: the longest window, the properties read, at most ``max_events``."""
        read = set().union(*(condition.properties() for _, condition in self._conditions))
        return HistoryPolicy(self.lookback_ms(), STANDARD_PROPERTIES | read, max_events)
