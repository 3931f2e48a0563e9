"""The benchmark's options: sizes, parts, ``--quick``; light to import (``segstream --help`` builds them).

>>> parser = argparse.ArgumentParser()
>>> add_arguments(parser)
>>> args = resolve(parser.parse_args(["--quick", "--events", "9000"]))
>>> args.events, args.customers, args.rate
(9000, 1125, 200.0)
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: The parts, in the order they run.
PARTS = ("collector", "worker", "ceilings", "endtoend", "sql", "latency", "timers", "memory")

#: Sizes of a full run (about 6-10 minutes at the worker's speed of 2025).
DEFAULTS: dict[str, object] = {
    "events": 100_000,
    "workers": "1,2",
    "repeat": 3,
    "e2e_events": 50_000,
    "batch": 100,
    "concurrency": 32,
    "collector_duration": 10.0,
    "rate": 2_000.0,
    "duration": 20.0,
    "latency_batch": 10,
    "timer_customers": 500,
    "timer_window": 5.0,
    "memory_customers": 100_000,
    "memory_events": 7,
    "redis_requests": 1_000_000,
}

#: ``--quick``: sizes of a smoke run of about a minute (options given explicitly still win).
QUICK: dict[str, object] = {
    "events": 4_000,
    "workers": "1",
    "repeat": 1,
    "e2e_events": 2_000,
    "collector_duration": 2.0,
    "rate": 200.0,
    "duration": 3.0,
    "timer_customers": 50,
    "timer_window": 2.0,
    "memory_customers": 2_000,
    "redis_requests": 100_000,
}

_HELP = {
    "events": ("events pre-loaded for the worker runs", int),
    "workers": ("worker processes per run, comma-separated", str),
    "repeat": ("worker part: runs per worker count, the median one reported (a shared machine's speed moves)", int),
    "e2e_events": ("events sent end to end", int),
    "batch": ("events per /v1/batch request", int),
    "concurrency": ("collector part: requests in flight", int),
    "collector_duration": ("seconds per collector mode", float),
    "rate": ("latency part: events/s sent", float),
    "duration": ("latency part: seconds of sending", float),
    "latency_batch": ("latency part: events per request", int),
    "timer_customers": ("timer part: window exits", int),
    "timer_window": ("timer part: window in seconds", float),
    "memory_customers": ("memory part: customers", int),
    "memory_events": ("memory part: events per customer", int),
    "redis_requests": ("redis-benchmark -n per test", int),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to ``parser`` (``scripts/bench`` and ``segstream bench``)."""
    parser.add_argument("--only", help=f"comma-separated parts to run: {', '.join(PARTS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run of about a minute")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="write the results as JSON here (default bench.json)")
    parser.add_argument("--customers", type=int, help="customers of the worker workload (default: events / 8)")
    for name, (text, kind) in _HELP.items():
        quick = f", --quick {QUICK[name]}" if name in QUICK else ""
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=f"{text} (default {DEFAULTS[name]}{quick})")
    parser.add_argument("--seed", type=int, default=7, help="workload seed (default 7)")
    parser.add_argument(
        "--redis-url",
        help="use this Redis instead of a private redis-server (memory and command figures then include other clients')",
    )


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the sizes not given: :data:`QUICK` with ``--quick``, else :data:`DEFAULTS`; check them."""
    for name, value in DEFAULTS.items():
        if getattr(args, name, None) is None:
            setattr(args, name, QUICK.get(name, value) if args.quick else value)
    if args.customers is None:
        args.customers = max(1, args.events // 8)
    parts(args.only)
    workers = [w.strip() for w in str(args.workers).split(",") if w.strip()]
    if not workers or not all(w.isdigit() and int(w) >= 1 for w in workers):
        raise ValueError(f"--workers takes worker counts like '1,2', got {args.workers!r}")
    if args.repeat < 1:
        raise ValueError(f"--repeat must be at least 1, got {args.repeat}")
    if args.events < args.customers:
        raise ValueError(f"--events ({args.events}) must be at least --customers ({args.customers})")
    return args


def parts(only: str | None) -> list[str]:
    """The parts to run, in run order; ``ValueError`` naming unknown ones."""
    if not only:
        return list(PARTS)
    wanted = {p.strip() for p in only.split(",") if p.strip()}
    unknown = sorted(wanted - set(PARTS))
    if unknown:
        raise ValueError(f"unknown part(s) {', '.join(unknown)} in --only; choose from {', '.join(PARTS)}")
    return [p for p in PARTS if p in wanted]
