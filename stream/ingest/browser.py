"""CORS: which web pages may send events to the collector from a browser (``SEGSTREAM_CORS_ORIGINS``).

A browser posts to another origin only after a preflight ``OPTIONS`` when the request
carries headers beyond the simple ones — analytics-next sends its write key as Basic
auth, RudderStack's SDK also an ``AnonymousId`` header — and shows the page the answer
only when it carries ``Access-Control-Allow-Origin``. With the default ``*`` every page
may send (as Segment's API allows); with a list, a request whose ``Origin`` is not in it
is refused ``403 origin_not_allowed``, preflight or not (a ``text/plain`` post with
``writeKey`` in the body needs no preflight). Requests without ``Origin`` (servers,
mobile and server SDKs) are not concerned.

>>> cors = Cors.parse("https://shop.example, http://localhost:3000")
>>> cors.allows("https://shop.example"), cors.allows("https://evil.example"), cors.allows(None)
(True, False, True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson
from aiohttp import web

from stream.auth.errors import AccessDenied

ANY = "*"
#: Request headers the browser SDKs send: analytics-next (``X-Retry-Count`` on retries) and RudderStack (``AnonymousId``).
ALLOWED_HEADERS = "Content-Type, Authorization, Content-Encoding, AnonymousId, X-Retry-Count"
_PREFLIGHT = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
    "Access-Control-Max-Age": "86400",
}
# scheme://host[:port], nothing after: what browsers send as Origin ("null" for file:// and sandboxed pages).
_ORIGIN = re.compile(r"(https?://[^/\s?#]+|null)")


@dataclass(frozen=True)
class Cors:
    """The origins whose pages may send events; empty ``origins`` means any."""

    origins: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> "Cors":
        """The policy of a ``SEGSTREAM_CORS_ORIGINS`` value: ``*``, or comma-separated ``scheme://host[:port]`` (or ``null``)."""
        entries = [entry.strip() for entry in text.split(",") if entry.strip()]
        if not entries:
            raise ValueError("SEGSTREAM_CORS_ORIGINS is empty: set it to * (any page) or to origins like https://shop.example")
        if ANY in entries:
            if len(entries) > 1:
                raise ValueError("SEGSTREAM_CORS_ORIGINS: * already allows every origin, list no others with it")
            return cls()
        for entry in entries:
            if not _ORIGIN.fullmatch(entry):
                raise ValueError(
                    f"SEGSTREAM_CORS_ORIGINS: {entry!r} is not an origin: write scheme://host[:port] "
                    "with no path or trailing slash, e.g. https://shop.example or http://localhost:3000"
                )
        return cls(frozenset(entry.lower() for entry in entries))

    def allows(self, origin: str | None) -> bool:
        """Whether a request with this ``Origin`` header (``None``: none) may send events."""
        return origin is None or not self.origins or origin.lower() in self.origins

    def check(self, origin: str | None) -> None:
        """Raise :class:`AccessDenied` (403 ``origin_not_allowed``) unless :meth:`allows` the origin."""
        if not self.allows(origin):
            raise AccessDenied(
                403,
                "origin_not_allowed",
                f"Origin {origin!r} may not send events: add it to SEGSTREAM_CORS_ORIGINS (or set that to * for any page)",
            )

    async def preflight(self, request: web.Request) -> web.Response:
        """Answer a browser's ``OPTIONS`` for an event endpoint: 204 with the allowed methods and headers, else 403."""
        try:
            self.check(request.headers.get("Origin"))
        except AccessDenied as exc:
            body = {"success": False, "code": exc.reason, "message": exc.message}
            return web.Response(status=exc.status, body=orjson.dumps(body), content_type="application/json")
        return web.Response(status=204, headers=_PREFLIGHT)

    async def allow_origin(self, request: web.Request, response: web.StreamResponse) -> None:
        """``on_response_prepare`` hook: ``Access-Control-Allow-Origin`` on answers to allowed origins."""
        origin = request.headers.get("Origin")
        if origin is None:
            if not self.origins:
                response.headers["Access-Control-Allow-Origin"] = ANY
        elif self.allows(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
