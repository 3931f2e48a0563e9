"""Secrets kept out of logs and printed settings.

Two layers: :func:`redact_url` masks the password of a URL wherever segstream
prints one (``REDIS_URL``), and :func:`mask_secrets_in_logs` installs a log
record factory that replaces every known secret value (Redis and Kafka
passwords, API and write keys from the environment) by ``***`` in every log
line of the process, whichever library logs it.

>>> redact_url("rediss://app:s3cr%40t@redis:6380/0?ssl_ca_certs=/ca.pem")
'rediss://app:***@redis:6380/0?ssl_ca_certs=/ca.pem'
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

MASK = "***"
#: Secret values shorter than this are not searched for in log lines (they would mask ordinary words);
#: URLs are masked structurally whatever the password's length.
MIN_SECRET_LEN = 6

_secrets: set[str] = set()
_installed = False


def redact_url(url: str) -> str:
    """``url`` with its password, and query parameters named like passwords or tokens, replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return MASK
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{host}"
    query = parts.query
    if any(_secret_name(name) for name, _ in parse_qsl(query)):
        query = urlencode([(n, MASK if _secret_name(n) else v) for n, v in parse_qsl(query)], safe="/*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secret_name(name: str) -> bool:
    return any(word in name.lower() for word in ("password", "secret", "token"))


def secret_values(settings: Any) -> list[str]:
    """Every secret value in ``settings`` (a :class:`stream.config.Settings`): passwords and plain keys."""
    from stream.config import reveal  # late: stream.config imports this module

    values: list[str] = []
    try:
        url = urlsplit(settings.redis_url)
        password = url.password
    except ValueError:
        url, password = None, None
    if password:
        values += [password, unquote(password)]
    if url is not None:
        values += [v for name, v in parse_qsl(url.query) if _secret_name(name)]
    values += [reveal(settings.kafka_sasl_password), reveal(settings.kafka_ssl_key_password), reveal(settings.api_key)]
    for entry in reveal(settings.api_keys).split(","):
        key = entry.split(":", 2)[-1].strip()
        if ":" in entry and not key.startswith("sha256:"):
            values.append(key)
    values += [entry.rpartition(":")[2].strip() for entry in reveal(settings.write_keys).split(",")]
    return [v for v in values if v]


def mask(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every secret (default: those registered for logging) replaced by ``***``."""
    for secret in sorted(_secrets if secrets is None else secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LEN and secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_secrets_in_logs(secrets: Iterable[str]) -> None:
    """Mask ``secrets`` in every log record created from now on in this process (adds to earlier calls)."""
    global _installed
    _secrets.update(s for s in secrets if len(s) >= MIN_SECRET_LEN)
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if _secrets:
            _mask_record(record)
        return record

    logging.setLogRecordFactory(masked_record)


def _mask_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is logging's to report, not ours
        return
    masked = mask(message)
    if masked != message:
        record.msg, record.args = masked, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
