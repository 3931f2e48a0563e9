"""Deletion records: what downstream tools receive when a customer is forgotten (GDPR/CCPA erasure).

A forget request travels on the events topic like an event (``{"type": "forget",
"userId": ..., "suppress": bool}``), so the worker that owns the customer handles
it in order with the customer's events, exactly once: it publishes ``exited`` for
every membership, replaces the profile with a tombstone (see
:func:`stream.state.profile.forget`) and publishes one :class:`Deletion` on the
deletions topic, through the customer's outbox like every other record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson

from stream.state.profile import iso, parse_time

_ID_NAMESPACE = uuid.UUID("5d0f2a8e-3c4b-4f61-9a57-1e2b7c9d8f30")
#: The events-topic record type of a forget request (never accepted from the collector).
FORGET = "forget"


def forget_request(customer_id: str, at: int, suppress: bool) -> dict[str, object]:
    """The events-topic record asking the owning worker to forget ``customer_id``."""
    return {"type": FORGET, "userId": customer_id, "ts": at, "timestamp": iso(at), "suppress": suppress, "messageId": f"forget:{customer_id}:{at}"}


@dataclass(frozen=True, slots=True)
class Deletion:
    """A customer's data was erased at ``at``; ``suppressed``: later events for the id are dropped."""

    customer_id: str
    at: int
    suppressed: bool

    @property
    def id(self) -> str:
        """Stable id of (customer, time): a republished deletion has the same id."""
        return str(uuid.uuid5(_ID_NAMESPACE, f"{self.customer_id}\x00{self.at}"))

    @property
    def field(self) -> str:
        """The customer's outbox field holding this record until Kafka acknowledged it."""
        return f"d:{self.at}"

    def to_bytes(self) -> bytes:
        """The record on the deletions topic."""
        return orjson.dumps(
            {"id": self.id, "customer_id": self.customer_id, "deleted_at": iso(self.at), "suppressed": self.suppressed}
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Deletion":
        """Inverse of :meth:`to_bytes`."""
        d = orjson.loads(raw)
        return cls(d["customer_id"], parse_time(d["deleted_at"]), d["suppressed"])
