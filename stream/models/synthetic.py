"""A synthetic shop history with known behaviour, for backtests, demos and model tests.

Each customer has a hidden activity rate (sessions per day) and a buying
tendency. Every day a customer may churn, with a daily hazard that is higher
for less active customers; after that they send nothing. A session is a page
view, some product views, maybe an add to cart and — more likely for buyers and
after a cart — an order with revenue (discount hunters use coupons). Churn,
purchases and revenue therefore depend on what the events show, and a model
that learns from the features ranks customers well above chance.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

from stream.models.config import DAY_MS
from stream.state.profile import iso

#: 2026-01-01T00:00:00Z, where synthetic histories start.
START_MS = 1_767_225_600_000


def history(customers: int, days: int, seed: int = 7, start_ms: int = START_MS) -> Iterator[dict[str, Any]]:
    """Segment track/page records of ``customers`` over ``days`` days, customer after customer (replay sorts by time)."""
    rng = random.Random(seed)
    for n in range(customers):
        yield from _customer(rng, f"syn{n:06d}", days, start_ms)


def _customer(rng: random.Random, cid: str, days: int, start_ms: int) -> Iterator[dict[str, Any]]:
    activity = rng.lognormvariate(-1.0, 1.0)  # sessions per day, median ~0.37
    buyer = rng.betavariate(2, 5)  # chance a cart becomes an order
    bargain = rng.random() < 0.3
    basket = rng.lognormvariate(3.5, 0.6)  # typical order value, median ~33
    hazard = 0.08 / (1 + 4 * activity)  # daily churn chance: the less active, the likelier
    first_day = rng.randrange(days // 2)
    for day in range(first_day, days):
        if day > first_day and rng.random() < hazard:
            return
        for _ in range(_poisson(rng, activity)):
            at = start_ms + day * DAY_MS + rng.randrange(DAY_MS - 3_600_000)
            yield from _session(rng, cid, at, buyer, bargain, basket)


def _session(rng: random.Random, cid: str, at: int, buyer: float, bargain: bool, basket: float) -> Iterator[dict[str, Any]]:
    yield {"type": "page", "userId": cid, "name": "Home", "properties": {}, "timestamp": iso(at)}
    views = 1 + _poisson(rng, 2.0)
    for i in range(views):
        yield _event(cid, at + 1000 * (i + 1), "Product Viewed", product_id=f"p{rng.randrange(200)}")
    if rng.random() < 0.25 + 0.5 * buyer:
        yield _event(cid, at + 1000 * (views + 1), "Product Added", product_id=f"p{rng.randrange(200)}")
        if rng.random() < buyer:
            props: dict[str, Any] = {"revenue": round(basket * rng.lognormvariate(0, 0.3), 2)}
            if bargain:
                props["coupon"] = "SAVE10"
            yield _event(cid, at + 1000 * (views + 2), "Order Completed", **props)


def _event(cid: str, at: int, name: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "userId": cid, "event": name, "properties": props, "timestamp": iso(at)}


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; means here are small)."""
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
