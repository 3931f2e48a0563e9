"""Website SDKs in a real browser, to segments.

The published ``@segment/analytics-next`` and ``@rudderstack/analytics-js`` from npm, bundled
by ``web/sdk/`` (``npm ci && npm run build``, here once when the bundle is missing or stale),
run in ``web/sdk/demo.html`` served on localhost, in Debian's headless Chromium driven by
Playwright. The page and the collector are different origins (ports), so the browser applies
CORS for real; any request to a host other than 127.0.0.1 or localhost is aborted and fails the test.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from playwright.sync_api import Browser, Page, Request, Route, sync_playwright
from pydantic import SecretStr

from stream.client import Client
from stream.config import Settings
from stream.state.profile import parse_time
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import ARTIFACTS, ROOT, TopicReader, api_headers, free_port, http_json, wait_until
from tests.e2e.test_engine import changes_of

SDK_DIR = ROOT / "web" / "sdk"
BUNDLE = SDK_DIR / "dist" / "segstream-sdk.js"
CHROMIUM = Path("/usr/bin/chromium")
WRITE_KEY = "wk_browser_e2e"
ABSENCE_S = 3
RULES = f"""
segments:
  - name: shop_visitors
    condition: {{event: page, within: 1h}}
  - name: product_viewers
    description: Viewed a product
    condition: {{event: Product Viewed, within: 1h}}
  - name: keen_viewers
    description: 2+ product views in 1 h
    condition: {{event: Product Viewed, within: 1h, count: {{gte: 2}}}}
  - name: cart_abandoners
    description: Added to cart, no purchase within {ABSENCE_S} s
    condition: {{event: Product Added, without: Order Completed, within: {ABSENCE_S}s}}
"""
SEGMENTS = {"shop_visitors", "product_viewers", "keen_viewers", "cart_abandoners"}
#: What each SDK calls itself in ``context.library.name`` (analytics-next's version reads ``npm:next-1.84.3``).
LIBRARIES = {"segment": "analytics.js", "rudder": "RudderLabs JavaScript SDK"}


@pytest.fixture(scope="session")
def bundle() -> Path:
    """``web/sdk/dist/segstream-sdk.js``, built from the npm packages when missing or older than its sources."""
    sources = [SDK_DIR / "package.json", SDK_DIR / "package-lock.json", SDK_DIR / "src" / "index.js"]
    if BUNDLE.exists() and BUNDLE.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return BUNDLE
    if shutil.which("npm") is None:
        pytest.fail("npm is missing: install Node.js and npm (Debian: apt-get install nodejs npm) to build web/sdk/", pytrace=False)
    installed = SDK_DIR / "node_modules" / ".package-lock.json"  # npm writes it; older than the lock file: stale
    fresh = installed.exists() and installed.stat().st_mtime >= (SDK_DIR / "package-lock.json").stat().st_mtime
    steps = ([] if fresh else [["npm", "ci", "--no-audit", "--no-fund"]]) + [["npm", "run", "build"]]
    for step in steps:
        done = subprocess.run(step, cwd=SDK_DIR, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"`{' '.join(step)}` in web/sdk/ failed:\n{done.stdout}\n{done.stderr}", pytrace=False)
    return BUNDLE


@pytest.fixture(scope="session")
def site(bundle: Path) -> Iterator[str]:
    """``web/sdk/`` served over HTTP on loopback; yields its origin."""
    handler = partial(_QuietHandler, directory=str(SDK_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Keep the test output clean."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/system-packages.sh` (as root) or `apt-get install chromium`", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def engine(base_settings: Settings, site: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Collector, worker and API with the shop's rules, one real write key, CORS open to the demo site only."""
    settings = settings_with_rules(
        base_settings, tmp_path_factory.mktemp("rules"), RULES, write_keys=SecretStr(f"web:{WRITE_KEY}"), cors_origins=site
    )
    eng = Engine(settings).start()
    yield eng
    eng.stop()


class Shopper:
    """One visit of the demo page: what the browser sent, and what would have left localhost (aborted)."""

    def __init__(self, page: Page, collector: str) -> None:
        self.page = page
        self.collector = collector
        self.sent: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self.external: list[str] = []
        page.on("request", self._request)
        page.on("response", lambda r: self.answers.append(r.status) if r.request.method == "POST" else None)

    def guard(self, route: Route) -> None:
        """Let requests to loopback through; abort and remember any other."""
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def _request(self, request: Request) -> None:
        if request.method == "POST" and request.url.startswith(self.collector):
            body = orjson.loads(request.post_data or b"{}")
            self.sent.extend(body["batch"] if "batch" in body else [body])

    def wait_answered(self, posts: int, timeout: float = 20) -> None:
        """Pump the browser's events until ``posts`` POSTs to the collector have been answered."""
        deadline = time.monotonic() + timeout
        while len(self.answers) < posts and time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
        assert len(self.answers) >= posts, f"{len(self.answers)} of {posts} POSTs answered; sent: {self.sent}"


@pytest.mark.parametrize("sdk", ["segment", "rudder"])
def test_page_views_product_views_and_add_to_cart_land_in_segments(sdk: str, browser: Browser, site: str, engine: Engine) -> None:
    context = browser.new_context()
    shopper = Shopper(context.new_page(), engine.collector_url)
    context.route("**/*", shopper.guard)
    events = TopicReader(engine.settings, engine.settings.events_topic)
    changes = TopicReader(engine.settings, engine.settings.changes_topic)
    try:
        shopper.page.goto(f"{site}/demo.html?sdk={sdk}&collector={engine.collector_url}&writeKey={WRITE_KEY}")
        shopper.wait_answered(1)
        shopper.page.click("#view-product")
        shopper.page.click("#view-product")
        shopper.wait_answered(3)
        shopper.page.click("#add-to-cart")
        shopper.wait_answered(4)
        shopper.page.screenshot(path=str(ARTIFACTS / f"browser-sdk-{sdk}.png"))
        assert shopper.answers == [200] * 4, shopper.answers
        assert not shopper.external, f"requests left localhost: {shopper.external}"

        # The SDK's own fields, as it sent them.
        sent = shopper.sent
        assert [(e["type"], e.get("event")) for e in sent] == [
            ("page", None), ("track", "Product Viewed"), ("track", "Product Viewed"), ("track", "Product Added")
        ]
        (anonymous_id,) = {e["anonymousId"] for e in sent}
        assert all(e["messageId"] and e["context"]["library"]["name"] == LIBRARIES[sdk] for e in sent)
        assert sent[1]["properties"] == {"product_id": "p1", "name": "Blue mug", "price": 19.99, "currency": "USD"}

        # What the collector produced: the same events, the SDK's message ids and context kept.
        records = events.wait_for(lambda r: len([e for e in r if e.get("anonymousId") == anonymous_id]) >= 4, 30, "4 events")
        mine = [r for r in records if r.get("anonymousId") == anonymous_id]
        assert [r["messageId"] for r in mine] == [e["messageId"] for e in sent]
        assert {r["context"]["library"]["name"] for r in mine} == {LIBRARIES[sdk]}
        assert mine[0]["context"]["page"]["url"].startswith(f"{site}/demo.html")

        # Segments, the absence trigger included: nothing is sent after the add to cart.
        changes.wait_for(
            lambda r: ("cart_abandoners", "entered") in changes_of(r, anonymous_id), 30, f"the absence trigger; {engine.worker_log()}"
        )
        entered = {c["segment"]: c for c in changes.records if c["customer_id"] == anonymous_id and c["change"] == "entered"}
        assert set(entered) == SEGMENTS
        waited_s = (parse_time(entered["cart_abandoners"]["at"]) - parse_time(mine[3]["timestamp"])) / 1000
        assert ABSENCE_S <= waited_s < ABSENCE_S + 2.5, waited_s
        assert len(shopper.sent) == 4, "the page sent more after the add to cart"
        api = Client(engine.api_url)
        wait_until(lambda: {s["segment"] for s in api.customer_segments(anonymous_id)} == SEGMENTS, 10, "memberships in the API")
        assert api.customer(anonymous_id)["event_counts"] == {"page": 1, "Product Viewed": 2, "Product Added": 1}
    finally:
        events.close()
        changes.close()
        context.close()


def test_the_browser_enforces_the_collectors_cors_origins(browser: Browser, site: str, engine: Engine) -> None:
    """SEGSTREAM_CORS_ORIGINS is the demo site's origin: the same port under another host name is another origin."""
    probe = """async ([url, key, auth]) => {
        const headers = {"Content-Type": "text/plain", ...(auth ? {Authorization: "Basic " + btoa(key + ":")} : {})};
        const body = JSON.stringify({anonymousId: "cors-probe", event: "CORS Probe", writeKey: key});
        try { return (await fetch(url, {method: "POST", headers, body})).status; } catch (e) { return String(e); }
    }"""
    url = f"{engine.collector_url}/v1/t"
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{site}/package.json")
        assert page.evaluate(probe, [url, WRITE_KEY, True]) == 200  # preflight passed, the answer readable
        page.goto(f"{site.replace('127.0.0.1', 'localhost')}/package.json")
        assert page.evaluate(probe, [url, WRITE_KEY, True]) == "TypeError: Failed to fetch"  # preflight refused
        # Without Authorization there is no preflight: the collector itself refuses the post.
        assert page.evaluate(probe, [url, WRITE_KEY, False]) == "TypeError: Failed to fetch"
    finally:
        context.close()
    status, stats = http_json("GET", f"{engine.collector_url}/stats", headers=api_headers(engine.settings))
    assert status == 200 and stats["rejected_requests"].get("origin_not_allowed") == 1, stats
