"""Audience sync, the pure part: turning changes into add/remove calls, and a reconcile into a diff.

A batch of changes becomes one update per segment; a customer who entered and
exited within the batch appears once, as their last change (highest ``seq``) says.

>>> changes = [
...     {"customer_id": "a", "segment": "vip", "change": "entered", "seq": 1},
...     {"customer_id": "b", "segment": "vip", "change": "entered", "seq": 4},
...     {"customer_id": "a", "segment": "vip", "change": "exited", "seq": 2},
... ]
>>> coalesce(changes)
{'vip': Update(add=['b'], remove=['a'])}
>>> diff(expected={"a", "b"}, reported={"b", "c"})
Update(add=['a'], remove=['c'])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Update:
    """Customers to add to and remove from one external list (sorted, disjoint)."""

    add: list[str]
    remove: list[str]

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)

    def chunks(self, size: int) -> Iterator["Update"]:
        """This update as calls of at most ``size`` ids each (adds first, then removes)."""
        ids = [(c, True) for c in self.add] + [(c, False) for c in self.remove]
        for start in range(0, len(ids), size):
            part = ids[start : start + size]
            yield Update([c for c, added in part if added], [c for c, added in part if not added])


def coalesce(changes: Iterable[Mapping[str, Any]]) -> dict[str, Update]:
    """One :class:`Update` per segment of ``changes`` (change records): each customer's last change by ``seq`` wins."""
    last: dict[tuple[str, str], Mapping[str, Any]] = {}
    for change in changes:
        key = (change["segment"], change["customer_id"])
        if key not in last or change["seq"] >= last[key]["seq"]:
            last[key] = change
    updates: dict[str, tuple[list[str], list[str]]] = {}
    for (segment, customer), change in sorted(last.items()):
        add, remove = updates.setdefault(segment, ([], []))
        (add if change["change"] == "entered" else remove).append(customer)
    return {segment: Update(add, remove) for segment, (add, remove) in updates.items()}


def diff(expected: Set[str], reported: Set[str]) -> Update:
    """What makes a list holding ``reported`` hold ``expected``."""
    return Update(sorted(expected - reported), sorted(reported - expected))
