"""``segstream status``: is everything up, and what state is it in — one compact summary.

:func:`gather` asks Redis, Kafka and the workers' ``/metrics`` (I/O);
:func:`format_status` turns the result into text (pure). Lag per partition is the
workers' own ``segstream_consumer_lag`` (see :mod:`stream.observability.lag`):
records fetched but not yet committed; the committed offsets come from Kafka.
"""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import orjson
import redis.asyncio as aioredis
from confluent_kafka import Consumer, TopicPartition
from redis.exceptions import RedisError

from stream.auth.redact import redact_url
from stream.config import Settings
from stream.kafka import admin, client_config
from stream.observability.exposition import parse_samples
from stream.rules import RuleError
from stream.state import keys, modelstore
from stream.state.profile import iso, now_ms
from stream.state.rulestore import fetch, materialise

#: A heartbeat older than this (ms) means the worker is gone.
LIVE_WITHIN_MS = 5000
TIMEOUT_S = 5.0


def gather(settings: Settings, worker_urls: list[str]) -> dict[str, Any]:
    """Everything ``segstream status`` shows, as JSON-ready data."""
    status: dict[str, Any] = {"namespace": settings.namespace}
    status["kafka"] = _kafka(settings)
    status["redis"] = asyncio.run(_redis(settings))
    status["lag"] = [_scrape(url, settings.namespace) for url in worker_urls]
    return status


def _kafka(settings: Settings) -> dict[str, Any]:
    names = [settings.events_topic, settings.changes_topic, settings.dead_letter_topic, settings.deletions_topic, settings.training_topic]
    try:
        metadata = admin(settings).list_topics(timeout=TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure means no broker; reported
        return {"bootstrap": settings.kafka_bootstrap, "error": f"does not answer ({exc}); `segstream services up` or set KAFKA_BOOTSTRAP"}
    topics = {n: len(metadata.topics[n].partitions) for n in names if n in metadata.topics}
    committed: dict[str, int | None] = {}
    if settings.events_topic in topics:
        consumer = Consumer(client_config(settings, **{"group.id": settings.consumer_group, "enable.auto.commit": False}))
        try:
            wanted = [TopicPartition(settings.events_topic, p) for p in range(topics[settings.events_topic])]
            for tp in consumer.committed(wanted, timeout=TIMEOUT_S):
                committed[str(tp.partition)] = tp.offset if tp.offset >= 0 else None
        except Exception as exc:  # noqa: BLE001 - reported, the rest of the status stands
            committed = {"error": f"{exc}"}  # type: ignore[dict-item]
        finally:
            consumer.close()
    return {"bootstrap": settings.kafka_bootstrap, "topics": topics, "committed": committed}


async def _redis(settings: Settings) -> dict[str, Any]:
    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
    try:
        await client.ping()
        now = now_ms()
        beats = {k.decode(): orjson.loads(v) for k, v in (await client.hgetall(keys.workers(settings.namespace))).items()}
        workers = [
            {"id": worker, "partitions": beat["partitions"], "seen_ms_ago": now - beat["at"]}
            for worker, beat in sorted(beats.items())
            if now - beat["at"] <= LIVE_WITHIN_MS
        ]
        deployed = await fetch(client, settings.namespace)
        segments: dict[str, int] = {}
        rules_error = None
        if deployed is not None:
            try:
                names = sorted(materialise(deployed.files, settings.state_dir / "rules").segments)
            except RuleError as exc:
                names, rules_error = [], str(exc)
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.zcard(keys.segment(settings.namespace, name))
            segments = dict(zip(names, await pipe.execute()))
        info = await modelstore.load_info(client, settings.namespace)
    except (RedisError, OSError) as exc:
        return {"url": redact_url(settings.redis_url), "error": f"does not answer ({exc}); `segstream services up` or set REDIS_URL"}
    finally:
        await client.aclose()
    rules = {"version": deployed.version, "deployed_at": iso(deployed.at)} if deployed else None
    if rules_error:
        rules = {**(rules or {}), "error": rules_error}
    return {
        "url": redact_url(settings.redis_url),
        "workers": workers,
        "rules": rules,
        "segments": segments,
        "models": _models(info),
    }


def _models(info: dict[str, Any] | None) -> dict[str, Any] | None:
    if info is None:
        return None
    report = info["report"]
    quality = {
        kind: {k: block[k] for k in ("examples", "scoring", "roc_auc", "log_loss", "r2", "mae") if block.get(k) is not None}
        for kind, block in report.items()
        if isinstance(block, dict) and "examples" in block
    }
    return {"version": info["version"], "at": iso(info["at"]), "quality": quality}


def _scrape(url: str, namespace: str) -> dict[str, Any]:
    """One worker's lag per partition from its ``/metrics`` (an error for a worker of another namespace)."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/metrics", timeout=TIMEOUT_S) as answer:
            samples = parse_samples(answer.read().decode())
    except OSError as exc:
        return {"worker": url, "error": f"no answer ({exc}); is SEGSTREAM_WORKER_PORT right?"}
    served = sorted(dict(labels)["namespace"] for (name, labels), _ in samples.items() if name == "segstream_worker_info")
    if served != [namespace]:
        return {"worker": url, "error": f"serves namespace {', '.join(served) or '?'}, not {namespace}; pass --worker URL of this one's"}
    lag = {dict(labels)["partition"]: int(v) for (name, labels), v in samples.items() if name == "segstream_consumer_lag"}
    return {"worker": url, "lag": dict(sorted(lag.items(), key=lambda kv: int(kv[0])))}


def format_status(status: dict[str, Any]) -> str:
    """The status as a compact text summary."""
    lines = [f"namespace {status['namespace']}"]
    kafka = status["kafka"]
    if "error" in kafka:
        lines.append(f"kafka   {kafka['bootstrap']}: {kafka['error']}")
    else:
        topics = ", ".join(f"{name} ({n})" for name, n in kafka["topics"].items()) or "none yet"
        lines.append(f"kafka   {kafka['bootstrap']}: ok; topics (partitions): {topics}")
        committed = kafka["committed"]
        if committed:
            lines.append("        committed offsets: " + ", ".join(f"p{p}={'-' if o is None else o}" for p, o in committed.items()))
    redis = status["redis"]
    if "error" in redis:
        lines.append(f"redis   {redis['url']}: {redis['error']}")
    else:
        lines.append(f"redis   {redis['url']}: ok")
        workers = redis["workers"]
        lines.append(f"workers {len(workers)} live" + ("" if workers else " (none beat in the last 5 s)"))
        lines += [f"        {w['id']}: partitions {w['partitions']}, seen {w['seen_ms_ago']} ms ago" for w in workers]
        rules = redis["rules"]
        lines.append(f"rules   {'none deployed' if rules is None else rules.get('version', '?')}" + (f" ({rules['error']})" if rules and "error" in rules else ""))
        width = max((len(n) for n in redis["segments"]), default=0)
        lines += [f"        {name:<{width}}  {count:>8} members" for name, count in redis["segments"].items()]
        models = redis["models"]
        if models is None:
            lines.append("models  no snapshot yet")
        else:
            lines.append(f"models  snapshot {models['version']} at {models['at']}")
            for kind, q in models["quality"].items():
                figures = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in q.items())
                lines.append(f"        {kind}: {figures}")
    for scraped in status["lag"]:
        if "error" in scraped:
            lines.append(f"lag     {scraped['worker']}: {scraped['error']}")
        else:
            shown = ", ".join(f"p{p}={n}" for p, n in scraped["lag"].items()) or "no partitions"
            lines.append(f"lag     {scraped['worker']}: {shown} (fetched, not yet committed)")
    return "\n".join(lines)


def healthy(status: dict[str, Any]) -> bool:
    """Kafka and Redis answered."""
    return "error" not in status["kafka"] and "error" not in status["redis"]
