"""The live stream of segment changes over server-sent events: ``GET /v1/changes/stream``.

The API process reads every partition of the segment-changes topic from its end,
without a consumer group (:func:`stream.kafka.read_topic`, on a thread), and fans
each record out to the connected clients. Each client has a bounded queue
(``SEGSTREAM_LIVE_QUEUE``): a client that falls behind skips changes and is told
how many (``event: dropped``), so a slow browser never holds back the others.
Events: ``change`` (``id:`` the change id, ``data:`` the change record as on the
topic), ``dropped`` (``{"dropped": n}``), ``revoked`` (the key was revoked; the
stream ends); a ``: heartbeat`` comment every :data:`HEARTBEAT_S` seconds.

Browsers' ``EventSource`` cannot send an ``Authorization`` header, so besides
``Authorization: Bearer <key>`` the stream accepts ``?token=`` from
``POST /v1/changes/token`` (scope read): ``v1.<key id>.<expires ms>.<HMAC-SHA256>``,
signed with the key's stored sha256 digest, usable to connect for
``SEGSTREAM_LIVE_TOKEN_TTL`` seconds, and refused once the key is revoked (an open
stream ends at the next heartbeat). The key itself never goes into a URL.

>>> frame(b'{"id": "c1", "segment": "vip"}')
b'id: c1\\nevent: change\\ndata: {"id": "c1", "segment": "vip"}\\n\\n'
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
from aiohttp import web
from confluent_kafka import OFFSET_END

from stream.auth.access import api_access
from stream.auth.credentials import KeyRecord, KeySet
from stream.auth.errors import AccessDenied
from stream.auth.keystore import KeyRing
from stream.config import Settings
from stream.kafka import KafkaUnavailable, read_topic
from stream.state.profile import now_ms

log = logging.getLogger(__name__)

STREAM_PATH = "/v1/changes/stream"
TOKEN_PATH = "/v1/changes/token"
#: Seconds between heartbeat comments (keeps proxies from closing an idle stream; rechecks the key).
HEARTBEAT_S = 15.0
#: Seconds to wait before reading the changes topic again after Kafka failed.
RETRY_S = 5.0
_TOKEN_VERSION = "v1"
_ERRORS: dict[int, type[web.HTTPException]] = {401: web.HTTPUnauthorized, 403: web.HTTPForbidden, 503: web.HTTPServiceUnavailable}


def _signature(record: KeyRecord, expires: int) -> str:
    message = f"segstream-live:{record.id}:{expires}".encode()
    return hmac.new(record.digest.encode(), message, hashlib.sha256).hexdigest()


def issue_token(record: KeyRecord, expires: int) -> str:
    """A stream token of the API key ``record``, valid until ``expires`` (epoch ms)."""
    return f"{_TOKEN_VERSION}.{record.id}.{expires}.{_signature(record, expires)}"


def check_token(keys: KeySet, token: str, now: int) -> KeyRecord:
    """The active API key record a stream token was issued for, else :class:`AccessDenied` (401).

    >>> from stream.auth.credentials import parse_api_keys
    >>> keys = KeySet(parse_api_keys("dash:read:k-dash"))
    >>> check_token(keys, issue_token(keys.records[0], 2_000), 1_000).name
    'dash'
    >>> check_token(keys, issue_token(keys.records[0], 2_000), 3_000)
    Traceback (most recent call last):
    ...
    stream.auth.errors.AccessDenied: the stream token expired: get a new one with POST /v1/changes/token
    """
    version, _, rest = token.partition(".")
    kid, _, rest = rest.partition(".")
    expires, _, signature = rest.partition(".")
    record = find_key(keys, kid)
    valid = (
        version == _TOKEN_VERSION
        and expires.isascii()
        and expires.isdigit()
        and record is not None
        and hmac.compare_digest(signature, _signature(record, int(expires)))
    )
    if not valid or record is None:
        raise AccessDenied(401, "bad_token", f"invalid stream token: get one with POST {TOKEN_PATH} (Authorization: Bearer <API key>)")
    if int(expires) < now:
        raise AccessDenied(401, "expired_token", f"the stream token expired: get a new one with POST {TOKEN_PATH}")
    if not record.active:
        raise AccessDenied(401, "revoked_api_key", f"API key {record.name!r} (...{record.last4}) was revoked: ask an admin for a new one")
    return record


def find_key(keys: KeySet, kid: str) -> KeyRecord | None:
    """The API key record with id ``kid`` (an active one when there are several), or ``None``."""
    found = [r for r in keys.records if r.id == kid and r.kind == "api"]
    return next((r for r in found if r.active), found[0] if found else None)


def frame(value: bytes) -> bytes:
    """The server-sent event of one change record (the topic's JSON, one line)."""
    change_id = orjson.loads(value).get("id", "")
    return b"id: " + str(change_id).encode() + b"\nevent: change\ndata: " + value + b"\n\n"


#: What a client's queue gets when the server shuts down: its stream ends at once, rather than at
#: the next heartbeat write noticing a closed connection (which held a SIGTERM up for 15 s).
END = b""


@dataclass(eq=False)
class Subscriber:
    """One connected client: its bounded queue of frames and the changes it skipped since it was last told."""

    queue: asyncio.Queue[bytes]
    dropped: int = 0


@dataclass
class ChangeHub:
    """Fans change frames out to the connected clients; never blocks on a slow one."""

    queue_size: int
    subscribers: set[Subscriber] = field(default_factory=set)

    def subscribe(self) -> Subscriber:
        """A new client's subscription (remove it with :meth:`unsubscribe`)."""
        subscriber = Subscriber(asyncio.Queue(self.queue_size))
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a client."""
        self.subscribers.discard(subscriber)

    def publish(self, value: bytes) -> None:
        """Queue one change record for every client; a full queue skips it (counted)."""
        data = frame(value)
        for subscriber in self.subscribers:
            try:
                subscriber.queue.put_nowait(data)
            except asyncio.QueueFull:
                subscriber.dropped += 1

    def close(self) -> None:
        """End every client's stream now (the server is shutting down): each gets :data:`END` next."""
        for subscriber in self.subscribers:
            while subscriber.queue.full():
                subscriber.queue.get_nowait()
            subscriber.queue.put_nowait(END)


def _denied(exc: AccessDenied) -> web.HTTPException:
    error = _ERRORS.get(exc.status, web.HTTPUnauthorized)
    return error(reason=exc.message, headers={"WWW-Authenticate": 'Bearer realm="segstream"'} if exc.status == 401 else None)


def add_routes(app: web.Application, hub: ChangeHub, ring: KeyRing, settings: Settings) -> None:
    """Serve ``POST /v1/changes/token`` (behind the API's key check) and ``GET /v1/changes/stream`` (checks its own)."""
    ttl_ms = int(settings.live_token_ttl_s * 1000)

    async def token(request: web.Request) -> web.Response:
        try:
            record = api_access(ring.keys, ring.loaded, request.headers.get("Authorization"), "read", f"POST {TOKEN_PATH}")
        except AccessDenied as exc:
            raise _denied(exc) from None
        expires = now_ms() + ttl_ms
        body = {"token": issue_token(record, expires), "expires_at": expires}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def stream(request: web.Request) -> web.StreamResponse:
        try:
            if "token" in request.query:
                record = check_token(ring.keys, request.query["token"], now_ms())
            else:
                record = api_access(ring.keys, ring.loaded, request.headers.get("Authorization"), "read", f"GET {STREAM_PATH}")
        except AccessDenied as exc:
            raise _denied(exc) from None
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        subscriber = hub.subscribe()
        try:
            await response.write(b"retry: 3000\n: connected\n\n")
            while True:
                try:
                    data = await asyncio.wait_for(subscriber.queue.get(), HEARTBEAT_S)
                except asyncio.TimeoutError:
                    current = find_key(ring.keys, record.id)
                    if current is None or not current.active:
                        await response.write(b'event: revoked\ndata: {"error": "the API key was revoked"}\n\n')
                        break
                    await response.write(b": heartbeat\n\n")
                    continue
                if data == END:
                    break
                if subscriber.dropped:
                    await response.write(b"event: dropped\ndata: " + orjson.dumps({"dropped": subscriber.dropped}) + b"\n\n")
                    subscriber.dropped = 0
                await response.write(data)
        except ConnectionResetError:
            log.debug("a live change stream client went away")
        finally:
            hub.unsubscribe(subscriber)
        return response

    async def end_streams(_app: web.Application) -> None:
        hub.close()

    app.router.add_post(TOKEN_PATH, token)
    app.router.add_get(STREAM_PATH, stream)
    app.on_shutdown.append(end_streams)


async def kafka_feed(settings: Settings, hub: ChangeHub) -> AsyncIterator[None]:
    """Feed ``hub`` from the changes topic while the app runs: for aiohttp's ``cleanup_ctx``.

    The reader thread is a daemon: it stops at the first record after the app closes, or with the process.
    """
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def follow() -> None:
        while not stop.is_set():
            try:
                for message in read_topic(settings, settings.changes_topic, OFFSET_END, None):
                    if stop.is_set():
                        return
                    loop.call_soon_threadsafe(hub.publish, message.value())
            except KafkaUnavailable as exc:
                log.warning("live change stream: %s; retrying in %.0f s", exc, RETRY_S)
                time.sleep(RETRY_S)
            except RuntimeError:  # the event loop closed under us
                return

    threading.Thread(target=follow, name="live-changes", daemon=True).start()
    yield
    stop.set()
