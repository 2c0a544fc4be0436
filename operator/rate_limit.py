"""Client-side rate limiting and back-off for the Kubernetes API, as client-go does it.

A token bucket (``qps`` sustained, ``burst`` at once) paces every request this process
sends, so an interval over thousands of nodes does not flood the API server. When the
server still says 429 Too Many Requests (API Priority and Fairness shedding load), the call
waits what its ``Retry-After`` header asks, capped, and tries again; 409 Conflict and the
5xx an overloaded server returns back off exponentially."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from kubernetes.client.exceptions import ApiException

T = TypeVar("T")
DEFAULT_QPS = 50.0
DEFAULT_BURST = 100
MAX_RETRY_AFTER = 30.0  # a longer ask would stall the interval; the next interval tries again
RETRIED = (409, 429, 500, 503, 504)


class TokenBucket:
    """``acquire()`` blocks until a token is free; thread-safe. ``qps <= 0`` disables it."""

    def __init__(self, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST, clock: Callable[[], float] = time.monotonic):
        self.qps, self.burst, self.clock = qps, max(1, burst), clock
        self.tokens = float(self.burst)
        self.updated = clock()
        self.lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting for tokens, for the benchmark and tests

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> None:
        if self.qps <= 0:
            return
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.qps)
            self.updated = now
            self.tokens -= 1.0
            wait = -self.tokens / self.qps if self.tokens < 0 else 0.0
            self.waited += wait
        if wait > 0:
            sleep(wait)


def retry_after(err: ApiException) -> float | None:
    """The server's Retry-After in seconds (the integer form; the date form is not sent by kube-apiserver)."""
    headers = getattr(err, "headers", None) or {}
    raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(raw))) if raw is not None else None
    except (TypeError, ValueError):
        return None


def with_retries(fn: Callable[[], T], attempts: int = 5, sleep: Callable[[float], None] = time.sleep) -> T:
    """``fn()``, again after a 429 (waiting Retry-After, else back-off), a 409 or a 5xx."""
    for attempt in range(attempts):
        try:
            return fn()
        except ApiException as err:
            if err.status not in RETRIED or attempt == attempts - 1:
                raise
            wait = retry_after(err) if err.status == 429 else None
            sleep(wait if wait is not None else 0.2 * 2**attempt)
    raise AssertionError("unreachable")
