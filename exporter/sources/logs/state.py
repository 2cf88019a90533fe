"""What the logs have told us, per tunnel and per log group, and how it survives a restart.

Tunnel state keeps, for each fact (IKE phase states, NAT-T, DPD, selectors, BGP session state and
error), the value from the newest event by the event's own time, so late and out-of-order delivery
cannot roll it back. Event counts and read cursors are saved together in one file, atomically, so
after a crash or restart nothing is lost and nothing counted twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.durable import JsonDocument
from exporter.model import TunnelKey, TunnelLogView
from exporter.sources.logs.parse import (
    BGP_ERRORS,
    BGP_EVENTS,
    BGP_STATES,
    IKE_ERRORS,
    IKE_EVENTS,
    IKE_STATES,
    MAX_DETAIL,
    LogEvent,
)

log = logging.getLogger(__name__)

STATE_VERSION = 1
CLOCK_SKEW_SECONDS = 300.0  # an event or cursor further ahead of now than this is not trusted
MAX_COUNT = 2**53  # counts stay exact as floats in the exposition


def _is_state(values: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and value in values


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_DETAIL


# Every fact a tunnel keeps, with the test a value read back from the state file must pass.
_FACT_CHECKS: dict[str, Callable[[Any], bool]] = {
    "phase1": _is_state(IKE_STATES + ("unknown",)),
    "phase2": _is_state(IKE_STATES + ("unknown",)),
    "nat_t": lambda value: isinstance(value, bool),
    "dpd": lambda value: isinstance(value, bool),
    "selectors": lambda value: isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_is_text, value)),
    "bgp_state": _is_state(BGP_STATES + ("unknown",)),
    "bgp_error": _is_state(tuple(BGP_ERRORS.values())),
    "bgp_error_detail": _is_text,
    "ike_error": _is_state(IKE_ERRORS),
}
_FACTS = tuple(_FACT_CHECKS)
_EVENTS = frozenset(IKE_EVENTS + BGP_EVENTS)


@dataclass
class TunnelLogState:
    counts: dict[str, int] = field(default_factory=dict)
    last_event: dict[str, float] = field(default_factory=dict)
    facts: dict[str, tuple[Any, float]] = field(default_factory=dict)
    seen_at: float = 0.0  # when EC2 last reported this tunnel: its state is forgotten a retention later

    def apply(self, log_kind: str, event: LogEvent, logged_at: float) -> bool:
        """Count one event and keep any fact it carries, unless a newer observation exists.

        ``logged_at`` is CloudWatch's own time for the event; the message's time is used unless it lies
        further ahead of that than the clock skew allows (then False: one event dated 2100 must not pin
        a tunnel's facts for ever).
        """
        self.counts[event.event] = self.counts.get(event.event, 0) + 1
        at, trusted = event.timestamp, True
        if at is None:
            at = logged_at
        elif at > logged_at + CLOCK_SKEW_SECONDS:
            at, trusted = logged_at, False
        if at >= self.last_event.get(log_kind, float("-inf")):
            self.last_event[log_kind] = at
        for name in _FACTS:
            value = getattr(event, name)
            if value is not None and at >= self.facts.get(name, (None, float("-inf")))[1]:
                self.facts[name] = (value, at)
        return trusted

    def view(self) -> TunnelLogView:
        return TunnelLogView(
            counts=tuple(sorted(self.counts.items())),
            last_event=tuple(sorted(self.last_event.items())),
            facts=tuple(sorted((name, value, at) for name, (value, at) in self.facts.items())),
        )

    def encode(self) -> dict:
        return {
            "counts": self.counts,
            "last_event": self.last_event,
            "seen_at": self.seen_at,
            "facts": {
                name: [list(value) if isinstance(value, tuple) else value, at]
                for name, (value, at) in self.facts.items()
            },
        }


@dataclass
class GroupCursor:
    """How far one log group has been read.

    After a complete pass the next starts at ``read_until_ms - overlap`` (late events); after a pass
    cut short by its page budget it resumes at ``resume_ms``, the newest event read, so a backlog
    larger than one budget still makes progress. Ids in ``seen`` drop what is read twice.
    """

    read_until_ms: int
    seen: dict[str, int] = field(default_factory=dict)  # event id -> event timestamp (ms), for dedup
    resume_ms: int | None = None
    used_at: float = 0.0  # when a tunnel last logged to this group: the cursor is forgotten a retention later

    def start_ms(self, overlap_ms: int) -> int:
        return self.resume_ms if self.resume_ms is not None else max(0, self.read_until_ms - overlap_ms)

    def prune(self, keep_from_ms: int) -> None:
        """Forget ids older than any read can return again."""
        self.seen = {event_id: ts for event_id, ts in self.seen.items() if ts >= keep_from_ms}


@dataclass
class LogState:
    cursors: dict[str, GroupCursor] = field(default_factory=dict)
    tunnels: dict[TunnelKey, TunnelLogState] = field(default_factory=dict)


class StateFile:
    """The log state on disk (``exporter.durable``): entries that fail their checks are dropped one by one."""

    def __init__(self, state_dir: Path, on_corrupt=lambda: None):
        self.document = JsonDocument(Path(state_dir) / "logs-state.json", STATE_VERSION, on_corrupt)
        self.path = self.document.path

    def load(self, now: float | None = None) -> LogState:
        """The saved state; what cannot be read is left out, counted and logged once, and the exporter starts."""
        data = self.document.load()
        if data is None:
            return LogState()
        reader = _StateReader(time.time() if now is None else now)
        state = reader.read(data)
        if reader.dropped:
            self.document.dropped(reader.dropped, reader.first_problem)
        return state

    def save(self, state: LogState) -> None:
        self.document.save(
            {
                "cursors": {
                    group: {
                        "read_until_ms": c.read_until_ms,
                        "seen": c.seen,
                        "resume_ms": c.resume_ms,
                        "used_at": c.used_at,
                    }
                    for group, c in state.cursors.items()
                },
                "tunnels": {key.encode(): value.encode() for key, value in state.tunnels.items()},
            }
        )


class _StateReader:
    """Reads a saved state document entry by entry, keeping what passes its checks and counting the rest.

    The checks are the schema: what a fact, a count, a time or a cursor may be. Times ahead of now by
    more than the clock skew (a restored file, a clock that jumped back) are clamped to now: a cursor in
    the future would stop reading for good.
    """

    def __init__(self, now: float):
        self.now = now
        self.dropped = 0
        self.first_problem = ""

    def _drop(self, problem: str) -> None:
        self.dropped += 1
        self.first_problem = self.first_problem or problem[:200]

    def _time(self, value: Any, what: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            self._drop(f"{what}: not a time")
            return None
        if value > self.now + CLOCK_SKEW_SECONDS:
            self._drop(f"{what}: in the future, clamped to now")
            return self.now
        return float(value)

    def _milliseconds(self, value: Any, what: str) -> int | None:
        seconds = self._time(
            value / 1000 if isinstance(value, (int, float)) and not isinstance(value, bool) else value, what
        )
        return None if seconds is None else int(seconds * 1000)

    def read(self, data: dict) -> LogState:
        state = LogState()
        cursors, tunnels = data.get("cursors"), data.get("tunnels")
        for group, cursor in cursors.items() if isinstance(cursors, dict) else ():
            read = self._cursor(cursor, str(group)[:100])
            if read is not None:
                state.cursors[str(group)] = read
        for key, tunnel in tunnels.items() if isinstance(tunnels, dict) else ():
            try:
                tunnel_key = TunnelKey.decode(key)
            except (AttributeError, ValueError):
                tunnel_key = None
            if tunnel_key is None or not isinstance(tunnel, dict):
                self._drop(f"tunnel {str(key)[:100]}: malformed")
                continue
            state.tunnels[tunnel_key] = self._tunnel(tunnel, key)
        if not isinstance(cursors, dict) or not isinstance(tunnels, dict):
            self._drop("cursors or tunnels: not a mapping")
        return state

    def _cursor(self, data: Any, group: str) -> GroupCursor | None:
        if not isinstance(data, dict):
            self._drop(f"cursor {group}: not a mapping")
            return None
        read_until = self._milliseconds(data.get("read_until_ms"), f"cursor {group}")
        if read_until is None:
            return None
        resume = data.get("resume_ms")
        if resume is not None:
            resume = self._milliseconds(resume, f"cursor {group} resume")
        seen = {}
        raw_seen = data.get("seen")
        for event_id, at in raw_seen.items() if isinstance(raw_seen, dict) else ():
            if isinstance(at, int) and not isinstance(at, bool) and 0 <= at <= (self.now + CLOCK_SKEW_SECONDS) * 1000:
                seen[str(event_id)] = at
            else:
                self._drop(f"cursor {group}: a dedup id")
        used_at = data.get("used_at", self.now)
        return GroupCursor(read_until, seen, resume, self._time(used_at, f"cursor {group} used_at") or self.now)

    def _tunnel(self, data: dict, key: str) -> TunnelLogState:
        state = TunnelLogState(seen_at=self._time(data.get("seen_at", self.now), f"{key} seen_at") or self.now)
        counts, last_event, facts = data.get("counts"), data.get("last_event"), data.get("facts")
        for event, count in counts.items() if isinstance(counts, dict) else ():
            if event in _EVENTS and isinstance(count, int) and not isinstance(count, bool) and 0 <= count < MAX_COUNT:
                state.counts[event] = count
            else:
                self._drop(f"{key}: count {str(event)[:40]}")
        for kind, at in last_event.items() if isinstance(last_event, dict) else ():
            at = self._time(at, f"{key}: last {str(kind)[:10]} event") if kind in ("ike", "bgp") else None
            if at is not None:
                state.last_event[kind] = at
        for name, entry in facts.items() if isinstance(facts, dict) else ():
            check = _FACT_CHECKS.get(name)
            if check is None or not isinstance(entry, list) or len(entry) != 2 or not check(entry[0]):
                self._drop(f"{key}: fact {str(name)[:40]}")
                continue
            at = self._time(entry[1], f"{key}: fact {name}")
            if at is not None:
                state.facts[name] = (tuple(entry[0]) if isinstance(entry[0], list) else entry[0], at)
        return state
