"""Chaos tooling for end-to-end tests: a TCP proxy that can cut Kafka off, dedicated
redis-server and Tansu instances a test may kill, a stream of events that keeps
flowing while it does, and the check that the engine came out of it exact.

The check compares a chaotic run with a clean one: the clean run is the engine's
own pure evaluation code (:func:`stream.replay.replay`) over the very events that
reached Kafka, so nothing about the chaos can leak into the expectation.
"""

from __future__ import annotations

import asyncio
import base64
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import redis
from confluent_kafka import Producer

from stream import services
from stream.config import Settings
from stream.kafka import producer_config
from stream.replay import replay
from stream.rules import load_rules
from stream.state import keys
from stream.state.profile import Profile, event_time, iso, now_ms
from stream.state.rulestore import policy_settings
from stream.state.store import read_stored
from tests.e2e.engine import Engine
from tests.e2e.harness import Proc, TopicReader, free_port

#: Rules with long windows (stable final state), a short window (exits by timer) and an
#: absence trigger (entries by timer, with no event): timers matter to the final memberships.
RULES = """
segments:
  - name: viewers
    condition: {event: Product Viewed, within: 1d, count: {gte: 4}}
  - name: buyers
    condition: {event: Order Completed, within: 1d}
  - name: cart_abandoners
    condition: {event: Product Added, without: Order Completed, within: 3s}
  - name: burst
    condition: {event: Product Viewed, within: 2s, count: {gte: 3}}
"""
#: After the last event, every short deadline of RULES has passed by then (ms).
SETTLED_AFTER_MS = 3_500
#: The last events of a customer that falls silent: a burst (enters `burst`, exits by timer 2 s
#: after its first view) and an add to cart (enters `cart_abandoners` by timer 3 s later).
LAST_WORDS = ["Product Viewed", "Product Viewed", "Product Viewed", "Product Added"]
ACTIONS = ("Product Viewed", "Product Viewed", "Product Viewed", "Product Added", "Order Completed", None)


# --- Kafka behind a proxy -------------------------------------------------------------------------


class Proxy:
    """A TCP proxy on loopback in front of ``127.0.0.1:target``; ``cut()`` makes it unreachable.

    ``cut`` closes the listening socket (new connections are refused) and aborts every
    open connection; ``restore`` listens on the same port again. It runs its own event
    loop in a daemon thread, so the test's code stays synchronous.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    def start(self) -> "Proxy":
        self._thread.start()
        self.restore()
        return self

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def restore(self) -> None:
        """Accept and forward connections again."""
        self._run(self._listen())

    def cut(self) -> None:
        """Refuse new connections and abort the open ones, as a network partition seen by the client would."""
        self._run(self._cut())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for client, upstream in list(self._open):
            client.transport.abort()
            upstream.transport.abort()
        self._open.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        if self._server is None:  # cut while connecting
            writer.transport.abort()
            up_writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._open.add(pair)
        pumps = [asyncio.ensure_future(self._pump(reader, up_writer)), asyncio.ensure_future(self._pump(up_reader, writer))]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        self._open.discard(pair)
        writer.transport.abort()
        up_writer.transport.abort()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass


class ProxiedKafka:
    """A dedicated Tansu broker whose every client goes through a :class:`Proxy`.

    Kafka clients connect to the address the broker advertises in its metadata, not
    only to the bootstrap address, so the broker advertises the proxy's port.
    """

    def __init__(self, state_dir: Path) -> None:
        listen = free_port()
        self.proxy = Proxy(listen).start()
        local = Settings().model_copy(update=dict(kafka_bootstrap=f"127.0.0.1:{listen}", state_dir=state_dir))
        self.service = services.Kafka(local, advertised=services.Endpoint("127.0.0.1", self.proxy.port))
        services.start_one(self.service)

    @property
    def bootstrap(self) -> str:
        """What clients use: the proxy."""
        return f"127.0.0.1:{self.proxy.port}"

    def stop(self) -> None:
        services.stop_one(self.service)
        self.proxy.close()


class DedicatedRedis:
    """A redis-server of one test on a free port, append-only file fsynced at every write."""

    def __init__(self, state_dir: Path) -> None:
        local = Settings().model_copy(update=dict(redis_url=f"redis://127.0.0.1:{free_port()}/0", state_dir=state_dir))
        self.service = services.Redis(local, appendfsync="always")
        services.start_one(self.service)

    @property
    def url(self) -> str:
        return self.service.settings.redis_url

    def crash_and_restart(self, down_for: float) -> None:
        """SIGKILL it, stay down ``down_for`` seconds, start it again on the same port and directory."""
        services.stop_one(self.service, crash=True)
        time.sleep(down_for)
        services.start_one(self.service)

    def stop(self) -> None:
        services.stop_one(self.service)


# --- a stream of events ---------------------------------------------------------------------------


@dataclass
class Attempt:
    """One delivery attempt of a wave: when it started and ended (monotonic s) and the HTTP status."""

    started: float
    ended: float
    status: int


Deliver = Callable[[list[dict[str, Any]]], bool]


def to_kafka(settings: Settings) -> Deliver:
    """Deliver waves straight to the events topic (keyed by customer, acks=all), as a producer service would."""
    producer = Producer(producer_config(settings, **{"message.timeout.ms": 30_000}))

    def deliver(events: list[dict[str, Any]]) -> bool:
        failed: list[str] = []
        for e in events:
            producer.produce(
                settings.events_topic,
                key=e["userId"].encode(),
                value=orjson.dumps(e),
                on_delivery=lambda err, _m: err is not None and failed.append(err.str()),
            )
        producer.flush(30)
        assert not failed, f"Kafka refused test events: {failed[:3]}"
        return True

    return deliver


def to_collector(url: str, attempts: list[Attempt]) -> Deliver:
    """Deliver waves as ``/v1/batch`` requests; a wave answered 503 is not accepted (the sender retries it)."""
    auth = {"Authorization": "Basic " + base64.b64encode(b"chaos-key:").decode(), "Content-Type": "application/json"}

    def deliver(events: list[dict[str, Any]]) -> bool:
        body = orjson.dumps({"batch": events})
        request = urllib.request.Request(f"{url}/v1/batch", data=body, headers=auth, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=15) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        except OSError:
            status = 0  # no answer at all (connection refused or reset)
        attempts.append(Attempt(started, time.monotonic(), status))
        assert status in (0, 200, 503), f"the collector answered {status} to a valid batch"
        return status == 200

    return deliver


@dataclass
class Sender:
    """Sends a wave of events every ``interval`` s in a thread until stopped.

    In each wave every active customer does one random thing (view, add to cart,
    order, or nothing). A wave that is not accepted is sent again, unchanged (same
    ``messageId`` and time), until it is, as an SDK retries. ``retire`` makes some
    customers do a last few things and then fall silent, so from then on only their
    timers can change them.
    """

    customers: list[str]
    deliver: Deliver
    interval: float = 0.2
    seed: int = 7
    #: Every event accepted so far, in order.
    accepted: list[dict[str, Any]] = field(default_factory=list)
    #: Customers whose last events were accepted.
    silenced: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._stop = threading.Event()
        self._abandon = threading.Event()
        self._lock = threading.Lock()
        self._last_words: dict[str, list[str]] = {}
        self._retired: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="sender", daemon=True)
        self._error: BaseException | None = None
        self._clock = 0
        self._waves = 0

    def start(self) -> "Sender":
        self._thread.start()
        return self

    def retire(self, last_words: dict[str, list[str]]) -> None:
        """Customer -> the events it sends in the next wave, its last ones."""
        with self._lock:
            self._last_words.update(last_words)

    def stop(self) -> "Sender":
        """Stop after the wave in flight (it is still retried until accepted); raises if sending failed."""
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the sender did not stop within 60 s"
        if self._error is not None:
            raise AssertionError(f"the sender failed: {self._error!r}") from self._error
        return self

    def abandon(self) -> None:
        """Stop at once, giving up the wave in flight (teardown of a failed test)."""
        self._abandon.set()
        self._stop.set()
        self._thread.join(30)

    def sent_by(self, customer: str) -> int:
        return sum(e["userId"] == customer for e in list(self.accepted))

    def _ts(self) -> int:
        self._clock = max(self._clock + 1, now_ms())  # strictly increasing: no two events share a millisecond
        return self._clock

    def _wave(self) -> tuple[list[dict[str, Any]], set[str]]:
        with self._lock:
            last_words, self._last_words = self._last_words, {}
        events: list[dict[str, Any]] = []
        for cid in self.customers:
            if cid in self._retired:
                continue
            names = last_words.get(cid)
            if names is None:
                action = self._rng.choice(ACTIONS)
                names = [action] if action else []
            for name in names:
                events.append(
                    {
                        "type": "track",
                        "event": name,
                        "userId": cid,
                        "timestamp": iso(self._ts()),
                        "messageId": f"{cid}-{self._waves}-{len(events)}",
                        "properties": {"product_id": f"p{self._rng.randrange(5)}"},
                    }
                )
        self._retired |= last_words.keys()
        return events, set(last_words)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                events, retired = self._wave()
                while events and not self.deliver(events):
                    if self._abandon.wait(0.3):  # refused: retry the very same events
                        return
                self.accepted += events
                self.silenced |= retired
                self._waves += 1
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self._error = exc


# --- reading the engine's state -------------------------------------------------------------------


def redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_timeout=5)


def profiles(settings: Settings, customers: Iterable[str]) -> dict[str, Profile]:
    """The stored profiles of ``customers`` (missing ones left out)."""
    ids = list(customers)
    pipe = redis_client(settings).pipeline(transaction=False)
    for cid in ids:
        pipe.get(keys.profile(settings.namespace, cid))
    found = {cid: read_stored(raw) for cid, raw in zip(ids, pipe.execute())}
    return {cid: p for cid, p in found.items() if p is not None}


def heartbeats(settings: Settings) -> dict[str, dict[str, Any]]:
    """Worker id -> its last heartbeat (``partitions``, ``at``)."""
    raw = redis_client(settings).hgetall(keys.workers(settings.namespace))
    return {k.decode(): orjson.loads(v) for k, v in raw.items()}


def owners(settings: Settings, since_ms: float) -> dict[str, list[int]]:
    """Workers that beat after ``since_ms`` and within the last 3 s -> the partitions they own."""
    fresh = max(since_ms, time.time() * 1000 - 3000)
    return {w: b["partitions"] for w, b in heartbeats(settings).items() if b["at"] >= fresh}


def stat(settings: Settings, name: str) -> int:
    return int(redis_client(settings).hget(keys.stats(settings.namespace), name) or 0)


def pending_markers(settings: Settings) -> int:
    client = redis_client(settings)
    return sum(client.zcard(keys.pending(settings.namespace, p)) for p in range(settings.partitions))


def members(settings: Settings, segments: Iterable[str]) -> dict[str, set[str]]:
    client = redis_client(settings)
    return {s: {m.decode() for m in client.zrange(keys.segment(settings.namespace, s), 0, -1)} for s in segments}


def start_workers(eng: Engine, names: list[str]) -> dict[str, Proc]:
    """Start worker processes named ``names``; returns them by worker id (``host:pid``, as they beat)."""
    procs = {}
    for name in names:
        proc = eng.procs[name] = Proc(name, eng.settings, ["worker"]).start()
        assert proc.popen is not None
        procs[f"{socket.gethostname()}:{proc.popen.pid}"] = proc
    return procs


def all_profiles(settings: Settings, customers: list[str]) -> dict[str, Profile] | None:
    """The profiles of ``customers`` once every one of them has one."""
    found = profiles(settings, customers)
    return found if len(found) == len(customers) else None


def last_words_applied(settings: Settings, sender: "Sender", customers: list[str]) -> bool:
    """True when ``customers`` were retired and a worker applied every event they sent."""
    now = profiles(settings, customers)
    return all(c in sender.silenced and c in now and sum(now[c].counts.values()) == sender.sent_by(c) for c in customers)


def sharing(settings: Settings, workers: dict[str, Proc], since_ms: float) -> dict[str, list[int]] | None:
    """The live workers' partitions when each of ``workers`` owns some and together they own all, disjointly."""
    owned = {w: p for w, p in owners(settings, since_ms).items() if w in workers}
    everything = sorted(p for parts in owned.values() for p in parts)
    if len(owned) == len(workers) and all(owned.values()) and everything == list(range(settings.partitions)):
        return owned
    return None


# --- the check ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a checked run ended with, for assertions specific to a test."""

    settings: Settings
    events: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    profiles: dict[str, Profile]
    expected: dict[str, set[str]]

    def assert_events_counted_once(self) -> None:
        """The ``events`` counter (``GET /v1/stats``, ``segstream_events_total``) counts each record of the topic once.

        Checked last by the tests: it fails while the worker counts every delivery of a
        record (redeliveries after a crash or rebalance included) rather than every
        record it applies.
        """
        counted = stat(self.settings, "events")
        assert counted == len(self.events), (
            f"the events counter says {counted}, but {len(self.events)} records are in the events topic "
            "(each applied once, as the profiles show): redelivered records were counted again"
        )


def read_all(settings: Settings, topic: str, at_least: int, timeout: float) -> list[dict[str, Any]]:
    """Every record of ``topic``: at least ``at_least``, then until a second passes with no new one."""
    reader = TopicReader(settings, topic)
    try:
        reader.wait_for(lambda r: len(r) >= at_least, timeout, f"{at_least} records in {topic}")
        while len(reader.records) != len(reader.poll(1.0)):
            pass
        return reader.records
    finally:
        reader.close()


def clean_run(settings: Settings, events: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Customer -> segments after ``events`` with nothing going wrong: the worker's own rule code, replayed
    in event-time order with every timer firing on time, until every short deadline of the rules passed."""
    ruleset = load_rules(settings.rules_dir)
    policy = replace(ruleset.policy(settings.history_max_events), **policy_settings(settings))
    until = max(event_time(e) for e in events) + SETTLED_AFTER_MS
    result = replay(events, ruleset, policy, until=until)
    return {cid: set(p.memberships) for cid, p in result.profiles.items()}


def _live(settings: Settings, customers: list[str], segments: list[str]) -> tuple[dict[str, Profile], dict[str, set[str]]]:
    """Stored profiles, and customer -> segments as the member sets say."""
    stored = profiles(settings, customers)
    by_customer: dict[str, set[str]] = defaultdict(set)
    for segment, ids in members(settings, segments).items():
        for cid in ids:
            by_customer[cid].add(segment)
    return stored, {cid: by_customer.get(cid, set()) for cid in customers}


def _published(settings: Settings, diffs: list[str]) -> str:
    """The changes of the first customers in ``diffs``, in the order they were published (for failure messages)."""
    named = {d.split()[0] for d in diffs[:3]}
    reader = TopicReader(settings, settings.changes_topic)
    try:
        records = reader.poll(3.0)
    finally:
        reader.close()
    lines = [
        f"{r['customer_id']} seq {r['seq']} {r['segment']} {r['change']} at {r['at']}"
        for r in records
        if r["customer_id"] in named
    ]
    return "changes in publication order:\n" + "\n".join(lines)


def _complaints(procs: Iterable[Proc]) -> str:
    """The warnings and errors the engine's processes logged (for failure messages)."""
    out = []
    for proc in procs:
        lines = [line for line in proc.log_tail(200_000).splitlines() if "WARNING" in line or "ERROR" in line]
        out.append(f"{proc.name} ({proc.log_path}), last warnings and errors:\n" + "\n".join(lines[-15:]))
    return "\n".join(out)


def check_exact(
    settings: Settings, accepted: list[dict[str, Any]], timeout: float = 60, procs: Iterable[Proc] = ()
) -> Outcome:
    """Wait for the engine to settle, then check the promises of README "How state stays exact".

    * every accepted event is in Kafka and is counted exactly once in the profiles (the
      ``events`` counter is checked apart: :meth:`Outcome.assert_events_counted_once`);
    * final memberships (profiles and member sets) equal a clean run over the same events;
    * every decided change was delivered at least once, with a stable id, gap-free ``seq``
      per customer, and the last change of each (customer, segment) agreeing with membership.
    """
    segments = sorted(load_rules(settings.rules_dir).segments)
    events = read_all(settings, settings.events_topic, len(accepted), 30)
    in_kafka = {e.get("messageId") for e in events}
    lost = [e["messageId"] for e in accepted if e["messageId"] not in in_kafka]
    assert not lost, f"{len(lost)} accepted events are not in Kafka, e.g. {lost[:5]}"
    distinct = {e["messageId"]: e for e in events}
    expected_counts: dict[str, Counter[str]] = defaultdict(Counter)
    for e in distinct.values():
        expected_counts[e["userId"]][e["event"]] += 1
    customers = sorted(expected_counts)
    expected = clean_run(settings, events)
    assert set(expected) == set(customers)

    def differences() -> list[str]:
        stored, in_sets = _live(settings, customers, segments)
        diffs = []
        for cid in customers:
            p = stored.get(cid)
            if p is None or p.counts != expected_counts[cid]:
                diffs.append(f"{cid} counts {p and p.counts} != {dict(expected_counts[cid])}")
            elif set(p.memberships) != expected[cid]:
                diffs.append(f"{cid} profile memberships {sorted(p.memberships)} != clean run {sorted(expected[cid])}")
            elif in_sets[cid] != expected[cid]:
                diffs.append(f"{cid} in member sets {sorted(in_sets[cid])} != clean run {sorted(expected[cid])}")
        if not diffs and (n := pending_markers(settings)):
            diffs.append(f"{n} outbox entries not confirmed published")
        return diffs

    deadline = time.monotonic() + timeout
    while diffs := differences():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not settled after {timeout}s: {len(diffs)} differences, e.g. {diffs[:5]}\n{_published(settings, diffs)}\n"
                + _complaints(procs)
            )
        time.sleep(0.5)

    stored = profiles(settings, customers)
    changes = read_all(settings, settings.changes_topic, sum(p.seq for p in stored.values()), 30)
    by_id: dict[str, set[bytes]] = defaultdict(set)
    ids_by_seq: dict[tuple[str, int], set[str]] = defaultdict(set)
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for c in changes:
        by_id[c["id"]].add(orjson.dumps(c, option=orjson.OPT_SORT_KEYS))
        ids_by_seq[(c["customer_id"], c["seq"])].add(c["id"])
        key = (c["customer_id"], c["segment"])
        if key not in latest or latest[key]["seq"] < c["seq"]:
            latest[key] = c
    unstable = [i for i, contents in by_id.items() if len(contents) > 1]
    assert not unstable, f"ids published with different contents: {[sorted(by_id[i]) for i in unstable[:2]]}"
    forked = [k for k, ids in ids_by_seq.items() if len(ids) > 1]
    assert not forked, f"(customer, seq) published under several ids: {forked[:5]}"
    for cid, p in stored.items():
        seqs = sorted(seq for (c, seq) in ids_by_seq if c == cid)
        assert seqs == list(range(1, p.seq + 1)), f"{cid}: delivered seqs {seqs} != 1..{p.seq}"
        for segment in segments:
            last = latest.get((cid, segment))
            is_member = last is not None and last["change"] == "entered"
            assert is_member == (segment in p.memberships), f"{cid} {segment}: last change {last}, in {sorted(p.memberships)}"
    assert not [k for k in redis_client(settings).hkeys(keys.stats(settings.namespace)) if k.startswith(b"dead_letter:")]
    return Outcome(settings, events, changes, stored, expected)
