"""Missing-data monitoring: which critical fields events arrive without.

``SEGSTREAM_CRITICAL_FIELDS`` lists ``<event>:<dotted path>`` pairs, where the event is
a track event's name or a call type (``identify``, ``page``…), e.g.
``Order Completed:properties.revenue,identify:traits.email``. The worker counts every
event lacking one (absent, ``null`` or ``""``) as ``missing:<event>:<path>``; the API
exports them as ``segstream_missing_fields_total{event, field}``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def parse_critical(text: str) -> dict[str, tuple[tuple[str, tuple[str, ...]], ...]]:
    """``"<event>:<path>,…"`` as event name -> ((path, keys), …); ``ValueError`` naming a malformed entry."""
    fields: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        event, sep, path = entry.rpartition(":")
        if not sep or not event or not path:
            raise ValueError(f"SEGSTREAM_CRITICAL_FIELDS: {entry!r} is not '<event>:<dotted path>', e.g. 'Order Completed:properties.revenue'")
        fields.setdefault(event.strip(), []).append((path.strip(), tuple(path.strip().split("."))))
    return {event: tuple(paths) for event, paths in fields.items()}


def missing(record: dict[str, Any], critical: dict[str, tuple[tuple[str, tuple[str, ...]], ...]], counts: Counter[str]) -> None:
    """Count in ``counts`` the critical fields ``record`` lacks."""
    event = record.get("event") if record.get("type") == "track" else record.get("type")
    for path, keys in critical.get(str(event), ()):
        node: Any = record
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None or node == "":
            counts[f"missing:{event}:{path}"] += 1
