"""The ``http`` enricher: a web service asked for each key, never allowed to stall the stream.

``GET`` (or ``POST`` with the JSON body ``{body_field: key}``) to ``url`` with ``{key}``
replaced by the URL-quoted key; a JSON object answer gives the traits, namespaced.
``404`` or an empty object means "nothing known" and is cached as ``{}`` for
``cache.negative_ttl_s``; answers are cached for ``cache.ttl_s`` (LRU of ``cache.size``).
A call that takes over ``timeout_ms``, fails to connect, answers another status or
non-JSON counts as a failure and returns ``{}``; ``breaker.failures`` consecutive
failures open the circuit breaker for ``breaker.cooldown_s``, during which every call
returns ``{}`` at once, then one probe call is let through. Header values may name
environment variables, ``${API_TOKEN}``, so secrets stay out of the file.

.. code-block:: yaml

    - kind: http
      name: firmo
      url: "https://firmo.example.com/v1/companies?domain={key}"
      key: traits.email
      transform: email_domain
      headers: {Authorization: "Bearer ${FIRMO_TOKEN}"}
      timeout_ms: 200
      cache: {size: 10000, ttl_s: 86400, negative_ttl_s: 3600}
      breaker: {failures: 5, cooldown_s: 30}
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
import orjson
from pydantic import Field, field_validator

from stream.enrich.breaker import CircuitBreaker
from stream.enrich.cache import MISS, TTLCache
from stream.enrich.enricher import namespaced, profile_key
from stream.enrich.errors import EnrichmentError
from stream.enrich.keys import KeyTransform
from stream.enrich.spec import KeyedSpec
from stream.rules.model import RuleModel

log = logging.getLogger("stream.enrich.http")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class CacheSpec(RuleModel):
    """``size`` entries at most; answers kept ``ttl_s`` seconds, "nothing known" ``negative_ttl_s``."""

    size: int = Field(10_000, ge=0)
    ttl_s: float = Field(3600.0, ge=0)
    negative_ttl_s: float = Field(300.0, ge=0)


class BreakerSpec(RuleModel):
    """Open after ``failures`` consecutive failures or timeouts, for ``cooldown_s`` seconds."""

    failures: int = Field(5, ge=1)
    cooldown_s: float = Field(30.0, gt=0)


class HttpSpec(KeyedSpec):
    """``kind: http`` (see the module docstring)."""

    kind: Literal["http"]
    url: str
    method: Literal["GET", "POST"] = "GET"
    body_field: str = "key"
    headers: dict[str, str] = {}
    timeout_ms: float = Field(200.0, gt=0)
    cache: CacheSpec = CacheSpec()
    breaker: BreakerSpec = BreakerSpec()

    @field_validator("url")
    @classmethod
    def _template(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
        return url

    def build(self, base_dir: Path, clock: Callable[[], float] = time.monotonic) -> HttpEnricher:
        """The enricher (``base_dir`` unused), ``${VAR}`` in headers read from the environment; raises :class:`EnrichmentError` for unset ones."""
        missing = sorted({m for value in self.headers.values() for m in _ENV.findall(value) if m not in os.environ})
        if missing:
            raise EnrichmentError([f"enricher '{self.name}': headers: set the environment variable(s) {', '.join(missing)}"])
        headers = {k: _ENV.sub(lambda m: os.environ[m.group(1)], v) for k, v in self.headers.items()}
        return HttpEnricher(self, headers, clock)


class HttpEnricher:
    """Traits from a web service, with a timeout, a cache and a circuit breaker (see the module docstring)."""

    def __init__(self, spec: HttpSpec, headers: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = spec.name
        self.spec = spec
        self._headers = dict(headers if headers is not None else spec.headers)
        self._key: tuple[str, ...] = spec.key_path
        self._transform: KeyTransform = spec.key_transform
        self._timeout_s = spec.timeout_ms / 1000
        self.cache = TTLCache(spec.cache.size, clock)
        self.breaker = CircuitBreaker(spec.breaker.failures, spec.breaker.cooldown_s, clock)
        self._session: aiohttp.ClientSession | None = None
        self._counts = {"calls": 0, "cache_hits": 0, "timeouts": 0, "failures": 0, "short_circuits": 0, "cancelled": 0, "no_key": 0}

    async def enrich(self, profile_view: Mapping[str, Any]) -> dict[str, Any]:
        """The service's answer for the profile's key as namespaced traits; ``{}`` when unknown, failing, slow or open."""
        key = profile_key(profile_view, self._key, self._transform)
        if key is None:
            self._counts["no_key"] += 1
            return {}
        cached = self.cache.get(key)
        if cached is not MISS:
            self._counts["cache_hits"] += 1
            return cached  # type: ignore[no-any-return]
        if not self.breaker.allow():
            self._counts["short_circuits"] += 1
            return {}
        self._counts["calls"] += 1
        try:
            found = await asyncio.wait_for(self._ask(key), self._timeout_s)
        except asyncio.TimeoutError:
            self._counts["timeouts"] += 1
            self.breaker.failure()
            return {}
        except asyncio.CancelledError:  # the runner's deadline: a timeout too, and it must not leave a probe pending
            self._counts["cancelled"] += 1
            self.breaker.failure()
            raise
        except (aiohttp.ClientError, ValueError) as exc:
            self._counts["failures"] += 1
            self.breaker.failure()
            log.warning("enricher %s: %s failed: %s", self.name, self.spec.url, exc)
            return {}
        self.breaker.success()
        traits = namespaced(self.spec.prefix, found, self.spec.only)
        self.cache.put(key, traits, self.spec.cache.ttl_s if traits else self.spec.cache.negative_ttl_s)
        return traits

    async def _ask(self, key: str) -> dict[str, Any]:
        """The service's fields for ``key`` (``{}`` for 404); raises ``ValueError`` for any other answer it cannot use."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers)
        url = self.spec.url.replace("{key}", quote(key, safe=""))
        body = orjson.dumps({self.spec.body_field: key}) if self.spec.method == "POST" else None
        headers = {"Content-Type": "application/json"} if body is not None else None
        async with self._session.request(self.spec.method, url, data=body, headers=headers) as response:
            if response.status == 404:
                return {}
            if response.status != 200:
                raise ValueError(f"status {response.status}")
            found = orjson.loads(await response.read())
        if not isinstance(found, dict):
            raise ValueError(f"expected a JSON object, got {type(found).__name__}")
        return found

    def stats(self) -> dict[str, int]:
        """Counters: calls, cache_hits, timeouts, failures, short_circuits (refused while open), cancelled (by the runner), breaker_opens, no_key."""
        return {**self._counts, "breaker_opens": self.breaker.opens, "cached": len(self.cache)}

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
