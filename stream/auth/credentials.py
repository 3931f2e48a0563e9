"""Keys as plain records: write keys (per source, for the collector) and API keys (read or admin scope).

A key is a random token shown once; segstream keeps only its sha256 digest and
its last four characters (to tell keys apart in listings). Keys come from Redis
(``segstream keys add-write|add-api``, see :mod:`stream.auth.keystore`) or from
the environment:

* ``SEGSTREAM_WRITE_KEYS``: ``KEY`` or ``SOURCE:KEY`` entries, comma-separated
  (a bare key's source is ``env``);
* ``SEGSTREAM_API_KEYS``: ``NAME:SCOPE:KEY`` or ``NAME:SCOPE:sha256:HEX`` entries
  (the digest form keeps the key itself out of the environment).

>>> [(r.kind, r.name, r.scope, r.last4) for r in parse_api_keys("ci:read:ssak_0123456789abcdef")]
[('api', 'ci', 'read', 'cdef')]
>>> digest("k") == digest("k") != digest("K")
True
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import orjson

from stream.auth.errors import BadKeySpec

Kind = Literal["write", "api"]
Scope = Literal["write", "read", "admin"]
#: Scopes of API keys, weakest first: each one allows what the ones before it allow.
API_SCOPES: tuple[Scope, ...] = ("read", "admin")
#: Prefixes of generated keys: a leaked key is recognisable, and a write key sent to the API is told apart.
PREFIXES: dict[str, str] = {"write": "sswk_", "api": "ssak_"}
#: Random bytes per generated key (hex-encoded after the prefix).
KEY_BYTES = 20
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def digest(key: str) -> str:
    """The sha256 hex digest segstream stores instead of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key_digest: str) -> str:
    """A key's public id: the start of its digest (shown by ``segstream keys list``, used to revoke it)."""
    return key_digest[:12]


def check_name(name: str, what: str) -> str:
    """``name`` if it is a valid source or key name, else :class:`BadKeySpec` saying what is allowed."""
    if not _NAME.match(name):
        raise BadKeySpec(f"{what} {name!r} must be 1 to 64 letters, digits, '.', '_' or '-'")
    return name


def allows(granted: Scope, needed: Scope) -> bool:
    """Whether a key of scope ``granted`` may do what needs ``needed`` (admin implies read).

    >>> allows("admin", "read"), allows("read", "admin"), allows("write", "read")
    (True, False, False)
    """
    if granted == "write" or needed == "write":
        return granted == needed
    return API_SCOPES.index(granted) >= API_SCOPES.index(needed)


@dataclass(frozen=True)
class KeyRecord:
    """What segstream knows of a key: never the key itself.

    ``kind`` is ``write`` (``name`` is the source) or ``api`` (``name`` names the
    key's holder); ``origin`` is ``redis`` or ``env``; times are epoch ms.
    """

    id: str
    kind: Kind
    name: str
    scope: Scope
    digest: str
    last4: str
    created: int
    revoked: int | None = None
    origin: str = "redis"

    @property
    def active(self) -> bool:
        return self.revoked is None

    def to_bytes(self) -> bytes:
        return orjson.dumps({k: v for k, v in asdict(self).items() if k != "origin"})

    @classmethod
    def from_bytes(cls, data: bytes) -> "KeyRecord":
        return cls(**orjson.loads(data))

    def public(self) -> dict[str, Any]:
        """The record as ``segstream keys list --json`` shows it (the digest left out)."""
        return {k: v for k, v in asdict(self).items() if k != "digest"}


def new_key(kind: Kind, name: str, scope: Scope, now: int) -> tuple[str, KeyRecord]:
    """A fresh random key and its record; the key is for the caller to show once."""
    check_name(name, "source" if kind == "write" else "key name")
    key = PREFIXES[kind] + secrets.token_hex(KEY_BYTES)
    d = digest(key)
    return key, KeyRecord(key_id(d), kind, name, scope, d, key[-4:], now)


def parse_write_keys(text: str) -> list[KeyRecord]:
    """The records of ``SEGSTREAM_WRITE_KEYS``: ``KEY`` or ``SOURCE:KEY`` entries, comma-separated."""
    records = []
    for i, entry in enumerate(_entries(text), 1):
        source, _, key = entry.rpartition(":")
        source = source.strip() or "env"
        check_name(source, f"SEGSTREAM_WRITE_KEYS entry {i}: source")
        key = key.strip()
        if not key:
            raise BadKeySpec(f"SEGSTREAM_WRITE_KEYS entry {i} (source {source!r}) has an empty key")
        d = digest(key)
        records.append(KeyRecord(key_id(d), "write", source, "write", d, key[-4:], 0, origin="env"))
    return records


def parse_api_keys(text: str) -> list[KeyRecord]:
    """The records of ``SEGSTREAM_API_KEYS``: ``NAME:SCOPE:KEY`` or ``NAME:SCOPE:sha256:HEX``, comma-separated."""
    records = []
    for i, entry in enumerate(_entries(text), 1):
        parts = entry.split(":", 2)
        if len(parts) != 3 or not parts[2].strip():
            raise BadKeySpec(f"SEGSTREAM_API_KEYS entry {i} must be NAME:SCOPE:KEY (or NAME:SCOPE:sha256:HEX)")
        name, scope, key = (p.strip() for p in parts)
        check_name(name, f"SEGSTREAM_API_KEYS entry {i}: name")
        if scope not in API_SCOPES:
            raise BadKeySpec(f"SEGSTREAM_API_KEYS entry {i} ({name!r}): scope must be read or admin, got {scope!r}")
        if key.startswith("sha256:"):
            d = key[len("sha256:") :].lower()
            if not _HEX.match(d):
                raise BadKeySpec(f"SEGSTREAM_API_KEYS entry {i} ({name!r}): sha256: must be followed by 64 hex digits")
            last4 = ""
        else:
            d, last4 = digest(key), key[-4:]
        records.append(KeyRecord(key_id(d), "api", name, scope, d, last4, 0, origin="env"))  # type: ignore[arg-type]
    return records


def _entries(text: str) -> list[str]:
    return [e.strip() for e in text.split(",") if e.strip()]


class KeySet:
    """The keys in force at one moment, looked up by the digest of a presented key.

    When the same key is both revoked and active (say, in Redis and in the
    environment), the active record wins.
    """

    def __init__(self, records: Iterable[KeyRecord] = ()) -> None:
        self.records = tuple(records)
        self._by_digest: dict[str, KeyRecord] = {}
        for record in self.records:
            known = self._by_digest.get(record.digest)
            if known is None or (record.active and not known.active):
                self._by_digest[record.digest] = record

    def lookup(self, key: str) -> KeyRecord | None:
        """The record of ``key`` (active or revoked), or ``None`` for a key never issued."""
        return self._by_digest.get(digest(key))

    def any_of(self, kind: Kind) -> bool:
        """Whether any key of ``kind`` exists, revoked ones included."""
        return any(r.kind == kind for r in self.records)
