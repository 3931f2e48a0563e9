"""Records a worker sends to another customer's owner through the events topic (identity merges).

The hops of a merge (``merge_out``, ``merge_in``) and events forwarded from a
merged-away id to its survivor (see :mod:`stream.state.identity`) are written to
the sender's outbox in its atomic step and published, keyed by the target, like
changes. Each carries a deterministic ``messageId``, so the receiver applies a
republished one once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Routed:
    """A record from ``customer_id``'s owner to the owner of ``value["userId"]``."""

    customer_id: str
    value: dict[str, Any]

    @property
    def target(self) -> str:
        """The customer the record is keyed by."""
        return str(self.value["userId"])

    @property
    def field(self) -> str:
        """The sender's outbox field holding this record until Kafka acknowledged it."""
        return f"r:{self.value['messageId']}"

    def to_bytes(self) -> bytes:
        """The record on the events topic."""
        return orjson.dumps(self.value)

    @classmethod
    def from_bytes(cls, customer_id: str, raw: bytes) -> "Routed":
        """Inverse of :meth:`to_bytes` for the outbox of ``customer_id``."""
        return cls(customer_id, orjson.loads(raw))
