"""The Redis key layout, in one place.

``ns`` is ``SEGSTREAM_NAMESPACE`` (default ``segstream``). Every key of one
customer carries the hash tag ``{<customer id>}`` so that, on Redis Cluster, they
share a slot and one Lua script can change them atomically. Braces and ``%`` in
customer ids are percent-encoded inside the tag.

==============================  ======  ===================================================
key                             type    content
==============================  ======  ===================================================
``ns:c:{cid}``                  string  ``<version>:<profile>``: CAS counter and profile (orjson,
                                        see ``stream.state.store.stored``)
``ns:c:{cid}:o``                hash    outbox: change ``seq`` -> change record, and
                                        ``t:<kind>:<at>`` -> training record (orjson), kept
                                        until Kafka acknowledged them
``ns:seg:{segment}``            zset    current members (all score 0, so ordered by id for
                                        cursor paging with ZRANGEBYLEX)
``ns:timers:{p<n>}``            zset    customer id -> next deadline (epoch ms) of customers
                                        on events-topic partition n
``ns:pending:{p<n>}``           zset    ``[cid, seq or field]`` -> time it was decided: outbox
                                        entries of partition n not yet confirmed published
``ns:stats``                    hash    counters: ``events``, ``changes``, ``dead_letter:<reason>``…
``ns:rules``                    hash    the deployed rule set: ``version``, ``files`` (name ->
                                        YAML text, orjson), ``at`` (epoch ms)
``ns:backfill:{version}``       hash    backfill of a rule version: ``p<n>`` -> customers
                                        evaluated, for each partition done; ``running:<p,…>``
                                        -> progress of a worker still at it
``ns:workers``                  hash    worker id -> ``{"partitions": [...], "at": ms}``, its heartbeat
``ns:models:{m}:version``       string  version of the newest model snapshot (workers poll it)
``ns:models:{m}:snapshot``      string  the newest :class:`stream.models.snapshot.Snapshot` (pickle)
``ns:models:{m}:state``         string  the trainer's state: learner and training-topic offset (pickle)
``ns:models:{m}:info``          string  quality report and versions (orjson), for the API and CLI
``ns:models:{m}:lease``         string  id of the one trainer allowed to run (expires)
``ns:sizes:{segment}``          zset    the segment's member count over time: ``<bucket ms>:<count>``
                                        scored by the bucket (epoch ms), see ``stream.serving.sizes``
``ns:analytics:performance``    string  the last ``segstream analytics performance --save`` report (orjson)
``ns:auth``                     hash    key id -> write or API key record (orjson: kind, source
                                        or name, scope, sha256 digest, last 4, created,
                                        revoked), see ``stream.auth.keystore``
==============================  ======  ===================================================
"""

from __future__ import annotations


def tag(customer_id: str) -> str:
    """The hash tag of a customer (braces and % percent-encoded)."""
    safe = customer_id.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    return "{" + safe + "}"


def profile(ns: str, customer_id: str) -> str:
    """String holding a customer's version and profile."""
    return f"{ns}:c:{tag(customer_id)}"


def outbox(ns: str, customer_id: str) -> str:
    """Hash of a customer's decided, not yet published changes."""
    return f"{ns}:c:{tag(customer_id)}:o"


def profile_pattern(ns: str) -> str:
    """SCAN pattern matching every profile key (and only those)."""
    return f"{ns}:c:{{*}}"


def customer_of(profile_key: str | bytes) -> str:
    """The customer id a profile key belongs to (inverse of :func:`profile`)."""
    key = profile_key.decode() if isinstance(profile_key, bytes) else profile_key
    inner = key[key.index("{") + 1 : key.rindex("}")]
    return inner.replace("%7D", "}").replace("%7B", "{").replace("%25", "%")


def segment(ns: str, name: str) -> str:
    """Sorted set of a segment's current members."""
    return f"{ns}:seg:{{{name}}}"


def sizes(ns: str, name: str) -> str:
    """Sorted set of a segment's sampled member counts (score: the sample's time bucket, epoch ms)."""
    return f"{ns}:sizes:{{{name}}}"


def analytics(ns: str, part: str) -> str:
    """String holding an analytics report computed offline (``performance``), for the API and dashboard."""
    return f"{ns}:analytics:{part}"


def timers(ns: str, partition: int) -> str:
    """Sorted set of deadlines of the customers on one events-topic partition."""
    return f"{ns}:timers:{{p{partition}}}"


def pending(ns: str, partition: int) -> str:
    """Sorted set of decided changes of one partition awaiting publication."""
    return f"{ns}:pending:{{p{partition}}}"


def stats(ns: str) -> str:
    """Hash of counters."""
    return f"{ns}:stats"


def workers(ns: str) -> str:
    """Hash of live workers' heartbeats and owned partitions."""
    return f"{ns}:workers"


def rules(ns: str) -> str:
    """Hash holding the deployed rule set."""
    return f"{ns}:rules"


def backfill(ns: str, version: str) -> str:
    """Hash of the partitions backfilled for a rule version."""
    return f"{ns}:backfill:{{{version}}}"


def models(ns: str, part: str) -> str:
    """A key of the model trainer (``version``, ``snapshot``, ``state``, ``info``, ``lease``), one hash slot for all."""
    return f"{ns}:models:{{m}}:{part}"


def auth(ns: str) -> str:
    """Hash of the write and API keys (digests only), by key id."""
    return f"{ns}:auth"
