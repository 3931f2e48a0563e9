"""Enrichment plug-ins (stream.enrich): lookup files, the http enricher against a real local server, the runner, the file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from stream.enrich import Enrichment, EnrichmentError, HttpEnricher, HttpSpec, LookupSpec, load_enrichment
from stream.enrich.breaker import CLOSED, HALF_OPEN, OPEN
from stream.enrich.keys import email_domain, postal_code

ROOT = Path(__file__).resolve().parents[2]


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


# --- lookup ---------------------------------------------------------------------------------


def test_key_transforms() -> None:
    assert email_domain(" Ann@Sub.ACME.com ") == "sub.acme.com"
    assert email_domain("acme.com") == "acme.com"
    assert postal_code(" sw1a  1aa ") == "SW1A1AA"


def test_lookup_csv_by_email_domain(tmp_path: Path) -> None:
    (tmp_path / "companies.csv").write_text("domain,name,industry,size\nAcme.com,Acme,Software,51-200\nempty.org,Empty,,\n")
    spec = LookupSpec.model_validate(
        {"kind": "lookup", "name": "company", "file": "companies.csv", "key_column": "domain", "key": "traits.email", "transform": "email_domain"}
    )
    enricher = spec.build(tmp_path)
    assert run(enricher.enrich({"traits": {"email": "ann@ACME.com"}})) == {"company.name": "Acme", "company.industry": "Software", "company.size": "51-200"}
    assert run(enricher.enrich({"traits": {"email": "bob@empty.org"}})) == {"company.name": "Empty"}
    assert run(enricher.enrich({"traits": {"email": "eve@unknown.net"}})) == {}
    assert run(enricher.enrich({"traits": {}})) == {}
    assert enricher.stats() == {"lookups": 3, "hits": 2, "misses": 1, "no_key": 1, "rows": 2}


def test_lookup_json_by_postal_code_with_namespace_and_fields(tmp_path: Path) -> None:
    (tmp_path / "areas.json").write_bytes(orjson.dumps({"SW1A 1AA": {"region": "London", "income": 52000, "urban": True}}))
    spec = LookupSpec.model_validate(
        {"kind": "lookup", "name": "area", "namespace": "geo", "file": "areas.json", "key": "traits.postal_code", "transform": "postal_code", "fields": ["region", "income"]}
    )
    enricher = spec.build(tmp_path)
    assert run(enricher.enrich({"traits": {"postal_code": " sw1a1aa"}})) == {"geo.region": "London", "geo.income": 52000}


def test_lookup_file_problems_say_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("host,name\nacme.com,Acme\n")
    base = {"kind": "lookup", "name": "company", "key": "traits.email"}
    with pytest.raises(EnrichmentError, match="no column 'domain' \\(columns: host, name\\); set 'key_column:'"):
        LookupSpec.model_validate({**base, "file": "c.csv", "key_column": "domain"}).build(tmp_path)
    with pytest.raises(EnrichmentError, match="cannot read the data file"):
        LookupSpec.model_validate({**base, "file": "absent.csv"}).build(tmp_path)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(EnrichmentError, match="expected an object of objects"):
        LookupSpec.model_validate({**base, "file": "bad.json"}).build(tmp_path)


# --- http, against a real server on 127.0.0.1 ------------------------------------------------


class Service:
    """A firmographics service on a loopback port whose behaviour a test changes: ok, slow, failing."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[tuple[str, str, bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.query.get("domain", ""), await request.read()))
        if self.mode == "slow":
            await asyncio.sleep(1.0)
        if self.mode == "fail":
            return web.Response(status=500)
        domain = request.query.get("domain") or orjson.loads(await request.read())["domain"]
        if domain == "acme.com":
            return web.json_response({"name": "Acme", "employees": 120, "auth": request.headers.get("Authorization")})
        return web.Response(status=404)


@asynccontextmanager
async def service() -> AsyncIterator[tuple[Service, str]]:
    svc = Service()
    app = web.Application()
    app.router.add_route("*", "/companies", svc.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield svc, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def http_enricher(base_url: str, clock: Clock | None = None, **spec: Any) -> HttpEnricher:
    fields = {"kind": "http", "name": "firmo", "url": f"{base_url}/companies?domain={{key}}", "key": "traits.email", "transform": "email_domain", **spec}
    return HttpSpec.model_validate(fields).build(ROOT, **({"clock": clock} if clock else {}))


ANN = {"traits": {"email": "ann@acme.com"}}
EVE = {"traits": {"email": "eve@nobody.net"}}


def with_service(scenario: Callable[[Service, str], Awaitable[None]]) -> None:
    async def main() -> None:
        async with service() as (svc, url):
            await scenario(svc, url)

    run(main())


def test_http_success_then_cache_hit_and_negative_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRMO_TOKEN", "s3cret")

    async def scenario(svc: Service, url: str) -> None:
        enricher = http_enricher(url, headers={"Authorization": "Bearer ${FIRMO_TOKEN}"}, fields=["name", "employees", "auth"])
        expected = {"firmo.name": "Acme", "firmo.employees": 120, "firmo.auth": "Bearer s3cret"}
        assert await enricher.enrich(ANN) == expected
        assert await enricher.enrich(ANN) == expected
        assert await enricher.enrich(EVE) == {}
        assert await enricher.enrich(EVE) == {}
        assert [domain for _, domain, _ in svc.requests] == ["acme.com", "nobody.net"]
        stats = enricher.stats()
        assert (stats["calls"], stats["cache_hits"], stats["failures"], stats["timeouts"]) == (2, 2, 0, 0)
        await enricher.close()

    with_service(scenario)


def test_http_post_sends_the_key_as_json() -> None:
    async def scenario(svc: Service, url: str) -> None:
        enricher = http_enricher(url, url=f"{url}/companies", method="POST", body_field="domain")
        assert (await enricher.enrich(ANN))["firmo.name"] == "Acme"
        assert svc.requests == [("POST", "", b'{"domain":"acme.com"}')]
        await enricher.close()

    with_service(scenario)


def test_http_timeout_returns_nothing_within_the_timeout() -> None:
    async def scenario(svc: Service, url: str) -> None:
        svc.mode = "slow"
        enricher = http_enricher(url, timeout_ms=100)
        started = time.perf_counter()
        assert await enricher.enrich(ANN) == {}
        assert time.perf_counter() - started < 0.1 + 0.08
        assert enricher.stats()["timeouts"] == 1
        await enricher.close()

    with_service(scenario)


def test_breaker_opens_after_n_failures_and_half_opens_after_the_cooldown() -> None:
    async def scenario(svc: Service, url: str) -> None:
        clock = Clock()
        enricher = http_enricher(url, clock, breaker={"failures": 3, "cooldown_s": 30})
        svc.mode = "fail"
        for _ in range(3):
            assert await enricher.enrich(ANN) == {}
        assert enricher.breaker.state == OPEN and len(svc.requests) == 3
        assert await enricher.enrich(ANN) == {}  # refused at once: the service is not called
        assert len(svc.requests) == 3 and enricher.stats()["short_circuits"] == 1
        clock.now += 30
        assert await enricher.enrich(ANN) == {}  # the half-open probe fails: open again
        assert len(svc.requests) == 4 and enricher.breaker.state == OPEN
        clock.now += 30
        svc.mode = "ok"
        assert await enricher.enrich(ANN) == {"firmo.name": "Acme", "firmo.employees": 120}  # the probe succeeds
        assert enricher.breaker.state == CLOSED
        stats = enricher.stats()
        assert (stats["failures"], stats["breaker_opens"], stats["calls"]) == (4, 2, 5)
        await enricher.close()

    with_service(scenario)


def test_a_timeout_counts_towards_the_breaker() -> None:
    async def scenario(svc: Service, url: str) -> None:
        svc.mode = "slow"
        enricher = http_enricher(url, Clock(), timeout_ms=20, breaker={"failures": 2, "cooldown_s": 5})
        await enricher.enrich(ANN)
        await enricher.enrich(ANN)
        assert enricher.breaker.state == OPEN and enricher.stats()["timeouts"] == 2
        await enricher.close()

    with_service(scenario)


def test_a_probe_cancelled_by_the_runner_does_not_leave_the_breaker_half_open() -> None:
    async def scenario(svc: Service, url: str) -> None:
        clock = Clock()
        enricher = http_enricher(url, clock, timeout_ms=1000, breaker={"failures": 1, "cooldown_s": 5})
        svc.mode = "fail"
        await enricher.enrich(ANN)
        clock.now += 5
        svc.mode = "slow"
        runner = Enrichment([enricher], deadline_s=0.05)
        assert await runner.enrich(ANN) == {}
        await asyncio.sleep(0.01)
        assert enricher.breaker.state != HALF_OPEN
        await enricher.close()

    with_service(scenario)


def test_unset_header_variables_are_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    with pytest.raises(EnrichmentError, match="set the environment variable\\(s\\) NO_SUCH_TOKEN"):
        http_enricher("http://127.0.0.1:1", headers={"X-Key": "${NO_SUCH_TOKEN}"})


# --- the runner ---------------------------------------------------------------------------------


class Fixed:
    def __init__(self, name: str, traits: Any, delay: float = 0.0, error: Exception | None = None) -> None:
        self.name, self.traits, self.delay, self.error = name, traits, delay, error

    async def enrich(self, profile_view: Any) -> Any:
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.traits


def test_runner_merges_concurrent_enrichers_within_the_deadline() -> None:
    runner = Enrichment(
        [Fixed("a", {"a.x": 1}, delay=0.05), Fixed("b", {"b.y": 2}, delay=0.05), Fixed("slow", {"slow.z": 3}, delay=5)],
        deadline_s=0.2,
    )
    started = time.perf_counter()
    assert run(runner.enrich({})) == {"a.x": 1, "b.y": 2}
    assert time.perf_counter() - started < 0.2 + 0.1  # concurrent: not 0.05 + 0.05 + 5
    assert runner.stats()["enrichers"]["slow"] == {"runs": 1, "errors": 0, "late": 1}


def test_runner_counts_failing_and_misbehaving_enrichers() -> None:
    runner = Enrichment([Fixed("boom", {}, error=RuntimeError("down")), Fixed("odd", ["not", "a", "dict"]), Fixed("ok", {"ok.v": 1})])
    assert run(runner.enrich({})) == {"ok.v": 1}
    stats = runner.stats()
    assert stats["runs"] == 1
    assert stats["enrichers"]["boom"]["errors"] == stats["enrichers"]["odd"]["errors"] == 1


def test_runner_refuses_duplicate_names() -> None:
    with pytest.raises(ValueError, match="unique"):
        Enrichment([Fixed("a", {}), Fixed("a", {})])


# --- the file ------------------------------------------------------------------------------------


def test_the_shipped_file_enriches_from_the_shipped_data() -> None:
    enrichment = load_enrichment(ROOT / "enrichment.yaml")
    traits = run(enrichment.enrich({"traits": {"email": "Ann@ACME.com", "postal_code": "sw1a 1aa"}}))
    assert traits["company.name"] == "Acme Corp" and traits["area.region"] == "London"


def make_plugin(greeting: str) -> Any:
    """A third-party plug-in factory, loaded by ``kind: python``."""
    return Fixed("greeter", {"greeter.text": greeting})


def test_python_plugins_load_from_a_factory(tmp_path: Path) -> None:
    path = tmp_path / "enrichment.yaml"
    path.write_text(f'deadline_ms: 100\nenrichers:\n  - kind: python\n    factory: "{__name__}:make_plugin"\n    options: {{greeting: hi}}\n')
    enrichment = load_enrichment(path)
    assert enrichment.deadline_s == 0.1
    assert run(enrichment.enrich({})) == {"greeter.text": "hi"}


def test_file_errors_list_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "enrichment.yaml"
    path.write_text("""
enrichers:
  - kind: lookup
    name: company
    file: absent.csv
    key: traits.email
    transfrom: email_domain
  - kind: http
    name: firmo
    url: ftp://x
    key: traits.email
    timeout_ms: 0
  - kind: magic
""")
    with pytest.raises(EnrichmentError) as caught:
        load_enrichment(path)
    text = "\n".join(caught.value.errors)
    assert all(e.startswith(f"{path}: ") for e in caught.value.errors)
    assert "enrichers[0].lookup: unknown key 'transfrom' (did you mean 'transform'?)" in text
    assert "enrichers[1].http.url: expected an http:// or https:// URL" in text
    assert "enrichers[1].http.timeout_ms:" in text
    assert "enrichers[2]: unknown kind 'magic'; use one of 'lookup', 'http', 'python'" in text


def test_plugin_problems_are_reported_with_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "enrichment.yaml"
    path.write_text(f"""
enrichers:
  - {{kind: lookup, name: company, file: absent.csv, key: traits.email}}
  - {{kind: python, factory: "no_such_module_xyz:make"}}
  - {{kind: python, factory: "{__name__}:make_plugin", options: {{colour: red}}}}
  - {{kind: python, factory: "{__name__}:ROOT"}}
  - {{kind: python, factory: "builtins:dict"}}
""")
    with pytest.raises(EnrichmentError) as caught:
        load_enrichment(path)
    errors = caught.value.errors
    assert len(errors) == 5
    assert "enrichers[0] (lookup):" in errors[0] and "cannot read the data file" in errors[0]
    assert "enrichers[1] (python):" in errors[1] and "install the package or fix the path" in errors[1]
    assert "fix 'options:'" in errors[2]
    assert "is a PosixPath, not callable" in errors[3]
    assert "returned dict, not an Enricher (a 'name' and an 'async def enrich')" in errors[4]
