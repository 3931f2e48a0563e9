"""Envelopes: many events of one events-topic partition carried by one Kafka record.

A Kafka record costs a faust agent far more than parsing its event (see README
"Performance"), so the collector and the importer write the events they accept
together as envelopes: the value is a JSON array of ``[key, event]`` pairs,

    [["c1", {"type": "track", ...}], ["c7", {"type": "identify", ...}]]

with the record key empty. Every pair lies in the partition its own key hashes to
with Kafka's default partitioner (murmur2, as librdkafka's ``murmur2_random`` and the
Java client compute it), so a customer's events stay on one partition, in order,
whether they travel alone or in an envelope. A record whose value is a JSON object
is a single event, as before; readers take both (:func:`unpack`).

An envelope is applied by the worker as one unit per customer (one Kafka offset),
which keeps the per-customer offset mark of exactly-once processing valid.

>>> value = pack([(b"c1", b'{"type":"page"}'), (b"c2", b'{"type":"track","event":"x"}')])
>>> value
b'[["c1",{"type":"page"}],["c2",{"type":"track","event":"x"}]]'
>>> unpack(None, value)
[(b'c1', {'type': 'page'}), (b'c2', {'type': 'track', 'event': 'x'})]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

#: Most events one envelope carries: enough to spread a record's cost to the worker's faust agent
#: (~170 µs) thin, few enough that the records a worker buffers (faust's stream buffer and a
#: taken batch: thousands of records) stay small.
MAX_EVENTS = 100
#: Most bytes of event JSON one envelope carries (a larger event travels alone).
MAX_BYTES = 256_000

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of ``data`` (seed 0x9747b28c) as an unsigned 32-bit integer.

    >>> murmur2(b"21") - (1 << 32)  # Kafka's UtilsTest: -973932308
    -973932308
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner puts ``key`` in (``murmur2 & 0x7fffffff`` modulo ``partitions``)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def pack(entries: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The envelope of ``(key, event JSON)`` pairs; keys must be UTF-8 without characters JSON escapes."""
    return b"[" + b",".join(b'["%s",%s]' % (key, value) for key, value in entries) + b"]"


def packable(key: bytes | None) -> bool:
    """Whether ``key`` can travel in an envelope: UTF-8, no quote, backslash or control character."""
    if not key:
        return False
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return False
    return orjson.dumps(text) == b'"%s"' % key


def is_envelope(value: bytes | None) -> bool:
    """Whether a record value is an envelope (a JSON array) rather than one event."""
    if not value:
        return False
    first = value[:1]
    return first == b"[" or (first.isspace() and value.lstrip()[:1] == b"[")  # copy only to skip leading blanks


def unpack(key: bytes | None, value: bytes) -> list[tuple[bytes | None, Any]]:
    """The ``(key, decoded event)`` pairs of a record: one for a single event, each pair of an envelope.

    Raises ``orjson.JSONDecodeError`` for a value that is not JSON. An envelope entry
    that is not a ``[key, event]`` pair comes back as ``(None, entry)``, for the reader
    to reject.
    """
    decoded = orjson.loads(value)
    if not isinstance(decoded, list):
        return [(key, decoded)]
    return [
        (entry[0].encode(), entry[1]) if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and entry[0] else (None, entry)
        for entry in decoded
    ]


def envelopes(records: Sequence[tuple[bytes, bytes]], partitions: int) -> list[tuple[int, list[int]]]:
    """Group ``(key, event JSON)`` pairs into envelopes: ``(partition, indices into records)``, in order.

    Each envelope holds at most :data:`MAX_EVENTS` events and :data:`MAX_BYTES` bytes
    of them (an event larger than that travels alone).

    >>> envelopes([(b"c1", b"{}"), (b"c2", b"{}"), (b"c3", b"{}"), (b"c1", b"{}")], 8)
    [(3, [0, 3]), (5, [1, 2])]
    """
    open_: dict[int, tuple[list[int], list[int]]] = {}
    done: list[tuple[int, list[int]]] = []
    for i, (key, value) in enumerate(records):
        partition = partition_for(key, partitions)
        group, size = open_.setdefault(partition, ([], [0]))
        if group and (len(group) >= MAX_EVENTS or size[0] + len(value) > MAX_BYTES):
            done.append((partition, group))
            group, size = open_[partition] = ([], [0])
        group.append(i)
        size[0] += len(key) + len(value) + 6
    return done + [(partition, group) for partition, (group, _) in open_.items()]
