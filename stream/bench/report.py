"""The benchmark's report, pure: targets met or not, and the table of figures (Markdown) from the results.

``results`` is the JSON the benchmark writes: one entry per part that ran
(``collector``, ``worker``, ``endtoend``, ``latency``, ``timers``, ``memory``,
``ceilings``, ``sql``), each holding that part's figures. Parts that did not run
are simply absent: their rows are left out.

>>> rows = table_rows({"timers": {"customers": 10, "window_s": 5, "lateness_ms": {"p50": 120.0, "p95": 200.0, "p99": 230.0, "max": 240.0}}})
>>> rows[0][0], rows[0][1], rows[0][3]
('timer lateness, deadline → change decided (10 window exits)', 'p50 120 ms, p95 200 ms, p99 230 ms', 'met')
"""

from __future__ import annotations

from typing import Any

#: The issue's targets for one worker process on a 2-core machine.
TARGET_EVENTS_PER_S = 20_000
TARGET_LATENCY_P99_MS = 250
TARGET_LATENCY_RATE = 2_000
TARGET_TIMER_P99_MS = 1_000
TARGET_PROFILE_BYTES = 1_024

Row = tuple[str, str, str, str]


def rate(x: float | None, unit: str = "events/s") -> str:
    """``12,345 events/s`` (``n/a`` for ``None``)."""
    return "n/a" if x is None else f"{x:,.0f} {unit}"


def ms(x: float | None) -> str:
    """``123 ms``, ``1.23 s`` from 10 s on; ``lost`` for ``None`` (a percentile reaching events that never arrived)."""
    if x is None:
        return "lost"
    return f"{x / 1000:,.2f} s" if x >= 10_000 else f"{x:,.0f} ms"


def percentiles(figures: dict[str, float | None]) -> str:
    """``p50 12 ms, p95 40 ms, p99 61 ms`` of a latency summary."""
    return ", ".join(f"{p} {ms(figures[p])}" for p in ("p50", "p95", "p99"))


def ratio(part: float | None, whole: float | None) -> str:
    """``part`` as a percentage of ``whole``, e.g. ``1.3 %``."""
    if part is None or not whole:
        return "n/a"
    share = 100 * part / whole
    if share >= 10:
        return f"{share:.0f} %"
    return f"{share:.1f} %" if share >= 1 else f"{share:.2g} %"


def verdict(check: dict[str, Any]) -> str:
    """``yes``, or which of segstream's memberships differ from the SQL ones (see :func:`stream.bench.sql.check`)."""
    if check["match"]:
        return "yes"
    differ = [label for key, label in (("member_sets", "member sets"), ("profiles", "profiles")) if not check[key]["match"]]
    return f"NO: {' and '.join(differ)} differ"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "not met")


def _latency_verdict(latency: dict[str, Any]) -> str:
    if latency["rate"] < TARGET_LATENCY_RATE:
        return f"n/a (below {TARGET_LATENCY_RATE:,}/s)"
    p99 = latency["latency_ms"]["p99"]
    return _met(p99 is not None and p99 < TARGET_LATENCY_P99_MS)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue that this run measured: ``name``, ``target``, ``value``, ``met``."""
    out = []
    worker = results.get("worker", {}).get("1")
    if worker:
        value = worker["events_per_s"]
        out.append({"name": "worker events/s (1 process, 10 rules)", "target": f">= {TARGET_EVENTS_PER_S:,}", "value": value, "met": value >= TARGET_EVENTS_PER_S})
    latency = results.get("latency")
    if latency:
        p99 = latency["latency_ms"]["p99"]
        out.append(
            {
                "name": f"acceptance-to-change p99 at {latency['rate']:,.0f} events/s",
                "target": f"< {TARGET_LATENCY_P99_MS} ms at {TARGET_LATENCY_RATE:,} events/s",
                "value": p99,
                "met": p99 is not None and p99 < TARGET_LATENCY_P99_MS and latency["rate"] >= TARGET_LATENCY_RATE,
            }
        )
    timers = results.get("timers")
    if timers:
        p99 = timers["lateness_ms"]["p99"]
        out.append({"name": "timer lateness p99", "target": f"< {TARGET_TIMER_P99_MS} ms", "value": p99, "met": p99 is not None and p99 < TARGET_TIMER_P99_MS})
    memory = results.get("memory")
    if memory:
        value = memory["profile_key_bytes"]["median"]
        out.append({"name": "Redis bytes per typical profile (MEMORY USAGE, median)", "target": f"< {TARGET_PROFILE_BYTES:,} B", "value": value, "met": value < TARGET_PROFILE_BYTES})
    return out


def table_rows(results: dict[str, Any]) -> list[Row]:
    """(what is measured, segstream's figure, what it is compared with, verdict) for every figure present."""
    rows: list[Row] = []
    ceilings = results.get("ceilings", {})
    kafka = ceilings.get("kafka_consumer", {}).get("events_per_s")
    collector = results.get("collector")
    if collector:
        single, batch = collector["single"], collector["batch"]
        rows.append(("collector, one event per request", rate(single["events_per_s"]), f"{collector['concurrency']} requests in flight", ""))
        rows.append((f"collector, {batch['batch_size']} events per /v1/batch", rate(batch["events_per_s"]), f"{collector['concurrency']} requests in flight", ""))
    for workers, run in sorted(results.get("worker", {}).items()):
        label = f"worker, {workers} process{'es' if int(workers) > 1 else ''}, 10 rules ({run['events']:,} events)"
        if workers == "1":
            met = _met(run["events_per_s"] >= TARGET_EVENTS_PER_S)
            beside = f"target >= {TARGET_EVENTS_PER_S:,}" + (f"; {ratio(run['events_per_s'], kafka)} of the bare consumer" if kafka else "")
        else:
            one = results["worker"].get("1", {}).get("events_per_s")
            met = ""
            beside = f"{run['events_per_s'] / one:.2f}× one worker" if one else ""
        each = run.get("runs_events_per_s", [])
        if len(each) > 1:
            beside = f"median of {len(each)} runs ({' / '.join(f'{r:,.0f}' for r in each)}); " + beside
        rows.append((label, rate(run["events_per_s"]), beside, met))
    if kafka is not None:
        rows.append(("ceiling: bare confluent-kafka consumer + orjson, same topic", rate(kafka), "", ""))
    redis_bench = ceilings.get("redis_benchmark")
    if redis_bench:
        tests = ", ".join(redis_bench["tests"]).lower()
        rows.append((f"ceiling: redis-benchmark -P {redis_bench['pipeline']}, mean of {tests}", rate(redis_bench["ops_per_s"], "ops/s"), "", ""))
    worker = results.get("worker", {}).get("1")
    if worker:
        beside = f"{ratio(worker['redis_commands_per_s'], redis_bench['ops_per_s'])} of redis-benchmark" if redis_bench else ""
        rows.append(("Redis commands during the 1-worker run", f"{worker['redis_commands_per_s']:,.0f} ops/s ({worker['redis_commands_per_event']:.1f} per event)", beside, ""))
    e2e = results.get("endtoend")
    if e2e:
        rows.append((f"end to end: SDK batches → collector → worker ({e2e['events']:,} events)", rate(e2e["events_per_s"]), f"collector meanwhile: {rate(e2e['collector_events_per_s'])}", ""))
    latency = results.get("latency")
    if latency:
        lat = latency["latency_ms"]
        rows.append(
            (
                f"latency, acceptance → change on the topic, at {latency['rate']:,.0f} events/s ({lat['count'] + lat['missing']:,} events)",
                percentiles(lat),
                f"p99 < {TARGET_LATENCY_P99_MS} ms at {TARGET_LATENCY_RATE:,}/s" + (f"; {lat['missing']:,} lost" if lat["missing"] else ""),
                _latency_verdict(latency),
            )
        )
    timers = results.get("timers")
    if timers:
        lat = timers["lateness_ms"]
        rows.append(
            (
                f"timer lateness, deadline → change decided ({timers['customers']:,} window exits)",
                percentiles(lat),
                f"p99 < {TARGET_TIMER_P99_MS:,} ms",
                _met(lat["p99"] is not None and lat["p99"] < TARGET_TIMER_P99_MS),
            )
        )
    memory = results.get("memory")
    if memory:
        key = memory["profile_key_bytes"]
        rows.append(
            (
                f"Redis per profile key, {memory['events_per_customer']} events each (MEMORY USAGE)",
                f"{key['median']:,.0f} B median, {key['mean']:,.0f} B mean",
                f"< {TARGET_PROFILE_BYTES:,} B",
                _met(key["median"] < TARGET_PROFILE_BYTES),
            )
        )
        rows.append((f"Redis used_memory per customer at {memory['customers']:,} customers", f"{memory['bytes_per_customer']:,.0f} B", "profile + member sets + timers", ""))
    sql = results.get("sql")
    if sql:
        rows.append(
            (
                f"batch baseline: DuckDB full recompute of the 10 segments ({sql['events']:,} events)",
                f"{sql['recompute_s'] * 1000:,.0f} ms",
                f"staleness >= {sql['staleness_s'] * 1000:,.0f} ms run back to back; up to 1 h + that hourly",
                "",
            )
        )
        for run, check in sql.get("checks", {}).items():
            members = sum(row["sql"] for row in check["member_sets"]["segments"].values())
            rows.append((f"SQL memberships = segstream's ({run})", verdict(check), f"{members:,} memberships, in member sets and profiles", ""))
    return rows


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table (what the README shows)."""
    lines = ["| measure | segstream | beside it | target |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)
