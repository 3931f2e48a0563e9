"""The ``segstream`` command line: one subcommand per process or operation."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from stream.config import Settings

if TYPE_CHECKING:  # the commands import it lazily
    import redis.asyncio as aioredis


def _collector(args: argparse.Namespace, settings: Settings) -> int:
    from stream.ingest.collector import run

    return run(settings)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from stream.worker.app import run

    return run(settings)


def _trainer(args: argparse.Namespace, settings: Settings) -> int:
    from stream.models.trainer import run

    return run(settings)


def _models(args: argparse.Namespace, settings: Settings) -> int:
    from stream.models.report import format_report
    from stream.state import modelstore
    from stream.state.connection import run_with_redis
    from stream.state.profile import iso

    info = run_with_redis(settings, lambda client: modelstore.load_info(client, settings.namespace))
    if info is None:
        print(
            "no model snapshot yet: the trainer publishes one once workers sent training records "
            "(rules need a 'models:' section; `segstream run` starts the trainer)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        _print_json(info)
        return 0
    print(f"model snapshot {info['version']} at {iso(info['at'])}, training-topic offset {info['offset']}, rules {info['rules_version']}")
    print(format_report(info["report"]))
    return 0


def _backtest(args: argparse.Namespace, settings: Settings) -> int:
    from stream.models.backtest import backtest
    from stream.models.report import format_report
    from stream.replay import read_events
    from stream.rules import RuleError, load_rules
    from stream.state.profile import parse_time

    try:
        ruleset = load_rules(args.rules or settings.rules_dir)
        result = backtest(
            read_events(Path(args.file)),
            ruleset,
            settings.history_max_events,
            snapshot_every=args.snapshot_every,
            until=parse_time(args.until) if args.until else None,
            progress=_replay_progress(args.file),
        )
    except RuleError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(file=sys.stderr)
    summary = result.summary()
    if args.json:
        _print_json(summary)
        return 0
    records = ", ".join(f"{n} {kind}" for kind, n in sorted(summary["training_records"].items())) or "none"
    censored = ", ".join(f"{n} {kind}" for kind, n in sorted(summary["censored_examples"].items())) or "none"
    print(f"{summary['customers']} customers, {summary['changes']} segment changes, {summary['rejected']} rejected records")
    print(f"training records: {records}; still unlabelled at the end (censored): {censored}")
    print(format_report(summary["report"]))
    return 0


def _forget(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    import orjson

    from stream.kafka import AsyncProducer, KafkaUnavailable
    from stream.output.deletions import forget_request
    from stream.state.profile import now_ms

    async def send() -> None:
        producer = AsyncProducer(settings)
        try:
            for customer in args.ids:
                record = forget_request(customer, now_ms(), args.suppress)
                await producer.send(settings.events_topic, customer.encode(), orjson.dumps(record))
        finally:
            producer.close()

    try:
        asyncio.run(send())
    except KafkaUnavailable as exc:
        print(f"segstream forget: {exc}; nothing was requested for the ids not listed below", file=sys.stderr)
        return 3
    for customer in args.ids:
        print(f"{customer}: forget requested{' (later events suppressed)' if args.suppress else ''}")
    print(f"the owning workers exit their segments and publish deletion records on {settings.deletions_topic}")
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from stream.config import configure_logging
    from stream.warehouse.errors import WarehouseError
    from stream.warehouse.sink import export
    from stream.warehouse.sql import query

    try:
        if args.sql:
            query(args.to, args.sql, sys.stdout)
            return 0
        configure_logging(settings)
        totals = export(settings, args.to, args.group or f"{settings.namespace}-export", args.once, args.idle)
    except WarehouseError as exc:
        print(f"segstream export: {exc}", file=sys.stderr)
        return 1
    print(totals.summary())
    return 0


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    import shlex

    from stream.bench.runner import execute

    return execute(args, settings, "segstream " + shlex.join(sys.argv[1:]))


def _api(args: argparse.Namespace, settings: Settings) -> int:
    from stream.serving.api import run

    return run(settings)


def _destinations(args: argparse.Namespace, settings: Settings) -> int:
    from stream.destinations.runner import run

    return run(settings, args.config)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from stream.supervisor import run_all

    return run_all(settings, start_services=not args.no_services)


def _services(args: argparse.Namespace, settings: Settings) -> int:
    from stream import services

    return services.command(args.action, settings)


def _rules_check(args: argparse.Namespace, settings: Settings) -> int:
    from stream.rules import RuleError, load_rules

    paths = args.paths or [str(settings.rules_dir)]
    failed = False
    for path in paths:
        try:
            ruleset = load_rules(path)
        except RuleError as exc:
            print(exc, file=sys.stderr)
            failed = True
        else:
            scores = f", {len(ruleset.scores)} scores ({', '.join(sorted(ruleset.scores))})" if ruleset.scores else ""
            models = f", models: {', '.join(ruleset.models.enabled())}" if ruleset.models is not None else ""
            print(f"{path}: {len(ruleset.segments)} segments OK ({', '.join(sorted(ruleset.segments))}){scores}{models}")
    return 1 if failed else 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from stream.kafka import AsyncProducer
    from stream.replay import read_events, read_topic, replay
    from stream.rules import RuleError, load_rules
    from stream.state.profile import parse_time

    try:
        ruleset = load_rules(args.rules or settings.rules_dir)
    except RuleError as exc:
        print(exc, file=sys.stderr)
        return 2
    policy = ruleset.policy(settings.history_max_events)
    until = parse_time(args.until) if args.until else None

    from_topic = args.source.startswith("topic:")
    source = read_topic(settings, args.source[len("topic:") :]) if from_topic else read_events(Path(args.source))
    result = replay(source, ruleset, policy, until=until, progress=_replay_progress(None if from_topic else args.source))
    print(file=sys.stderr)
    if args.out:
        with open(args.out, "wb") as fh:
            for change in result.changes:
                fh.write(change.to_bytes() + b"\n")
    if args.out_topic:
        import asyncio

        async def publish() -> None:
            producer = AsyncProducer(settings)
            records = [(args.out_topic, c.customer_id.encode(), c.to_bytes()) for c in result.changes]
            await producer.send_many(records)
            producer.close()

        asyncio.run(publish())
    for index, error in result.rejected[:20]:
        print(f"record {index}: rejected ({error.reason}): {error}", file=sys.stderr)
    print(f"{'segment':<32} {'entered':>8} {'exited':>8} {'members':>8}")
    for name, row in result.summary().items():
        print(f"{name:<32} {row['entered']:>8} {row['exited']:>8} {row['members']:>8}")
    print(f"{len(result.profiles)} customers, {len(result.changes)} changes, {len(result.rejected)} rejected records")
    return 0


def _import(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from stream.bench.progress import Progress
    from stream.importer.checkpoint import CheckpointError
    from stream.importer.run import run_import
    from stream.importer.sources import SourceError
    from stream.ingest.normalize import ConfigFileError
    from stream.kafka import KafkaUnavailable

    if not args.file.is_file():
        print(f"segstream import: {args.file}: no such file", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(run_import(settings, args.file, args.mapping, args.limit, args.restart, Progress(every_s=2.0)))
    except (ConfigFileError, SourceError, CheckpointError) as exc:
        print(f"segstream import: {exc}", file=sys.stderr)
        return 2
    except KafkaUnavailable as exc:
        print(f"segstream import: {exc}; run the same command again to resume", file=sys.stderr)
        return 1
    print("\n".join(summary.lines()))
    return 0


def _replay_progress(path: str | None) -> Callable[[int], None]:
    """A progress callback showing a bar and percentage of a file's events (a count for a topic) on stderr."""
    from stream.bench.progress import Progress, bar

    total = _records_in(Path(path)) if path is not None else None
    shown = Progress()

    def progress(done: int) -> None:
        if total:
            shown.update(f"{bar(done / total)}  {done:,} of ~{total:,} events replayed")
        else:
            shown.update(f"{done:,} events replayed")

    return progress


def _records_in(path: Path) -> int | None:
    """About how many records a JSON-lines or CSV file holds (its lines; minus the header for CSV)."""
    from stream.bench.progress import count_lines

    try:
        lines = count_lines(path)
    except OSError:
        return None  # replay reports the unreadable file itself
    return max(lines - (path.suffix.lower() == ".csv"), 1)


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    from stream.client import SegstreamError
    from stream.observability.tail import tail

    try:
        tail(settings, sys.stdout, args.segment, args.customer, args.json, args.from_beginning, args.idle)
    except SegstreamError as exc:
        print(f"segstream tail: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        pass
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from stream.observability.status import format_status, gather, healthy

    urls = args.worker if args.worker is not None else ([f"http://127.0.0.1:{settings.worker_port}"] if settings.worker_port else [])
    status = gather(settings, urls)
    _print_report(args.json, status, format_status)
    return 0 if healthy(status) else 1


def _analytics_overlap(args: argparse.Namespace, settings: Settings) -> int:
    import redis.asyncio as aioredis

    from stream.analytics.errors import AnalyticsError
    from stream.analytics.http import requested_segments, thresholds
    from stream.analytics.intersections import measure_overlap
    from stream.analytics.overlap import select_segments
    from stream.analytics.tables import overlap_table
    from stream.bench.progress import Progress
    from stream.rules import RuleError, load_rules
    from stream.state.connection import run_with_redis
    from stream.state.rulestore import fetch, materialise

    shown = Progress()

    async def go(client: aioredis.Redis) -> dict:
        deployed = await fetch(client, settings.namespace)
        ruleset = materialise(deployed.files, settings.state_dir / "rules") if deployed else load_rules(settings.rules_dir)
        names = select_segments(requested_segments(args.segments), sorted(ruleset.segments), settings.analytics_max_segments)
        return await measure_overlap(
            client, settings.namespace, names, thresholds(settings), lambda done, total: shown.update(f"{done:,} of {total:,} pairs")
        )

    try:
        report = run_with_redis(settings, go)
    except (AnalyticsError, RuleError) as exc:
        print(f"segstream analytics overlap: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    _print_report(args.json, report, overlap_table)
    return 0


def _analytics_sizes(args: argparse.Namespace, settings: Settings) -> int:
    from stream.analytics.tables import sizes_table
    from stream.serving.sizes import downsample, parse_range, read
    from stream.state.connection import run_with_redis
    from stream.state.profile import iso, now_ms

    query = {name: value for name, value in (("from", args.start), ("to", args.end), ("step", args.step)) if value is not None}
    try:
        start, end, step = parse_range(query, now_ms(), int(settings.sizes_every_s * 1000))
    except ValueError as exc:
        print(f"segstream analytics sizes: {exc}", file=sys.stderr)
        return 2

    found = run_with_redis(settings, lambda client: read(client, settings.namespace, args.segment, start, end))
    points = [p | {"at": iso(p["t"])} for p in downsample(found, start, end, step)]
    report = {"segment": args.segment, "step_s": step / 1000, "points": points}
    _print_report(args.json, report, lambda r: sizes_table(r["segment"], r["points"]))
    return 0


def _analytics_performance(args: argparse.Namespace, settings: Settings) -> int:
    from stream.analytics.errors import AnalyticsError
    from stream.analytics.performance import PerformanceSpec, measure
    from stream.analytics.tables import performance_table
    from stream.replay import read_events, read_topic
    from stream.rules import RuleError, load_rules
    from stream.rules.durations import parse_duration
    from stream.state.profile import iso, now_ms, parse_time

    try:
        spec = PerformanceSpec(
            goal=args.goal or settings.analytics_goal,
            within_ms=parse_duration(args.within or settings.analytics_within),
            confidence=args.confidence or settings.analytics_confidence,
            since=parse_time(args.since) if args.since else None,
            until=parse_time(args.until) if args.until else None,
        )
        ruleset = load_rules(args.rules or settings.rules_dir)
        from_topic = args.source.startswith("topic:")
        source = read_topic(settings, args.source[len("topic:") :]) if from_topic else read_events(Path(args.source))
        progress = _replay_progress(None if from_topic else args.source)
        report = measure(source, ruleset, settings.history_max_events, spec, args.segment, progress)
    except (AnalyticsError, RuleError, ValueError) as exc:
        print(f"segstream analytics performance: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    _print_report(args.json, report, performance_table)
    if args.save:
        _save_performance(settings, report | {"computed_at": iso(now_ms()), "source": args.source})
        print(f"saved: GET /v1/analytics/performance answers it (namespace {settings.namespace})", file=sys.stderr)
    return 0


def _save_performance(settings: Settings, report: dict) -> None:
    from stream.analytics.http import save_performance
    from stream.state.connection import run_with_redis

    run_with_redis(settings, lambda client: save_performance(client, settings.namespace, report))


def _rules_deploy(args: argparse.Namespace, settings: Settings) -> int:
    from stream.rules import RuleError
    from stream.state.connection import run_with_redis
    from stream.state.profile import now_ms
    from stream.state.rulestore import deploy

    try:
        ruleset, changed = run_with_redis(
            settings, lambda client: deploy(client, settings.namespace, args.path or settings.rules_dir, now_ms())
        )
    except RuleError as exc:
        print(f"not deployed:\n{exc}", file=sys.stderr)
        return 1
    state = "deployed" if changed else "already deployed"
    print(f"rules version {ruleset.version} {state}: {', '.join(sorted(ruleset.segments))}")
    if not args.wait:
        print("running workers load it within a second and backfill new and changed segments (GET /v1/rules shows progress)")
        return 0
    return run_with_redis(settings, lambda client: _wait_for_backfill(client, settings, ruleset.version, args.timeout))


async def _wait_for_backfill(client: aioredis.Redis, settings: Settings, version: str, timeout_s: float) -> int:
    """Show a progress bar of ``version``'s backfill until every partition is done (1 after ``timeout_s``)."""
    import asyncio
    import time

    from stream.bench.progress import Progress, bar
    from stream.state import keys
    from stream.state.backfills import BackfillProgress

    shown = Progress(every_s=2.0)
    profiles = 0
    async for _ in client.scan_iter(match=keys.profile_pattern(settings.namespace), count=5000):
        profiles += 1
    deadline = time.monotonic() + timeout_s
    while True:
        progress = BackfillProgress.from_fields(await client.hgetall(keys.backfill(settings.namespace, version)))
        done = len([p for p in progress.done if p < settings.partitions])
        shown.update(
            f"{bar(progress.fraction(settings.partitions, profiles))} backfill: {done}/{settings.partitions} partitions, "
            f"{progress.evaluated:,} customers re-evaluated of ~{profiles:,} profiles"
        )
        if progress.complete(settings.partitions):
            print(f"\n{bar(1.0)} backfill of {version} done: {progress.evaluated:,} customers re-evaluated", file=sys.stderr)
            return 0
        if time.monotonic() > deadline:
            print(
                f"\nbackfill of {version} not done after {timeout_s:g}s: are workers running (`segstream status`)?",
                file=sys.stderr,
            )
            return 1
        await asyncio.sleep(0.5)


def _rules_watch(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    import redis.asyncio as aioredis

    from stream.config import configure_logging
    from stream.state.rulestore import watch

    configure_logging(settings)

    async def go() -> None:
        await watch(aioredis.Redis.from_url(settings.redis_url), settings.namespace, args.path or settings.rules_dir)

    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        pass
    return 0


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from stream.auth import manage

    if args.keys_command == "add-write":
        return manage.add(settings, "write", args.source, "write")
    if args.keys_command == "add-api":
        return manage.add(settings, "api", args.name, args.scope)
    if args.keys_command == "list":
        return manage.list_keys(settings, args.json)
    return manage.revoke(settings, args.refs)


def _rules_schema(args: argparse.Namespace, settings: Settings) -> int:
    from stream.rules import rules_json_schema

    _print_json(rules_json_schema())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand and its help."""
    parser = argparse.ArgumentParser(
        prog="segstream",
        description="Real-time behavioral customer segmentation on Kafka, faust and Redis.",
        epilog="Configuration comes from environment variables (KAFKA_BOOTSTRAP, REDIS_URL, SEGSTREAM_*); see README.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace, Settings], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    add("collector", _collector, "Serve Segment's HTTP Tracking API and write accepted events to Kafka.")
    add("worker", _worker, "Consume events, keep profiles in Redis, evaluate rules, publish segment changes.")
    add("trainer", _trainer, "Learn the models (churn, propensity, LTV, RFM, clusters) from the training topic; publish snapshots.")
    add("api", _api, "Serve the query API: profiles, memberships, segments and their members.")
    destinations = add("destinations", _destinations, "Deliver segment changes to webhooks (signed, retried, dead-lettered) and sync audience lists.")
    destinations.add_argument("--config", type=Path, help="destinations file (default: SEGSTREAM_DESTINATIONS, destinations.yaml)")
    from stream.bench.options import add_arguments as bench_arguments

    bench_arguments(add("bench", _bench, "Benchmark throughput, latency, timers and memory against ceilings and SQL; print a table, write JSON."))
    forget = add("forget", _forget, "Erase customers (GDPR/CCPA): profile, history, ids and scores; exit their segments.")
    forget.add_argument("ids", nargs="+", help="customer ids")
    forget.add_argument("--suppress", action="store_true", help="also drop every later event for these ids (suppression list)")
    export = add("export", _export, "Write segment changes and profile snapshots as date-partitioned Parquet files; query them with SQL.")
    export.add_argument("--to", type=Path, required=True, metavar="DIR", help="the export directory (one exporter and group per directory)")
    export.add_argument("--once", action="store_true", help="drain the changes topic, write a profile snapshot, exit (for cron)")
    export.add_argument("--idle", type=float, default=5.0, help="with --once: seconds without a new change that mean drained (default 5)")
    export.add_argument("--group", help="consumer group (default: <SEGSTREAM_NAMESPACE>-export)")
    export.add_argument("--sql", help="instead, run this DuckDB SQL over DIR (views changes, profiles; members_at(segment, time)); print CSV")
    models = add("models", _models, "Show the models' versions and quality (progressive validation) from the newest snapshot.")
    models.add_argument("--json", action="store_true", help="print the whole report as JSON")
    backtest = add(
        "backtest",
        _backtest,
        "Replay a history while learning the models in-process; report their quality, confusion matrices and lift per segment.",
    )
    backtest.add_argument("file", help="JSON lines (one Segment event per line) or CSV, as for replay")
    backtest.add_argument("--rules", type=Path, help="rules directory or file (default: SEGSTREAM_RULES)")
    backtest.add_argument("--snapshot-every", type=int, default=200, help="rescore with a new snapshot every N learned records (default 200)")
    backtest.add_argument("--until", help="fire timers (label horizons) up to this ISO time (default: the last event's time)")
    backtest.add_argument("--json", action="store_true", help="print the whole report as JSON")
    run = add(
        "run",
        _run,
        "Run collector, worker and API together (starting local Kafka and Redis unless KAFKA_BOOTSTRAP/REDIS_URL are set).",
    )
    run.add_argument("--no-services", action="store_true", help="never start local Kafka/Redis")
    services = add("services", _services, "Start, stop or inspect the local Kafka broker (Tansu) and redis-server.")
    services.add_argument(
        "action", choices=["up", "down", "status"], help="up: start what does not answer; down: stop what up started; status: show both"
    )
    replay = add(
        "replay",
        _replay,
        "Run a history through the rules with an event-time clock and report the changes the live system would emit.",
    )
    replay.add_argument(
        "source",
        help="a file: JSON lines (one Segment event per line) or CSV (properties.x / traits.x columns); "
        "or topic:NAME to read a Kafka topic from the beginning",
    )
    replay.add_argument("--rules", type=Path, help="rules directory or file (default: SEGSTREAM_RULES)")
    replay.add_argument("--out", type=Path, help="write the changes as JSON lines to this file")
    replay.add_argument("--out-topic", help="publish the changes to this Kafka topic (keyed by customer)")
    replay.add_argument("--until", help="fire timers up to this ISO time (default: the last event's time)")
    import_ = add("import", _import, "Import CRM records (as identify) or event histories (as track, at their own times) from a file.")
    import_.add_argument("file", type=Path, help="CSV, JSON lines or Parquet")
    import_.add_argument("--mapping", type=Path, required=True, help="mapping YAML: kind, id and time columns, traits or properties")
    import_.add_argument("--limit", type=int, help="import at most N rows in this run (the next run continues after them)")
    import_.add_argument("--restart", action="store_true", help="ignore the checkpoint and import from the first row")
    rules = sub.add_parser(
        "rules",
        help="Check, deploy, watch rule files; print their JSON Schema.",
        description="Check, deploy and watch rule files (YAML segment definitions), or print their JSON Schema.",
    )
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = _described(rules_sub, "check", "Validate rule files and report every error with file, rule and field (exit 1 on errors).")
    check.add_argument("paths", nargs="*", help="rule files or directories (default: SEGSTREAM_RULES)")
    check.set_defaults(func=_rules_check)
    deploy = _described(
        rules_sub, "deploy", "Validate rule files and make them the rule set of every running worker and API (backfilled live; needs Redis)."
    )
    deploy.add_argument("path", nargs="?", type=Path, help="rules directory or file (default: SEGSTREAM_RULES)")
    deploy.add_argument("--wait", action="store_true", help="then show the workers' backfill with a progress bar until it is done")
    deploy.add_argument("--timeout", type=float, default=600.0, help="with --wait: give up (exit 1) after this many seconds (default 600)")
    deploy.set_defaults(func=_rules_deploy)
    schema = _described(rules_sub, "schema", "Print the JSON Schema of a rule file (for editors and CI checks).")
    schema.set_defaults(func=_rules_schema)
    watch = _described(rules_sub, "watch", "Deploy the rules now and again on every change of a rule file (until Ctrl-C).")
    watch.add_argument("path", nargs="?", type=Path, help="rules directory or file (default: SEGSTREAM_RULES)")
    watch.set_defaults(func=_rules_watch)
    analytics = sub.add_parser(
        "analytics",
        help="Segment analytics: overlap between segments, and treatment-vs-holdout performance.",
        description="Segment analytics (README, Segment analytics): overlap between segments with over-segmentation warnings, "
        "and per-segment conversion, email and revenue figures for treatment vs holdout with lift and confidence intervals.",
    )
    analytics_sub = analytics.add_subparsers(dest="analytics_command", required=True, metavar="ACTION")
    overlap = _described(
        analytics_sub, "overlap", "Jaccard overlap of the segments' current members (Redis), with near-duplicate, subset and size warnings."
    )
    overlap.add_argument("--segments", help="comma-separated segments to compare (default: every deployed segment)")
    overlap.add_argument("--json", action="store_true", help="print the report (matrix, intersections, warnings) as JSON")
    overlap.set_defaults(func=_analytics_overlap)
    sizes = _described(analytics_sub, "sizes", "A segment's member count over time, as the API samples it (Redis), one line per step.")
    sizes.add_argument("segment", help="the segment")
    sizes.add_argument("--from", dest="start", help="ISO time or epoch ms (default: 24 h before --to)")
    sizes.add_argument("--to", dest="end", help="ISO time or epoch ms (default: now)")
    sizes.add_argument("--step", help="seconds per line (default: the sampling interval, widened to at most 500 lines)")
    sizes.add_argument("--json", action="store_true", help="print the points as JSON")
    sizes.set_defaults(func=_analytics_sizes)
    performance = _described(
        analytics_sub,
        "performance",
        "Replay events to find each segment's entrants and their holdout group, then compare what treatment and control did after entering.",
    )
    performance.add_argument("source", help="events: a JSON-lines or CSV file, or topic:NAME (e.g. topic:segstream.events) read from the beginning")
    performance.add_argument("--rules", type=Path, help="rules directory or file (default: SEGSTREAM_RULES)")
    performance.add_argument("--segment", action="append", help="a segment to report, repeatable (default: every segment)")
    performance.add_argument("--goal", help="the conversion event (default: SEGSTREAM_ANALYTICS_GOAL, Order Completed)")
    performance.add_argument("--within", help="window after entering, e.g. 7d (default: SEGSTREAM_ANALYTICS_WITHIN)")
    performance.add_argument("--since", help="only entries at or after this ISO time")
    performance.add_argument("--until", help="only entries before this ISO time")
    performance.add_argument("--confidence", type=float, help="confidence level of the intervals (default: SEGSTREAM_ANALYTICS_CONFIDENCE, 0.95)")
    performance.add_argument("--json", action="store_true", help="print the report as JSON")
    performance.add_argument("--save", action="store_true", help="also keep it in Redis for GET /v1/analytics/performance and the dashboard")
    performance.set_defaults(func=_analytics_performance)
    keys = sub.add_parser(
        "keys",
        help="Manage write keys (collector) and API keys (query API) in Redis; see README, Security.",
        description="Manage write keys (collector) and API keys (query API), kept in Redis as digests. "
        "Running collectors and APIs apply changes within SEGSTREAM_KEYS_REFRESH seconds.",
    )
    keys.set_defaults(func=_keys)
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    add_write = _described(keys_sub, "add-write", "Create a write key for a source (a site or app); prints it once.")
    add_write.add_argument("source", help="the source sending with this key (letters, digits, . _ -)")
    add_api = _described(keys_sub, "add-api", "Create a query-API key; prints it once.")
    add_api.add_argument("name", help="who or what uses the key (letters, digits, . _ -)")
    add_api.add_argument("--scope", choices=["read", "admin"], default="read", help="read (default), or admin: also forget and deploy rules")
    list_ = _described(keys_sub, "list", "List keys: id, kind, source or name, scope, last 4 characters, dates (never a key).")
    list_.add_argument("--json", action="store_true", help="print the records as JSON")
    revoke = _described(keys_sub, "revoke", "Revoke keys by id, or by name when it names one active key.")
    revoke.add_argument("refs", nargs="+", metavar="ID_OR_NAME", help="key ids (`segstream keys list`) or names")
    tail = add(
        "tail",
        _tail,
        "Watch segment changes live from the changes topic: one line each (time, customer, entered/exited, segment, reason).",
    )
    tail.add_argument("--segment", help="only this segment's changes")
    tail.add_argument("--customer", help="only this customer's changes")
    tail.add_argument("--json", action="store_true", help="print each change record as one JSON line")
    tail.add_argument("--from-beginning", action="store_true", help="start with the oldest change the topic keeps (default: from now on)")
    tail.add_argument("--idle", type=float, metavar="SECONDS", help="stop after this many seconds without a change (default: never)")
    status = add(
        "status",
        _status,
        "Summarise the engine: Kafka and Redis reachable, topics, committed offsets and lag, live workers, rule version, "
        "segment sizes, model quality. Exit 1 when Kafka or Redis does not answer.",
    )
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.add_argument(
        "--worker",
        action="append",
        metavar="URL",
        help="a worker's metrics address for lag, repeatable (default: http://127.0.0.1:SEGSTREAM_WORKER_PORT)",
    )
    return parser


def _described(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", name: str, text: str) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` shows ``text`` as its description too."""
    return sub.add_parser(name, help=text, description=text)


def _print_report(as_json: bool, report: Any, table: Callable[[Any], str]) -> None:
    """Print ``report`` as indented JSON (``--json``), else as ``table`` renders it."""
    if as_json:
        _print_json(report)
    else:
        print(table(report))


def _print_json(value: object) -> None:
    """Print ``value`` as indented JSON on stdout (the ``--json`` of every command)."""
    import orjson

    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``segstream`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:  # inputs are never echoed: they may be secrets
        print(f"segstream: the configuration in the environment is invalid (see README, Configuration):\n{exc}", file=sys.stderr)
        return 2
    return int(args.func(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
