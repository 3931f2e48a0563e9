"""Records of the training topic: what workers tell the trainer about customers.

Two kinds, one shape (orjson on the wire, key = customer id):

* an **observation** (``kind == "observation"``): a customer's features at a sampling
  point; it feeds the RFM quantiles and the behavioural clusters (no label);
* an **example** (``kind`` one of ``stream.models.config.KINDS``): the features at a
  sampling point ``at`` and the label ``y`` that became known at ``resolved_at``
  (1/0 for the classifiers, revenue for ``ltv``), plus the score the customer was
  served at ``at`` and the segments it was in then (for lift per segment).

``id`` is deterministic (customer, kind, ``at``), so a record republished after a
crash is recognised and learned once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

_ID_NAMESPACE = uuid.UUID("0b6b2a57-93a4-4a43-9c1e-2f1d3f8e7c21")
OBSERVATION = "observation"


@dataclass(frozen=True, slots=True)
class Rfm:
    """A customer's raw RFM values: time of the latest purchase, number of purchases, lifetime revenue."""

    last_purchase: int
    frequency: int
    monetary: float


@dataclass(frozen=True, slots=True)
class TrainingRecord:
    """One observation or labelled example of one customer."""

    customer_id: str
    kind: str
    at: int
    x: dict[str, float]
    y: float | None = None
    resolved_at: int | None = None
    served: float | None = None
    model: int | None = None
    segments: tuple[str, ...] = field(default_factory=tuple)
    #: Observations only: the numeric values of the traits imputed by median (for the population's medians).
    traits: dict[str, float] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable id of (customer, kind, sampling time)."""
        return str(uuid.uuid5(_ID_NAMESPACE, f"{self.customer_id}\x00{self.kind}\x00{self.at}"))

    @property
    def field(self) -> str:
        """The customer's outbox field holding this record until Kafka acknowledged it."""
        return f"t:{self.kind}:{self.at}"

    def to_bytes(self) -> bytes:
        """The record on the training topic."""
        return orjson.dumps(
            {
                "id": self.id,
                "customer_id": self.customer_id,
                "kind": self.kind,
                "at": self.at,
                "x": self.x,
                "y": self.y,
                "resolved_at": self.resolved_at,
                "served": self.served,
                "model": self.model,
                "segments": list(self.segments),
                **({"traits": self.traits} if self.traits else {}),
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> "TrainingRecord":
        """Inverse of :meth:`to_bytes`; ``KeyError``/``orjson.JSONDecodeError`` on a malformed record."""
        d: dict[str, Any] = orjson.loads(raw)
        return cls(
            customer_id=d["customer_id"],
            kind=d["kind"],
            at=d["at"],
            x=d["x"],
            y=d.get("y"),
            resolved_at=d.get("resolved_at"),
            served=d.get("served"),
            model=d.get("model"),
            segments=tuple(d.get("segments") or ()),
            traits=d.get("traits") or {},
        )
