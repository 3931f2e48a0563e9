"""The Python client against the API served over a real redis-server (fixtures from ``test_api``)."""

from __future__ import annotations

import pytest

from stream.client import Client, NotFound, SegstreamError, select_changes
from stream.output.changes import Change
from stream.state.profile import iso
from tests.e2e.harness import free_port
from tests.unit.test_api import ALICE, ALICE_PUBLIC, BUYERS, ODD_IDS, READ_KEY, T1, T2, by_bytes
from tests.unit.test_api import api, redis_url, settings  # noqa: F401 - fixtures shared with the API tests


@pytest.fixture(scope="module")
def client(api: str) -> Client:  # noqa: F811
    return Client(api, timeout=5, api_key=READ_KEY)


def test_customer(client: Client) -> None:
    assert client.customer("alice") == ALICE_PUBLIC


@pytest.mark.parametrize("cid", ODD_IDS)
def test_customer_ids_are_quoted(client: Client, cid: str) -> None:
    assert client.customer(cid)["customer_id"] == cid
    assert client.customer_segments(cid) == [{"segment": "odd", "entered_at": iso(T1)}]


def test_unknown_customer_raises_not_found_with_the_server_message(client: Client) -> None:
    with pytest.raises(NotFound) as caught:
        client.customer("nobody")
    assert caught.value.status == 404
    assert "404" in str(caught.value) and "customer 'nobody' not found" in str(caught.value)


def test_customer_segments(client: Client) -> None:
    assert client.customer_segments("alice") == [
        {"segment": "buyers", "entered_at": iso(T1)},
        {"segment": "vip", "entered_at": iso(T2)},
    ]


def test_segments(client: Client) -> None:
    assert [(s["name"], s["members"]) for s in client.segments()] == [
        ("buyers", len(BUYERS)),
        ("odd", len(ODD_IDS)),
        ("quiet", 0),
        ("vip", 1),
    ]


@pytest.mark.parametrize("limit", [1000, 7])
def test_members_follows_cursors(client: Client, limit: int) -> None:
    assert list(client.members("buyers", limit=limit)) == by_bytes(BUYERS)


def test_members_with_odd_ids_one_per_page(client: Client) -> None:
    assert list(client.members("odd", limit=1)) == by_bytes(ODD_IDS)


def test_members_errors(client: Client) -> None:
    with pytest.raises(NotFound, match="segment 'nope' is not in the rules"):
        list(client.members("nope"))
    with pytest.raises(SegstreamError, match="'limit'") as caught:
        list(client.members("buyers", limit=0))
    assert caught.value.status == 400 and not isinstance(caught.value, NotFound)


def test_stats(client: Client) -> None:
    assert client.stats() == {"events": 12, "changes": 3, "dead_letter:invalid": 1}


def test_unreachable_api_says_what_to_check() -> None:
    with pytest.raises(SegstreamError, match="is `segstream api` running") as caught:
        Client(f"http://127.0.0.1:{free_port()}", timeout=2).stats()
    assert caught.value.status is None


def test_select_changes_filters_by_segment() -> None:
    changes = [
        Change("u1", "buyers", "entered", T1, 1, "bought"),
        Change("u1", "vip", "entered", T1, 2, "spent"),
        Change("u2", "buyers", "exited", T2, 5, "window passed"),
    ]
    values = [c.to_bytes() for c in changes]
    assert list(select_changes(values)) == [c.record() for c in changes]
    assert list(select_changes(values, "buyers")) == [changes[0].record(), changes[2].record()]
    assert list(select_changes(values, "nope")) == []
