"""The access decisions, pure functions over a :class:`KeySet`: who may write events, who may call the API.

Each refusal is an :class:`AccessDenied` with the HTTP status (401 no or unknown
key, 403 too weak a scope, 503 the key store never answered), a counter reason
and a message saying what to do.

>>> from stream.auth.credentials import parse_api_keys
>>> keys = KeySet(parse_api_keys("dash:read:k-dash,ops:admin:k-ops"))
>>> api_access(keys, True, "Bearer k-ops", "admin", "DELETE /v1/customers/{id}").name
'ops'
>>> api_access(keys, True, "Bearer k-dash", "admin", "DELETE /v1/customers/{id}")
Traceback (most recent call last):
...
stream.auth.errors.AccessDenied: API key 'dash' has scope read; DELETE /v1/customers/{id} needs scope admin: use a key with scope admin
"""

from __future__ import annotations

from stream.auth.credentials import KeyRecord, KeySet, Scope, allows, digest, key_id
from stream.auth.errors import AccessDenied

#: The source reported for events accepted by an open collector (no write key exists).
OPEN_SOURCE = "open"
CREATE_WRITE_KEY = "`segstream keys add-write SOURCE` creates one"
CREATE_API_KEY = "`segstream keys add-api NAME --scope read|admin` creates one (or set SEGSTREAM_API_KEYS)"


def write_access(keys: KeySet, loaded: bool, open_when_empty: bool, key: str | None) -> KeyRecord:
    """The write key record allowing ``key`` to send events, else :class:`AccessDenied`.

    ``loaded``: the Redis keys were read at least once (otherwise only
    environment keys are known and other keys get 503, which SDKs retry).
    ``open_when_empty``: while no write key exists at all, any non-empty key is
    accepted (development); its record has the source ``open``.
    """
    if not key:
        raise AccessDenied(
            401,
            "missing_write_key",
            "missing write key: send it as the Basic auth username with an empty password (curl -u KEY:) "
            "or as \"writeKey\" in the body",
        )
    record = keys.lookup(key)
    if record is not None and record.kind == "write":
        if record.active:
            return record
        raise AccessDenied(
            401, "revoked_write_key", f"write key ...{record.last4} of source {record.name!r} was revoked: use a current key of the source"
        )
    if record is not None:
        raise AccessDenied(
            401, "unknown_write_key", f"that is an API key (for the query API), not a write key: {CREATE_WRITE_KEY}"
        )
    if not loaded:
        raise AccessDenied(503, "keys_unavailable", "cannot check the write key yet: the key store (Redis) does not answer; retry")
    if keys.any_of("write"):
        raise AccessDenied(
            401, "unknown_write_key", "unknown write key: use one made with `segstream keys add-write SOURCE` or listed in SEGSTREAM_WRITE_KEYS"
        )
    if not open_when_empty:
        raise AccessDenied(
            401, "unknown_write_key", f"no write key exists yet and SEGSTREAM_OPEN_COLLECTOR is false: {CREATE_WRITE_KEY}"
        )
    d = digest(key)
    return KeyRecord(key_id(d), "write", OPEN_SOURCE, "write", d, key[-4:], 0, origin="open")


def bearer_key(header: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` header, else :class:`AccessDenied` (401)."""
    if header is None or not header.strip():
        raise AccessDenied(401, "missing_api_key", f"missing API key: send `Authorization: Bearer <key>`; {CREATE_API_KEY}")
    scheme, _, key = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AccessDenied(401, "bad_authorization", "the Authorization header must be `Bearer <API key>`")
    return key.strip()


def api_access(keys: KeySet, loaded: bool, header: str | None, needed: Scope, action: str) -> KeyRecord:
    """The API key record of an ``Authorization`` header allowing ``action`` (which needs ``needed``), else :class:`AccessDenied`."""
    key = bearer_key(header)
    record = keys.lookup(key)
    if record is None:
        if not loaded:
            raise AccessDenied(503, "keys_unavailable", "cannot check the API key yet: the key store (Redis) does not answer; retry")
        raise AccessDenied(401, "unknown_api_key", f"unknown API key: {CREATE_API_KEY}")
    if record.kind != "api":
        raise AccessDenied(
            401,
            "unknown_api_key",
            f"that is a write key (source {record.name!r}), for the collector; the query API needs an API key: {CREATE_API_KEY}",
        )
    if not record.active:
        raise AccessDenied(401, "revoked_api_key", f"API key {record.name!r} (...{record.last4}) was revoked: ask an admin for a new one")
    if not allows(record.scope, needed):
        raise AccessDenied(
            403, "insufficient_scope", f"API key {record.name!r} has scope {record.scope}; {action} needs scope {needed}: use a key with scope {needed}"
        )
    return record
