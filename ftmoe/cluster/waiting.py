"""Polling until something holds, with a message that says what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(fn: Callable[[], T], timeout: float, what: str, every: float = 1.0, error: type[Exception] = TimeoutError) -> T:
    """``fn()``'s first truthy value, polling every ``every`` seconds for ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every)
    raise error(f"timed out after {timeout:.0f}s waiting for {what}")
