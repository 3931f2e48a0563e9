"""Records of the training topic: what workers tell the trainer about customers.

Three kinds, one shape (orjson on the wire, key = customer id):

* an **observation** (``kind == "observation"``): a customer's features at a sampling
  point; it feeds the RFM quantiles and the behavioural clusters (no label);
* an **example** (``kind`` one of ``stream.models.config.KINDS``): the features at a
  sampling point ``at`` and the label ``y`` that became known at ``resolved_at``
  (1/0 for the classifiers, revenue for ``ltv``), plus the score the customer was
  served at ``at`` and the segments it was in then (for lift per segment);
* an **interaction** (``kind == "interaction"``, recommendations only): the products
  ``items`` (``(product id, category or None)``) one event at ``at`` viewed, added or
  bought, its implicit-feedback weight ``y`` and ``x == {"purchase": 1.0}`` for a
  purchase (else 0.0); see :mod:`stream.models.reco`.

``id`` is deterministic (customer, kind, ``at``; an interaction's items and weight), so
a record republished after a crash is recognised and learned once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

_ID_NAMESPACE = uuid.UUID("0b6b2a57-93a4-4a43-9c1e-2f1d3f8e7c21")
OBSERVATION = "observation"
INTERACTION = "interaction"


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
    #: Interactions only: the products, as ``(product id, category or None)``.
    items: tuple[tuple[str, str | None], ...] = ()

    @property
    def id(self) -> str:
        """Stable id of (customer, kind, sampling time) and, for an interaction, its products and weight."""
        products = "".join(f"\x00{item}" for item, _ in self.items) + f"\x00{self.y}" if self.items else ""
        return str(uuid.uuid5(_ID_NAMESPACE, f"{self.customer_id}\x00{self.kind}\x00{self.at}{products}"))

    @property
    def field(self) -> str:
        """The customer's outbox field holding this record until Kafka acknowledged it."""
        return f"t:{self.kind}:{self.at}:{self.id}" if self.items else f"t:{self.kind}:{self.at}"

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
                **({"items": [list(item) for item in self.items]} if self.items else {}),
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
            items=tuple((str(item), category) for item, category in d.get("items") or ()),
        )
