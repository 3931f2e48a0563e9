"""Key management as the command line does it: ``segstream keys ...`` and the local admin key of ``segstream run``.

These talk to Redis directly (``REDIS_URL``): whoever can reach segstream's Redis
can manage its keys, so Redis credentials amount to admin rights.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stream.auth.credentials import PREFIXES, KeyRecord, KeySet, Kind, Scope
from stream.auth.errors import AuthError, KeyNotFound
from stream.auth.keystore import add_key, load_keys, revoke_key
from stream.auth.redact import redact_url

if TYPE_CHECKING:
    from stream.config import Settings

#: Name of the admin API key ``segstream run`` keeps for this machine.
LOCAL_KEY_NAME = "segstream-run"
REDIS_TIMEOUT_S = 5.0
T = TypeVar("T")


def _now() -> int:
    from stream.state.profile import now_ms

    return now_ms()


def _with_redis(settings: "Settings", action: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
    async def go() -> T:
        client = aioredis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
        )
        try:
            return await action(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def _redis_failed(settings: "Settings", command: str, exc: Exception) -> int:
    print(
        f"segstream keys {command}: Redis at {redact_url(settings.redis_url)} does not answer ({exc}); "
        "keys live there: set REDIS_URL (with its user and password) to segstream's Redis",
        file=sys.stderr,
    )
    return 3


def add(settings: "Settings", kind: Kind, name: str, scope: Scope) -> int:
    """``segstream keys add-write|add-api``: create a key and print it, once, alone on stdout."""
    command = "add-write" if kind == "write" else "add-api"
    try:
        key, record = _with_redis(settings, lambda c: add_key(c, settings.namespace, kind, name, scope, _now()))
    except AuthError as exc:
        print(f"segstream keys {command}: {exc}", file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        return _redis_failed(settings, command, exc)
    print(key)
    what = f"write key of source {name!r}" if kind == "write" else f"API key {name!r} with scope {scope}"
    print(
        f"created {what} (id {record.id}) in namespace {settings.namespace!r}: store it now, it is not shown again; "
        f"running collectors and APIs accept it within {settings.keys_refresh_s:g}s",
        file=sys.stderr,
    )
    return 0


def _row(record: KeyRecord) -> list[str]:
    from stream.state.profile import iso

    masked = f"{PREFIXES[record.kind] if record.origin == 'redis' else ''}...{record.last4}" if record.last4 else "(digest)"
    status = "active" if record.active else f"revoked {iso(record.revoked)}"  # type: ignore[arg-type]
    created = iso(record.created) if record.created else "-"
    return [record.id, record.kind, record.name, record.scope, masked, record.origin, created, status]


def list_keys(settings: "Settings", as_json: bool) -> int:
    """``segstream keys list``: every key's id, kind, source or name, scope, last 4 characters, origin, dates; never a key."""
    try:
        stored = _with_redis(settings, lambda c: load_keys(c, settings.namespace))
    except (RedisError, OSError) as exc:
        return _redis_failed(settings, "list", exc)
    records = stored + settings.static_keys
    if as_json:
        sys.stdout.write(orjson.dumps([r.public() for r in records], option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if not records:
        print(f"no keys in namespace {settings.namespace!r}: `segstream keys add-write SOURCE` / `segstream keys add-api NAME`")
        return 0
    rows = [["ID", "KIND", "SOURCE/NAME", "SCOPE", "KEY", "ORIGIN", "CREATED", "STATUS"], *map(_row, records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if settings.static_keys:
        print("(origin env: from SEGSTREAM_WRITE_KEYS / SEGSTREAM_API_KEYS of this shell; running processes use their own)")
    return 0


def revoke(settings: "Settings", refs: Sequence[str]) -> int:
    """``segstream keys revoke``: revoke keys by id or unique name; 1 when one of them could not be revoked."""
    env_ids = {r.id: r for r in settings.static_keys}
    failed = False
    for ref in refs:
        if ref in env_ids:
            print(f"{ref}: comes from the environment ({env_ids[ref].kind} key {env_ids[ref].name!r}): remove it there", file=sys.stderr)
            failed = True
            continue
        try:
            record = _with_redis(settings, lambda c, r=ref: revoke_key(c, settings.namespace, r, _now()))
        except KeyNotFound as exc:
            print(f"{ref}: {exc}", file=sys.stderr)
            failed = True
            continue
        except (RedisError, OSError) as exc:
            return _redis_failed(settings, "revoke", exc)
        print(f"{record.id}: {record.kind} key {record.name!r} revoked; running processes refuse it within {settings.keys_refresh_s:g}s")
    return 1 if failed else 0


@dataclass(frozen=True)
class LocalAccess:
    """What ``segstream run`` tells about access: the file of its admin key, and whether write keys exist."""

    key_file: Path
    created: bool
    write_keys: bool


def local_key_file(settings: "Settings") -> Path:
    """The file holding the admin key ``segstream run`` keeps for this namespace on this machine."""
    return settings.state_dir / f"{settings.namespace}.api-key"


def ensure_local_admin_key(settings: "Settings") -> LocalAccess:
    """Make sure the key in :func:`local_key_file` is an active admin API key, creating one (mode 0600) if not.

    A new key replaces (revokes) the previous one of the same name. Raises
    ``RedisError``/``OSError`` when Redis does not answer.
    """
    path = local_key_file(settings)
    kept = path.read_text().strip() if path.is_file() else ""

    async def go(client: aioredis.Redis) -> tuple[str | None, bool]:
        records = await load_keys(client, settings.namespace)
        write_keys = KeySet(records + settings.static_keys).any_of("write")
        record = KeySet(records).lookup(kept) if kept else None
        if record is not None and record.active and record.kind == "api" and record.scope == "admin":
            return None, write_keys
        for old in records:
            if old.name == LOCAL_KEY_NAME and old.kind == "api" and old.active:
                await revoke_key(client, settings.namespace, old.id, _now())
        key, _ = await add_key(client, settings.namespace, "api", LOCAL_KEY_NAME, "admin", _now())
        return key, write_keys

    key, write_keys = _with_redis(settings, go)
    if key is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".tmp")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        os.replace(staging, path)
    return LocalAccess(path, key is not None, write_keys)
