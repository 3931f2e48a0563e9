"""Hostile requests against the query API, over a private redis-server seeded with odd state.

Schemathesis generates requests from the API's own ``GET /openapi.json`` (positive and
negative); hypothesis generates customer ids and segment names of any characters,
cursors and limits of any shape, Authorization headers of any kind, and rule
deployments of hostile YAML under hostile file names. Never a 5xx; errors are JSON
``{"error": "..."}``.

Requests carry :data:`AUTH` (an admin API key); :func:`api` is where keys are configured.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
import redis.asyncio as aioredis
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from stream.auth.keystore import KeyRing
from stream.config import Settings
from stream.rules import load_rules
from stream.serving.api import create_app
from stream.state import keys
from stream.state.profile import Event, Profile
from stream.state.store import stored
from stream.state.rulestore import RuleWatcher
from tests.unit.test_api import redis_url  # noqa: F401 - the private redis-server fixture
from tests.unit.test_fuzz_collector import FUZZ, served
from tests.unit.test_fuzz_rules import BOMBS, rule_file

NS = "fuzz"
API_KEY, READ_KEY = "ak-fuzz-admin", "ak-fuzz-read"
#: Sent with every request of these tests: an API key of scope admin.
AUTH = {"Authorization": f"Bearer {API_KEY}"}
T = 1_700_000_000_000
RULES = """\
segments:
  - {name: new_signups, description: Signed up in the last 7 days, condition: {trait: signed_up_at, newer_than: 7d}}
  - {name: buyers, condition: {event: Order Completed, within: 30d, sum: {of: revenue, gte: 10}}}
  - {name: carts, condition: {event: Product Added, without: Order Completed, within: 1h}}
"""
ODD_IDS = ["a/b", "{x}", "50%", "ünï cødé", "a\x00b", "%FF", "..", " ", "\u202e", "x" * 2000]
PROFILES = [
    # A trait date so late that its window ends after year 9999: explain answered 500.
    Profile("alice", traits={"signed_up_at": "9999-12-31T23:59:59Z", "deep": {"a": {"b": [1, [2, {"c": None}]]}}}, first_seen=T, last_seen=T),
    Profile("bob", traits={"signed_up_at": "0001-01-01T00:00:00Z", "revenue": float("inf")}, history=[Event(T, "Order Completed", {"revenue": 1e308})]),
    *(Profile(cid, memberships={"buyers": T}) for cid in ODD_IDS),
]


@dataclass
class Sink:
    """The API's Kafka producer for forget requests: records them."""

    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.sent.append((topic, key, value))


@dataclass
class Api:
    """The served API and an HTTP session to it."""

    url: str
    http: requests.Session

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        """One request (with :data:`AUTH` unless ``headers`` say otherwise): never a 5xx, errors as JSON."""
        response = self.http.request(method, self.url + path, headers=AUTH if headers is None else headers, **kwargs)
        assert response.status_code < 500, f"{method} {path!r}: {response.status_code} {response.text[:500]}"
        if response.status_code >= 400 and not malformed_http(response):
            assert response.json()["error"], response.text
        return response


def malformed_http(response: requests.Response) -> bool:
    """aiohttp's own plain-text 400 for a request it cannot parse (a request line over 8190 bytes, a DEL in a
    header), answered before any handler runs."""
    return response.status_code == 400 and response.headers.get("Content-Type", "").startswith("text/plain")


@pytest.fixture(scope="module")
def api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:  # noqa: F811 - the imported fixture
    """The API over a seeded private Redis, accepting :data:`API_KEY` (admin) and :data:`READ_KEY` (read)."""
    rules_dir = tmp_path_factory.mktemp("rules")
    (rules_dir / "segments.yaml").write_text(RULES)
    seed = redis.Redis.from_url(redis_url)
    for profile in PROFILES:
        seed.set(keys.profile(NS, profile.customer_id), stored(1, profile))
    seed.zadd(keys.segment(NS, "buyers"), dict.fromkeys(ODD_IDS + ["alice"], 0))
    seed.hset(keys.stats(NS), mapping={"events": 3, "dead_letter:too_deep": 1})
    settings = Settings(
        redis_url=redis_url,
        namespace=NS,
        rules_dir=rules_dir,
        state_dir=tmp_path_factory.mktemp("state"),
        api_keys=f"fuzz:admin:{API_KEY},dash:read:{READ_KEY}",
    )
    client = aioredis.Redis.from_url(redis_url)
    watcher = RuleWatcher(client, NS, load_rules(rules_dir), settings.state_dir, 1000)
    app = create_app(settings, client, watcher, Sink(), KeyRing(settings.static_keys))
    with served(app) as url, requests.Session() as http:
        yield Api(url, http)
        assert http.get(f"{url}/health").status_code == 200


def test_explain_of_a_window_ending_after_year_9999(api: Api) -> None:
    """Regression: a date trait in year 9999 plus 7d could not be written as the deadline: 500."""
    body = api.call("GET", "/v1/customers/alice/segments/new_signups/explain").json()
    assert body["holds"] is True and body["deadline"] is None


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_from_the_openapi_document(api: Api, mode: GenerationMode) -> None:
    """Requests generated from the API's own description conform to it; never 5xx."""
    schema = schemathesis.openapi.from_dict(api.call("GET", "/openapi.json").json())
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]

    @FUZZ
    @given(case=schema.as_strategy(mode))
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(base_url=api.url, session=api.http, headers=AUTH)
        case.validate_response(response, checks=checks)

    fuzz()


ids = st.one_of(st.sampled_from(ODD_IDS + ["alice", "bob", "nobody"]), st.text(min_size=1, max_size=50), st.text(min_size=1000, max_size=3000))


@FUZZ
@given(customer=ids, segment=st.one_of(st.sampled_from(["new_signups", "buyers", "carts"]), st.text(min_size=1, max_size=30)))
def test_any_customer_id_and_segment_name(api: Api, customer: str, segment: str) -> None:
    cid, name = quote(customer, safe=""), quote(segment, safe="")
    addressable = customer not in (".", "..")  # URLs resolve these path segments away
    for path in (f"/v1/customers/{cid}", f"/v1/customers/{cid}/segments", f"/v1/customers/{cid}/segments/{name}/explain"):
        response = api.call("GET", path)
        if response.status_code == 200 and addressable:
            assert response.json()["customer_id"] == customer
    response = api.call("DELETE", f"/v1/customers/{cid}", params={"suppress": segment})
    assert response.status_code == 202 or malformed_http(response) or not addressable


@FUZZ
@given(
    name=st.one_of(st.just("buyers"), st.text(min_size=1, max_size=20)),
    cursor=st.one_of(st.none(), st.sampled_from(ODD_IDS), st.text(max_size=3000), st.binary(max_size=20).map(lambda b: b.decode("latin-1"))),
    limit=st.one_of(st.none(), st.integers(min_value=-(2**70), max_value=2**70).map(str), st.text(max_size=10), st.just("1e3")),
)
def test_any_member_page_parameters(api: Api, name: str, cursor: str | None, limit: str | None) -> None:
    params = {k: v for k, v in (("cursor", cursor), ("limit", limit)) if v is not None}
    response = api.call("GET", f"/v1/segments/{quote(name, safe='')}/members", params=params)
    if response.status_code == 200:
        page = response.json()
        assert len(page["members"]) <= (int(limit) if limit else 100)


@FUZZ
@given(header=st.one_of(
    st.sampled_from(["", "Bearer", "Bearer ", "Bearer wrong", f"bearer {API_KEY}", f"Bearer  {API_KEY}", f"Basic {API_KEY}", f"Bearer {API_KEY}\t"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=200).map(str.strip),  # as HTTP clients send them
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(lambda t: f"Bearer {t}"),
))
def test_any_authorization_header(api: Api, header: str) -> None:
    for method, path in (("GET", "/v1/stats"), ("DELETE", "/v1/customers/alice"), ("GET", "/openapi.json")):
        response = api.call(method, path, headers={"Authorization": header})
        assert response.status_code in (200, 202, 401, 403) or malformed_http(response)
    assert api.call("DELETE", "/v1/customers/alice", headers={"Authorization": f"Bearer {READ_KEY}"}).status_code == 403


file_names = st.one_of(
    st.sampled_from(["a.yaml", "b.yml", "\x00.yaml", "a\x00b.yaml", "x" * 300 + ".yaml", "../up.yaml", "a/b.yaml", ".yaml", " .yaml", "a.yaml.txt"]),
    st.text(min_size=1, max_size=20).map(lambda t: t + ".yaml"),
)


@FUZZ
@given(files=st.dictionaries(file_names, st.one_of(rule_file(), st.sampled_from([str(b) for b in BOMBS.values()])), min_size=1, max_size=2))
def test_deploying_hostile_rule_files_is_200_or_400(api: Api, files: dict[str, str]) -> None:
    api.call("POST", "/v1/rules", json={"files": files})


@pytest.mark.parametrize(
    "body",
    [b"", b"null", b"[]", b'{"files": []}', b'{"files": {"a.yaml": 5}}', b'{"files": {}}', b"\xff", b"{" * 5000, b'{"files": {"a.yaml": "' + b"\\u0000" * 10 + b'"}}'],
)
def test_deploying_hostile_bodies_is_400(api: Api, body: bytes) -> None:
    assert api.call("POST", "/v1/rules", data=body, headers={**AUTH, "Content-Type": "application/json"}).status_code == 400


def test_profiles_with_odd_values_read_back(api: Api) -> None:
    """Infinity in traits, deep traits, year-1 dates: served as JSON (Infinity as null)."""
    assert api.call("GET", "/v1/customers/bob").json()["traits"]["revenue"] is None
    assert api.call("GET", "/v1/customers/alice").json()["traits"]["deep"] == {"a": {"b": [1, [2, {"c": None}]]}}
