"""How many API requests each interval makes, by verb, for the interval's metrics and the
scale benchmark. The interval opens a tally; its worker threads carry it (``carry``), so
concurrent policies count only their own requests."""

from __future__ import annotations

import contextvars
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from ftmoe.operator import own_metrics as M

T = TypeVar("T")
READS = frozenset({"get", "list", "watch"})
EVICTIONS = "pods/eviction"  # the drain's writes: one per pod, however little the shown state moved


class Tally:
    def __init__(self) -> None:
        self.by_verb: Counter[str] = Counter()
        self.evictions = 0

    @property
    def reads(self) -> int:
        return sum(n for v, n in self.by_verb.items() if v in READS)

    @property
    def writes(self) -> int:
        return sum(n for v, n in self.by_verb.items() if v not in READS)

    @property
    def total(self) -> int:
        return sum(self.by_verb.values())


_current: contextvars.ContextVar[Tally | None] = contextvars.ContextVar("ftmoe_request_tally", default=None)


def count(verb: str, resource: str) -> None:
    """One request sent (a retry is another request)."""
    M.API_REQUESTS.labels(verb, resource).inc()
    tally = _current.get()
    if tally is not None:
        tally.by_verb[verb] += 1
        tally.evictions += resource == EVICTIONS


def current_tally() -> Tally | None:
    return _current.get()


@contextmanager
def tallying() -> Iterator[Tally]:
    tally = Tally()
    token = _current.set(tally)
    try:
        yield tally
    finally:
        _current.reset(token)


def carry(fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` bound to the caller's context, for a worker thread to run."""
    ctx = contextvars.copy_context()
    return lambda: ctx.run(fn)
