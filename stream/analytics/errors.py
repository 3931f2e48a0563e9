"""Errors of segment analytics."""

from __future__ import annotations


class AnalyticsError(Exception):
    """A request for analytics that cannot be answered as asked (the message says what to change)."""
