"""Enrichment: plug-ins that add traits to a profile from other sources (files, web services, your code).

* :mod:`~stream.enrich.enricher`: the :class:`Enricher` protocol (``name``,
  ``async enrich(profile_view) -> traits``) and the helpers plug-ins share.
* :mod:`~stream.enrich.lookup`: ``kind: lookup``, a local CSV/JSON file keyed by a profile field.
* :mod:`~stream.enrich.http`: ``kind: http``, a web service with timeout, cache and circuit breaker
  (:mod:`~stream.enrich.cache`, :mod:`~stream.enrich.breaker`).
* :mod:`~stream.enrich.keys`: key transforms (``email_domain``, ``postal_code``, ...).
* :mod:`~stream.enrich.runner`: :class:`Enrichment`, every enricher at once within a deadline.
* :mod:`~stream.enrich.config`: the YAML file (``kind: lookup | http | python``) -> :class:`Enrichment`.

>>> enrichment = load_enrichment("enrichment.yaml")                                   # doctest: +SKIP
>>> await enrichment.enrich({"traits": {"email": "ann@acme.com", "postal_code": "sw1a 1aa"}})  # doctest: +SKIP
{'company.name': 'Acme Corp', 'company.industry': 'Software', ..., 'area.region': 'London', ...}
"""

from stream.enrich.config import EnrichmentConfig, load_enrichment
from stream.enrich.enricher import Enricher
from stream.enrich.errors import EnrichmentError
from stream.enrich.http import HttpEnricher, HttpSpec
from stream.enrich.lookup import LookupEnricher, LookupSpec
from stream.enrich.runner import Enrichment

__all__ = [
    "Enricher",
    "Enrichment",
    "EnrichmentConfig",
    "EnrichmentError",
    "HttpEnricher",
    "HttpSpec",
    "LookupEnricher",
    "LookupSpec",
    "load_enrichment",
]
