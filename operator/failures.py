"""An interval that raised: said once where people look, counted every time.

Each failure sets the policy's Ready condition False (reason IntervalFailed, the error as
the message, the other conditions kept), counts in ``ftmoe_interval_failures_total``, and
emits one Warning event and one logged traceback per distinct error: the same error every
interval is one event and one traceback, not thousands.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ftmoe.operator import own_metrics as M
from ftmoe.operator.interval import Deps
from ftmoe.operator.status import READY, Condition, merge_conditions

log = logging.getLogger(__name__)
INTERVAL_FAILED = "IntervalFailed"


def interval_failed(deps: Deps, policy: dict[str, Any], err: Exception, now: float | None = None) -> None:
    name = policy["metadata"]["name"]
    message = f"{type(err).__name__}: {err}"[:1000]
    M.INTERVAL_FAILURES.labels(name).inc()
    if deps.last_failure.get(name) != message:
        deps.last_failure[name] = message
        log.error("%s: interval failed: %s", name, message, exc_info=err)
        deps.events(policy, "Warning", INTERVAL_FAILED, f"interval failed: {message}")
    else:
        log.warning("%s: interval failed again: %s", name, message)
    prev = policy.get("status") or {}
    kept = [c for c in prev.get("conditions") or [] if c.get("type") != READY]
    ready = merge_conditions(
        prev.get("conditions") or [],
        [Condition(READY, False, INTERVAL_FAILED, message)],
        int(policy["metadata"].get("generation") or 0),
        time.time() if now is None else now,
    )
    try:
        deps.kube.patch_policy_status(name, {"conditions": [*ready, *kept]})
    except Exception as write_err:  # noqa: BLE001 - the API server may be the failure; the log and metric still tell
        log.warning("%s: could not write the failure to status: %s", name, write_err)
