"""The dashboard in headless Chromium against a real engine (collector, worker, API; Tansu Kafka, redis-server).

The page is loaded, the session's API key entered, events sent through the collector;
the segment counts, the live change list, the size chart and the customer lookup
(profile and explain tree) must update in the page. A screenshot goes to
``test-artifacts/dashboard.png``. Needs Debian's ``chromium`` at /usr/bin/chromium and
the ``playwright`` package (never ``playwright install``): without them it fails.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import orjson
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from stream.config import Settings, reveal
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import ARTIFACTS, ROOT, http_json, settings_env

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ARTIFACTS / "dashboard.png"
RULES = """\
segments:
  - name: recent_buyers
    description: Bought in the last 30 days
    condition: {event: Order Completed, within: 30d}
  - name: product_browsers
    description: Viewed 2+ products in 7 days
    condition: {event: Product Viewed, within: 7d, count: {gte: 2}}
  - name: big_spenders
    description: Spent 100+ in 30 days
    condition: {event: Order Completed, within: 30d, sum: {of: revenue, gte: 100}}
"""
#: UI updates wait at most this long (ms): the page polls counts every 2 s, changes arrive by SSE.
WAIT_MS = 30_000
#: Whether a point of the size chart shows 2 members (each point's tooltip says how many).
CHART_SHOWS_TWO = "[...document.querySelectorAll('#chart circle title')].some(t => t.textContent.includes(': 2 members'))"


@pytest.fixture
def engine(base_settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES, sizes_every_s=1.0)
    eng = Engine(settings).start()
    yield eng
    eng.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`, scripts/system-packages.sh)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser.new_page(viewport={"width": 1440, "height": 1100})
        finally:
            browser.close()


def send(engine: Engine, events: list[dict[str, object]]) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(b"dashboard-test:").decode()}
    status, body = http_json("POST", f"{engine.collector_url}/v1/batch", {"batch": events}, auth)
    assert status == 200, body


def members(page: Page, segment: str):  # noqa: ANN201 - a playwright Locator
    return page.locator(f'#segments tr[data-segment="{segment}"] td.members')


def test_dashboard_shows_live_counts_changes_sizes_and_a_customer(engine: Engine, page: Page) -> None:
    problems: list[str] = []  # script errors, CSP violations, refused requests (but /v1/models: no trainer, 404)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    expected_404 = ("/v1/models", "/v1/analytics/performance")  # no trainer runs; no performance report saved yet
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 and not r.url.endswith(expected_404) else None)

    page.goto(f"{engine.api_url}/dashboard")
    page.fill("#api-key", reveal(engine.settings.api_key))
    page.click("#key-form button[type=submit]")
    expect(page.locator("#status")).to_have_text("connected", timeout=WAIT_MS)
    expect(members(page, "recent_buyers")).to_have_text("0", timeout=WAIT_MS)
    expect(page.locator("#stream-status")).to_have_text("live", timeout=WAIT_MS)

    send(engine, [
        {"type": "identify", "userId": "alice", "traits": {"name": "Alice", "plan": "pro"}},
        {"type": "track", "userId": "alice", "event": "Order Completed", "properties": {"revenue": 120}},
        {"type": "track", "userId": "bob", "event": "Product Viewed", "properties": {"product_id": "p1"}},
        {"type": "track", "userId": "bob", "event": "Product Viewed", "properties": {"product_id": "p2"}},
        {"type": "track", "userId": "bob", "event": "Order Completed", "properties": {"revenue": 20}},
    ])

    expect(members(page, "recent_buyers")).to_have_text("2", timeout=WAIT_MS)
    expect(members(page, "product_browsers")).to_have_text("1", timeout=WAIT_MS)
    expect(members(page, "big_spenders")).to_have_text("1", timeout=WAIT_MS)
    changes = page.locator("#changes li.change")
    expect(changes).to_have_count(4, timeout=WAIT_MS)
    for segment, customer in (("recent_buyers", "alice"), ("big_spenders", "alice"), ("recent_buyers", "bob"), ("product_browsers", "bob")):
        change = page.locator(f'#changes li.entered[data-segment="{segment}"][data-customer="{customer}"]')
        expect(change).to_have_count(1)
    expect(page.locator('#changes li[data-segment="big_spenders"] .reason')).to_contain_text("revenue")

    # the size chart: the API samples every second; a 1 h range draws one point per 8 s step (the last
    # sample in it), so a second point appears once the samples span two steps
    row = '#segments tr[data-segment="recent_buyers"] td.name'

    def chart_points() -> int:
        return int(page.locator("#chart").get_attribute("data-points") or 0)

    for _ in range(WAIT_MS // 2000):
        page.click(row)  # re-reads the sizes (the page itself refreshes the chart every 10 s)
        page.wait_for_timeout(2000)
        if page.evaluate(CHART_SHOWS_TWO) and chart_points() >= 2:
            break
    assert page.evaluate(CHART_SHOWS_TWO), page.locator("#chart-note").text_content()
    assert chart_points() >= 2, page.locator("#chart-note").text_content()
    expect(page.locator("#chart-segment")).to_have_text("recent_buyers")
    cli = subprocess.run(  # the same series on the command line
        [sys.executable, "-m", "stream.cli", "analytics", "sizes", "recent_buyers", "--json"],
        env=settings_env(engine.settings), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert 2 in [p["members"] for p in orjson.loads(cli.stdout)["points"]], cli.stdout

    # customer lookup from the change list: profile, scores, memberships and the explain tree
    page.click('#changes li[data-segment="big_spenders"] a.customer')
    expect(page.locator("#profile-id")).to_have_text("alice", timeout=WAIT_MS)
    expect(page.locator("#customer .kv", has_text="traits")).to_contain_text("pro")
    expect(page.locator("#memberships li")).to_have_count(2)
    expect(page.locator("#explain .tree > li.holds")).to_be_visible(timeout=WAIT_MS)
    page.select_option("#explain-segment", "product_browsers")
    page.click("#explain-form button[type=submit]")
    expect(page.locator("#explain > p")).to_contain_text("not in product_browsers", timeout=WAIT_MS)
    expect(page.locator("#explain .tree > li.fails .reason")).to_contain_text("Product Viewed")
    page.select_option("#explain-segment", "big_spenders")
    page.click("#explain-form button[type=submit]")
    expect(page.locator("#explain > p")).to_contain_text("member of big_spenders", timeout=WAIT_MS)

    expect(page.locator("#models")).to_contain_text("no model snapshot yet")  # no trainer runs here: the page says so
    expect(page.locator("#performance")).to_contain_text("no performance report yet")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # segment analytics: overlap of the member sets, and the saved treatment-vs-holdout report
    saved = subprocess.run(
        [sys.executable, "-m", "stream.cli", "analytics", "performance", f"topic:{engine.settings.events_topic}", "--within", "1d", "--save"],
        env=settings_env(engine.settings), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert saved.returncode == 0, saved.stderr
    page.reload()  # the key stays for the tab: the page reconnects and reads both reports again
    expect(page.locator("#status")).to_have_text("connected", timeout=WAIT_MS)
    expect(page.locator('#overlap tr[data-pair="big_spenders|recent_buyers"]')).to_contain_text("0.500", timeout=WAIT_MS)
    expect(page.locator("#overlap-warnings li.too_small")).to_have_count(3)
    bought = page.locator('#performance tr[data-segment="recent_buyers"] td')
    expect(bought.nth(0)).to_have_text("2", timeout=WAIT_MS)  # alice and bob entered
    expect(bought.nth(2)).to_have_text("no holdout")
    page.screenshot(path=str(ARTIFACTS / "dashboard-analytics.png"), full_page=True)
    assert not problems, problems

