"""The dashboard page, ``GET /dashboard``: static HTML, JavaScript and CSS shipped with the package.

The page needs no key to load; in the browser it asks for an API key (scope
read, kept in ``sessionStorage``) and calls the API with it: ``/v1/segments``
(live member counts), ``/v1/segments/{name}/sizes`` (size over time),
``/v1/changes/stream`` (live changes, with a token from ``POST /v1/changes/token``),
``/v1/customers/{id}`` and its explain trees, and ``/v1/models``. No CDN, no build step.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

#: The files served, by path; each is public (it holds no data).
FILES = {
    "/dashboard": ("index.html", "text/html"),
    "/dashboard/dashboard.js": ("dashboard.js", "text/javascript"),
    "/dashboard/dashboard.css": ("dashboard.css", "text/css"),
}
PATHS = frozenset(FILES)
#: The page runs only its own script and style, and talks only to this API.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def add_routes(app: web.Application) -> None:
    """Serve the dashboard's files (read once, from the package)."""
    here = resources.files(__name__)
    for path, (name, content_type) in FILES.items():
        body = (here / name).read_bytes()

        async def serve(request: web.Request, body: bytes = body, content_type: str = content_type) -> web.Response:
            return web.Response(body=body, content_type=content_type, charset="utf-8", headers=HEADERS)

        app.router.add_get(path, serve)
