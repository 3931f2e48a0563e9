"""Holdout groups: a fixed share of a segment's customers kept as a control group.

A segment with ``holdout: 10`` puts about 10% of its customers in ``control``
(keep them out of the campaign to measure its effect) and the rest in
``treatment``. The group is a pure function of the segment name and the
customer id, so it never changes for a customer and every worker agrees::

    position = int(sha256(f"{segment}:{customer_id}").hexdigest()[:8], 16) / 2**32 * 100
    group = "control" if position < holdout else "treatment"

Groups of different segments are independent (the segment name is hashed too).

>>> holdout_group("alice", "cart_abandoners", 100.0)
'control'
"""

from __future__ import annotations

import hashlib

CONTROL = "control"
TREATMENT = "treatment"


def position(customer_id: str, segment: str) -> float:
    """The customer's fixed place in ``[0, 100)`` for ``segment``'s holdout."""
    digest = hashlib.sha256(f"{segment}:{customer_id}".encode()).hexdigest()
    return int(digest[:8], 16) / 2**32 * 100


def holdout_group(customer_id: str, segment: str, holdout: float) -> str:
    """``"control"`` for the customers of ``segment`` whose position is below ``holdout`` (percent), else ``"treatment"``."""
    return CONTROL if position(customer_id, segment) < holdout else TREATMENT
