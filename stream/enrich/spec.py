"""What the configs of keyed enrichers (``lookup``, ``http``) share: name, key, transform, namespace, fields."""

from __future__ import annotations

from pydantic import Field, field_validator

from stream.enrich.keys import KEY_TRANSFORMS, KeyTransform
from stream.rules.model import RuleModel

#: A plug-in name: it namespaces its traits (``company`` -> ``company.name``).
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class KeyedSpec(RuleModel):
    """An enricher that looks a profile up by one key.

    ``key`` is a dotted path in the profile view (``traits.email``), ``transform`` one of
    :data:`~stream.enrich.keys.KEY_TRANSFORMS`; traits come out as ``<namespace>.<field>``
    (``namespace`` defaults to ``name``), only ``fields`` when listed.
    """

    name: str = Field(pattern=NAME_PATTERN)
    key: str
    transform: str = "exact"
    namespace: str | None = None
    fields: list[str] | None = None

    @field_validator("transform")
    @classmethod
    def _transform(cls, name: str) -> str:
        if name not in KEY_TRANSFORMS:
            raise ValueError(f"unknown transform {name!r}; use one of {', '.join(KEY_TRANSFORMS)}")
        return name

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        if not key or any(not part for part in key.split(".")):
            raise ValueError(f"expected a dotted path in the profile like 'traits.email', got {key!r}")
        return key

    @property
    def key_path(self) -> tuple[str, ...]:
        """``key`` split at its dots."""
        return tuple(self.key.split("."))

    @property
    def key_transform(self) -> KeyTransform:
        """The function named by ``transform``."""
        return KEY_TRANSFORMS[self.transform]

    @property
    def prefix(self) -> str:
        """The namespace of the traits: ``namespace``, else ``name``."""
        return self.namespace or self.name

    @property
    def only(self) -> frozenset[str] | None:
        """``fields`` as a set, ``None`` for all."""
        return None if self.fields is None else frozenset(self.fields)
