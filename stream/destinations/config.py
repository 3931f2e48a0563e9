"""The destinations file (``SEGSTREAM_DESTINATIONS``, default ``destinations.yaml``): where segment changes go.

.. code-block:: yaml

    destinations:
      - name: crm                       # letters, digits, _ and -: names the consumer group and dead-letter topic
        kind: webhook                   # one POST per change
        url: https://crm.example.com/hooks/segstream
        segments: all                   # or a list: [vip, cart_abandoners]
        secret_env: CRM_WEBHOOK_SECRET  # HMAC key from the environment (or `secret:` in the file)
        headers: {X-Source: segstream}
        timeout_s: 10
        max_attempts: 8
        backoff: {initial_s: 1, factor: 2, max_s: 60, jitter: 0.5}
      - name: ads
        kind: audience                  # keeps a list per segment equal to its members
        url: https://ads.example.com/audiences
        segments: [high_value]
        secret_env: ADS_SECRET
        batch_size: 500
        linger_s: 2
        reconcile_every_s: 3600

:func:`load_destinations` validates the file, reads ``secret_env`` variables and
returns the destinations with ``secret`` set; every problem is one line of
:class:`DestinationsError` naming the file and the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, SecretStr, model_validator

from stream.destinations.errors import DestinationsError
from stream.destinations.retry import BackoffSpec
from stream.ingest.normalize import read_config
from stream.rules.model import RuleModel


class DestinationSpec(RuleModel):
    """What every destination has: where, which segments, how it signs, how it retries."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,100}$")
    url: str = Field(pattern=r"^https?://\S+$")
    segments: Literal["all"] | list[Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]] = Field(min_length=1)
    secret: SecretStr | None = None
    secret_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    headers: dict[str, str] = {}
    timeout_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(8, ge=1)
    backoff: BackoffSpec = BackoffSpec()
    start_from: Literal["earliest", "latest"] = "earliest"

    @model_validator(mode="after")
    def _one_secret(self) -> "DestinationSpec":
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("give exactly one of 'secret_env' (an environment variable holding the HMAC key) or 'secret'")
        return self

    def wants(self, segment: str) -> bool:
        """Whether changes of ``segment`` go to this destination."""
        return self.segments == "all" or segment in self.segments

    def key(self) -> str:
        """The HMAC key (resolved by :func:`load_destinations`)."""
        assert self.secret is not None, "load_destinations resolves secret_env"
        return self.secret.get_secret_value()


class WebhookSpec(DestinationSpec):
    """``kind: webhook``: each change is POSTed on its own, signed, with its ``id`` as ``Idempotency-Key``."""

    kind: Literal["webhook"]


class AudienceSpec(DestinationSpec):
    """``kind: audience``: the list of each segment kept equal to its members by batched add/remove calls and reconciles."""

    kind: Literal["audience"]
    segments: list[Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]] = Field(min_length=1)
    batch_size: int = Field(500, ge=1, le=100_000)
    linger_s: float = Field(2.0, ge=0)
    reconcile_every_s: float = Field(3600.0, ge=0)


Destination = Annotated[Union[WebhookSpec, AudienceSpec], Field(discriminator="kind")]


class DestinationsConfig(RuleModel):
    """The destinations file: a list of ``destinations``."""

    destinations: list[Destination] = []


def load_destinations(path: Path | str) -> list[WebhookSpec | AudienceSpec]:
    """The destinations of the YAML file at ``path``, ``secret`` read from ``secret_env``; raises :class:`DestinationsError` listing every problem."""
    config = read_config(path, DestinationsConfig, DestinationsError)
    errors, resolved = [], []
    names = [d.name for d in config.destinations]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"{path}: destinations: the name {duplicate!r} is used twice; names the consumer group and dead-letter topic, rename one")
    for i, spec in enumerate(config.destinations):
        if spec.secret_env is not None:
            value = os.environ.get(spec.secret_env, "")
            if not value:
                errors.append(f"{path}: destinations[{i}].secret_env: set the environment variable {spec.secret_env} (the HMAC key of {spec.name!r})")
                continue
            spec = spec.model_copy(update={"secret": SecretStr(value)})
        resolved.append(spec)
    if errors:
        raise DestinationsError(errors)
    return resolved
