"""Maintenance and quiet windows (spec.schedule): may the operator start a disruption now?

Karpenter's budgets and kured's reboot windows in one rule: a Forbidden window that is open
forbids; otherwise, when the policy has any Allowed window, one of them must be open.
"""

from __future__ import annotations

from ftmoe.operator.api.disruption_types import Window

OUTSIDE_WINDOW = "OutsideMaintenanceWindow"
QUIET_WINDOW = "QuietWindow"


def disruptions_allowed(schedule: list[Window], now: float) -> tuple[bool, str, str]:
    """(allowed, reason, message) for new cordons, drains and remediations at ``now``."""
    for w in schedule:
        if w.disruptions == "Forbidden" and w.open_at(now):
            return False, QUIET_WINDOW, f"inside the quiet window {w.schedule!r} ({w.time_zone}, {w.duration:g}s)"
    allowed = [w for w in schedule if w.disruptions == "Allowed"]
    if allowed and not any(w.open_at(now) for w in allowed):
        shown = ", ".join(f"{w.schedule!r}" for w in allowed[:3])
        return False, OUTSIDE_WINDOW, f"outside every maintenance window ({shown})"
    return True, "", ""
