"""The benchmark's workload: ten rules of mixed kinds and deterministic synthetic events.

:data:`RULES_YAML` holds the ten bench segments: traits, a count window, a sum
window, recency, inactivity (``not``), an absence trigger, a sequence, segment
references, computed traits and a distinct measure with a property filter.

:func:`generate` draws customers' sessions of events over the last ``span_days``
of event time from a seed: the same arguments give the same records (only
their absolute times move with ``now``). Every customer starts with an
``identify``; then product views, cart adds, orders and page views in sessions.
Events are events-topic records (as the collector writes them), ordered by
event time.

No event lies where one of the rules' windows would expire while the benchmark
runs: an event at age ``a`` (``now - ts``) reaches a rule's edge at age ``W``
for every duration ``W`` the rules use, so ages in ``[W - MARGIN_MS, W]`` are
left empty. Memberships therefore stay the same from ``now`` until
``now + MARGIN_MS``, which lets the SQL baseline and segstream be compared at
any moment of the run.

>>> records = generate(events=50, customers=5, now=1_800_000_000_000)
>>> len(records), records[0]["type"] in ("identify", "track", "page")
(50, True)
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stream.rules import RuleSet, load_rules
from stream.rules.durations import UNITS_MS
from stream.state.profile import iso

RULES_YAML = """\
# The ten segments of `segstream bench` (stream/bench/workload.py): one of each kind.
segments:
  - name: pro_members
    description: Pro plan, aged 25-44 (traits)
    condition: {all: [{trait: plan, eq: pro}, {trait: age, between: [25, 44]}]}
  - name: product_browsers
    description: 3+ product views in 7 days (count window)
    condition: {event: Product Viewed, within: 7d, count: {gte: 3}}
  - name: big_spenders
    description: Orders worth 200+ in 30 days (sum window)
    condition: {event: Order Completed, within: 30d, sum: {of: revenue, gte: 200}}
  - name: recent_buyers
    description: Purchased in the last 14 days (recency)
    condition: {event: Order Completed, within: 14d}
  - name: dormant
    description: No activity for 14 days (inactivity)
    condition: {not: {event: $any, within: 14d}}
  - name: cart_abandoners
    description: Added to cart, no order within 1 hour (absence trigger)
    condition: {event: Product Added, without: Order Completed, within: 1h}
  - name: view_add_buy
    description: Viewed, added, bought, each within a day, in 7 days (sequence)
    condition:
      sequence: [{event: Product Viewed}, {event: Product Added}, {event: Order Completed}]
      within: 1d
      lookback: 7d
  - name: pro_big_spenders
    description: Pro members who are big spenders (segment references)
    condition: {all: [{segment: pro_members}, {segment: big_spenders}]}
  - name: lifetime_vips
    description: Lifetime revenue 300+ over 2+ orders (computed traits)
    condition: {all: [{trait: $revenue, gte: 300}, {trait: $count.Order Completed, gte: 2}]}
  - name: variety_viewers
    description: 3+ distinct shoes or bags viewed in 7 days (distinct, with a property filter)
    condition: {event: Product Viewed, within: 7d, where: {category: {in: [shoes, bags]}}, distinct: {of: product_id, gte: 3}}
"""

#: The segment every latency event makes its (new) customer enter.
LATENCY_SEGMENT = "recent_buyers"
#: How long after ``now`` no rule edge is reached by a generated event (the longest a run may take).
MARGIN_MS = 2 * UNITS_MS["h"]
#: The rule durations whose edges :func:`generate` keeps clear (every ``within``, ``lookback`` and ``expires``).
_DURATION_FIELDS = ("within", "lookback", "expires")

_PLANS = (("free", 0.5), ("pro", 0.3), ("team", 0.2))
_COUNTRIES = ("US", "CA", "GB", "DE", "FR")
_CATEGORIES = ("shoes", "bags", "hats", "shirts")
_PRODUCTS = 200
#: A session's next event: (kind, weight).
_KINDS = (("view", 0.5), ("add", 0.2), ("order", 0.12), ("page", 0.18))
_CONTEXT = {"library": {"name": "segstream-bench", "version": "1"}}


def write_rules(directory: Path) -> Path:
    """Write :data:`RULES_YAML` as ``bench.yaml`` in ``directory``; returns the file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "bench.yaml"
    path.write_text(RULES_YAML, encoding="utf-8")
    return path


def ruleset(directory: Path) -> RuleSet:
    """The bench rules, loaded by segstream's own loader from a file written in ``directory``."""
    return load_rules(write_rules(directory))


def rule_durations(rules: RuleSet) -> set[int]:
    """Every duration (ms) in the rules' conditions: where a window edge, trigger or lookback can move a verdict."""
    found: set[int] = set()
    for segment in rules.segments.values():
        for node in segment.condition.walk():
            for name in _DURATION_FIELDS:
                value = getattr(node, name, None)
                if isinstance(value, int) and not isinstance(value, bool):
                    found.add(value)
    return found


#: The durations of :data:`RULES_YAML` (checked against the loaded rules by the unit tests).
DURATIONS_MS = frozenset(UNITS_MS[u] * n for n, u in ((1, "h"), (1, "d"), (7, "d"), (14, "d"), (30, "d")))


def _clear(age_newest: int, age_oldest: int) -> bool:
    """Whether a session spanning these ages (ms before ``now``) keeps clear of every rule edge."""
    if age_newest < MARGIN_MS:
        return False
    return all(age_oldest < w - MARGIN_MS or age_newest > w for w in DURATIONS_MS)


def generate(
    events: int, customers: int, now: int, seed: int = 7, span_days: float = 40.0, first: int = 0
) -> list[dict[str, Any]]:
    """``events`` events-topic records of ``customers`` customers, in event-time order, all before ``now``.

    Each customer gets at least one event (its ``identify``); the rest are spread
    at random. Customer ids are ``c<first>``, ``c<first + 1>``…; ``messageId``
    values are UUIDs drawn from the seed.
    """
    if customers < 1 or events < customers:
        raise ValueError(f"need at least one customer and one event per customer, got {events} events for {customers} customers")
    rng = random.Random(seed)
    counts = [1] * customers
    for i in rng.choices(range(customers), k=events - customers):
        counts[i] += 1
    span_ms = int(span_days * UNITS_MS["d"])
    records: list[dict[str, Any]] = []
    for i, n in enumerate(counts):
        records += _customer(rng, f"c{first + i}", n, now, span_ms)
    records.sort(key=lambda r: r["ts"])
    return records


def _customer(rng: random.Random, cid: str, n: int, now: int, span_ms: int) -> list[dict[str, Any]]:
    plan = rng.choices([p for p, _ in _PLANS], [w for _, w in _PLANS])[0]
    traits = {"plan": plan, "age": rng.randint(18, 70), "country": rng.choice(_COUNTRIES)}
    kinds = ["identify"] + rng.choices([k for k, _ in _KINDS], [w for _, w in _KINDS], k=n - 1)
    sessions = [kinds[i : i + 4] for i in range(0, n, 4)]
    out: list[dict[str, Any]] = []
    used: set[int] = set()
    for session in sessions:
        gaps = [rng.randint(10_000, 900_000) for _ in session]
        length = sum(gaps)
        while True:
            newest = rng.randint(MARGIN_MS, span_ms)
            if _clear(newest, newest + length):
                break
        ts = now - newest - length
        for kind, gap in zip(session, gaps):
            ts += gap
            while ts in used:  # one event per millisecond per customer: "newest wins" stays unambiguous
                ts += 1
            used.add(ts)
            out.append(_record(rng, cid, kind, ts, traits))
    return out


def _record(rng: random.Random, cid: str, kind: str, ts: int, traits: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "userId": cid}
    if kind == "identify":
        record.update(type="identify", traits=dict(traits))
    elif kind == "page":
        name = rng.choice(("Checkout", "Home", "Pricing"))
        record.update(type="page", name=name, properties={"path": "/" + name.lower()})
    elif kind == "order":
        revenue = rng.randint(10, 250)
        record.update(type="track", event="Order Completed", properties={"order_id": f"o{rng.getrandbits(32)}", "revenue": revenue, "currency": "USD"})
    else:
        product = rng.randrange(_PRODUCTS)
        props = {"product_id": f"p{product}", "category": _CATEGORIES[product % len(_CATEGORIES)], "price": 5 + product % 95}
        record.update(type="track", event="Product Viewed" if kind == "view" else "Product Added", properties=props)
    record.update(timestamp=iso(ts), ts=ts, context=_CONTEXT)
    return record


def http_event(record: dict[str, Any]) -> dict[str, Any]:
    """A record as an SDK would send it to the collector (``timestamp`` kept, ``ts`` left to the collector)."""
    return {k: v for k, v in record.items() if k != "ts"}


def latency_event(i: int, run: str) -> dict[str, Any]:
    """The ``i``-th latency event: a new customer's first order, which makes it enter :data:`LATENCY_SEGMENT`.

    It carries no ``timestamp``: its event time is when the collector receives it.
    """
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": latency_customer(i, run),
        "messageId": f"{run}-{i}",
        "properties": {"order_id": f"{run}-{i}", "revenue": 50, "currency": "USD"},
    }


def latency_customer(i: int, run: str) -> str:
    """The customer id of the ``i``-th latency event of run ``run``."""
    return f"{run}-{i}"


def customers_of(records: Iterable[dict[str, Any]]) -> set[str]:
    """The customer ids (``userId``) of ``records``."""
    return {r["userId"] for r in records}
