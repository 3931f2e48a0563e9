"""Write a synthetic shop history (JSON lines) for `segstream backtest` and `segstream replay`.

    python scripts/synthetic_history.py --customers 2000 --days 120 > history.jsonl
"""

from __future__ import annotations

import argparse
import sys

import orjson

from stream.models.synthetic import history


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    out = sys.stdout.buffer
    for n, record in enumerate(history(args.customers, args.days, args.seed), 1):
        out.write(orjson.dumps(record) + b"\n")
        if n % 50_000 == 0:
            print(f"{n:,} events written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
