"""Helpers for end-to-end tests: real processes, real Kafka topics, real Redis."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from stream.config import Settings, environment, reveal
from stream.kafka import client_config
from stream.state.profile import iso, now_ms

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
#: The admin API key of this test session: every e2e namespace's processes accept it (``SEGSTREAM_API_KEYS``),
#: and the session's ``SEGSTREAM_API_KEY`` is set to it, so ``stream.client.Client()`` sends it.
E2E_API_KEY = "ssak_e2e" + secrets.token_hex(16)


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that make a child process use ``settings``."""
    env = {**os.environ, **environment(settings)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Proc:
    """A segstream subcommand run as a child process, its output kept in a log file."""

    name: str
    settings: Settings
    args: list[str] = field(default_factory=list)
    popen: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        return ARTIFACTS / f"{self.settings.namespace}-{self.name}.log"

    def start(self) -> "Proc":
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", *self.args],
            env=settings_env(self.settings),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - retried until the deadline, then reported
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc!r})")


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers HTTP 200."""
    wait_until(lambda: urllib.request.urlopen(url, timeout=2).status == 200, timeout, f"{url} to answer")


def api_headers(settings: Settings) -> dict[str, str]:
    """The ``Authorization`` header with the API key of ``settings`` (``SEGSTREAM_API_KEY``)."""
    return {"Authorization": f"Bearer {reveal(settings.api_key)}"}


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One HTTP request with a JSON body; returns (status, decoded JSON body)."""
    data = orjson.dumps(body) if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, orjson.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read() or b"null")


def tls_files(directory: Path) -> dict[str, str]:
    """A throw-away CA and, signed by it, a server certificate for 127.0.0.1 and a client certificate (PEM paths).

    Keys: ``ca``, ``server_cert``, ``server_key``, ``client_cert``, ``client_key``.
    """

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca")
    for name, subject, extra in (("server", "/CN=127.0.0.1", ["-addext", "subjectAltName=IP:127.0.0.1"]), ("client", "/CN=client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, *extra)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{name}.pem",
                "-days", "2", "-copy_extensions", "copy")
    return {
        "ca": str(directory / "ca.pem"),
        "server_cert": str(directory / "server.pem"),
        "server_key": str(directory / "server.key"),
        "client_cert": str(directory / "client.pem"),
        "client_key": str(directory / "client.key"),
    }


class TopicReader:
    """Reads every record of a topic from the beginning, without a consumer group."""

    def __init__(self, settings: Settings, topic: str, partitions: int | None = None) -> None:
        self.consumer = Consumer(client_config(settings, **{"group.id": f"reader-{topic}", "enable.auto.commit": False}))
        count = settings.partitions if partitions is None else partitions
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(count)])
        self.records: list[dict[str, Any]] = []

    def poll(self, seconds: float = 0.2) -> list[dict[str, Any]]:
        """Fetch what arrived; returns all records read so far (values decoded as JSON)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = self.consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            self.records.append(orjson.loads(msg.value()))
        return self.records

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], Any], timeout: float, what: str
    ) -> list[dict[str, Any]]:
        """Poll until ``predicate(records)`` is truthy; returns the records read so far."""
        wait_until(lambda: predicate(self.poll()), timeout, what, interval=0)
        return self.records

    def close(self) -> None:
        self.consumer.close()


def track(customer: str, event: str, **fields: Any) -> dict[str, Any]:
    """An events-topic track record of ``customer``, timed now (ms precision)."""
    return {"type": "track", "event": event, "userId": customer, "timestamp": iso(now_ms()), **fields}


def produce(settings: Settings, topic: str, records: list[tuple[bytes, dict[str, Any] | bytes]]) -> None:
    """Produce ``(key, record or raw value)`` pairs to ``topic`` with murmur2 keys, as the collector does."""
    producer = Producer(client_config(settings, partitioner="murmur2_random"))
    for key, value in records:
        producer.produce(topic, key=key, value=value if isinstance(value, bytes) else orjson.dumps(value))
        producer.poll(0)
    producer.flush(30)
