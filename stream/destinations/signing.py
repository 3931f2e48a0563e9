"""HMAC-SHA256 signatures of delivered bodies, and their verification by a receiver.

The signed payload is ``<timestamp>.<raw body>`` (timestamp: epoch seconds as
sent in ``X-Segstream-Timestamp``), so a captured request cannot be replayed
later with a fresh timestamp.

>>> headers = sign("s3cret", b'{"id": "1"}', timestamp=1700000000)
>>> headers["X-Segstream-Signature"][:7], headers["X-Segstream-Timestamp"]
('sha256=', '1700000000')
>>> verify("s3cret", b'{"id": "1"}', headers["X-Segstream-Signature"], headers["X-Segstream-Timestamp"], now=1700000100)
True
>>> verify("s3cret", b'{"id": "2"}', headers["X-Segstream-Signature"], headers["X-Segstream-Timestamp"], now=1700000100)
False
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Segstream-Signature"
TIMESTAMP_HEADER = "X-Segstream-Timestamp"
#: How old (or how far in the future) a signed timestamp may be for :func:`verify`, in seconds.
TOLERANCE_S = 300


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The signature and timestamp headers of a request carrying ``body``."""
    return {SIGNATURE_HEADER: signature(secret, body, timestamp), TIMESTAMP_HEADER: str(timestamp)}


def verify(secret: str, body: bytes, signature_header: str, timestamp_header: str, now: float, tolerance_s: float = TOLERANCE_S) -> bool:
    """Whether a received request is authentic and fresh: the signature matches and the timestamp is within ``tolerance_s`` of ``now``."""
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, body, timestamp), signature_header)
