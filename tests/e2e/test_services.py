"""``segstream services`` against a real Tansu and redis-server on free ports, and beside foreign ones."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka import Producer

from stream import services
from stream.config import Settings
from stream.kafka import ensure_topics, producer_config
from stream.services import Kafka, Redis
from tests.e2e.harness import TopicReader, free_port


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Settings]:
    """Settings for services on free loopback ports with a temp state dir; stops them afterwards."""
    settings = Settings().model_copy(
        update=dict(
            kafka_bootstrap=f"127.0.0.1:{free_port()}",
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
            state_dir=tmp_path / "state",
            namespace=f"t{uuid.uuid4().hex[:10]}",
            partitions=1,
        )
    )
    yield settings
    services.down(settings)


def client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_timeout=5, decode_responses=True)


def produce_and_consume_one(settings: Settings) -> None:
    ensure_topics(settings)
    producer = Producer(producer_config(settings))
    producer.produce(settings.events_topic, key=b"alice", value=b'{"hello": "tansu"}')
    assert producer.flush(10) == 0, "the record was not acknowledged"
    reader = TopicReader(settings, settings.events_topic)
    try:
        reader.wait_for(lambda records: records == [{"hello": "tansu"}], 15, "the produced record")
    finally:
        reader.close()


def test_up_starts_both_status_reports_them_up_again_is_a_no_op_and_down_stops_them(
    local: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert services.up(local) == ("kafka", "redis")
    kafka, redis_ = Kafka(local), Redis(local)
    pids = {kafka.name: kafka.managed_pid(), redis_.name: redis_.managed_pid()}
    assert all(pids.values()), f"no managed pids: {pids}; see {local.state_dir / 'logs'}"
    assert kafka.log_file.exists() and redis_.log_file.exists()

    produce_and_consume_one(local)
    r = client(local)
    assert r.ping()
    assert r.config_get("appendonly") == {"appendonly": "yes"}
    assert r.config_get("dir") == {"dir": str((local.state_dir / "redis").resolve())}
    r.set("kept", "across restarts")

    lines, all_up = services.status_lines(local)
    assert all_up
    assert lines == [
        f"kafka: running (managed, pid {pids['kafka']}) at {kafka.endpoint}",
        f"redis: running (managed, pid {pids['redis']}) at {redis_.endpoint}",
    ]

    capsys.readouterr()
    assert services.command("up", local) == 0  # a no-op
    out = capsys.readouterr().out
    assert f"kafka: already running at {kafka.endpoint} (managed, pid {pids['kafka']})" in out
    assert f"redis: already running at {redis_.endpoint} (managed, pid {pids['redis']})" in out
    assert {kafka.name: kafka.managed_pid(), redis_.name: redis_.managed_pid()} == pids

    assert services.command("down", local) == 0
    assert not kafka.pid_file.exists() and not redis_.pid_file.exists()
    assert not kafka.answers() and not redis_.answers()
    assert not any(services._alive(pid) for pid in pids.values() if pid)
    assert services.command("status", local) == 1

    services.up(local, ("redis",))  # the append-only file brings the data back
    assert client(local).get("kept") == "across restarts"


def test_up_and_down_leave_services_they_did_not_start_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The broker and redis-server configured for the suite (started by hand or by another state dir)."""
    foreign = Settings().model_copy(update=dict(state_dir=tmp_path / "other-state"))
    kafka, redis_ = Kafka(foreign), Redis(foreign)
    if not (kafka.answers() and redis_.answers()):
        pytest.fail(
            f"no Kafka at {foreign.kafka_bootstrap} or no Redis at {foreign.redis_url}: this test needs services it "
            "did not start; run `segstream services up` (or `make test`) first",
            pytrace=False,
        )
    assert services.up(foreign) == ()
    assert "already running" in capsys.readouterr().out
    lines, all_up = services.status_lines(foreign)
    assert all_up and all("running (not managed)" in line for line in lines)

    # A pid file in our state dir that names some other process (here: this test) changes nothing.
    kafka.pid_file.parent.mkdir(parents=True, exist_ok=True)
    kafka.pid_file.write_text(str(os.getpid()))
    assert services.command("down", foreign) == 0
    assert "not managed: left alone" in capsys.readouterr().out
    assert not kafka.pid_file.exists()
    assert kafka.answers() and redis_.answers()
    produce_and_consume_one(foreign.model_copy(update=dict(namespace=f"t{uuid.uuid4().hex[:10]}", partitions=1)))
    assert client(foreign).ping()
