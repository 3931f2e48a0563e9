"""Progress of long parts on stderr: one line updated in place on a terminal, a line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO


def count_lines(path: Path) -> int:
    """The lines of a text file (a last line without a newline counts): the total of a progress bar over it."""
    lines = last = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1]
    return lines + (last != ord("\n") and last != 0)


def bar(fraction: float, width: int = 30) -> str:
    """``[#####.....]  50.0%``: ``fraction`` (clamped to 0..1) as a text progress bar."""
    share = min(1.0, max(0.0, fraction))
    filled = int(width * share)
    return f"[{'#' * filled}{'.' * (width - filled)}] {100 * share:5.1f}%"


class Progress:
    """``say`` starts a step (a line of its own); ``update`` rewrites the step's status line."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 5.0, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = every_s
        self.quiet = quiet
        self._last = 0.0
        self._open = False

    def say(self, line: str) -> None:
        """Print a line (ending any status line being updated)."""
        if self.quiet:
            return
        self._end()
        print(f"bench: {line}", file=self.stream, flush=True)

    def update(self, status: str) -> None:
        """Show ``status`` in place (on a terminal) or at most every ``every_s`` seconds (in a log)."""
        if self.quiet:
            return
        if self.tty:
            print(f"\r\033[K  {status}", end="", file=self.stream, flush=True)
            self._open = True
        elif time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            print(f"  {status}", file=self.stream, flush=True)

    def _end(self) -> None:
        if self._open:
            print(file=self.stream, flush=True)
            self._open = False
