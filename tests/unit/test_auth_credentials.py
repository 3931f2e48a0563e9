"""Keys as records: generation, digests, the environment formats, scopes, and look-up."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stream.auth.credentials import KeyRecord, KeySet, allows, digest, key_id, new_key, parse_api_keys, parse_write_keys
from stream.auth.errors import BadKeySpec


def test_new_keys_are_random_prefixed_and_only_their_digest_is_kept() -> None:
    key, record = new_key("write", "web", "write", 1000)
    other, _ = new_key("write", "web", "write", 1000)
    assert key.startswith("sswk_") and len(key) == 5 + 40 and key != other
    assert (record.kind, record.name, record.scope, record.created) == ("write", "web", "write", 1000)
    assert record.digest == digest(key) and record.id == key_id(record.digest) and record.last4 == key[-4:]
    assert key not in record.to_bytes().decode()
    assert KeyRecord.from_bytes(record.to_bytes()) == record
    api_key, api = new_key("api", "dash", "read", 1)
    assert api_key.startswith("ssak_") and api.scope == "read"
    assert "digest" not in api.public() and api.public()["last4"] == api_key[-4:]


@pytest.mark.parametrize("name", ["", "a:b", "with space", "x" * 65, "a,b"])
def test_names_are_checked(name: str) -> None:
    with pytest.raises(BadKeySpec, match="letters, digits"):
        new_key("write", name, "write", 0)


def test_write_keys_from_the_environment() -> None:
    records = parse_write_keys(" k-bare , web:k-web ,,")
    assert [(r.name, r.last4, r.origin, r.kind) for r in records] == [("env", "bare", "env", "write"), ("web", "-web", "env", "write")]
    assert records[1].digest == digest("k-web")
    assert parse_write_keys("") == []


def test_api_keys_from_the_environment_plain_or_as_digests() -> None:
    d = digest("secret-ops")
    records = parse_api_keys(f"dash:read:secret-dash, ops:admin:sha256:{d.upper()}")
    assert [(r.name, r.scope, r.last4) for r in records] == [("dash", "read", "dash"), ("ops", "admin", "")]
    assert records[1].digest == d
    assert KeySet(records).lookup("secret-ops") == records[1]


@pytest.mark.parametrize(
    "text, says",
    [
        ("dash:secret", "must be NAME:SCOPE:KEY"),
        ("dash:read:", "must be NAME:SCOPE:KEY"),
        ("dash:write:secret", "scope must be read or admin, got 'write'"),
        ("da sh:read:secret", "name 'da sh'"),
        ("ops:admin:sha256:abc", "64 hex digits"),
    ],
)
def test_bad_api_key_entries_say_what_is_wrong_without_the_key(text: str, says: str) -> None:
    with pytest.raises(BadKeySpec, match=says) as caught:
        parse_api_keys(text)
    assert "secret" not in str(caught.value)


def test_bad_write_key_entries() -> None:
    with pytest.raises(BadKeySpec, match="empty key"):
        parse_write_keys("web:")
    with pytest.raises(BadKeySpec, match="source"):
        parse_write_keys("a b:key")


def test_scopes_admin_implies_read_and_write_is_apart() -> None:
    assert allows("admin", "admin") and allows("admin", "read") and allows("read", "read")
    assert not allows("read", "admin")
    assert not allows("write", "read") and not allows("admin", "write") and allows("write", "write")


def test_an_active_record_wins_over_a_revoked_one_of_the_same_key() -> None:
    (env,) = parse_api_keys("ops:admin:same-key")
    revoked = KeyRecord(env.id, "api", "ops", "admin", env.digest, "-key", 5, revoked=6)
    assert KeySet([revoked, env]).lookup("same-key") == env
    assert KeySet([env, revoked]).lookup("same-key") == env
    assert KeySet([revoked]).lookup("same-key") == revoked
    assert KeySet([revoked]).lookup("other") is None


def test_any_of_counts_revoked_keys() -> None:
    _, record = new_key("write", "web", "write", 1)
    revoked = replace(record, revoked=2)
    assert KeySet([revoked]).any_of("write") and not KeySet([revoked]).any_of("api")
