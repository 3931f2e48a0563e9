"""Keys in Redis (the ``ns:auth`` hash, digests only) and the cache the collector and the API check requests against.

``segstream keys add-write|add-api|list|revoke`` call :func:`add_key`,
:func:`load_keys` and :func:`revoke_key`. A :class:`KeyRing` holds the keys of the
environment plus those read from Redis and re-reads them every
``SEGSTREAM_KEYS_REFRESH`` seconds, so additions and revocations apply to running
processes within that time, without a restart. While Redis does not answer it
keeps the keys it read last (and, before the first read, knows only the
environment's).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stream.auth.credentials import Kind, KeyRecord, KeySet, Scope, new_key
from stream.auth.errors import KeyNotFound
from stream.state import keys

if TYPE_CHECKING:
    from stream.config import Settings

log = logging.getLogger("stream.auth")


async def add_key(client: aioredis.Redis, ns: str, kind: Kind, name: str, scope: Scope, now: int) -> tuple[str, KeyRecord]:
    """Create a key, store its record; returns the key (to show once, never stored) and the record."""
    while True:
        key, record = new_key(kind, name, scope, now)
        if await client.hsetnx(keys.auth(ns), record.id, record.to_bytes()):
            return key, record


async def load_keys(client: aioredis.Redis, ns: str) -> list[KeyRecord]:
    """Every key record in Redis, revoked ones included, oldest first."""
    records = []
    for field, value in (await client.hgetall(keys.auth(ns))).items():
        try:
            records.append(KeyRecord.from_bytes(value))
        except (orjson.JSONDecodeError, TypeError) as exc:
            log.error("ignoring malformed key record %r in %s (%s): revoke or delete it", field, keys.auth(ns), exc)
    return sorted(records, key=lambda r: (r.created, r.id))


async def revoke_key(client: aioredis.Redis, ns: str, ref: str, now: int) -> KeyRecord:
    """Revoke the key whose id is ``ref``, or the one active key named ``ref``; returns its record.

    The record stays (revoked), so listings show it and the collector stays
    closed. Revoking a revoked key changes nothing. Raises :class:`KeyNotFound`.
    """
    records = await load_keys(client, ns)
    matches = [r for r in records if r.id == ref] or [r for r in records if r.name == ref and r.active]
    if not matches:
        raise KeyNotFound(f"no key has the id or name {ref!r} (revoked keys count by id only): `segstream keys list` shows them")
    if len(matches) > 1:
        ids = ", ".join(r.id for r in matches)
        raise KeyNotFound(f"{ref!r} names {len(matches)} active keys ({ids}): revoke them by id")
    (record,) = matches
    if not record.active:
        return record
    revoked = replace(record, revoked=now)
    await client.hset(keys.auth(ns), record.id, revoked.to_bytes())
    return revoked


class KeyRing:
    """The keys one process checks requests against: ``static`` ones (environment) plus those ``load`` returns.

    ``loaded`` tells whether ``load`` succeeded at least once (always true without
    ``load``). ``on_change`` is called with the new :class:`KeySet` when a
    refresh changed it.
    """

    def __init__(
        self,
        static: Sequence[KeyRecord],
        load: Callable[[], Awaitable[list[KeyRecord]]] | None = None,
        refresh_s: float = 1.0,
        on_change: Callable[[KeySet], None] | None = None,
    ) -> None:
        self.static = list(static)
        self.load = load
        self.refresh_s = refresh_s
        self.on_change = on_change
        self.keys = KeySet(self.static)
        self.loaded = load is None
        self._failing = False

    async def refresh(self) -> None:
        """Read the keys once; raises ``RedisError`` (or ``OSError``) when Redis does not answer."""
        if self.load is None:
            return
        records = await self.load()
        changed = not self.loaded or KeySet(self.static + records).records != self.keys.records
        self.keys = KeySet(self.static + records)
        self.loaded = True
        if changed and self.on_change is not None:
            self.on_change(self.keys)

    async def refresh_logged(self) -> None:
        """:meth:`refresh`, logging the start and the end of a Redis outage instead of raising."""
        try:
            await self.refresh()
        except (RedisError, OSError) as exc:
            if not self._failing:
                kept = "the keys read before" if self.loaded else "only the keys of the environment"
                log.warning("cannot read the keys from Redis (%s); until it answers, %s count", exc, kept)
            self._failing = True
        else:
            if self._failing:
                log.info("reading the keys from Redis again")
            self._failing = False

    async def follow(self) -> None:
        """Refresh every ``refresh_s`` seconds, forever (cancel the task to stop)."""
        while True:
            await asyncio.sleep(self.refresh_s)
            await self.refresh_logged()

    async def serving(self) -> AsyncIterator[None]:
        """Read the keys, then follow them until closed: for aiohttp's ``cleanup_ctx`` (``lambda app: ring.serving()``)."""
        if self.load is None:
            yield
            return
        await self.refresh_logged()
        task = asyncio.create_task(self.follow())
        yield
        task.cancel()


def keyring(settings: "Settings", client: aioredis.Redis, on_change: Callable[[KeySet], None] | None = None) -> KeyRing:
    """The key ring of ``settings``: environment keys plus the namespace's keys in Redis via ``client``."""
    return KeyRing(settings.static_keys, partial(load_keys, client, settings.namespace), settings.keys_refresh_s, on_change)
