"""The ``lookup`` enricher: a local CSV or JSON file keyed by a profile field.

CSV: a header row; the ``key_column`` holds the keys, the other columns are the
fields (empty cells are left out). JSON: an object ``{key: {field: value}}``.
File keys go through the same ``transform`` as profile values, so
``SW1A 1AA`` in the file matches a profile's ``sw1a1aa``.

.. code-block:: yaml

    - kind: lookup
      name: company                 # traits company.name, company.industry, ...
      file: enrichment/companies.csv
      key_column: domain
      key: traits.email
      transform: email_domain
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import orjson

from stream.enrich.enricher import namespaced, profile_key
from stream.enrich.errors import EnrichmentError
from stream.enrich.keys import KeyTransform
from stream.enrich.spec import KeyedSpec


class LookupSpec(KeyedSpec):
    """``kind: lookup``: ``file`` (CSV or JSON, relative to the config file) and, for CSV, ``key_column``."""

    kind: Literal["lookup"]
    file: Path
    key_column: str = "key"

    def build(self, base_dir: Path) -> LookupEnricher:
        """The enricher, its file read now; raises :class:`EnrichmentError` naming the file."""
        file = self.file if self.file.is_absolute() else base_dir / self.file
        table = read_table(file, self.key_column, self.key_transform)
        return LookupEnricher(self.name, table, self.key_path, self.key_transform, self.prefix, self.only)


class LookupEnricher:
    """Traits from an in-memory table: ``table[transform(profile[key])]``, namespaced."""

    def __init__(
        self,
        name: str,
        table: Mapping[str, Mapping[str, Any]],
        key: tuple[str, ...],
        transform: KeyTransform,
        namespace: str | None = None,
        only: frozenset[str] | None = None,
    ) -> None:
        self.name = name
        self._table = table
        self._key = key
        self._transform = transform
        self._namespace = namespace or name
        self._only = only
        self._counts = {"lookups": 0, "hits": 0, "misses": 0, "no_key": 0}

    async def enrich(self, profile_view: Mapping[str, Any]) -> dict[str, Any]:
        """The row of the profile's key as namespaced traits; ``{}`` when the key is absent or unknown."""
        key = profile_key(profile_view, self._key, self._transform)
        if key is None:
            self._counts["no_key"] += 1
            return {}
        self._counts["lookups"] += 1
        row = self._table.get(key)
        self._counts["hits" if row is not None else "misses"] += 1
        return {} if row is None else namespaced(self._namespace, row, self._only)

    def stats(self) -> dict[str, int]:
        """Counters: lookups, hits, misses, no_key (profiles without the key field)."""
        return {**self._counts, "rows": len(self._table)}


def read_table(file: Path, key_column: str, transform: KeyTransform) -> dict[str, dict[str, Any]]:
    """The rows of a CSV or JSON file by transformed key; raises :class:`EnrichmentError` saying what to fix."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EnrichmentError([f"{file}: cannot read the data file ({exc}); check the 'file:' path (relative to the config file)"]) from None
    if file.suffix.lower() == ".json":
        return _json_table(file, text, transform)
    if file.suffix.lower() == ".csv":
        return _csv_table(file, text, key_column, transform)
    raise EnrichmentError([f"{file}: unsupported data file; use a .csv (with a header row) or a .json object"])


def _json_table(file: Path, text: str, transform: KeyTransform) -> dict[str, dict[str, Any]]:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise EnrichmentError([f"{file}: invalid JSON ({exc}); fix the file"]) from None
    if not isinstance(data, dict) or not all(isinstance(row, dict) for row in data.values()):
        raise EnrichmentError([f"{file}: expected an object of objects like {{\"SW1A1AA\": {{\"region\": \"London\"}}}}"])
    return {transform(str(key)): row for key, row in data.items()}


def _csv_table(file: Path, text: str, key_column: str, transform: KeyTransform) -> dict[str, dict[str, Any]]:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or key_column not in reader.fieldnames:
        columns = ", ".join(reader.fieldnames or []) or "none"
        raise EnrichmentError([f"{file}: no column {key_column!r} (columns: {columns}); set 'key_column:' to the column holding the keys"])
    return {
        transform(row[key_column]): {k: v for k, v in row.items() if k != key_column and k is not None and v not in (None, "")}
        for row in reader
        if row.get(key_column)
    }
