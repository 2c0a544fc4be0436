"""The storm breaker's memory: a latched trip held across intervals and restarts, and the
human reset that clears it (NVSentinel's circuit breaker).

The state is in the policy's status (status.stormBreaker); a reset is a new value of the
policy's annotation ftmoe.io/reset-storm-breaker, which ``kubectl ftmoe reset`` sets. The
decision (decisions.py) only sees the held trip, as ``Rules.latched``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftmoe.operator import annotations as A
from ftmoe.operator.decisions_types import Plan


@dataclass(frozen=True)
class Held:
    latched: str | None  # the trip a latched breaker holds, None when none is held
    reset_seen: str | None  # the reset annotation's value acted on
    was_reset: bool  # a new reset arrived this interval and cleared a latch


def held_trip(last: dict[str, Any], annotations: dict[str, str], latch: bool) -> Held:
    """What the breaker holds going into this interval. ``last`` is status.stormBreaker as last written."""
    latched = str(last.get("reason") or "a trip") if latch and last.get("latched") else None
    seen = last.get("resetSeen")
    token = annotations.get(A.RESET_STORM_BREAKER)
    if token is not None and token != seen:
        return Held(None, token, latched is not None)
    return Held(latched, seen, False)


def breaker_status(last: dict[str, Any], held: Held, plan: Plan, latch: bool, now: float) -> tuple[dict[str, Any], bool]:
    """status.stormBreaker after this interval, and whether it latched just now."""
    latched = held.latched is not None or (latch and plan.trip is not None)
    status: dict[str, Any] = {"open": plan.storm, "latched": latched}
    if plan.storm:
        status["since"] = last.get("since") if last.get("open") and last.get("since") else A.rfc3339(now)
        status["reason"] = held.latched or plan.trip
    if held.reset_seen is not None:
        status["resetSeen"] = held.reset_seen
    return status, latched and held.latched is None
