"""The access decisions: write keys at the collector, bearer keys and scopes at the API."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stream.auth.access import OPEN_SOURCE, api_access, bearer_key, write_access
from stream.auth.credentials import KeySet, new_key, parse_api_keys, parse_write_keys
from stream.auth.errors import AccessDenied

WEB_KEY, WEB = new_key("write", "web", "write", 1)
OLD_KEY, OLD = new_key("write", "web", "write", 1)
OLD = replace(OLD, revoked=2)
KEYS = KeySet([WEB, OLD, *parse_api_keys("dash:read:k-dash,ops:admin:k-ops"), *parse_write_keys("app:k-app")])
NO_WRITE_KEYS = KeySet(parse_api_keys("dash:read:k-dash"))


def denied(call: object, *args: object) -> AccessDenied:
    with pytest.raises(AccessDenied) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


def test_active_write_keys_from_redis_and_the_environment_are_accepted() -> None:
    assert write_access(KEYS, True, True, WEB_KEY) == WEB
    assert write_access(KEYS, True, False, "k-app").name == "app"
    assert write_access(KEYS, False, False, "k-app").name == "app"  # environment keys need no Redis


@pytest.mark.parametrize(
    "key, status, reason, says",
    [
        (None, 401, "missing_write_key", "curl -u KEY:"),
        ("", 401, "missing_write_key", "writeKey"),
        (OLD_KEY, 401, "revoked_write_key", f"...{OLD_KEY[-4:]} of source 'web' was revoked"),
        ("nope", 401, "unknown_write_key", "segstream keys add-write SOURCE"),
        ("k-dash", 401, "unknown_write_key", "that is an API key"),
    ],
)
def test_refused_write_keys(key: str | None, status: int, reason: str, says: str) -> None:
    exc = denied(write_access, KEYS, True, True, key)
    assert (exc.status, exc.reason) == (status, reason) and says in exc.message


def test_open_collector_only_while_no_write_key_exists_at_all() -> None:
    record = write_access(NO_WRITE_KEYS, True, True, "anything")
    assert (record.name, record.origin, record.kind) == (OPEN_SOURCE, "open", "write")
    assert write_access(NO_WRITE_KEYS, True, True, "other").id != record.id  # rate-limited apart
    closed = denied(write_access, NO_WRITE_KEYS, True, False, "anything")
    assert closed.status == 401 and "SEGSTREAM_OPEN_COLLECTOR is false" in closed.message
    # Revoking the last key does not reopen the collector.
    assert denied(write_access, KeySet([OLD]), True, True, "anything").reason == "unknown_write_key"


def test_unknown_write_key_before_redis_answered_is_503_to_retry() -> None:
    exc = denied(write_access, KeySet(parse_write_keys("k-app")), False, True, "maybe-in-redis")
    assert (exc.status, exc.reason) == (503, "keys_unavailable") and "retry" in exc.message


def test_api_reads_need_scope_read_and_admin_implies_it() -> None:
    assert api_access(KEYS, True, "Bearer k-dash", "read", "GET /v1/stats").name == "dash"
    assert api_access(KEYS, True, "bearer  k-ops ", "read", "GET /v1/stats").name == "ops"
    assert api_access(KEYS, True, "Bearer k-ops", "admin", "POST /v1/rules").scope == "admin"


@pytest.mark.parametrize(
    "header, status, reason, says",
    [
        (None, 401, "missing_api_key", "Authorization: Bearer <key>"),
        ("", 401, "missing_api_key", "segstream keys add-api NAME"),
        ("Basic abc", 401, "bad_authorization", "must be `Bearer <API key>`"),
        ("Bearer", 401, "bad_authorization", "must be `Bearer <API key>`"),
        ("Bearer nope", 401, "unknown_api_key", "unknown API key"),
        (f"Bearer {WEB_KEY}", 401, "unknown_api_key", "that is a write key (source 'web')"),
        ("Bearer k-dash", 403, "insufficient_scope", "API key 'dash' has scope read; POST /v1/rules needs scope admin"),
    ],
)
def test_refused_api_requests(header: str | None, status: int, reason: str, says: str) -> None:
    exc = denied(api_access, KEYS, True, header, "admin", "POST /v1/rules")
    assert (exc.status, exc.reason) == (status, reason) and says in exc.message


def test_revoked_api_key_is_401() -> None:
    (ops,) = parse_api_keys("ops:admin:k-ops")
    exc = denied(api_access, KeySet([replace(ops, origin="redis", revoked=5)]), True, "Bearer k-ops", "read", "GET /v1/stats")
    assert (exc.status, exc.reason) == (401, "revoked_api_key") and "'ops'" in exc.message and "k-ops" not in exc.message


def test_unknown_api_key_before_redis_answered_is_503() -> None:
    assert denied(api_access, KeySet(), False, "Bearer k", "read", "GET /v1/stats").status == 503


def test_bearer_key() -> None:
    assert bearer_key("Bearer abc") == "abc"
    assert denied(bearer_key, "Token abc").reason == "bad_authorization"
