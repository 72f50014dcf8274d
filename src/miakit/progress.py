"""Progress for output that is not a terminal: plain lines on stderr, so CI logs and pipes see long work move."""

from __future__ import annotations

import sys
import time


class PlainProgress:
    """Progress as plain lines on stderr, for output that is not a terminal (CI logs, pipes): one line at
    every tenth of the work or every ``every_s`` seconds, whichever comes first, and one when done."""

    def __init__(self, description: str, total: int, unit: str, *, every_s: float = 30.0) -> None:
        self.description, self.total, self.unit, self.every_s = description, max(0, total), unit, every_s
        self.done = 0
        self.started = self.last_time = time.monotonic()
        self.last_tenth = 0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        tenth = int(10 * self.done / self.total) if self.total else 10
        if tenth > self.last_tenth or now - self.last_time >= self.every_s:
            self.last_tenth, self.last_time = max(tenth, self.last_tenth), now
            self.line()

    def line(self) -> None:
        percent = f" ({100 * self.done // self.total}%)" if self.total else ""
        seconds = time.monotonic() - self.started
        print(
            f"{self.description}: {self.done}/{self.total} {self.unit}{percent}, {seconds:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    def finish(self) -> None:
        if self.last_tenth < 10 and self.done >= self.total:
            self.line()


def interactive() -> bool:
    """Whether rich can draw a live bar here (a terminal or a notebook), judged as rich's own console does."""
    from rich.console import Console

    console = Console()
    return console.is_terminal or console.is_jupyter
