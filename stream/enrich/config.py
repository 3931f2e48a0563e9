"""The enrichment file: which enrichers run, in what order, within what deadline.

.. code-block:: yaml

    deadline_ms: 250
    enrichers:
      - kind: lookup          # a local CSV/JSON file: stream.enrich.lookup
        name: company
        file: enrichment/companies.csv
        key_column: domain
        key: traits.email
        transform: email_domain
      - kind: http            # a web service: stream.enrich.http
        name: firmo
        url: "https://firmo.example.com/v1/companies?domain={key}"
        key: traits.email
        transform: email_domain
      - kind: python          # a third-party plug-in
        factory: "my_package.enrichers:make_weather"
        options: {api_url: "https://weather.example.com"}

A ``python`` plug-in's ``factory`` is ``module:callable``; it is called with
``options`` as keyword arguments and must return an
:class:`~stream.enrich.enricher.Enricher`. Adding a built-in kind means one module
with its spec (a ``kind`` literal and ``build(base_dir)``) and one entry in :data:`EnricherSpec`.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field

from stream.enrich.enricher import Enricher
from stream.enrich.errors import EnrichmentError
from stream.enrich.http import HttpSpec
from stream.enrich.lookup import LookupSpec
from stream.enrich.runner import DEADLINE_S, Enrichment
from stream.ingest.normalize import read_config
from stream.rules.model import RuleModel


class PythonSpec(RuleModel):
    """``kind: python``: ``factory`` (``"package.module:callable"``) called with ``options``."""

    kind: Literal["python"]
    factory: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    options: dict[str, Any] = {}

    def build(self, base_dir: Path) -> Enricher:
        """The plug-in's enricher (``base_dir`` unused); raises :class:`EnrichmentError` saying what is wrong with it."""
        module_name, _, attr = self.factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise EnrichmentError([f"factory {self.factory!r}: cannot import it ({exc}); install the package or fix the path"]) from None
        if not callable(factory):
            raise EnrichmentError([f"factory {self.factory!r} is a {type(factory).__name__}, not callable; point it at a function or class"])
        try:
            enricher = factory(**self.options)
        except TypeError as exc:
            raise EnrichmentError([f"factory {self.factory!r}: {exc}; fix 'options:' to match its arguments"]) from None
        if not isinstance(enricher, Enricher) or not inspect.iscoroutinefunction(enricher.enrich):
            raise EnrichmentError([f"factory {self.factory!r} returned {type(enricher).__name__}, not an Enricher (a 'name' and an 'async def enrich')"])
        return enricher


#: The spec of every ``kind:`` of enricher; each has ``build(base_dir) -> Enricher``.
EnricherSpec = Annotated[Union[LookupSpec, HttpSpec, PythonSpec], Field(discriminator="kind")]


class EnrichmentConfig(RuleModel):
    """The enrichment file: ``enrichers`` (run concurrently) and the overall ``deadline_ms``."""

    deadline_ms: float = Field(DEADLINE_S * 1000, gt=0)
    enrichers: list[EnricherSpec] = []


def load_enrichment(path: Path | str) -> Enrichment:
    """The :class:`Enrichment` of the YAML file at ``path``, data files read; raises :class:`EnrichmentError` listing every problem."""
    config = read_config(path, EnrichmentConfig, EnrichmentError)
    enrichers, errors = [], []
    for i, spec in enumerate(config.enrichers):
        try:
            enrichers.append(spec.build(Path(path).parent))
        except EnrichmentError as exc:
            errors.extend(f"{path}: enrichers[{i}] ({spec.kind}): {error}" for error in exc.errors)
    names = [e.name for e in enrichers]
    errors.extend(f"{path}: enrichers: the name {n!r} is used twice; names namespace traits, rename one" for n in sorted({n for n in names if names.count(n) > 1}))
    if errors:
        raise EnrichmentError(errors)
    return Enrichment(enrichers, config.deadline_ms / 1000)
