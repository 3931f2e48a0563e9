"""The protocol every enricher speaks, and the pieces enrichers share: reading a key, namespacing traits.

An enricher turns a view of a profile (a mapping like ``Profile.public()``:
``{"customer_id": ..., "traits": {...}, ...}``) into traits to add, namespaced by
the enricher (``{"company.name": "Acme", "company.industry": "Software"}``). It
returns ``{}`` when it knows nothing, and must be quick: the
:class:`~stream.enrich.runner.Enrichment` runner stops waiting at its deadline.
Optionally it has ``stats() -> dict[str, int]`` (counters the runner reports) and
``async close()`` (release connections).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from stream.enrich.keys import KeyTransform


@runtime_checkable
class Enricher(Protocol):
    """Something that adds traits to a profile: a ``name`` and ``async enrich(profile_view) -> traits``.

    >>> class Greeting:
    ...     name = "greeting"
    ...     async def enrich(self, profile_view):
    ...         return {"greeting.text": f"hello {profile_view['customer_id']}"}
    >>> isinstance(Greeting(), Enricher)
    True
    """

    name: str

    async def enrich(self, profile_view: Mapping[str, Any]) -> dict[str, Any]:
        """Traits to add, each named ``<namespace>.<field>``; ``{}`` when there is nothing to add."""
        ...


def profile_key(profile_view: Mapping[str, Any], path: tuple[str, ...], transform: KeyTransform) -> str | None:
    """The lookup key of a profile: the value at ``path`` (e.g. ``traits.email``) through ``transform``; ``None`` when absent."""
    node: Any = profile_view
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    if node is None or isinstance(node, (dict, list, bool)):
        return None
    return transform(str(node)) or None


def namespaced(namespace: str, fields: Mapping[str, Any], only: frozenset[str] | None) -> dict[str, Any]:
    """``fields`` as traits ``<namespace>.<field>``, keeping ``only`` those fields when given and dropping empty values."""
    return {f"{namespace}.{k}": v for k, v in fields.items() if (only is None or k in only) and v is not None and v != ""}
