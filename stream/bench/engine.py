"""The engine under test: fresh namespaces, segstream's own processes, and a private redis-server.

Every part of the benchmark runs the real processes (``python -m stream.cli
worker|collector``) against the configured Kafka, each part in a namespace of its
own (``bench<part><hex>``: fresh topics, consumer group and Redis keys), and
removes its topics, keys and processes afterwards.

Redis is, by default, a private ``redis-server`` the benchmark starts on a free
loopback port with the same settings as ``segstream services`` (append-only file
on): on a shared machine, INFO's memory and command counters then measure
segstream alone. ``Env(redis_url=...)`` uses a given Redis instead.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from stream import processes, services
from stream.bench import workload
from stream.bench.errors import BenchError
from stream.config import Settings
from stream.envelope import envelopes, pack
from stream.kafka import admin, ensure_topics, producer_config
from stream.processes import Proc, free_port
from stream.state import keys
from stream.state.store import read_stored

#: Seconds a started worker group may take to own every partition (the consumer-group join).
JOIN_TIMEOUT_S = 90.0
#: Event time may be this old and still count, in the bench's workers (the workload spans 40 days).
ALLOWED_LATENESS_S = 60 * 86_400.0

T = TypeVar("T")


def encode(records: Iterable[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """Events-topic records as ``(key, value)`` pairs: keyed by ``userId``, as the collector keys them."""
    return [(str(r["userId"]).encode(), orjson.dumps(r)) for r in records]


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """:func:`stream.processes.wait_until` retrying connection errors only, failing with :class:`BenchError`."""
    return processes.wait_until(check, timeout, what, interval, (OSError, redis.RedisError), BenchError)


class PrivateRedis:
    """A redis-server of the benchmark's own, on a free loopback port, configured as ``segstream services`` does."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.settings = Settings().model_copy(update={"redis_url": self.url, "state_dir": root / "redis-state"})
        self.service = services.Redis(self.settings)
        self.log_path = root / "redis-server.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        try:
            binary = self.service.binary()
        except services.ServiceError as exc:
            raise BenchError(str(exc)) from exc
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.service.command(binary), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        client = redis.Redis.from_url(self.url, socket_timeout=2)

        def answers() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                raise BenchError(f"the bench's redis-server exited while starting; its log:\n{self.log_path.read_text(errors='replace')[-2000:]}")
            return bool(client.ping())

        try:
            wait_until(answers, 20, f"the bench's redis-server on port {self.port}")
        finally:
            client.close()
        return self

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


@dataclass
class Env:
    """Where the benchmark runs: the base settings, its Redis, and what it must clean up."""

    base: Settings
    redis_url: str | None = None
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="segstream-bench-")))
    private: PrivateRedis | None = None
    namespaces: list[str] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._client: redis.Redis | None = None
        if self.redis_url is None:
            self.private = PrivateRedis(self.root).start()
            self.redis_url = self.private.url
        self.rules_dir = self.root / "rules"
        workload.write_rules(self.rules_dir)

    @property
    def redis_server(self) -> tuple[str, int]:
        """Host and port of the Redis the engine uses (for ``redis-benchmark``)."""
        client = self.redis()
        kwargs = client.connection_pool.connection_kwargs
        return str(kwargs.get("host", "127.0.0.1")), int(kwargs.get("port", 6379))

    def redis(self) -> redis.Redis:
        """The bench's own client of the engine's Redis (one, kept: polling adds no connections)."""
        if self._client is None:
            assert self.redis_url is not None
            self._client = redis.Redis.from_url(self.redis_url)
        return self._client

    def fresh(self, part: str, rules_dir: Path | None = None, **overrides: Any) -> Settings:
        """Settings of a new namespace for ``part`` (topics created, free ports, quiet logs)."""
        namespace = f"bench{part}{uuid.uuid4().hex[:8]}"
        settings = self.base.model_copy(
            update={
                "namespace": namespace,
                "redis_url": self.redis_url,
                "rules_dir": rules_dir or self.rules_dir,
                "collector_port": free_port(),
                "api_port": free_port(),
                "allowed_lateness_s": ALLOWED_LATENESS_S,
                "log_level": "WARNING",
                "state_dir": self.root / "state",
                **overrides,
            }
        )
        self.namespaces.append(namespace)
        ensure_topics(settings)
        return settings

    def start(self, settings: Settings, command: str, name: str | None = None) -> Proc:
        """Start ``segstream <command>`` with ``settings``."""
        label = name or command
        proc = Proc(label, settings, [command], self.root / f"{settings.namespace}-{label}.log").start()
        self.procs.append(proc)
        return proc

    def stop(self, procs: Iterable[Proc]) -> None:
        for proc in procs:
            proc.stop()

    def check_alive(self, procs: Iterable[Proc]) -> None:
        """:class:`BenchError` with the log of the first process that exited."""
        for proc in procs:
            if not proc.alive():
                raise BenchError(f"segstream {proc.name} exited (code {proc.popen.returncode if proc.popen else None}); its log:\n{proc.log_tail()}")

    def wait_http(self, url: str, procs: list[Proc], timeout: float = 30.0) -> None:
        """Wait until ``url`` answers 200 (failing at once if one of ``procs`` exited)."""

        def answers() -> bool:
            self.check_alive(procs)
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200

        wait_until(answers, timeout, f"{url} to answer")

    def wait_workers(
        self, settings: Settings, workers: list[Proc], since_ms: float, timeout: float = JOIN_TIMEOUT_S, stable_s: float = 2.0
    ) -> None:
        """Wait until ``len(workers)`` workers that beat since ``since_ms`` own every partition between them,
        each its own (no partition claimed twice, as in the middle of a rebalance), unchanged for ``stable_s``."""
        client = self.redis()
        seen: list[Any] = [None, 0.0]  # the assignment last observed, and since when

        def settled() -> bool:
            self.check_alive(workers)
            now = time.time() * 1000
            beats = {k: orjson.loads(v) for k, v in client.hgetall(keys.workers(settings.namespace)).items()}
            live = {k: tuple(sorted(b["partitions"])) for k, b in beats.items() if b["at"] >= max(since_ms, now - 3000) and b["partitions"]}
            owned = [p for parts in live.values() for p in parts]
            if len(live) != len(workers) or sorted(owned) != list(range(settings.partitions)):
                seen[0] = None
                return False
            assignment = sorted(live.items())
            if assignment != seen[0]:
                seen[0], seen[1] = assignment, time.monotonic()
            return time.monotonic() - seen[1] >= stable_s

        wait_until(settled, timeout, f"{len(workers)} worker(s) to own all {settings.partitions} partitions, one owner each")

    def stat(self, settings: Settings, name: str) -> int:
        """A counter of the namespace's stats hash (``events``, ``changes``…)."""
        return int(self.redis().hget(keys.stats(settings.namespace), name) or 0)

    def stats(self, settings: Settings) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.redis().hgetall(keys.stats(settings.namespace)).items()}

    def members(self, settings: Settings, segments: Iterable[str]) -> dict[str, set[str]]:
        """Each segment's current members, from the Redis member sets (what ``/v1/segments/{name}/members`` lists)."""
        client = self.redis()
        return {name: {m.decode() for m in client.zrange(keys.segment(settings.namespace, name), 0, -1)} for name in segments}

    def profile_members(self, settings: Settings, segments: Iterable[str]) -> dict[str, set[str]]:
        """Each segment's members according to the profiles themselves (what ``/v1/customers/{id}/segments`` says)."""
        client = self.redis()
        out: dict[str, set[str]] = {name: set() for name in segments}
        profile_keys = list(client.scan_iter(match=keys.profile_pattern(settings.namespace), count=5000))
        for start in range(0, len(profile_keys), 5000):
            pipe = client.pipeline(transaction=False)
            for key in profile_keys[start : start + 5000]:
                pipe.get(key)
            for raw in pipe.execute():
                if (profile := read_stored(raw)) is not None:
                    for name in profile.memberships:
                        if name in out:
                            out[name].add(profile.customer_id)
        return out

    def produce(
        self, settings: Settings, records: Iterable[tuple[bytes, bytes]], progress: Callable[[int], None] | None = None
    ) -> dict[int, int]:
        """Write ``(key, value)`` events to the events topic as the collector does under load, in envelopes
        (see :func:`encode`, :mod:`stream.envelope`); returns each partition's end offset."""
        producer = Producer(producer_config(settings, **{"linger.ms": 20, "batch.num.messages": 10000, "message.timeout.ms": 60000}))
        errors: list[str] = []
        ends: dict[int, int] = {}

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                ends[msg.partition()] = max(ends.get(msg.partition(), 0), msg.offset() + 1)

        events = list(records)
        n = 0
        for partition, group in envelopes(events, settings.partitions):
            entries = [events[i] for i in group]
            while True:
                try:
                    producer.produce(settings.events_topic, value=pack(entries), partition=partition, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.05)
            n += len(entries)
            producer.poll(0)
            if progress:
                progress(n)
        left = producer.flush(60)
        if left or errors:
            raise BenchError(f"Kafka at {settings.kafka_bootstrap} did not take {left + len(errors)} envelopes of {n} events: {errors[:1]}")
        return ends

    def wait_committed(self, settings: Settings, ends: dict[int, int], procs: list[Proc], timeout: float = 60.0) -> None:
        """Wait until the worker group committed every partition up to ``ends``: every event was processed."""
        consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": settings.consumer_group, "enable.auto.commit": False})
        try:

            def caught_up() -> bool:
                self.check_alive(procs)
                committed = consumer.committed([TopicPartition(settings.events_topic, p) for p in ends], timeout=10)
                return all(tp.offset >= ends[tp.partition] for tp in committed)

            wait_until(caught_up, timeout, f"the worker group to commit every offset of {settings.events_topic}", interval=0.2)
        finally:
            consumer.close()

    def cleanup(self, namespace: str) -> None:
        """Delete a namespace's topics (faust's too) and Redis keys."""
        client = admin(self.base)
        topics = [t for t in client.list_topics(timeout=10).topics if t.startswith((f"{namespace}.", f"{namespace}-"))]
        if topics:
            for future in client.delete_topics(topics, request_timeout=30).values():
                try:
                    future.result(30)
                except Exception:  # noqa: BLE001 - a topic already gone is fine; the rest is reported below
                    pass
        r = self.redis()
        batch: list[bytes] = []
        for key in r.scan_iter(match=f"{namespace}:*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                r.unlink(*batch)
                batch.clear()
        if batch:
            r.unlink(*batch)

    def close(self) -> None:
        """Stop every process, delete every namespace, stop the private redis-server, remove the work directory."""
        self.stop(self.procs)
        problems = []
        for namespace in self.namespaces:
            try:
                self.cleanup(namespace)
            except Exception as exc:  # noqa: BLE001 - reported, the rest still cleaned
                problems.append(f"{namespace}: {exc}")
        if self._client is not None:
            self._client.close()
        if self.private is not None:
            self.private.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if problems:
            print(f"bench: could not clean up {'; '.join(problems)}", file=sys.stderr)
