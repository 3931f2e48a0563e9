"""``segstream tail``: segment changes as they are published, one readable line each.

>>> change_line({"at": "2026-11-22T21:03:04.512Z", "customer_id": "alice", "change": "entered",
...              "segment": "product_browsers", "reason": "count(Product Viewed within 7d) = 3 >= 3", "group": None})
'2026-11-22T21:03:04.512Z  alice  entered  product_browsers  count(Product Viewed within 7d) = 3 >= 3'
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import orjson

from stream.client import subscribe
from stream.config import Settings


def change_line(change: dict[str, Any]) -> str:
    """One change as text: time, customer, entered/exited, segment (and holdout group), reason."""
    group = change.get("group")
    segment = f"{change['segment']} [{group}]" if group else change["segment"]
    return f"{change['at']}  {change['customer_id']}  {change['change']}  {segment}  {change.get('reason') or ''}".rstrip()


def of_customer(changes: Iterable[dict[str, Any]], customer: str | None) -> Iterator[dict[str, Any]]:
    """The changes of ``customer`` (all when ``None``)."""
    return (c for c in changes if customer is None or c["customer_id"] == customer)


def tail(
    settings: Settings,
    out: TextIO,
    segment: str | None = None,
    customer: str | None = None,
    as_json: bool = False,
    from_beginning: bool = False,
    idle_s: float | None = None,
) -> int:
    """Print changes until interrupted (or ``idle_s`` seconds without one); returns how many were printed."""
    printed = 0
    where = "from the oldest kept" if from_beginning else "from now on"
    print(f"watching {settings.changes_topic} {where} (Ctrl-C stops)", file=sys.stderr, flush=True)
    for change in of_customer(subscribe(settings, segment, from_beginning, idle_s), customer):
        out.write((orjson.dumps(change).decode() if as_json else change_line(change)) + "\n")
        out.flush()
        printed += 1
    return printed
