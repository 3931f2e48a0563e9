"""What a sink reads (change records) and writes (dead letters), and the Kafka names of a destination.

>>> parse_change(b'{"id": "x", "customer_id": "a", "segment": "vip", "change": "entered", "seq": 3}')["seq"]
3
>>> dead_letter_topic("segstream", "crm"), consumer_group("segstream", "crm")
('segstream.destinations.crm.dead-letter', 'segstream-destination-crm')
"""

from __future__ import annotations

from typing import Any

import orjson

from stream.destinations.delivery import Delivery
from stream.state.profile import iso

#: The fields a change record must carry, and their types (see README, Topics and record shapes).
REQUIRED = {"id": str, "customer_id": str, "segment": str, "change": str, "seq": int}


def dead_letter_topic(namespace: str, destination: str) -> str:
    """The topic of the changes ``destination`` could not take."""
    return f"{namespace}.destinations.{destination}.dead-letter"


def consumer_group(namespace: str, destination: str) -> str:
    """The consumer group of ``destination`` on the segment-changes topic (its own offsets)."""
    return f"{namespace}-destination-{destination}"


def parse_change(raw: bytes | None) -> dict[str, Any]:
    """A change record from the segment-changes topic; raises ``ValueError`` saying what is wrong with it."""
    try:
        record = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    for name, kind in REQUIRED.items():
        if not isinstance(record.get(name), kind) or isinstance(record.get(name), bool):
            raise ValueError(f"field {name!r} must be a {kind.__name__}, got {record.get(name)!r:.60}")
    if record["change"] not in ("entered", "exited"):
        raise ValueError(f"field 'change' must be 'entered' or 'exited', got {record['change']!r:.60}")
    return record


def dead_letter_record(
    destination: str,
    reason: str,
    *,
    change: dict[str, Any] | None,
    value: bytes | None,
    where: tuple[str, int, int],
    delivery: Delivery | None = None,
    error: str = "",
    at_ms: int,
) -> bytes:
    """A dead letter: the change (or, when unreadable, its raw ``value``), why, the last status and error, the attempts made."""
    topic, partition, offset = where
    return orjson.dumps(
        {
            "destination": destination,
            "reason": reason,
            "status": delivery.last.status if delivery else None,
            "error": (delivery.last.error if delivery else error)[:2_000],
            "attempts": delivery.attempts if delivery else 0,
            "change": change,
            "value": None if change is not None else (value or b"").decode(errors="replace")[:100_000],
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "at": iso(at_ms),
        }
    )
