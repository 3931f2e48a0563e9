"""A whole engine (collector, worker, API) as child processes of a test."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson

import redis

from pathlib import Path

from stream.config import Settings
from stream.state import keys
from tests.e2e.conftest import make_settings
from tests.e2e.harness import Proc, wait_http, wait_until


@dataclass
class Engine:
    """Collector, worker and API of one namespace; stopped at teardown."""

    settings: Settings
    procs: dict[str, Proc] = field(default_factory=dict)

    def start(self, *names: str) -> "Engine":
        started_ms = time.time() * 1000
        for name in names or ("collector", "worker", "api"):
            self.procs[name] = Proc(name, self.settings, [name]).start()
        if "collector" in self.procs:
            wait_http(f"{self.collector_url}/health")
        if "api" in self.procs:
            wait_http(f"{self.api_url}/health")
        if "worker" in names or not names:
            self.wait_partitions_owned(since_ms=started_ms)
        return self

    def wait_partitions_owned(self, since_ms: float, timeout: float = 60) -> None:
        """Wait until workers that beat since ``since_ms`` (and in the last 3 s) own every partition."""

        def owned() -> bool:
            now = time.time() * 1000
            beats = [orjson.loads(v) for v in self.redis().hvals(keys.workers(self.settings.namespace))]
            covered = {p for b in beats if b["at"] >= max(since_ms, now - 3000) for p in b["partitions"]}
            return covered == set(range(self.settings.partitions))

        wait_until(owned, timeout, f"workers owning all partitions (worker log: {self.worker_log()})")

    @property
    def collector_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.collector_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url)

    def stat(self, name: str) -> int:
        return int(self.redis().hget(keys.stats(self.settings.namespace), name) or 0)

    def wait_events_processed(self, n: int, timeout: float = 60) -> None:
        wait_until(lambda: self.stat("events") >= n, timeout, f"{n} events processed (worker log: {self.worker_log()})")

    def worker_log(self) -> str:
        proc = self.procs.get("worker")
        return proc.log()[-2000:] if proc else ""

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()


def settings_with_rules(base: Settings, rules_dir: Path, rules_yaml: str, **overrides: object) -> Settings:
    """Fresh settings whose rules directory holds one file with ``rules_yaml``."""
    rules_dir.mkdir(parents=True, exist_ok=True)
    (rules_dir / "rules.yaml").write_text(rules_yaml)
    return make_settings(base, rules_dir=rules_dir, **overrides)
