"""Helpers for end-to-end tests: real processes, real Kafka topics, real Redis."""

from __future__ import annotations

import secrets
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from stream import processes
from stream.config import Settings, reveal
from stream.envelope import unpack
from stream.kafka import client_config
from stream.processes import ROOT, free_port, wait_until
from stream.processes import child_env as settings_env
from stream.state.profile import iso, now_ms

ARTIFACTS = ROOT / "test-artifacts"
#: The admin API key of this test session: every e2e namespace's processes accept it (``SEGSTREAM_API_KEYS``),
#: and the session's ``SEGSTREAM_API_KEY`` is set to it, so ``stream.client.Client()`` sends it.
E2E_API_KEY = "ssak_e2e" + secrets.token_hex(16)


class Proc(processes.Proc):
    """A segstream subcommand run as a child process, its output kept in ``test-artifacts/``."""

    def __init__(self, name: str, settings: Settings, args: list[str] | None = None) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        super().__init__(name, settings, list(args or []), ARTIFACTS / f"{settings.namespace}-{name}.log")

    def log(self) -> str:
        return self.log_tail(5000)


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
        """Fetch what arrived; returns all records read so far (values decoded as JSON, envelopes as their events)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = self.consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            self.records += [record for _, record in unpack(msg.key(), msg.value())]
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
