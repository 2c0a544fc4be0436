"""The operator's node annotations and labels: names, and reading them back.

Everything the operator needs to resume after a restart lives here, on the node, not in
memory: who cordoned it and why, since when its risk has been high or low, the drain's
progress and the recent cordons counted by the escalation rule.
"""

from __future__ import annotations

import calendar
import functools
import time

PREFIX = "ftmoe.io/"
RISK = PREFIX + "risk"
FAULT_TYPE = PREFIX + "fault-type"
PREDICTED_AT = PREFIX + "predicted-at"
POLICY = PREFIX + "policy"
AT_RISK_LABEL = PREFIX + "at-risk"
RISK_LABEL = PREFIX + "risk"  # the risk as a label too, so `kubectl get nodes -L ftmoe.io/risk` shows it
CORDONED_BY = PREFIX + "cordoned-by"
CORDON_REASON = PREFIX + "cordon-reason"
CORDONED_AT = PREFIX + "cordoned-at"
RISK_SINCE = PREFIX + "risk-since"
HEALTHY_SINCE = PREFIX + "healthy-since"
DRAIN_STARTED = PREFIX + "drain-started-at"
DRAIN_STATE = PREFIX + "drain"  # draining | done | timed-out
CORDON_HISTORY = PREFIX + "cordon-history"  # space-separated RFC 3339 times, newest last
DECISION = PREFIX + "decision"  # the last decision shown to humans; events fire when it changes
EVICT_OPT_OUT = PREFIX + "evict"  # on a pod: "false" keeps the operator from evicting it
# Remediation hand-off (operator/remediation_plan.py): the objects created for the node, the
# escalation step under way and since when, and "gave-up" once the last step timed out.
REMEDIATIONS = PREFIX + "remediations"  # space-separated apiVersion/Kind/namespace, each object named after the node
REMEDIATION_STEP = PREFIX + "remediation-step"
REMEDIATION_STARTED = PREFIX + "remediation-started-at"
REMEDIATION_STATE = PREFIX + "remediation"  # running | gave-up
REMEDIATION_TIMED_OUT = PREFIX + "remediation-timed-out"  # on a remediation object an escalation passed over
RESET_STORM_BREAKER = PREFIX + "reset-storm-breaker"  # on a policy: a new value clears a latched breaker

HISTORY_KEEP = 10


def shown_risk(risk: float) -> str:
    """The risk as every human-facing place shows it: two decimals (also a valid label value)."""
    return f"{risk:.2f}"


RISK_DEADBAND = 0.05


def shown_risk_after(shown: str | None, risk: float, thresholds: tuple[float, ...]) -> str:
    """What to show now: the new risk, or the one already shown while the risk stays within
    RISK_DEADBAND of it and on the same side of every threshold. A healthy node's risk wobbles
    in the second decimal every interval; at thousands of nodes showing each wobble would be
    hundreds of API writes an interval. The exact value is in the ftmoe_node_risk metric."""
    try:
        before = float(shown) if shown is not None else None
    except ValueError:
        before = None
    if before is not None and abs(before - risk) < RISK_DEADBAND and all((before >= t) == (risk >= t) for t in thresholds):
        return str(shown)
    return shown_risk(risk)


def rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@functools.lru_cache(maxsize=65536)
def parse_time(text: str | None) -> float | None:
    """Epoch seconds of an RFC 3339 UTC time written by ``rfc3339``; None if absent or unreadable.
    Cached: every interval reads the same few annotations of every node, and strptime took
    most of an interval's node facts at 500 nodes."""
    if not text:
        return None
    try:
        return float(calendar.timegm(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


@functools.lru_cache(maxsize=65536)
def parse_history(text: str | None) -> tuple[float, ...]:
    times = (parse_time(part) for part in (text or "").split())
    return tuple(t for t in times if t is not None)


def format_history(times: tuple[float, ...]) -> str:
    return " ".join(rfc3339(t) for t in times[-HISTORY_KEEP:])
