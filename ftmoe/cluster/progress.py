"""Progress lines for long steps: what is happening, how long it took, and a heartbeat."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s"


class Progress:
    """Prints ``[n/N] step`` lines, a heartbeat while a step runs, and each step's time.

    Steps such as a cold Go build of kube-apiserver are silent for many minutes; the
    heartbeat tells the user the command is alive and how long it has been going.
    """

    def __init__(self, total: int, stream: TextIO | None = None, heartbeat_s: float = 30.0):
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.heartbeat_s = heartbeat_s
        self.timings: dict[str, float] = {}

    def say(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def skip(self, message: str) -> None:
        """A step that had nothing to do still counts, so the numbering stays true."""
        self.done += 1
        self.say(f"[{self.done}/{self.total}] {message}")

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.done += 1
        prefix = f"[{self.done}/{self.total}]"
        self.say(f"{prefix} {title} ...")
        start = time.monotonic()
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat_s):
                elapsed = format_duration(time.monotonic() - start)
                self.say(f"{prefix} {title}: still working ({elapsed})")

        beater = threading.Thread(target=beat, daemon=True)
        beater.start()
        try:
            yield
        finally:
            stop.set()
            beater.join()
            elapsed = time.monotonic() - start
            self.timings[title] = elapsed
            self.say(f"{prefix} {title}: done in {format_duration(elapsed)}")
