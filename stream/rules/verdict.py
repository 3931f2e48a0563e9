"""What evaluating a condition says: whether it holds, why, and until when at least."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Verdict:
    """A condition's verdict for one profile at one time.

    ``reason`` names the deciding condition and the values it saw
    (``"count(Product Viewed within 7d) = 3 >= 3"``). ``deadline`` is the earliest
    time (epoch ms, later than the evaluation time) at which the verdict could
    change without a new event, or ``None`` when only a new event can change it.
    """

    holds: bool
    reason: str
    deadline: int | None = None


#: The verdicts a condition may consult (by segment name) when nothing else was evaluated.
NO_VERDICTS: Mapping[str, Verdict] = MappingProxyType({})
