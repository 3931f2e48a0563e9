"""The deployed rule set, kept in Redis so every worker and API process agrees on it.

``segstream rules deploy`` (or ``segstream run`` watching ``rules/``) validates the
files, then stores their texts and the rule set's version under ``ns:rules``.
Processes poll the version (one HGET a second) and load a new rule set when it
changes; workers then backfill every customer of their partitions (see
``stream.worker.backfill``). Rule files are stored as texts and loaded from a
private copy on disk, so errors keep naming the original file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from stream.config import Settings
from stream.rules import RuleError, RuleSet, load_rules
from stream.rules.loader import RULE_FILE_PATTERNS
from stream.state import keys
from stream.state.profile import HistoryPolicy, now_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deployed:
    """A rule set as deployed: its version, the file texts and when."""

    version: str
    files: dict[str, str]
    at: int


def rule_texts(path: Path) -> dict[str, str]:
    """The rule files under ``path`` (a directory or one file) by file name."""
    path = Path(path)
    files = [path] if path.is_file() else sorted({f for p in RULE_FILE_PATTERNS for f in path.glob(p) if f.is_file()})
    return {f.name: f.read_text(encoding="utf-8") for f in files}


def materialise(files: dict[str, str], root: Path) -> RuleSet:
    """Write ``files`` into a directory under ``root`` named after their contents and load them."""
    digest = hashlib.sha256(orjson.dumps(files, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"rules-{digest}"
    if not target.is_dir():
        staging = Path(tempfile.mkdtemp(dir=root))
        for name, text in files.items():
            (staging / Path(name).name).write_text(text, encoding="utf-8")
        try:
            staging.rename(target)
        except OSError:  # another process of this machine won the race: same contents
            pass
    return load_rules(target)


async def deploy(client: aioredis.Redis, ns: str, path: Path, now: int) -> tuple[RuleSet, bool]:
    """Validate the rules in ``path`` and make them the deployed set; returns it and whether it changed.

    Raises :class:`stream.rules.RuleError` (nothing deployed) when a file is invalid.
    """
    ruleset = load_rules(path)
    files = rule_texts(path)
    current = await client.hget(keys.rules(ns), "version")
    if current is not None and current.decode() == ruleset.version:
        return ruleset, False
    await client.hset(
        keys.rules(ns), mapping={"version": ruleset.version, "files": orjson.dumps(files), "at": now}
    )
    log.info("deployed rules version %s (%d segments)", ruleset.version, len(ruleset.segments))
    return ruleset, True


async def watch(client: aioredis.Redis, ns: str, path: Path, interval_s: float = 1.0) -> None:
    """Deploy ``path`` now and again whenever a rule file changes; invalid edits are reported, not deployed."""
    seen: tuple[tuple[str, int, int], ...] | None = None
    while True:
        files = [path] if path.is_file() else sorted(f for p in RULE_FILE_PATTERNS for f in path.glob(p))
        signature = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file())
        if signature != seen:
            seen = signature
            try:
                ruleset, changed = await deploy(client, ns, path, now_ms())
            except RuleError as exc:
                log.error("rules in %s not deployed, the running version stays:\n%s", path, exc)
            else:
                if changed:
                    log.info("deployed %s: %s", ruleset.version, ", ".join(sorted(ruleset.segments)))
        await asyncio.sleep(interval_s)


async def fetch(client: aioredis.Redis, ns: str) -> Deployed | None:
    """The deployed rule set, or ``None`` when nothing was deployed yet."""
    version, files, at = await client.hmget(keys.rules(ns), "version", "files", "at")
    if version is None or files is None:
        return None
    return Deployed(version.decode(), orjson.loads(files), int(at or 0))


async def open_rules(settings: Settings, client: aioredis.Redis, now: int) -> "RuleWatcher":
    """The rule set a process starts with: the deployed one, or the local files deployed now if none is.

    The local rules directory is validated either way, so a process refuses to
    start on a broken file (:class:`stream.rules.RuleError`).
    """
    local = load_rules(settings.rules_dir)
    deployed = await fetch(client, settings.namespace)
    cache = settings.state_dir / "deployed-rules"
    if deployed is None:
        ruleset, _ = await deploy(client, settings.namespace, settings.rules_dir, now)
        return RuleWatcher(client, settings.namespace, ruleset, cache, settings.history_max_events, overrides=policy_settings(settings))
    if deployed.version != local.version:
        log.warning(
            "using deployed rules version %s, not %s in %s: run `segstream rules deploy` to deploy those",
            deployed.version,
            local.version,
            settings.rules_dir,
        )
    ruleset = materialise(deployed.files, cache)
    return RuleWatcher(
        client, settings.namespace, ruleset, cache, settings.history_max_events, deployed.version, policy_settings(settings)
    )


def policy_settings(settings: Settings) -> dict[str, Any]:
    """The parts of a :class:`HistoryPolicy` that come from settings, not rules: identity matching and PII masking."""
    return {"match_traits": settings.matched_traits, "pii_traits": settings.pii, "pii_mode": settings.pii_mode}


class RuleWatcher:
    """Holds the current rule set of a process and swaps it when a new version is deployed."""

    def __init__(
        self,
        client: aioredis.Redis,
        ns: str,
        ruleset: RuleSet,
        cache_dir: Path,
        max_events: int,
        version: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.redis = client
        self.ns = ns
        self.ruleset = ruleset
        self.version = version or ruleset.version
        self.cache_dir = cache_dir
        self.max_events = max_events
        self.overrides = dict(overrides or {})

    @property
    def policy(self) -> HistoryPolicy:
        return replace(self.ruleset.policy(self.max_events), **self.overrides)

    async def refresh(self) -> bool:
        """Load the deployed rule set if its version differs from the current one; returns whether it did."""
        version = await self.redis.hget(keys.rules(self.ns), "version")
        if version is None or version.decode() == self.version:
            return False
        deployed = await fetch(self.redis, self.ns)
        if deployed is None:
            return False
        self.ruleset = materialise(deployed.files, self.cache_dir)
        self.version = deployed.version
        log.info("loaded rules version %s (%d segments)", self.ruleset.version, len(self.ruleset.segments))
        return True
