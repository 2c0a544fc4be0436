"""Go-style durations ("30s", "1m30s", "500ms", "24h"), as the CRD's patterns accept them."""

from __future__ import annotations

import re

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, field: str = "duration") -> float:
    """Seconds in ``text``; ValueError naming ``field`` when it is not a duration."""
    text = str(text).strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{field}: {text!r} is not a duration; write it like 30s, 5m or 1h30m")
    return total


def format_duration(seconds: float) -> str:
    """The shortest Go-style spelling of a whole number of seconds (sub-second as ms)."""
    if 0 < seconds < 1:
        return f"{round(seconds * 1000)}ms"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (sec, "s")) if v) or "0s"
