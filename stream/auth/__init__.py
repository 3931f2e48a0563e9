"""Access control: who may send events, read state and administer segstream.

* :mod:`stream.auth.credentials` — keys as records (digests only), generating them,
  the ``SEGSTREAM_WRITE_KEYS`` / ``SEGSTREAM_API_KEYS`` formats, scopes.
* :mod:`stream.auth.access` — the decisions: may this request write events, may
  this bearer key call this endpoint (pure functions over a :class:`KeySet`).
* :mod:`stream.auth.keystore` — keys in Redis (add, list, revoke) and the
  :class:`KeyRing` cache the collector and the API refresh every second.
* :mod:`stream.auth.ratelimit` — token buckets per write key.
* :mod:`stream.auth.redact` — secrets masked in URLs and in every log line.
* :mod:`stream.auth.manage` — ``segstream keys ...`` and the local admin key of
  ``segstream run`` (Redis credentials are admin rights).

The README's "Security" section describes the model as users see it.
"""
