"""The HTTP edge: one signed call to a destination, its answer reduced to what the retry policy needs."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from stream.destinations.config import DestinationSpec
from stream.destinations.retry import Outcome, outcome, retry_after
from stream.destinations.signing import sign


@dataclass(frozen=True)
class Answer:
    """One attempt's result: the status (``None``: no answer), what went wrong, the ``Retry-After`` it asked for."""

    status: int | None
    error: str = ""
    retry_after_s: float | None = None
    body: bytes = b""

    @property
    def outcome(self) -> Outcome:
        """delivered, retry (no answer, 5xx, 408, 429) or permanent (other 4xx)."""
        return "retry" if self.status is None else outcome(self.status)


async def call(
    session: aiohttp.ClientSession, spec: DestinationSpec, method: str, url: str, body: bytes, headers: dict[str, str]
) -> Answer:
    """Send ``body`` signed with the destination's key (``X-Segstream-Signature``/``-Timestamp``) plus its headers."""
    signed = {**spec.headers, **headers, "Content-Type": "application/json", **sign(spec.key(), body, int(time.time()))}
    try:
        async with session.request(
            method, url, data=body, headers=signed, timeout=aiohttp.ClientTimeout(total=spec.timeout_s)
        ) as response:
            read = await response.read()
            error = "" if 200 <= response.status < 300 else f"HTTP {response.status}: {read[:200].decode(errors='replace')}"
            return Answer(response.status, error, retry_after(response.headers.get("Retry-After"), time.time()), read)
    except asyncio.TimeoutError:
        return Answer(None, f"no answer within {spec.timeout_s:g}s")
    except aiohttp.ClientError as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}")


def json_body(answer: Answer) -> Any:
    """The answer's body as JSON; raises ``ValueError`` when it is not JSON."""
    return orjson.loads(answer.body)
