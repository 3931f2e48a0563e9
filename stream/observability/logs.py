"""Structured logs: one JSON object per line (``SEGSTREAM_LOG_FORMAT=json``).

Each line holds ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``,
``message``, the fields passed with ``extra=``, and ``exc_info`` (the traceback)
when there is one. Secrets are masked as in text logs: the message and traceback
by the record factory of :mod:`stream.auth.redact`, the extra fields here.

>>> import logging
>>> record = logging.LogRecord("stream.worker", logging.INFO, __file__, 1, "lag %d", (3,), None)
>>> record.created, record.partition = 0.0, 5
>>> JsonFormatter().format(record)
'{"ts":"1970-01-01T00:00:00.000Z","level":"INFO","logger":"stream.worker","message":"lag 3","partition":5}'
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import orjson

from stream.auth.redact import mask

#: Attributes every LogRecord has; the others came with ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in entry:
                entry[name] = mask(value) if isinstance(value, str) else value
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()
