"""``segstream run``: the collector, the worker, the model trainer and the API as child processes of one command
(and ``segstream destinations`` when the destinations file exists).

Each child's output is printed line by line behind its name. A child that dies
is reported and restarted after a backoff (1 s, doubling up to 30 s, reset once
it stayed up for a minute): one crashed process must not take the engine down.
SIGINT or SIGTERM stops the children (SIGTERM, then SIGKILL after 10 s) and
returns. Local Kafka and Redis started on the way keep running afterwards.

Before starting them it makes sure this machine has an admin API key for the
query API (``<state dir>/<namespace>.api-key``, mode 0600; see
:func:`stream.auth.manage.ensure_local_admin_key`) and prints how to use it,
never the key itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from redis.exceptions import RedisError

from stream import services
from stream.auth.manage import LocalAccess, ensure_local_admin_key
from stream.auth.redact import redact_url
from stream.config import Settings

#: Child name -> its ``segstream`` arguments. ``rules`` deploys rules/ and redeploys it on every edit;
#: ``destinations`` runs only when the destinations file (``SEGSTREAM_DESTINATIONS``) exists.
CHILDREN = {
    "collector": ["collector"],
    "worker": ["worker"],
    "trainer": ["trainer"],
    "api": ["api"],
    "rules": ["rules", "watch"],
    "destinations": ["destinations"],
}
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0
HEALTHY_AFTER_S = 60.0
STOP_TIMEOUT_S = 10.0

_print_lock = threading.Lock()


def _emit(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


@dataclass
class Child:
    """One supervised process: its name, its command line and its restart bookkeeping."""

    name: str
    argv: Sequence[str]
    popen: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff_s: float = BACKOFF_START_S
    restart_at: float | None = None
    _reader: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start the process (in its own process group) and a thread that prefixes its output."""
        self.popen = subprocess.Popen(
            list(self.argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        assert self.popen.stdout is not None
        self._reader = threading.Thread(target=self._relay, args=(self.popen.stdout,), daemon=True)
        self._reader.start()

    def _relay(self, stream: IO[bytes]) -> None:
        width = max(map(len, CHILDREN))
        for raw in iter(stream.readline, b""):
            _emit(f"{self.name:<{width}} | {raw.decode(errors='replace').rstrip()}")
        stream.close()

    def check(self, now: float) -> None:
        """Notice an exit and schedule a restart; perform it when the backoff has passed."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                _emit(f"segstream: restarting {self.name}")
                self.start()
            return
        assert self.popen is not None
        code = self.popen.poll()
        if code is None:
            return
        if now - self.started_at >= HEALTHY_AFTER_S:
            self.backoff_s = BACKOFF_START_S
        _emit(f"segstream: {self.name} exited with code {code}; restarting it in {self.backoff_s:.0f}s")
        self.restart_at = now + self.backoff_s
        self.backoff_s = min(self.backoff_s * 2, BACKOFF_MAX_S)

    def send(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the child's process group if it still runs."""
        if self.popen is not None and self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass  # exited meanwhile

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def join_output(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=2)


def supervise(children: list[Child], stop: threading.Event, poll_s: float = 0.2) -> None:
    """Start ``children``, keep them running until ``stop`` is set, then stop them."""
    for child in children:
        child.start()
    while not stop.wait(poll_s):
        now = time.monotonic()
        for child in children:
            child.check(now)
    _emit("segstream: stopping " + ", ".join(c.name for c in children if c.running()))
    for child in children:
        child.send(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while any(c.running() for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    for child in children:
        if child.running():
            _emit(f"segstream: {child.name} ignored SIGTERM for {STOP_TIMEOUT_S:.0f}s; killing it")
            child.send(signal.SIGKILL)
            assert child.popen is not None
            child.popen.wait()
        child.join_output()


def services_to_start(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The local services ``segstream run`` starts: those not configured by KAFKA_BOOTSTRAP / REDIS_URL."""
    return tuple(name for name, kind in services.SERVICES.items() if kind.setting not in environ)


def _local_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def _banner(settings: Settings, access: LocalAccess | None) -> str:
    collector = _local_url(settings.collector_host, settings.collector_port)
    api = _local_url(settings.api_host, settings.api_port)
    lines = [
        f"segstream: collector (Segment HTTP API) on {collector}, query API on {api}",
        f"segstream: Kafka {settings.kafka_bootstrap}, Redis {redact_url(settings.redis_url)}, rules from {settings.rules_dir}",
    ]
    if access is None:
        lines.append("segstream: no API key could be ensured (Redis did not answer): `segstream keys add-api NAME --scope admin`")
        key_file = "<your API key file>"
    else:
        state = "created" if access.created else "kept"
        lines.append(f"segstream: admin API key for this machine {state} in {access.key_file} (mode 0600)")
        key_file = str(access.key_file)
    if access is not None and access.write_keys:
        write_key = "$WRITE_KEY"
        lines.append("segstream: the collector requires a write key (`segstream keys add-write SOURCE` creates one)")
    else:
        write_key = "my-write-key"
        lines.append("segstream: no write key exists, so the collector accepts any (`segstream keys add-write SOURCE` closes it)")
    lines += [
        "segstream: send a first event and read it back:",
        f"  curl -u {write_key}: -H 'Content-Type: application/json' \\",
        """    -d '{"userId": "alice", "event": "Order Completed", "properties": {"revenue": 42}}' \\""",
        f"    {collector}/v1/track",
        f"  export SEGSTREAM_API_KEY=$(cat {key_file})",
        f"""  curl -H "Authorization: Bearer $SEGSTREAM_API_KEY" {api}/v1/customers/alice/segments""",
        f"segstream: dashboard on {api}/dashboard (paste the API key there; it stays in that browser tab)",
        "segstream: press Ctrl-C to stop",
    ]
    return "\n".join(lines)


def _local_access(settings: Settings) -> LocalAccess | None:
    """The local admin API key, ensured; ``None`` (reported) when Redis does not answer."""
    try:
        return ensure_local_admin_key(settings)
    except (RedisError, OSError) as exc:
        print(f"segstream run: cannot ensure a local API key in Redis at {redact_url(settings.redis_url)} ({exc})", file=sys.stderr)
        return None


def run_all(settings: Settings, start_services: bool) -> int:
    """``segstream run``: start local services if needed, then supervise collector, worker, trainer and API."""
    names = services_to_start(os.environ) if start_services else ()
    managed: tuple[str, ...] = ()
    if names:
        try:
            managed = services.up(settings, names)
        except services.ServiceError as exc:
            print(f"segstream run: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130

    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()  # only that: the main thread may hold the print lock right now

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        children = [
            Child(name, [sys.executable, "-m", "stream.cli", *args])
            for name, args in CHILDREN.items()
            if name != "destinations" or Path(settings.destinations).is_file()
        ]
        _emit(_banner(settings, _local_access(settings)))
        supervise(children, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if managed:
        _emit(
            f"segstream: stopped. The local {' and '.join(managed)} segstream started keep running; "
            "stop them with `segstream services down`"
        )
    else:
        _emit("segstream: stopped.")
    return 0
