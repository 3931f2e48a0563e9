"""Destinations, the pure parts: signing, the retry policy, audience coalescing and diffing, the file, the records."""

from __future__ import annotations

import asyncio
import doctest
import hashlib
import hmac
from pathlib import Path

import orjson
import pytest

from stream.destinations import audience, records, retry, signing
from stream.destinations.audience import Update, coalesce, diff
from stream.destinations.config import AudienceSpec, WebhookSpec, load_destinations
from stream.destinations.delivery import with_retries
from stream.destinations.errors import DestinationsError
from stream.destinations.http import Answer
from stream.destinations.retry import BackoffSpec, delay, outcome, retry_after, wait_before

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", [signing, retry, audience, records])
def test_docstring_examples_hold(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


# --- signing ---------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_timestamp_dot_body_as_the_readme_recipe_computes() -> None:
    body, ts = b'{"id":"x","segment":"vip"}', 1_700_000_000
    headers = signing.sign("k3y-123", body, ts)
    expected = hmac.new(b"k3y-123", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers == {"X-Segstream-Signature": f"sha256={expected}", "X-Segstream-Timestamp": "1700000000"}


@pytest.mark.parametrize(
    "secret, body, timestamp, now, ok",
    [
        ("k3y-123", b"{}", "1000", 1000, True),
        ("k3y-123", b"{}", "1000", 1299, True),
        ("other", b"{}", "1000", 1000, False),  # wrong key
        ("k3y-123", b"{ }", "1000", 1000, False),  # body changed
        ("k3y-123", b"{}", "1001", 1001, False),  # timestamp changed: it is signed
        ("k3y-123", b"{}", "1000", 1301, False),  # replayed too late
        ("k3y-123", b"{}", "soon", 1000, False),
    ],
)
def test_verify_refuses_forged_altered_and_stale_requests(secret: str, body: bytes, timestamp: str, now: int, ok: bool) -> None:
    signature = signing.signature("k3y-123", b"{}", 1000)
    assert signing.verify(secret, body, signature, timestamp, now=now) is ok


# --- retry policy ----------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_jitter_only_shortens() -> None:
    spec = BackoffSpec(initial_s=0.5, factor=3, max_s=10, jitter=0.5)
    assert [delay(spec, n, rand=lambda: 0.0) for n in range(1, 6)] == [0.5, 1.5, 4.5, 10.0, 10.0]
    assert [delay(spec, n, rand=lambda: 1.0) for n in range(1, 6)] == [0.25, 0.75, 2.25, 5.0, 5.0]
    assert all(2.25 <= delay(spec, 3) <= 4.5 for _ in range(200))


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    spec = BackoffSpec(initial_s=1, factor=2, max_s=30, jitter=0)
    assert wait_before(spec, 1, None) == 1.0
    assert wait_before(spec, 1, 7.0) == 7.0
    assert wait_before(spec, 4, 2.0) == 8.0  # the backoff is longer
    assert wait_before(spec, 1, 3600.0) == 30.0
    assert retry_after("120", now=0) == 120.0 and retry_after("-5", now=0) == 0.0 and retry_after(None, now=0) is None


@pytest.mark.parametrize(
    "status, expected",
    [(200, "delivered"), (202, "delivered"), (204, "delivered"), (408, "retry"), (429, "retry"), (500, "retry"), (503, "retry"),
     (400, "permanent"), (401, "permanent"), (404, "permanent"), (410, "permanent"), (301, "permanent")],
)
def test_what_a_status_means(status: int, expected: str) -> None:
    assert outcome(status) == expected
    assert Answer(None, "refused").outcome == "retry"


def test_with_retries_stops_at_success_at_a_permanent_refusal_and_after_max_attempts() -> None:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    def run(answers: list[Answer], max_attempts: int = 5) -> tuple[bool, int, str, list[float]]:
        waits.clear()
        queue = list(answers)

        async def attempt() -> Answer:
            return queue.pop(0)

        spec = BackoffSpec(initial_s=1, factor=2, max_s=60, jitter=0)
        delivery = asyncio.run(with_retries(attempt, max_attempts, spec, sleep=sleep))
        return delivery.delivered, delivery.attempts, delivery.reason, list(waits)

    assert run([Answer(503), Answer(None, "reset"), Answer(200)]) == (True, 3, "attempts_exhausted", [1.0, 2.0])
    assert run([Answer(429, retry_after_s=5.0), Answer(204)]) == (True, 2, "attempts_exhausted", [5.0])
    assert run([Answer(500), Answer(400)]) == (False, 2, "rejected", [1.0])
    assert run([Answer(500)] * 3, max_attempts=3) == (False, 3, "attempts_exhausted", [1.0, 2.0])


# --- audience ---------------------------------------------------------------------------


def change(customer: str, kind: str, seq: int, segment: str = "vip") -> dict[str, object]:
    return {"id": f"{customer}-{seq}", "customer_id": customer, "segment": segment, "change": kind, "seq": seq}


def test_coalesce_keeps_each_customers_last_change_by_seq_whatever_the_arrival_order() -> None:
    batch = [
        change("a", "entered", 1), change("a", "exited", 2), change("a", "entered", 3),  # in, out, in: add
        change("b", "exited", 9), change("b", "entered", 8),  # republished late: the exit (seq 9) wins
        change("c", "entered", 1, "other"), change("c", "exited", 4),
    ]
    assert coalesce(batch) == {"vip": Update(["a"], ["b", "c"]), "other": Update(["c"], [])}
    assert coalesce([]) == {}


def test_diff_and_chunks_cover_every_id_once() -> None:
    update = diff(expected={"a", "b", "c", "d"}, reported={"c", "x", "y"})
    assert update == Update(["a", "b", "d"], ["x", "y"])
    parts = list(update.chunks(2))
    assert parts == [Update(["a", "b"], []), Update(["d"], ["x"]), Update([], ["y"])]
    assert not diff({"a"}, {"a"}) and list(Update([], []).chunks(3)) == []


# --- the destinations file --------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "destinations.yaml"
    path.write_text(text)
    return path


def test_the_shipped_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_WEBHOOK_SECRET", "crm-secret-1")
    monkeypatch.setenv("ADS_AUDIENCE_SECRET", "ads-secret-1")
    crm, ads = load_destinations(ROOT / "destinations.example.yaml")
    assert isinstance(crm, WebhookSpec) and crm.segments == "all" and crm.wants("anything") and crm.key() == "crm-secret-1"
    assert isinstance(ads, AudienceSpec) and ads.wants("high_value") and not ads.wants("vip") and ads.batch_size == 500


def test_secrets_never_show_in_repr_or_dumps(tmp_path: Path) -> None:
    spec = load_destinations(write(tmp_path, "destinations:\n- {name: a, kind: webhook, url: 'http://h/', segments: all, secret: inline-secret-9}\n"))[0]
    assert spec.key() == "inline-secret-9"
    assert "inline-secret-9" not in repr(spec) + str(spec.model_dump()) + spec.model_dump_json()


@pytest.mark.parametrize(
    "text, says",
    [
        ("destinations:\n- {name: a, kind: webhook, url: 'http://h/', segments: all, secret: s, retries: 3}\n",
         "destinations[0].webhook: unknown key 'retries'"),
        ("destinations:\n- {name: a, kind: webhok, url: 'http://h/', segments: all, secret: s}\n", "unknown kind 'webhok'"),
        ("destinations:\n- {name: a, kind: webhook, url: 'http://h/', segments: all}\n", "exactly one of 'secret_env'"),
        ("destinations:\n- {name: a, kind: webhook, url: 'ftp://h/', segments: all, secret: s}\n", "destinations[0].webhook.url"),
        ("destinations:\n- {name: a, kind: audience, url: 'http://h/', segments: all, secret: s}\n", "destinations[0].audience.segments"),
        ("destinations:\n- {name: a, kind: webhook, url: 'http://h/', segments: all, secret: s, max_attempts: 0}\n",
         "destinations[0].webhook.max_attempts: input should be greater than or equal to 1"),
        ("destinations:\n- {name: a b, kind: webhook, url: 'http://h/', segments: all, secret: s}\n", "destinations[0].webhook.name"),
        ("destinations:\n- {name: a, kind: webhook, url: 'http://h/', segments: all, secret_env: NO_SUCH_VAR_XYZ}\n",
         "destinations[0].secret_env: set the environment variable NO_SUCH_VAR_XYZ"),
        ("destinations:\n- {name: a, kind: webhook, url: 'http://h/', segments: all, secret: s}\n"
         "- {name: a, kind: webhook, url: 'http://h/', segments: all, secret: s}\n", "the name 'a' is used twice"),
    ],
)
def test_file_errors_name_the_key_and_what_to_do(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(DestinationsError) as error:
        load_destinations(write(tmp_path, text))
    assert says in str(error.value)
    assert str(error.value).startswith(str(tmp_path)) or "errors:" in str(error.value)


def test_a_missing_file_says_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(DestinationsError, match="no such file; create it"):
        load_destinations(tmp_path / "nope.yaml")


# --- records ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, says",
    [(b"not json", "not JSON"), (b"[1]", "expected a JSON object"), (b'{"id": "x"}', "'customer_id' must be a str"),
     (orjson.dumps({**change("a", "entered", 1), "seq": True}), "'seq' must be a int"),
     (orjson.dumps({**change("a", "joined", 1)}), "'entered' or 'exited'")],
)
def test_unreadable_change_records_are_refused_with_the_reason(raw: bytes, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        records.parse_change(raw)


def test_the_readme_receiver_recipe_accepts_a_signed_request_and_refuses_a_tampered_one() -> None:
    import re
    import time

    recipe = re.search(r"```python\n([^`]*?def authentic[^`]*)```", (ROOT / "README.md").read_text(), re.S)
    assert recipe, "README lacks the receiver recipe"
    namespace: dict[str, object] = {}
    exec(recipe.group(1), namespace)  # noqa: S102 - our own README
    authentic = namespace["authentic"]
    body = b'{"id": "x"}'
    headers = signing.sign("k3y-123", body, int(time.time()))
    assert authentic(b"k3y-123", body, headers)  # type: ignore[operator]
    assert not authentic(b"k3y-123", body + b" ", headers)  # type: ignore[operator]
    assert not authentic(b"k3y-123", body, signing.sign("k3y-123", body, int(time.time()) - 3600))  # type: ignore[operator]
