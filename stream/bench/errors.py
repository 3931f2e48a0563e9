"""Errors of the benchmark."""

from __future__ import annotations


class BenchError(RuntimeError):
    """A part of the benchmark could not run; the message says what failed and where to look."""
