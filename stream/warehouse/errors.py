"""Errors of the warehouse export."""

from __future__ import annotations


class WarehouseError(RuntimeError):
    """The export cannot go on (or a query cannot run); the message says what to do."""
