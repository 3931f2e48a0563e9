"""Errors of access control, each saying what to do."""

from __future__ import annotations


class AuthError(Exception):
    """Base of access-control errors."""


class AccessDenied(AuthError):
    """A request refused: its HTTP ``status`` (401, 403, 503), a counter ``reason`` and the message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class KeyNotFound(AuthError):
    """``segstream keys revoke`` named no key, or a name shared by several keys."""


class BadKeySpec(AuthError, ValueError):
    """An entry of ``SEGSTREAM_WRITE_KEYS`` / ``SEGSTREAM_API_KEYS`` is malformed (the message never shows the key)."""
