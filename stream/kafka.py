"""Thin Kafka edge: an asyncio-friendly confluent-kafka producer and topic administration.

Every record segstream writes goes through :class:`AsyncProducer`, which resolves
an awaitable only when the broker acknowledged the record (``acks=all``) or
definitively failed it. The idempotent producer is off on purpose: some
Kafka-protocol brokers (Tansu) do not implement ``InitProducerId``; segstream's
exactly-once effect is built on per-customer offsets in Redis instead.

Every Kafka client segstream makes takes its connection settings from
:func:`client_config` (librdkafka: producers, consumers, the admin client) or
:func:`faust_credentials` (the worker's aiokafka clients), so
``KAFKA_SECURITY_PROTOCOL``, SASL and TLS settings apply to all of them.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from stream.config import Settings, reveal

if TYPE_CHECKING:
    import faust

#: librdkafka's "partition unassigned": the configured partitioner chooses.
PARTITION_UA = -1


class KafkaUnavailable(RuntimeError):
    """Kafka did not acknowledge a record in time; the caller must not report success."""


def client_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """The librdkafka configuration of every client: bootstrap servers, security protocol, SASL and TLS.

    >>> client_config(Settings(kafka_bootstrap="k:9092"))
    {'bootstrap.servers': 'k:9092', 'security.protocol': 'PLAINTEXT'}
    """
    conf: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap, "security.protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL_"):
        conf["sasl.mechanism"] = settings.kafka_sasl_mechanism
        conf["sasl.username"] = settings.kafka_sasl_username
        conf["sasl.password"] = reveal(settings.kafka_sasl_password)
    if settings.kafka_security_protocol.endswith("SSL"):
        for name, value in (
            ("ssl.ca.location", settings.kafka_ssl_ca_file),
            ("ssl.certificate.location", settings.kafka_ssl_cert_file),
            ("ssl.key.location", settings.kafka_ssl_key_file),
            ("ssl.key.password", reveal(settings.kafka_ssl_key_password)),
        ):
            if value:
                conf[name] = value
    conf.update(extra)
    return conf


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context of the worker's aiokafka clients: the CA file (else the system's CAs) and the client certificate."""
    context = ssl.create_default_context(cafile=settings.kafka_ssl_ca_file or None)
    if settings.kafka_ssl_cert_file:
        context.load_cert_chain(
            settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file, reveal(settings.kafka_ssl_key_password) or None
        )
    return context


def faust_credentials(settings: Settings) -> "faust.SASLCredentials | faust.SSLCredentials | None":
    """The faust ``broker_credentials`` of the settings (``None`` for PLAINTEXT), the same as :func:`client_config`'s."""
    import faust  # late: only the worker needs faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=reveal(settings.kafka_sasl_password),
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=ssl_context(settings) if protocol == "SASL_SSL" else None,
    )


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """The librdkafka configuration segstream produces with (murmur2 keys, like Java clients)."""
    conf: dict[str, Any] = {
        **client_config(settings),
        "acks": "all",
        "enable.idempotence": False,
        "partitioner": "murmur2_random",
        "linger.ms": 2,
        "message.timeout.ms": int(settings.produce_timeout_s * 1000),
        "socket.keepalive.enable": True,
    }
    conf.update(extra)
    return conf


class AsyncProducer:
    """confluent-kafka ``Producer`` whose deliveries are awaited from asyncio.

    A daemon thread serves delivery callbacks; ``send`` returns once the broker
    acknowledged the record and raises :class:`KafkaUnavailable` otherwise.

    >>> producer = AsyncProducer(Settings())          # doctest: +SKIP
    >>> await producer.send("topic", b"key", b"{}")   # doctest: +SKIP
    """

    def __init__(self, settings: Settings, **extra: Any) -> None:
        self._producer = Producer(producer_config(settings, **extra))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Produce one record and wait for the broker's acknowledgement."""
        await self.queue([(topic, PARTITION_UA, key, value)])

    async def send_many(self, records: Iterable[tuple[str, bytes | None, bytes]]) -> None:
        """Produce records in order and wait until all are acknowledged."""
        batch = [(topic, PARTITION_UA, key, value) for topic, key, value in records]
        if batch:
            await self.queue(batch)

    async def partitions(self, topic: str, timeout: float = 10.0) -> int:
        """How many partitions ``topic`` has (:class:`KafkaUnavailable` when unknown after ``timeout`` seconds)."""
        try:
            metadata = await asyncio.to_thread(self._producer.list_topics, topic, timeout)
        except KafkaException as exc:
            raise KafkaUnavailable(f"cannot read the metadata of {topic}: {exc}") from exc
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise KafkaUnavailable(f"topic {topic!r} has no partitions at the broker (yet)")
        return len(found.partitions)

    def queue(self, records: list[tuple[str, int, bytes | None, bytes]]) -> asyncio.Future[None]:
        """Queue ``(topic, partition, key, value)`` records now, in call order; the future resolves when
        all are acknowledged (:data:`PARTITION_UA` lets the partitioner choose)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        acks = _Acks(loop, future, len(records))
        for topic, partition, key, value in records:
            while True:
                try:
                    self._producer.produce(topic, value=value, key=key, partition=partition, on_delivery=acks)
                    break
                except BufferError:
                    # Local queue full: let the delivery thread drain it, then retry.
                    self._producer.poll(0.01)
        return future

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued and stop the delivery thread."""
        self._producer.flush(timeout)
        self._stop.set()
        self._thread.join(timeout)


class _Acks:
    """The delivery callback of a batch of records: wakes the event loop once, when all are
    acknowledged or the first one failed (not once per record)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], count: int) -> None:
        self.loop, self.future, self.remaining = loop, future, count
        self.lock = threading.Lock()  # callbacks may run on the delivery thread and in produce()'s poll

    def __call__(self, err: KafkaError | None, _msg: Any) -> None:
        with self.lock:
            self.remaining -= 1
            wake = err is not None or self.remaining == 0
            if err is not None:
                self.remaining = -1  # settled by this failure; later acknowledgements change nothing
        if wake:
            self.loop.call_soon_threadsafe(_settle, self.future, err)


def _settle(future: asyncio.Future[None], err: KafkaError | None) -> None:
    if future.done():
        return
    if err is None:
        future.set_result(None)
    else:
        future.set_exception(KafkaUnavailable(f"Kafka did not acknowledge the record: {err.str()}"))


def admin(settings: Settings) -> AdminClient:
    """An AdminClient for the configured brokers (security settings included)."""
    return AdminClient(client_config(settings))


def ensure_topics(settings: Settings, timeout: float = 15.0) -> None:
    """Create segstream's topics when missing (events, segment changes, dead letters, deletions, training).

    The training topic has one partition: one trainer reads it in order.
    """
    wanted = {
        settings.events_topic: settings.partitions,
        settings.changes_topic: settings.partitions,
        settings.dead_letter_topic: settings.partitions,
        settings.deletions_topic: settings.partitions,
        settings.training_topic: 1,
    }
    create_topics(settings, wanted, timeout)


def create_topics(settings: Settings, wanted: Mapping[str, int], timeout: float = 15.0) -> None:
    """Create the topics of ``wanted`` (name -> partitions) that are missing (``SEGSTREAM_REPLICATION``)."""
    client = admin(settings)
    existing = set(client.list_topics(timeout=timeout).topics)
    new = [
        NewTopic(name, partitions, settings.replication_factor) for name, partitions in wanted.items() if name not in existing
    ]
    if not new:
        return
    for name, future in client.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaUnavailable(f"cannot create topic {name!r} at {settings.kafka_bootstrap}: {exc}") from exc


def topic_id(settings: Settings, topic: str, timeout: float = 15.0) -> str:
    """The broker's id of ``topic``: it changes when a topic is deleted and created again."""
    client = admin(settings)  # must outlive the future, or librdkafka cancels the request
    futures = client.describe_topics(TopicCollection([topic]), request_timeout=timeout)
    return str(futures[topic].result(timeout).topic_id)


def topic_partitions(consumer: Consumer, settings: Settings, topic: str) -> list[int]:
    """The partition numbers of ``topic``; :class:`KafkaUnavailable` when the broker or the topic cannot be found."""
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    except KafkaException as exc:
        raise KafkaUnavailable(
            f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}); start it (`segstream services up`) or set KAFKA_BOOTSTRAP"
        ) from exc
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise KafkaUnavailable(
            f"topic {topic!r} does not exist at {settings.kafka_bootstrap}; "
            "the worker and collector create it, or check SEGSTREAM_NAMESPACE"
        )
    return sorted(metadata.partitions)


def read_topic(settings: Settings, topic: str, offset: int, idle_s: float | None) -> Iterator[Message]:
    """Every partition of ``topic`` from ``offset`` (OFFSET_BEGINNING/OFFSET_END), without a consumer group.

    Ends after ``idle_s`` seconds without a record (``None``: never): the end of a
    topic is found by idleness, never by the broker's high watermark, which some
    Kafka-protocol brokers (Tansu) report as the start of the last batch. Raises
    :class:`KafkaUnavailable` when the broker or the topic cannot be found.
    """
    consumer = Consumer(client_config(settings, **{"group.id": f"{settings.namespace}-reader", "enable.auto.commit": False}))
    try:
        consumer.assign([TopicPartition(topic, p, offset) for p in topic_partitions(consumer, settings, topic)])
        last = time.monotonic()
        while True:
            wait = 1.0 if idle_s is None else min(0.2, last + idle_s - time.monotonic())
            if wait <= 0:
                return
            message = consumer.poll(wait)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.retriable():
                    continue
                raise KafkaUnavailable(f"reading {topic} failed: {error.str()}")
            last = time.monotonic()
            yield message
    finally:
        consumer.close()
