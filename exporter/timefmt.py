"""Times for a person reading a finding: an age, and the UTC clock time it points back to."""

from __future__ import annotations

from datetime import datetime, timezone


def duration(seconds: float) -> str:
    """``12m05s`` under an hour, ``3h07m`` above: precise where it matters, short where it does not."""
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def utc(timestamp: float, now: float) -> str:
    """``03:12:05 UTC`` on the day of ``now``, else with its date: no time zone to convert at 3 a.m."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    if moment.date() == datetime.fromtimestamp(now, tz=timezone.utc).date():
        return moment.strftime("%H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def ago(seconds: float) -> str:
    """``3h ago``: the coarse age a glance at a page needs."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"
