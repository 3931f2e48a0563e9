"""Resuming an interrupted import: the checkpoint file beside the input, and the records already on the topic.

After each batch the broker acknowledged, the importer rewrites ``FILE.import.json``
(atomically): rows done, counts, the size of the rejected-rows file, and the events
topic's end offsets at that moment. Every record of a later batch lands at or after
those offsets, so a re-run reads the topic from there (:func:`imported_ids`) and does
not send again what an interrupted batch already delivered: each row counts once,
whatever the worker's message-id window (24 h of event time, which imported history
is mostly older than).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from stream.config import Settings
from stream.envelope import unpack
from stream.kafka import KafkaUnavailable, client_config


class CheckpointError(ValueError):
    """A checkpoint that does not belong to this file and mapping; the message says how to go on."""


@dataclass
class Checkpoint:
    """What an import has done so far (see the module docstring)."""

    fingerprint: str
    imported_at: int
    rows: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    rejected_bytes: int = 0
    offsets: dict[str, int] = field(default_factory=dict)
    done: bool = False


def checkpoint_path(file: Path) -> Path:
    """``FILE.import.json``, beside the input."""
    return file.with_name(file.name + ".import.json")


def rejected_path(file: Path) -> Path:
    """``FILE.rejected.jsonl``, beside the input: one ``{"row", "reason", "field", "message"}`` per rejected row."""
    return file.with_name(file.name + ".rejected.jsonl")


def fingerprint(file: Path, mapping_file: Path) -> str:
    """What identifies an import: the input's size and modification time, and the mapping's text."""
    stat = file.stat()
    digest = hashlib.sha256(mapping_file.read_bytes())
    digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]


def load(path: Path, expected: str) -> Checkpoint | None:
    """The checkpoint at ``path`` (``None`` when there is none); :class:`CheckpointError` when it is another import's."""
    try:
        data = orjson.loads(path.read_bytes())
        checkpoint = Checkpoint(**data)
    except FileNotFoundError:
        return None
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a checkpoint segstream wrote ({exc}); delete it or pass --restart") from None
    if checkpoint.fingerprint != expected:
        raise CheckpointError(
            f"{path} belongs to another version of the file or mapping (they changed since): pass --restart to import "
            "from the first row (rows already imported then count twice), or restore the file and mapping"
        )
    return checkpoint


def save(path: Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` atomically (a crash leaves the old one or the new one)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(orjson.dumps(asdict(checkpoint)))
    os.replace(temporary, path)


class TopicEnds:
    """The events topic's end offsets, per partition, read from the broker."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.events_topic
        self.bootstrap = settings.kafka_bootstrap
        self.consumer = Consumer(client_config(settings, **{"group.id": f"{settings.namespace}-import", "enable.auto.commit": False}))

    def read(self) -> dict[str, int]:
        """``{partition: end offset}`` now; raises :class:`KafkaUnavailable` when the broker does not answer."""
        try:
            metadata = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic]
            return {
                str(p): self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10, cached=False)[1]
                for p in sorted(metadata.partitions)
            }
        except (KafkaException, KeyError, TypeError) as exc:
            raise KafkaUnavailable(f"cannot read the offsets of {self.topic} at {self.bootstrap} ({exc}); is Kafka up?") from exc

    def imported_ids(self, offsets: dict[str, int], prefix: str, idle_s: float = 1.5) -> set[str]:
        """The ``messageId``s starting with ``prefix`` on the topic from ``offsets`` to its end (found by ``idle_s`` of quiet)."""
        found: set[str] = set()
        needle = prefix.encode()
        self.consumer.assign([TopicPartition(self.topic, int(p), o) for p, o in offsets.items()])
        last = time.monotonic()
        while time.monotonic() - last < idle_s:
            message = self.consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            last = time.monotonic()
            value = message.value() or b""
            if needle in value:
                for _, record in unpack(message.key(), value):
                    message_id = record.get("messageId") if isinstance(record, dict) else None
                    if isinstance(message_id, str) and message_id.startswith(prefix):
                        found.add(message_id)
        self.consumer.unassign()
        return found

    def close(self) -> None:
        """Leave the broker."""
        self.consumer.close()
