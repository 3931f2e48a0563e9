"""The destinations package's exception."""

from __future__ import annotations

from stream.ingest.normalize import ConfigFileError


class DestinationsError(ConfigFileError):
    """A destinations file that cannot be used; ``errors`` lists every problem, one line each.

    e.g. ``destinations.yaml: destinations[0].max_attempts: input should be greater than or equal to 1, got 0``.
    """
