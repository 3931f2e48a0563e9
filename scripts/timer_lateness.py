"""Measure how late time-driven changes are: deadline -> `exited` decided, on a real worker.

The timer part of the benchmark alone (stream/bench/timers.py): a worker in a
fresh namespace, N customers each entering "2+ views within W" now and exiting
when the older view leaves the window; prints p50/p95/p99/max lateness.
`scripts/bench --only timers --timer-customers 500 --timer-window 5` does the same
and writes JSON.

    .venv/bin/python scripts/timer_lateness.py --customers 500 --window 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.bench import timers  # noqa: E402 - after the path is set
from stream.bench.engine import Env  # noqa: E402
from stream.bench.errors import BenchError  # noqa: E402
from stream.bench.progress import Progress  # noqa: E402
from stream.bench.report import ms  # noqa: E402
from stream.config import Settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--window", type=float, default=5.0, help="window in seconds")
    parser.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    args = parser.parse_args()
    try:
        env = Env(Settings(), redis_url=args.redis_url)
        try:
            result = timers.measure(env, args.customers, args.window, Progress())
        finally:
            env.close()
    except BenchError as exc:
        print(f"timer_lateness: {exc}", file=sys.stderr)
        return 2
    late = result["lateness_ms"]
    print(f"timer lateness over {late['count']} window exits (deadline -> change decided), {late['missing']} missing:")
    print(f"  p50 {ms(late['p50'])}   p95 {ms(late['p95'])}   p99 {ms(late['p99'])}   max {ms(late['max'])}")
    return 0 if late["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
