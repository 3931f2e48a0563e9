"""The enrich package's exception."""

from __future__ import annotations

from stream.ingest.normalize import ConfigFileError


class EnrichmentError(ConfigFileError):
    """An enrichment file, data file or plug-in that cannot be used; ``errors`` lists every problem, one line each.

    e.g. ``enrichment.yaml: enrichers[1].timeout_ms: input should be greater than 0, got 0``.
    """
