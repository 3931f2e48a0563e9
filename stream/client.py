"""Python client of segstream: the query API over HTTP, and the segment-changes stream from Kafka.

>>> from stream.client import Client, subscribe
>>> api = Client("http://127.0.0.1:8089", api_key="ssak_...")   # default: SEGSTREAM_API_KEY
>>> api.customer("user/42")["segments"]                      # doctest: +SKIP
['buyers']
>>> sum(1 for _ in api.members("buyers"))                    # doctest: +SKIP
2500
>>> for change in subscribe(segment="buyers", timeout=5):    # doctest: +SKIP
...     print(change["customer_id"], change["change"], change["seq"])

Changes are delivered **at least once**: after a worker restart a change can be
published again. Drop duplicates by the record's ``id`` (stable per customer and
``seq``) and order one customer's changes by ``seq``; there is no order across
customers.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import quote, urlencode

import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

from stream.config import Settings, reveal
from stream.kafka import KafkaUnavailable, read_topic


class SegstreamError(Exception):
    """The query API answered with an error, or the API or Kafka could not be reached.

    ``status`` is the HTTP status, ``None`` when there was no HTTP answer.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(SegstreamError):
    """The customer or segment does not exist (HTTP 404)."""


class Unauthorized(SegstreamError):
    """The API key is missing, unknown or revoked (HTTP 401), or its scope is too weak (HTTP 403)."""


class Client:
    """Synchronous client of the query API (``segstream api``), stdlib ``urllib`` only.

    ``api_key`` is sent as ``Authorization: Bearer``; by default the
    ``SEGSTREAM_API_KEY`` environment variable's. Reads need scope read,
    :meth:`forget` and :meth:`deploy_rules` scope admin. Customer ids and segment
    names are percent-encoded, so any id works (``/``, spaces, braces, unicode).
    Errors raise :class:`SegstreamError` (:class:`NotFound` for 404,
    :class:`Unauthorized` for 401 and 403) with the status and the server's message.
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8089", timeout: float = 10, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._api_key = api_key if api_key is not None else reveal(Settings().api_key)

    def __repr__(self) -> str:
        return f"Client({self.base_url!r}, api key {'set' if self._api_key else 'missing'})"

    def customer(self, customer_id: str) -> dict[str, Any]:
        """A customer's profile: traits, event counts, revenue, segments, recent events."""
        return self._get(f"/v1/customers/{quote(customer_id, safe='')}")

    def customer_segments(self, customer_id: str) -> list[dict[str, Any]]:
        """A customer's segments, ``[{"segment", "entered_at"}]`` sorted by name."""
        return self._get(f"/v1/customers/{quote(customer_id, safe='')}/segments")["segments"]

    def explain(self, customer_id: str, segment: str) -> dict[str, Any]:
        """Why ``customer_id`` is or is not in ``segment``: the rule tree with each condition's verdict."""
        return self._get(f"/v1/customers/{quote(customer_id, safe='')}/segments/{quote(segment, safe='')}/explain")

    def recommendations(self, customer_id: str, n: int = 10) -> dict[str, Any]:
        """The top ``n`` (1..100) products the customer has not bought: ``{"customer_id", "source", "model_version", "items": [{"product_id", "category", "score"}]}``."""
        return self._get(f"/v1/customers/{quote(customer_id, safe='')}/recommendations", {"n": n})

    def rules(self) -> dict[str, Any]:
        """The deployed rule version, its segments and backfill progress."""
        return self._get("/v1/rules")

    def segments(self) -> list[dict[str, Any]]:
        """Every segment of the rules, ``[{"name", "description", "members", "source"}]``."""
        return self._get("/v1/segments")["segments"]

    def members(self, segment: str, limit: int = 1000) -> Iterator[str]:
        """Every member id of ``segment`` in id order, fetched ``limit`` (1..1000) per request.

        Lazy: requests (and their errors) happen while iterating. Members that
        join or leave meanwhile may or may not appear; none appears twice.
        """
        path = f"/v1/segments/{quote(segment, safe='')}/members"
        query: dict[str, Any] = {"limit": limit}
        while True:
            page = self._get(path, query)
            yield from page["members"]
            if page["next_cursor"] is None:
                return
            query["cursor"] = page["next_cursor"]

    def overlap(self, segments: Iterable[str] | None = None) -> dict[str, Any]:
        """Overlap of ``segments`` (default: all): ``{"segments", "sizes", "matrix", "intersections", "warnings"}``.

        ``matrix[a][b]`` is the Jaccard index of a and b; warnings flag near-duplicates, subsets,
        too small and empty segments (README, Segment analytics).
        """
        query = {"segments": ",".join(segments)} if segments is not None else None
        return self._get("/v1/analytics/overlap", query)

    def performance(self) -> dict[str, Any]:
        """The last saved ``segstream analytics performance --save`` report (treatment vs holdout, lift, intervals)."""
        return self._get("/v1/analytics/performance")

    def stats(self) -> dict[str, int]:
        """The worker's counters (``events``, ``changes``, ``dead_letter:<reason>``…)."""
        return self._get("/v1/stats")

    def forget(self, customer_id: str, suppress: bool = False) -> dict[str, Any]:
        """Request that a customer be erased (and, with ``suppress``, their later events dropped); needs scope admin."""
        query = {"suppress": "true"} if suppress else None
        return self._request("DELETE", f"/v1/customers/{quote(customer_id, safe='')}", query)

    def deploy_rules(self, path: str | Path) -> dict[str, Any]:
        """Validate and deploy the rule files of ``path`` (a directory or one file); needs scope admin.

        Returns ``{"version", "deployed", "segments"}``; ``deployed`` is false when
        that version was deployed already. Invalid rules raise :class:`SegstreamError` (400).
        """
        from stream.state.rulestore import rule_texts

        return self._request("POST", "/v1/rules", body={"files": rule_texts(Path(path))})

    def _get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self._request("GET", path, query)

    def _request(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        url = self.base_url + path + (f"?{urlencode(query, quote_via=quote)}" if query else "")
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = None if body is None else orjson.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return orjson.loads(response.read())
        except urllib.error.HTTPError as err:
            message = f"HTTP {err.code} from {method} {url}: {_error_text(err.read())}"
            if err.code in (401, 403):
                hint = "" if self._api_key else " (no API key was sent: set SEGSTREAM_API_KEY or pass api_key=)"
                raise Unauthorized(message + hint, err.code) from None
            kind = NotFound if err.code == 404 else SegstreamError
            raise kind(message, err.code) from None
        except OSError as err:
            reason = getattr(err, "reason", err)
            raise SegstreamError(
                f"cannot reach the segstream API at {self.base_url} ({reason}); is `segstream api` running there?"
            ) from err


def _error_text(body: bytes) -> str:
    """The ``error`` of a JSON error body, else the body itself (shortened)."""
    try:
        return str(orjson.loads(body)["error"])
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return body.decode(errors="replace")[:200] or "(empty body)"


def subscribe(
    settings: Settings | None = None,
    segment: str | None = None,
    from_beginning: bool = False,
    timeout: float | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield change records from the segment-changes topic, only ``segment``'s when given.

    A record is ``{"id", "customer_id", "segment", "change": "entered"|"exited",
    "at", "seq", "reason"}``. Every partition is read directly, without a
    consumer group and committing nothing: from the oldest record kept when
    ``from_beginning``, else from now on. Stops after ``timeout`` seconds
    without a record on the topic (``None``: never). At least once: see the
    module docstring; brokers that report a partition's end as the start of its
    last batch (Tansu) also replay that batch's later records when starting
    from now on. Settings default to ``Settings()`` (the environment).
    """
    settings = settings or Settings()
    offset = OFFSET_BEGINNING if from_beginning else OFFSET_END
    try:
        values = (m.value() for m in read_topic(settings, settings.changes_topic, offset, timeout))
        yield from select_changes(values, segment)
    except KafkaUnavailable as exc:
        raise SegstreamError(str(exc)) from exc


def select_changes(values: Iterable[bytes], segment: str | None = None) -> Iterator[dict[str, Any]]:
    """Decode change records, keeping only those of ``segment`` (all when ``None``).

    >>> list(select_changes([b'{"segment": "a"}', b'{"segment": "b"}'], "b"))
    [{'segment': 'b'}]
    """
    for value in values:
        record = orjson.loads(value)
        if segment is None or record["segment"] == segment:
            yield record
