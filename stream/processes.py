"""segstream's own processes run as children (the benchmark, the end-to-end tests): ports, environment, lifecycle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from stream.config import Settings, environment

ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(settings: Settings) -> dict[str, str]:
    """This process's environment with the variables that make a child use ``settings`` (secrets in clear)."""
    return {**os.environ, **environment(settings), "PYTHONUNBUFFERED": "1"}


def wait_until(
    check: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.1,
    retried: tuple[type[Exception], ...] = (Exception,),
    fail: type[Exception] = AssertionError,
) -> T:
    """Poll ``check`` until it returns something truthy; raise ``fail`` naming ``what`` after ``timeout`` s.

    Exceptions of the ``retried`` types count as "not yet" and are reported with the timeout.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except retried as exc:
            last = exc
        time.sleep(interval)
    raise fail(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last!r})" if last else ""))


@dataclass
class Proc:
    """A segstream subcommand (``python -m stream.cli ARGS``) run as a child, its output kept in ``log_path``."""

    name: str
    settings: Settings
    args: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", *self.args],
                env=child_env(self.settings),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.popen is not None and self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.popen is not None and self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, chars: int = 5000) -> str:
        """The end of the child's output."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
