"""``segstream bench`` / ``scripts/bench``: run the parts, print the table, write the JSON.

Parts, in the order they run (``--only`` picks some):

===========  =====================================================================
collector    events/s through the collector: one event per request, and batches
worker       events/s through 1 (and 2, ``--workers 1,2``) worker processes, 10 rules;
             ``--repeat`` runs each, the median reported
ceilings     a bare Kafka consumer + orjson on the worker's topic; redis-benchmark -P 16
endtoend     events/s from SDK batches through collector and worker
sql          DuckDB recompute time over the worker's events, and its memberships
             checked against segstream's of the worker and end-to-end runs
latency      p50/p95/p99 acceptance → change at a fixed rate
timers       p50/p95/p99 deadline → change of window exits
memory       Redis bytes per profile at 100k customers
===========  =====================================================================

The exit code is 0 when every part ran and every SQL check matched, 1 when a
check did not match, 2 when a part could not run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from stream.bench import ceilings, collector, endtoend, latency, memory, report, sql, timers, worker, workload
from stream.bench.options import add_arguments, parts, resolve
from stream.bench.engine import Env, encode
from stream.bench.errors import BenchError
from stream.bench.progress import Progress
from stream.bench.worker import WorkerRun
from stream.config import Settings
from stream.state.profile import iso, now_ms

DESCRIPTION = "Measure segstream's throughput, latency, timer lateness and memory beside ceilings and a SQL baseline."


def machine(env: Env) -> dict[str, Any]:
    """Where the figures come from."""
    info = env.redis().info("server")
    return {
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis": f"redis-server {info.get('redis_version')} ({'private, started by the bench' if env.private else env.redis_url})",
        "kafka": env.base.kafka_bootstrap,
        "at": iso(now_ms()),
    }


def run(args: argparse.Namespace, settings: Settings, command: str, progress: Progress) -> tuple[dict[str, Any], int]:
    """Run the chosen parts; returns the results and the exit code.

    A part that cannot run is recorded under ``errors`` and the others still run.
    """
    chosen = parts(args.only)
    worker_counts = sorted({int(n) for n in str(args.workers).split(",") if n.strip()})
    env = Env(settings, redis_url=args.redis_url)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "func"}
    results: dict[str, Any] = {"command": command, "machine": machine(env), "options": options, "parts": chosen, "errors": {}}
    runs: dict[str, tuple[WorkerRun, list[dict[str, Any]]]] = {}
    records: list[dict[str, Any]] = []

    def attempt(part: str, measure: Callable[[], Any]) -> None:
        if part not in chosen:
            return
        try:
            results[part] = measure()
        except BenchError as exc:
            results["errors"][part] = str(exc)
            progress.say(f"{part} failed: {exc}")

    def workers() -> dict[str, Any]:
        figures = results.setdefault("worker", {})  # runs done are kept if a later one fails
        for n in worker_counts:
            done: list[WorkerRun] = []
            for i in range(1, args.repeat + 1):
                done.append(worker.measure(env, records, n, progress))
                # every run is cleaned up afterwards, and its memberships checked against SQL
                runs[f"worker x{n}" + (f", run {i}/{args.repeat}" if args.repeat > 1 else "")] = (done[-1], records)
            figures[str(n)] = worker.median_run(done)
        return figures

    def end_to_end() -> dict[str, Any]:
        own = workload.generate(args.e2e_events, max(1, args.e2e_events // 8), now_ms(), seed=args.seed + 1)
        done = endtoend.measure(env, own, args.batch, 4, progress)
        env.cleanup(done.settings.namespace)
        runs["end to end"] = (done, own)
        return done.figures

    try:
        attempt("collector", lambda: collector.measure(env, args.collector_duration, args.batch, args.concurrency, progress))
        if {"worker", "ceilings", "sql"} & set(chosen):
            progress.say(f"workload: {args.events:,} events of {args.customers:,} customers (seed {args.seed})")
            records = workload.generate(args.events, args.customers, now_ms(), seed=args.seed)
        attempt("worker", workers)
        attempt("ceilings", lambda: _ceilings(env, args, runs, records, progress))
        for done, _ in runs.values():
            env.cleanup(done.settings.namespace)
        attempt("endtoend", end_to_end)
        attempt("sql", lambda: _sql(records, runs, progress))
        attempt("latency", lambda: latency.measure(env, args.rate, args.duration, args.latency_batch, progress))
        attempt("timers", lambda: timers.measure(env, args.timer_customers, args.timer_window, progress))
        attempt("memory", lambda: memory.measure(env, args.memory_customers, args.memory_events, progress))
    finally:
        env.close()
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["targets"] = report.targets(results)
    if results["errors"]:
        return results, 2
    matched = all(check["match"] for check in results.get("sql", {}).get("checks", {}).values())
    return results, 0 if matched else 1


def _ceilings(
    env: Env, args: argparse.Namespace, runs: dict[str, tuple[WorkerRun, Any]], records: list[dict[str, Any]], progress: Progress
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    loaded = [run for run, _ in runs.values() if run.records is not None]
    if loaded:
        settings, written = loaded[0].settings, loaded[0].records
    else:
        settings = env.fresh("ceiling")
        progress.say(f"ceilings: pre-loading {len(records):,} events")
        written = sum(env.produce(settings, encode(records)).values())
    progress.say(f"ceilings: bare confluent-kafka consumer + orjson over {settings.events_topic}")
    out["kafka_consumer"] = ceilings.kafka_consumer(settings, written, progress)
    host, port = env.redis_server
    progress.say(f"ceilings: redis-benchmark -P 16 -n {args.redis_requests:,} against {host}:{port}")
    out["redis_benchmark"] = ceilings.redis_benchmark(host, port, args.redis_requests)
    return out


def _sql(records: list[dict[str, Any]], runs: dict[str, tuple[WorkerRun, list[dict[str, Any]]]], progress: Progress) -> dict[str, Any]:
    con = sql.connect()
    progress.say(f"sql: loading {len(records):,} events into DuckDB {sql.duckdb.__version__}")
    started = time.perf_counter()
    sql.load(con, records)
    load_s = time.perf_counter() - started
    now = now_ms()
    times = sorted(sql.recompute(con, now) for _ in range(3))
    out: dict[str, Any] = {
        "events": len(records),
        "load_s": load_s,
        "recompute_s": times[1],
        "staleness_s": 2 * times[1],
        "checks": {},
    }
    for name, (done, own) in runs.items():
        run_con = con
        if own is not records:
            run_con = sql.connect()
            sql.load(run_con, own)
        sql.recompute(run_con, done.members_at)
        check = sql.check(sql.memberships(run_con), done.members, done.profile_members)
        out["checks"][name] = check
        progress.say(f"sql: memberships of {name} equal the SQL ones: {report.verdict(check)}")
    return out


def main(argv: Sequence[str] | None = None, prog: str = "scripts/bench") -> int:
    """Parse options, run, print the table, write the JSON; see the module docstring for the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    return execute(parser.parse_args(argv), Settings(), f"{prog} {shlex.join(argv)}".strip())


def execute(args: argparse.Namespace, settings: Settings, command: str) -> int:
    """Run with parsed ``args`` (``segstream bench`` enters here); prints the table, writes ``args.out``."""
    try:
        resolve(args)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    progress = Progress()
    try:
        results, code = run(args, settings, command, progress)
    except BenchError as exc:  # the engine itself (Redis, Kafka) could not start
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    progress.say(f"results written to {args.out}")
    machine_ = results["machine"]
    print(f"{command}\n{machine_['cpus']} CPUs, {machine_['platform']}, {machine_['redis']}\n")
    print(report.markdown(report.table_rows(results)))
    for part, error in results["errors"].items():
        print(f"\n{part} could not run: {error}", file=sys.stderr)
    return code
