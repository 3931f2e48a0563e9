"""The batch baseline: the ten bench segments recomputed by SQL in DuckDB, as a scheduled job would.

The events are loaded into an embedded DuckDB table ``events`` (one row per
event: ``customer``, ``type``, ``event``, ``ts`` in epoch ms, ``properties`` and
``traits`` structs), and :data:`SEGMENTS_SQL` computes every membership at a
time ``now`` in one statement into ``memberships(segment, customer)``. Each
segment is written with segstream's semantics (README, "Rules: the segment
language"): an event counts in a window iff ``now - within < ts <= now``;
behaviour is track, page and screen calls (``$any``); a trait is its newest
value by event time; lifetime revenue is every event's ``revenue`` (else
``total``); an absence holds when a trigger is at least ``within`` old, younger
than ``expires``, with no cancel after it; a sequence needs each step strictly
after the previous one, at most ``within`` later, all inside ``lookback``.

:func:`check` then compares the memberships segstream keeps in Redis, in the
member sets and in the profiles, with the SQL ones: two independent
implementations agreeing is the benchmark's correctness check.

>>> con = connect()
>>> load(con, [{"userId": "a", "type": "track", "event": "Order Completed", "ts": 1_000, "properties": {"revenue": 250}}])
>>> _ = recompute(con, now=2_000)
>>> sorted(memberships(con))
['big_spenders', 'recent_buyers']
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import orjson

from stream.rules.durations import UNITS_MS

H, D = UNITS_MS["h"], UNITS_MS["d"]

#: The columns read from each events-topic record (other fields are ignored).
_COLUMNS = {
    "userId": "VARCHAR",
    "type": "VARCHAR",
    "event": "VARCHAR",
    "ts": "BIGINT",
    "properties": "STRUCT(product_id VARCHAR, category VARCHAR, revenue DOUBLE, total DOUBLE)",
    "traits": "STRUCT(plan VARCHAR, age DOUBLE)",
}

#: Every bench segment (stream/bench/workload.py) as SQL at ``$now`` (epoch ms), into ``memberships``.
SEGMENTS_SQL = f"""
CREATE OR REPLACE TABLE memberships AS
WITH
customers AS (SELECT DISTINCT customer FROM events),
behaviour AS (
    SELECT customer, ts, CASE WHEN type = 'track' THEN event ELSE type END AS name,
           properties.product_id AS product_id, properties.category AS category,
           properties.revenue AS revenue, coalesce(properties.revenue, properties.total) AS lifetime_revenue
    FROM events WHERE type IN ('track', 'page', 'screen')
),
windowed AS (SELECT * FROM behaviour WHERE ts <= $now),
traits AS (
    SELECT customer,
           arg_max(traits.plan, ts) FILTER (WHERE traits.plan IS NOT NULL) AS plan,
           arg_max(traits.age, ts) FILTER (WHERE traits.age IS NOT NULL) AS age
    FROM events WHERE type = 'identify' GROUP BY customer
),
pro_members AS (SELECT customer FROM traits WHERE plan = 'pro' AND age BETWEEN 25 AND 44),
product_browsers AS (
    SELECT customer FROM windowed WHERE name = 'Product Viewed' AND ts > $now - {7 * D}
    GROUP BY customer HAVING count(*) >= 3
),
big_spenders AS (
    SELECT customer FROM windowed WHERE name = 'Order Completed' AND ts > $now - {30 * D}
    GROUP BY customer HAVING sum(revenue) >= 200
),
recent_buyers AS (SELECT DISTINCT customer FROM windowed WHERE name = 'Order Completed' AND ts > $now - {14 * D}),
dormant AS (SELECT customer FROM customers EXCEPT SELECT customer FROM windowed WHERE ts > $now - {14 * D}),
cart_abandoners AS (
    SELECT DISTINCT a.customer FROM windowed a
    WHERE a.name = 'Product Added' AND a.ts + {1 * H} <= $now AND a.ts > $now - {30 * D}
      AND NOT EXISTS (
          SELECT 1 FROM windowed b WHERE b.customer = a.customer AND b.name = 'Order Completed' AND b.ts > a.ts
      )
),
view_add_buy AS (
    SELECT DISTINCT v.customer FROM windowed v
    JOIN windowed a ON a.customer = v.customer AND a.name = 'Product Added' AND a.ts > v.ts AND a.ts <= v.ts + {1 * D}
    JOIN windowed o ON o.customer = v.customer AND o.name = 'Order Completed' AND o.ts > a.ts AND o.ts <= a.ts + {1 * D}
    WHERE v.name = 'Product Viewed' AND v.ts > $now - {7 * D}
),
pro_big_spenders AS (SELECT customer FROM pro_members INTERSECT SELECT customer FROM big_spenders),
lifetime_vips AS (
    SELECT customer FROM behaviour GROUP BY customer
    HAVING coalesce(sum(lifetime_revenue), 0) >= 300 AND count(*) FILTER (WHERE name = 'Order Completed') >= 2
),
variety_viewers AS (
    SELECT customer FROM windowed
    WHERE name = 'Product Viewed' AND category IN ('shoes', 'bags') AND ts > $now - {7 * D}
    GROUP BY customer HAVING count(DISTINCT product_id) >= 3
)
SELECT 'pro_members' AS segment, customer FROM pro_members
UNION ALL SELECT 'product_browsers', customer FROM product_browsers
UNION ALL SELECT 'big_spenders', customer FROM big_spenders
UNION ALL SELECT 'recent_buyers', customer FROM recent_buyers
UNION ALL SELECT 'dormant', customer FROM dormant
UNION ALL SELECT 'cart_abandoners', customer FROM cart_abandoners
UNION ALL SELECT 'view_add_buy', customer FROM view_add_buy
UNION ALL SELECT 'pro_big_spenders', customer FROM pro_big_spenders
UNION ALL SELECT 'lifetime_vips', customer FROM lifetime_vips
UNION ALL SELECT 'variety_viewers', customer FROM variety_viewers
"""

#: The segments :data:`SEGMENTS_SQL` computes.
SEGMENTS = (
    "pro_members",
    "product_browsers",
    "big_spenders",
    "recent_buyers",
    "dormant",
    "cart_abandoners",
    "view_add_buy",
    "pro_big_spenders",
    "lifetime_vips",
    "variety_viewers",
)


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB database."""
    return duckdb.connect(":memory:")


def load(con: duckdb.DuckDBPyConnection, records: Iterable[Mapping[str, Any]]) -> None:
    """(Re)create table ``events`` from events-topic records, through a JSON-lines file as an export would land."""
    with tempfile.TemporaryDirectory(prefix="segstream-bench-sql-") as tmp:
        path = Path(tmp) / "events.jsonl"
        with path.open("wb") as fh:
            for record in records:
                fh.write(orjson.dumps(record) + b"\n")
        columns = ", ".join(f"'{name}': '{kind}'" for name, kind in _COLUMNS.items())
        con.execute(
            f"""CREATE OR REPLACE TABLE events AS
            SELECT userId AS customer, type, event, ts, properties, traits
            FROM read_json('{path}', format = 'newline_delimited', columns = {{{columns}}})"""
        )


def recompute(con: duckdb.DuckDBPyConnection, now: int) -> float:
    """Recompute every membership at ``now`` (epoch ms) into ``memberships``; returns the seconds it took."""
    started = time.perf_counter()
    con.execute(SEGMENTS_SQL, {"now": int(now)})
    return time.perf_counter() - started


def memberships(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """The memberships of the last :func:`recompute`, by segment (segments without members left out)."""
    out: dict[str, set[str]] = {}
    for segment, customer in con.execute("SELECT segment, customer FROM memberships").fetchall():
        out.setdefault(segment, set()).add(customer)
    return out


def compare(sql: Mapping[str, set[str]], live: Mapping[str, set[str]], examples: int = 3) -> dict[str, Any]:
    """SQL against segstream memberships: ``match``, and per segment both counts and a few ids only one side has."""
    segments: dict[str, Any] = {}
    for name in SEGMENTS:
        want, got = sql.get(name, set()), live.get(name, set())
        row: dict[str, Any] = {"sql": len(want), "segstream": len(got)}
        if want != got:
            row["only_sql"] = sorted(want - got)[:examples]
            row["only_segstream"] = sorted(got - want)[:examples]
        segments[name] = row
    return {"match": all(len(r) == 2 for r in segments.values()), "segments": segments}


def check(sql: Mapping[str, set[str]], member_sets: Mapping[str, set[str]], profiles: Mapping[str, set[str]]) -> dict[str, Any]:
    """SQL against both places segstream keeps memberships: the Redis member sets (segment -> members)
    and the profiles (customer -> segments); ``match`` when both agree with the SQL."""
    sets, own = compare(sql, member_sets), compare(sql, profiles)
    return {"match": sets["match"] and own["match"], "member_sets": sets, "profiles": own}

