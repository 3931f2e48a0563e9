"""The HTTP load generator: an aiohttp client in a process of its own, on loopback.

It sends pre-encoded request bodies to the collector in one of three ways
(:class:`Plan`):

* ``duration_s``: closed loop for that long, ``concurrency`` requests in flight,
  cycling through the bodies (collector throughput);
* neither ``duration_s`` nor ``rate``: every body once, ``concurrency`` in
  flight, retrying refused ones until accepted (end to end: nothing may be lost);
* ``rate``: open loop, body ``k`` sent at ``start + k / rate`` whatever the
  earlier answers (fixed-rate latency; no coordinated omission).

It runs in a separate process (``spawn``) so its CPU is not the collector's, and
reports when each body was accepted (wall clock, epoch seconds: the time the
collector's 200 arrived).
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

#: The write key the bench sends (any non-empty key is accepted unless SEGSTREAM_WRITE_KEYS is set).
WRITE_KEY = "segstream-bench"
_RETRY_S = 0.2


@dataclass
class Body:
    """One request: its path under the collector (``/v1/batch``), encoded body, and events in it."""

    path: str
    data: bytes
    events: int


@dataclass
class Plan:
    """What to send where, and how (see the module docstring)."""

    url: str
    bodies: list[Body]
    concurrency: int = 16
    duration_s: float | None = None
    rate: float | None = None
    timeout_s: float = 30.0


@dataclass
class Result:
    """What the collector answered."""

    requests: int = 0
    events: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    finished: float = 0.0
    #: Per body index (``rate`` and send-once plans): when the collector accepted it (epoch s), ``None`` if never.
    accepted_at: list[float | None] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return max(self.finished - self.started, 1e-9)


def _headers() -> dict[str, str]:
    token = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


async def _post(session: aiohttp.ClientSession, url: str, body: Body, result: Result) -> bool:
    try:
        async with session.post(url + body.path, data=body.data) as response:
            await response.read()
            ok = response.status == 200
            result.statuses[str(response.status)] += 1
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        result.statuses[type(exc).__name__] += 1
        return False
    if ok:
        result.requests += 1
        result.events += body.events
    return ok


async def _send(plan: Plan) -> Result:
    result = Result()
    timeout = aiohttp.ClientTimeout(total=plan.timeout_s)
    limit = max(plan.concurrency, 256 if plan.rate else plan.concurrency)
    connector = aiohttp.TCPConnector(limit=limit)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=_headers()) as session:
        result.started = time.time()
        if plan.rate:
            await _open_loop(session, plan, result)
        elif plan.duration_s:
            await _closed_loop(session, plan, result)
        else:
            await _each_once(session, plan, result)
        result.finished = time.time()
    return result


async def _closed_loop(session: aiohttp.ClientSession, plan: Plan, result: Result) -> None:
    end = time.monotonic() + (plan.duration_s or 0)

    async def client(k: int) -> None:
        i = k
        while time.monotonic() < end:
            await _post(session, plan.url, plan.bodies[i % len(plan.bodies)], result)
            i += plan.concurrency

    await asyncio.gather(*(client(k) for k in range(plan.concurrency)))


async def _each_once(session: aiohttp.ClientSession, plan: Plan, result: Result) -> None:
    result.accepted_at = [None] * len(plan.bodies)
    todo = iter(range(len(plan.bodies)))

    async def client() -> None:
        for i in todo:
            while not await _post(session, plan.url, plan.bodies[i], result):
                await asyncio.sleep(_RETRY_S)
            result.accepted_at[i] = time.time()

    await asyncio.gather(*(client() for _ in range(plan.concurrency)))


async def _open_loop(session: aiohttp.ClientSession, plan: Plan, result: Result) -> None:
    result.accepted_at = [None] * len(plan.bodies)
    start = time.monotonic()
    tasks = []

    async def one(i: int) -> None:
        if await _post(session, plan.url, plan.bodies[i], result):
            result.accepted_at[i] = time.time()

    for i in range(len(plan.bodies)):
        delay = start + i / (plan.rate or 1) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)


def _child(plan: Plan, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(asyncio.run(_send(plan)))


class LoadGenerator:
    """Runs a :class:`Plan` in a child process: ``start()``, then ``result()`` waits for it."""

    def __init__(self, plan: Plan) -> None:
        context = multiprocessing.get_context("spawn")
        self.queue = context.Queue()
        self.process = context.Process(target=_child, args=(plan, self.queue), daemon=True)

    def start(self) -> LoadGenerator:
        self.process.start()
        return self

    def done(self) -> bool:
        return not self.process.is_alive() or not self.queue.empty()

    def result(self, timeout: float | None = None) -> Result:
        """The child's result; ``RuntimeError`` if it died without one."""
        try:
            result = self.queue.get(timeout=timeout)
        except Exception as exc:  # queue.Empty, or the child died
            raise RuntimeError(f"the load generator gave no result (exit code {self.process.exitcode})") from exc
        self.process.join(10)
        return result

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)


def run(plan: Plan) -> Result:
    """Send ``plan`` from a child process and return what the collector answered."""
    generator = LoadGenerator(plan).start()
    try:
        return generator.result()
    finally:
        generator.stop()
