"""Keys in Redis and the command line that manages them (``segstream keys``, ``segstream run``'s local key).

Uses the private redis-server of ``test_api``.
"""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from pathlib import Path

import pytest
import redis

from stream.auth.credentials import KeySet, digest
from stream.auth.keystore import KeyRing, load_keys
from stream.auth.manage import LOCAL_KEY_NAME, ensure_local_admin_key
from stream.cli import main
from stream.config import Settings
from stream.state import keys
from stream.supervisor import _banner
from tests.unit.test_api import redis_url  # noqa: F401 - the private redis-server


@pytest.fixture
def env(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:  # noqa: F811
    """A fresh namespace on the private Redis, in the environment the CLI reads."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SEGSTREAM_NAMESPACE", f"k{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("SEGSTREAM_STATE_DIR", str(tmp_path / "state"))
    for name in ("SEGSTREAM_API_KEYS", "SEGSTREAM_WRITE_KEYS", "SEGSTREAM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return Settings()


def stored(settings: Settings) -> KeySet:
    async def go() -> KeySet:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            return KeySet(await load_keys(client, settings.namespace))
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_add_list_revoke(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "add-write", "web"]) == 0
    out = capsys.readouterr()
    write_key = out.out.strip()
    assert write_key.startswith("sswk_") and "store it now, it is not shown again" in out.err
    assert main(["keys", "add-api", "ops", "--scope", "admin"]) == 0
    api_key = capsys.readouterr().out.strip()
    records = stored(env)
    web, ops = records.lookup(write_key), records.lookup(api_key)
    assert (web.kind, web.name, web.scope) == ("write", "web", "write")
    assert (ops.kind, ops.name, ops.scope) == ("api", "ops", "admin")
    raw = b"".join(redis.Redis.from_url(env.redis_url).hvals(keys.auth(env.namespace)))
    assert write_key.encode() not in raw and api_key.encode() not in raw and digest(api_key).encode() in raw

    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert write_key not in listing and api_key not in listing
    assert f"sswk_...{write_key[-4:]}" in listing and web.id in listing and "admin" in listing

    assert main(["keys", "revoke", "web"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert not stored(env).lookup(write_key).active
    assert main(["keys", "revoke", "web"]) == 1  # no active key of that name left
    assert "no key has the id or name 'web'" in capsys.readouterr().err
    assert main(["keys", "revoke", web.id]) == 0  # by id: already revoked, no change


def test_a_name_shared_by_active_keys_is_revoked_by_id(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    main(["keys", "add-api", "dash"])
    main(["keys", "add-api", "dash"])
    capsys.readouterr()
    assert main(["keys", "revoke", "dash"]) == 1
    assert "names 2 active keys" in capsys.readouterr().err


def test_environment_keys_are_listed_and_cannot_be_revoked_here(
    env: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGSTREAM_API_KEYS", "ci:read:ci-secret-key")
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "ci-secret-key" not in listing and "env" in listing and "...-key" in listing
    (ci,) = Settings().static_keys
    assert main(["keys", "revoke", ci.id]) == 1
    assert "remove it there" in capsys.readouterr().err


def test_bad_names_and_unreachable_redis(env: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["keys", "add-write", "no spaces"]) == 2
    assert "letters, digits" in capsys.readouterr().err
    monkeypatch.setenv("REDIS_URL", "redis://app:hidden-pass@127.0.0.1:1/0")
    assert main(["keys", "list"]) == 3
    err = capsys.readouterr().err
    assert "redis://app:***@127.0.0.1:1/0" in err and "hidden-pass" not in err


def test_run_keeps_one_local_admin_key_in_a_private_file(env: Settings) -> None:
    first = ensure_local_admin_key(env)
    assert first.created and not first.write_keys
    key = first.key_file.read_text().strip()
    assert stat.S_IMODE(os.stat(first.key_file).st_mode) == 0o600
    record = stored(env).lookup(key)
    assert (record.name, record.scope, record.active) == (LOCAL_KEY_NAME, "admin", True)
    again = ensure_local_admin_key(env)
    assert not again.created and again.key_file.read_text().strip() == key
    first.key_file.write_text("lost\n")
    third = ensure_local_admin_key(env)
    assert third.created and not stored(env).lookup(key).active  # the previous local key is revoked
    banner = _banner(env, third)
    assert third.key_file.read_text().strip() not in banner
    assert f"export SEGSTREAM_API_KEY=$(cat {third.key_file})" in banner and "Authorization: Bearer $SEGSTREAM_API_KEY" in banner
    assert "curl -u my-write-key:" in banner


def test_key_ring_refresh_and_change_notice() -> None:
    seen: list[int] = []
    records: list = []

    async def load() -> list:
        return list(records)

    ring = KeyRing([], load, 0.01, on_change=lambda keys: seen.append(len(keys.records)))
    assert not ring.loaded
    asyncio.run(ring.refresh())
    assert ring.loaded and seen == [0]
    asyncio.run(ring.refresh())
    assert seen == [0]  # unchanged: no notice
