"""Chaos while events flow: workers SIGKILLed again and again, redis-server killed and restarted,
Kafka unreachable for a while. After each, every accepted event counts exactly once, every change
is delivered at least once with a stable id, and final memberships equal a clean run
(``tests.e2e.chaos.check_exact``).

Real Tansu brokers and real redis-servers; the only fake is a TCP proxy that cuts Kafka off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.config import Settings
from tests.e2e.chaos import (
    LAST_WORDS,
    RULES,
    Attempt,
    DedicatedRedis,
    ProxiedKafka,
    Sender,
    check_exact,
    last_words_applied,
    pending_markers,
    start_workers,
    stat,
    to_collector,
    to_kafka,
)
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import Proc, wait_until

CUSTOMERS = [f"c{i:02d}" for i in range(40)]
KILLS = 4
KILL_EVERY_S = 3.0
#: Longer than the consumer-group session timeout (8 s).
OUTAGE_S = 10.0


def alive(proc: Proc) -> bool:
    return proc.popen is not None and proc.popen.poll() is None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[DedicatedRedis]:
    """A redis-server of this test alone (append-only file fsynced at every write), stopped afterwards."""
    server = DedicatedRedis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[ProxiedKafka]:
    """A Tansu broker of this test alone, reached only through a proxy the test can cut."""
    broker = ProxiedKafka(tmp_path / "kafka")
    yield broker
    broker.stop()


@pytest.mark.timeout(150)
def test_workers_sigkilled_again_and_again_while_events_flow(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(base_settings, tmp_path, RULES, partitions=8, batch_max=100)
    eng = Engine(settings)
    names = ["worker", "worker2"]
    sender: Sender | None = None
    try:
        start_workers(eng, names)
        eng.wait_partitions_owned(since_ms=time.time() * 1000 - 1000)
        sender = Sender(CUSTOMERS, to_kafka(settings)).start()
        wait_until(lambda: stat(settings, "events") >= 200, 30, "progress before the first kill")
        for kill in range(KILLS):
            victim = names[kill % 2]
            eng.procs[victim].kill()
            start_workers(eng, [victim])  # its supervisor restarts it at once
            time.sleep(KILL_EVERY_S)  # the next kill may land while the group is still rebalancing
        sender.stop()
        eng.wait_partitions_owned(since_ms=time.time() * 1000, timeout=60)
        outcome = check_exact(settings, sender.accepted, timeout=90, procs=eng.procs.values())
        assert len(outcome.events) > 1000
        outcome.assert_events_counted_once()
    finally:
        if sender is not None:
            sender.abandon()
        eng.stop()


@pytest.mark.timeout(120)
def test_redis_server_killed_and_restarted_mid_stream(
    base_settings: Settings, tmp_path: Path, redis_server: DedicatedRedis
) -> None:
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES, redis_url=redis_server.url)
    eng = Engine(settings)
    attempts: list[Attempt] = []
    sender: Sender | None = None
    try:
        eng.start("collector", "worker")
        sender = Sender(CUSTOMERS, to_collector(eng.collector_url, attempts)).start()
        wait_until(lambda: stat(settings, "events") >= 200, 30, f"progress before the crash; {eng.worker_log()}")
        redis_server.crash_and_restart(down_for=2.0)
        time.sleep(3.0)
        sender.stop()
        assert alive(eng.procs["worker"]) and alive(eng.procs["collector"])
        assert "retrying" in eng.procs["worker"].log_path.read_text(), "the worker never noticed Redis was gone"
        # The collector writes to Kafka only (it keeps the write keys it read before): 200 throughout.
        assert {a.status for a in attempts} == {200}
        outcome = check_exact(settings, sender.accepted, procs=eng.procs.values())
        outcome.assert_events_counted_once()
    finally:
        if sender is not None:
            sender.abandon()
        eng.stop()


@pytest.mark.timeout(150)
def test_kafka_unreachable_collector_answers_503_and_worker_pauses_then_resumes(
    base_settings: Settings, tmp_path: Path, kafka: ProxiedKafka
) -> None:
    settings = settings_with_rules(
        base_settings, tmp_path / "rules", RULES, kafka_bootstrap=kafka.bootstrap, produce_timeout_s=2.0
    )
    eng = Engine(settings)
    attempts: list[Attempt] = []
    sender: Sender | None = None
    try:
        eng.start("collector", "worker")
        sender = Sender(CUSTOMERS, to_collector(eng.collector_url, attempts)).start()
        wait_until(lambda: stat(settings, "events") >= 200, 30, f"progress before the outage; {eng.worker_log()}")
        # Some customers fall silent just before the outage: their timers fall due while Kafka is away.
        silent = CUSTOMERS[:6]
        sender.retire({c: LAST_WORDS for c in silent})
        wait_until(lambda: last_words_applied(settings, sender, silent), 20, "the silent customers' last events applied")
        kafka.proxy.cut()
        cut = time.monotonic()
        held = 0
        while time.monotonic() - cut < 2.0:  # what the worker had fetched before the cut settles
            held = max(held, pending_markers(settings))
            time.sleep(0.2)
        paused_at = stat(settings, "events")
        while time.monotonic() - cut < OUTAGE_S:
            held = max(held, pending_markers(settings))
            time.sleep(0.2)
        # Paused, not dead: no progress, but the processes run.
        assert stat(settings, "events") == paused_at
        assert alive(eng.procs["worker"]) and alive(eng.procs["collector"])
        kafka.proxy.restore()
        restored = time.monotonic()
        wait_until(
            lambda: any(a.status == 200 and a.started > restored for a in attempts), 30, "the collector accepting again"
        )
        time.sleep(1.0)
        sender.stop()

        # During the outage: 503, never 200 (nor silence).
        during = [a.status for a in attempts if a.started > cut + 0.1 and a.ended < restored]
        assert during and set(during) == {503}, f"answers while Kafka was unreachable: {sorted(set(during))}"
        # Decisions of timers that fell due in the outage were held in the outbox, not lost.
        assert held > 0, "no change was decided while Kafka was unreachable; the timers were not exercised"
        outcome = check_exact(settings, sender.accepted, timeout=90, procs=eng.procs.values())
        assert alive(eng.procs["worker"]) and alive(eng.procs["collector"])
        outcome.assert_events_counted_once()
    finally:
        if sender is not None:
            sender.abandon()
        eng.stop()

