"""What evaluating a condition says: whether it holds, why, and until when at least."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any


class Verdict:
    """A condition's verdict for one profile at one time.

    ``reason`` names the deciding condition and the values it saw
    (``"count(Product Viewed within 7d) = 3 >= 3"``). ``deadline`` is the earliest
    time (epoch ms, later than the evaluation time) at which the verdict could
    change without a new event, or ``None`` when only a new event can change it.

    Most verdicts never show their reason (only those that become changes or are
    explained do), so a condition may give, instead of the text, a function of the
    values it saw and those values (``args``): it is called on the first read of
    ``reason``. Verdicts compare by holds, reason and deadline.

    >>> Verdict(True, "trait plan = {}".format, None, '"pro"').reason
    'trait plan = "pro"'
    """

    __slots__ = ("holds", "deadline", "_reason", "_args")

    def __init__(self, holds: bool, reason: str | Callable[..., str], deadline: int | None = None, *args: Any) -> None:
        self.holds = holds
        self.deadline = deadline
        self._reason = reason
        self._args = args

    @property
    def reason(self) -> str:
        """Why the verdict is what it is."""
        reason = self._reason
        if not isinstance(reason, str):
            reason = self._reason = reason(*self._args)
            self._args = ()
        return reason

    def restated(self, holds: bool, deadline: int | None) -> Verdict:
        """A verdict giving this one's reason (read or not), with ``holds`` and ``deadline``."""
        return Verdict(holds, self._reason, deadline, *self._args)

    def _values(self) -> tuple[bool, str, int | None]:
        return self.holds, self.reason, self.deadline

    def __eq__(self, other: Any) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"Verdict(holds={self.holds!r}, reason={self.reason!r}, deadline={self.deadline!r})"


#: The verdicts a condition may consult (by segment name) when nothing else was evaluated.
NO_VERDICTS: Mapping[str, Verdict] = MappingProxyType({})
