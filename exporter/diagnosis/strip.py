"""A connection's last 30 days as a strip of day cells (up, degraded, down, no data), from the history the
exporter keeps itself (``model.HistoryDay``): one reading of a day, so the status page and ``diagnose`` say the
same thing about it, with or without Prometheus."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from exporter.model import HistoryDay
from exporter.timefmt import duration

DAYS = 30  # the strip's length: the calendar days up to the snapshot's own, oldest first
UP, DEGRADED, DOWN, NO_DATA = "up", "degraded", "down", "no_data"
STATES = (UP, DEGRADED, DOWN, NO_DATA)


def state(day: HistoryDay) -> str:
    """No data when the exporter covered none of the day; down when no tunnel was up for a while (the SLA's
    unavailability); degraded when it ran without redundancy or a tunnel changed state; else up. (A NaN or a
    negative count is no count: it compares as not above 0.)"""
    if not day.observed_seconds > 0:
        return NO_DATA
    if day.unavailable_seconds > 0:
        return DOWN
    if day.unredundant_seconds > 0 or day.flaps > 0:
        return DEGRADED
    return UP


def _seconds(value: float) -> float:
    return min(float(value), 86400.0) if value > 0 else 0.0  # a day holds no more (nor an infinity)


def _checked(day: HistoryDay, when: date) -> HistoryDay | None:
    """The day with its date written one way and its counts as numbers a day can hold (a NaN or a negative one
    as 0); None when they are not numbers at all."""
    try:
        return HistoryDay(
            when.isoformat(),
            _seconds(day.observed_seconds),
            _seconds(day.unavailable_seconds),
            _seconds(day.unredundant_seconds),
            int(min(day.flaps, 10**9)) if day.flaps > 0 else 0,
        )
    except (TypeError, ValueError):
        return None


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if isinstance(text, str) and len(text) == 10 else None
    except ValueError:
        return None


def window(history: Iterable[HistoryDay], completed_at: float) -> tuple[HistoryDay, ...]:
    """The DAYS calendar days (UTC) ending on the snapshot's day, oldest first: each the history's own when it
    has that day (the latest entry for it, its counts checked), else an empty day, so every strip spans the same
    dates. Days outside the window, or whose date or counts do not parse, are left out."""
    last = datetime.fromtimestamp(completed_at, tz=timezone.utc).date()
    first = last - timedelta(days=DAYS - 1)
    known: dict[date, HistoryDay] = {}
    for day in history:
        when = _date(day.day)
        if when is not None and first <= when <= last and (checked := _checked(day, when)) is not None:
            known[when] = checked
    dates = (first + timedelta(days=offset) for offset in range(DAYS))
    return tuple(known.get(when) or HistoryDay(when.isoformat(), 0.0, 0.0, 0.0, 0) for when in dates)


def describe(day: HistoryDay) -> str:
    """What the day was, without its date: ``down, 42m00s unavailable, 1h05m without redundancy, 3 flaps``, or
    ``up`` (no downtime and no flap), or ``no data``."""
    kind = state(day)
    if kind in (UP, NO_DATA):  # up: no downtime and no flap, by definition
        return kind.replace("_", " ")
    parts = [kind]
    if day.unavailable_seconds > 0:
        parts.append(f"{duration(day.unavailable_seconds)} unavailable")
    if day.unredundant_seconds > 0:
        parts.append(f"{duration(day.unredundant_seconds)} without redundancy")
    parts.append(_flaps(day.flaps))
    return ", ".join(parts)


def _flaps(count: int) -> str:
    return "no flap" if not count else f"{count:,} flap{'s' if count != 1 else ''}"


def runs(days: Iterable[HistoryDay]) -> list[str]:
    """The days as lines of text, each run of consecutive days alike on one line, so the text stays short:
    ``2026-11-06 to 2026-11-30: up``, ``2026-12-01 to 2026-12-04, each day: degraded, 24h00m without
    redundancy, no flap`` (a connection with one tunnel configured), ``2026-12-05: down, ...``."""
    merged: list[tuple[str, str, str]] = []
    for day in days:
        text = describe(day)
        if merged and merged[-1][2] == text:
            merged[-1] = (merged[-1][0], day.day, text)
        else:
            merged.append((day.day, day.day, text))
    return [
        f"{first}: {text}"
        if first == last
        else f"{first} to {last}{'' if text in (UP, 'no data') else ', each day'}: {text}"
        for first, last, text in merged
    ]


@dataclass(frozen=True)
class Summary:
    """The window's days by state, with the downtime and the flaps they add up to."""

    days: int
    counts: dict[str, int]
    unavailable_seconds: float
    flaps: int

    def text(self) -> str:
        """``3 days degraded, 1 down (42m00s), 5 flaps`` or ``up every day, no flap``; the days without data
        said last."""
        degraded, down, missing = self.counts[DEGRADED], self.counts[DOWN], self.counts[NO_DATA]
        if missing == self.days:
            return f"no data in {self.days} days"
        parts = []
        if degraded:
            parts.append(f"{degraded} day{'s' if degraded != 1 else ''} degraded")
        if down:
            unit = "" if degraded else (" days" if down != 1 else " day")
            parts.append(f"{down}{unit} down ({duration(self.unavailable_seconds)})")
        if not parts:
            parts.append("up every observed day" if missing else "up every day")
        parts.append(_flaps(self.flaps))
        line = ", ".join(parts)
        return line + (f"; no data on {missing} day{'s' if missing != 1 else ''}" if missing else "")


def summarise(days: Iterable[HistoryDay]) -> Summary:
    days = tuple(days)
    counts = dict.fromkeys(STATES, 0)
    for day in days:
        counts[state(day)] += 1
    return Summary(
        len(days),
        counts,
        sum(day.unavailable_seconds for day in days),
        sum(day.flaps for day in days),
    )
