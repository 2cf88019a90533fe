"""The tunnels' history, counted exactly and kept across restarts: state changes, seconds DOWN and
IPsec-up-BGP-down per tunnel, seconds unavailable (no tunnel UP), unredundant and observed per connection, and the
last 30 UTC days of each connection (``model.HistoryDay``).

Time is integrated from AWS's own edges, not from poll times. Each connection has a horizon: the time of the
latest EC2 poll of its region that succeeded (its data is as of then), and the counters cover every second up to
it. A tunnel whose ``LastStatusChange`` advanced to ``t`` held its previous state until ``t`` and the new one
since, so a 30 s poll does not quantise a downtime: where both edges were seen, the DOWN seconds are their
difference. What no edge says is counted as the lower bound:

- an advance with status and status message unchanged is a change away and back: 2 changes, and 0 s in the state
  between (unknown, at most the time since the previous poll);
- a change of status without an advance of the timestamp is taken at the poll that saw it;
- an edge older than the horizon already counted (EC2's data late) is taken at that horizon.

A change while the exporter was stopped is counted on restart: the state file holds each tunnel's state and
timestamp, and the gap is filled from ``LastStatusChange`` (and counted as observed). A first sight counts from
then on. Downtime is ``maintenance`` from an endpoint replacement (the status pass's ``LastMaintenanceApplied``)
until the tunnel is next UP, else ``other``. The status pass runs every 15 minutes, usually after the outage: while
it is on, DOWN and unavailable seconds wait (``pending``) until it has checked the tunnel after them, at most
``status_wait``, and only then get their cause, since a counter never goes back.

Bad values are counted (``aws_vpn_exporter_unrecognized_values_total``) and skipped, never a crash, and never
freeze the other tunnels: a missing timestamp or one in the future keeps that tunnel in its last known state. A
wall clock stepped back counts nothing twice: that poll counts no time, and the counting goes on from the new
clock (the seconds lost are at most one poll interval).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from exporter.durable import RETENTION, JsonDocument, forget_unseen
from exporter.model import (
    Connection,
    ConnectionHistory,
    ConnectionRef,
    HistoryCollection,
    HistoryDay,
    LogCollection,
    RegionTelemetry,
    SourceResult,
    Tunnel,
    TunnelHistory,
    TunnelKey,
    TunnelStatusCollection,
)
from exporter.sources.failures import STS

log = logging.getLogger(__name__)

STATE_VERSION = 1
STATE_FILE = "history-state.json"
CAUSES = ("maintenance", "other")
DAYS = 30  # the days kept per connection (the status page's strip)
FUTURE_TOLERANCE = 300.0  # a LastStatusChange this far ahead of the clock is no time yet
# The BGP log's session transitions (parse.BGP_EVENTS): each an exact state change. IKE events are left out:
# a rekey logs the same phase 1 and 2 events as a re-establishment, with no change of the tunnel's state.
LOG_TRANSITIONS = ("bgp_established", "bgp_session_down")
MAX_COUNT = 2**53

UP, DOWN, UNKNOWN = "UP", "DOWN", "UNKNOWN"


def day_of(stamp: float) -> str:
    """The UTC day of a time, "2026-12-04" (named once per day: every connection asks each poll)."""
    return _day_name(int(stamp // 86400))


@lru_cache(maxsize=64)
def _day_name(index: int) -> str:
    return datetime.fromtimestamp(index * 86400, tz=timezone.utc).strftime("%Y-%m-%d")


def _day_start(stamp: float) -> float:
    return stamp // 86400 * 86400


@dataclass
class TunnelCount:
    """One tunnel's state as of its connection's horizon, and its counters."""

    status: str  # UP | DOWN | UNKNOWN
    message: str  # the status message's class (telemetry.classify_status_message)
    bgp_down: bool  # IPsec up, BGP down (dynamic routing)
    since: float  # AWS's LastStatusChange of this state
    seen_at: float
    ec2_changes: int = 0
    log_changes: int = 0
    log_seen: int | None = None  # the BGP log's transitions as last read (None: no BGP log read yet)
    down: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0.0))
    bgp: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0.0))
    maintenance: list[float | None] | None = None  # [LastMaintenanceApplied, next UP or None while open]
    pending: list[list] = field(default_factory=list)  # [begin, end, bgp_down]: DOWN not yet given its cause

    @property
    def changes(self) -> int:
        return max(self.ec2_changes, self.log_changes)

    def in_maintenance(self, start: float, end: float) -> float:
        """How much of [start, end) falls in the tunnel's endpoint replacement window."""
        if self.maintenance is None:
            return 0.0
        begin, until = self.maintenance
        assert begin is not None
        return max(0.0, min(end, math.inf if until is None else until) - max(start, begin))


@dataclass
class ConnectionCount:
    counted_until: float  # the horizon everything before which is counted
    seen_at: float
    unavailable: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0.0))
    unredundant: float = 0.0
    observed: float = 0.0
    days: dict[str, list[float]] = field(default_factory=dict)  # day -> [observed, unavailable, unredundant, flaps]
    pending: list[list[float]] = field(default_factory=list)  # [begin, end]: unavailable, not yet given its cause

    def day(self, stamp: float) -> list[float]:
        return self.days.setdefault(day_of(stamp), [0.0, 0.0, 0.0, 0.0])


Segment = tuple[float, float, str, bool]  # start, end, status, bgp_down


class HistoryCounter:
    """The counters of every tunnel and connection EC2 reports, advanced once per poll, saved after each."""

    def __init__(
        self,
        state_dir: Path | None,
        clock: Callable[[], float] = time.time,
        on_corrupt: Callable[[], object] = lambda: None,
        unrecognized: Callable[[str], object] = lambda field: None,
        retention: float = RETENTION,
        status_wait: float = 0.0,
    ):
        """``status_wait``: with the status pass on, how long DOWN seconds may wait for it to check the tunnel
        after them, so that a replacement it reports later is their cause (0: the cause is decided at once)."""
        self.clock = clock
        self.status_wait = status_wait
        self.document = (
            None if state_dir is None else JsonDocument(Path(state_dir) / STATE_FILE, STATE_VERSION, on_corrupt)
        )
        self._unrecognized = unrecognized
        self._retention = retention
        self._lock = threading.Lock()
        self._tunnels: dict[TunnelKey, TunnelCount] | None = None
        self._connections: dict[ConnectionRef, ConnectionCount] = {}
        self._save_failing = False

    def poll(
        self,
        regions: Iterable[RegionTelemetry],
        ec2_results: Iterable[SourceResult],
        status: TunnelStatusCollection | None,
        logs: LogCollection | None,
    ) -> HistoryCollection:
        """Advance every connection to its region's latest successful EC2 poll (never past the clock), count,
        save, and return the counters."""
        with self._lock:
            if self._tunnels is None:
                self._tunnels = {}
                self._load()
            now = self.clock()
            # a region whose credentials failed reports as the sts source, with its EC2 poll's last success
            succeeded = {
                (r.account_id, r.region): r.last_success_timestamp for r in ec2_results if r.source in ("ec2", STS)
            }
            maintenance = {} if status is None else status.statuses
            log_views = {} if logs is None else logs.tunnels
            live_tunnels, live_connections = set(), set()
            for region in regions:
                success = succeeded.get((region.account_id, region.region))
                if success is None:
                    continue  # never read: nothing is known yet
                horizon = min(now, success)
                for connection in region.connections:
                    ref = (region.account_id, region.region, connection.vpn_connection_id)
                    keys = [TunnelKey.of(region, connection, tunnel) for tunnel in connection.tunnels]
                    live_connections.add(ref)
                    live_tunnels.update(keys)
                    self._advance(ref, connection, keys, horizon, now, maintenance, log_views)
            forget_unseen(self._tunnels, live_tunnels, now, self._retention)
            forget_unseen(self._connections, live_connections, now, self._retention)
            self._save()
            return self._view(live_tunnels, live_connections)

    # --- counting ------------------------------------------------------------------------------------

    def _advance(self, ref, connection: Connection, keys, horizon, now, maintenance, log_views) -> None:
        assert self._tunnels is not None
        count = self._connections.get(ref)
        if count is None:  # first sight: counted from now on
            count = self._connections[ref] = ConnectionCount(counted_until=horizon, seen_at=now)
        start = count.counted_until
        if horizon < start:  # the wall clock stepped back (or EC2's last success is older): nothing counts twice
            if horizon < start - 1.0:
                self._unrecognized("history_clock_step_back")
            count.counted_until = start = horizon
        timelines = []
        flaps: list[tuple[float, int]] = []
        for tunnel, key in zip(connection.tunnels, keys, strict=True):
            timelines.append(
                self._tunnel(key, tunnel, connection.routing, start, horizon, now, maintenance, log_views, flaps)
            )
        states = [self._tunnels.get(key) for key in keys]
        self._sweep(count, timelines, start, horizon)
        settled = [self._settled(maintenance.get(key), now) for key in keys]
        for state, until in zip(states, settled, strict=True):
            if state is not None:
                _settle_tunnel(state, until)
        _settle_connection(count, [state for state in states if state is not None], min(settled, default=math.inf))
        for at, n in flaps:
            count.day(at)[3] += n
        count.counted_until = horizon
        oldest = day_of(_day_start(horizon) - (DAYS - 1) * 86400)
        if min(count.days, default=oldest) < oldest:
            count.days = {day: values for day, values in count.days.items() if day >= oldest}

    def _settled(self, status, now: float) -> float:
        """Until when a tunnel's DOWN seconds may be given their cause: the status pass's latest check of it (it knew
        of every replacement before), or at most ``status_wait`` ago (a failing pass holds nothing for ever)."""
        if self.status_wait <= 0:
            return math.inf
        checked = getattr(status, "checked_at", None)
        if not isinstance(checked, (int, float)) or isinstance(checked, bool):
            checked = -math.inf
        return max(float(checked), now - self.status_wait)

    def _tunnel(self, key, tunnel: Tunnel, routing, start, horizon, now, maintenance, log_views, flaps):
        """The tunnel's segments over [start, horizon), its state and counters brought up to the horizon."""
        assert self._tunnels is not None
        state = self._tunnels.get(key)
        stamp = tunnel.last_status_change
        if stamp is None or not math.isfinite(stamp) or stamp > now + FUTURE_TOLERANCE:
            # counted and skipped: the tunnel keeps its last known state until a good timestamp comes
            self._unrecognized("history_last_status_change" if stamp is None else "history_last_status_change_future")
            if state is None:
                return [(start, horizon, UNKNOWN, False)] if horizon > start else []
            return self._count_down(state, [(start, horizon, state.status, state.bgp_down)])
        status = tunnel.status if tunnel.status in (UP, DOWN) else UNKNOWN
        bgp_down = routing == "dynamic" and status == DOWN and bool(tunnel.ipsec_up)
        if state is None:  # first sight: counted from now on
            state = self._tunnels[key] = TunnelCount(status, tunnel.status_message, bgp_down, stamp, now)
            self._maintenance(state, maintenance.get(key))
            self._logs(state, log_views.get(key))
            return [(start, horizon, UNKNOWN, False)] if horizon > start else []
        before, old = state.changes, (state.status, state.bgp_down)
        changed = (status, tunnel.status_message) != (state.status, state.message)
        edge: float | None = None
        if stamp > state.since:  # AWS saw a change: the old state ended at its timestamp
            state.ec2_changes += 1 if changed else 2  # unchanged: away and back
            edge = min(max(stamp, start), horizon)
        else:
            if stamp < state.since:
                self._unrecognized("history_last_status_change_backwards")
            if changed:  # a change without a new timestamp: taken at this poll
                state.ec2_changes += 1
                edge = horizon
        state.status, state.message, state.bgp_down, state.since = status, tunnel.status_message, bgp_down, stamp
        self._maintenance(state, maintenance.get(key))
        window = state.maintenance
        if edge is not None and status == UP and window is not None and window[1] is None and edge >= (window[0] or 0):
            window[1] = edge  # the replacement is over: the tunnel is UP again
        self._logs(state, log_views.get(key))
        if state.changes > before:
            flaps.append((horizon if edge is None else edge, state.changes - before))
        if edge is None:
            return self._count_down(state, [(start, horizon, *old)])
        return self._count_down(state, [(start, edge, *old), (edge, horizon, status, bgp_down)])

    @staticmethod
    def _count_down(state: TunnelCount, segments: list[Segment]) -> list[Segment]:
        """The segments' DOWN (and IPsec-up-BGP-down) seconds wait in ``pending`` for their cause."""
        segments = [segment for segment in segments if segment[1] > segment[0]]
        for begin, end, status, bgp in segments:
            if status == DOWN:
                _extend(state.pending, [begin, end, bgp])
        return segments

    @staticmethod
    def _maintenance(state: TunnelCount, status) -> None:
        """A replacement the status pass reports opens a window until the tunnel is next UP (empty when the tunnel
        has been UP since before it)."""
        applied = getattr(status, "last_maintenance_applied", None)
        if applied is None or not math.isfinite(applied):
            return
        if state.maintenance is not None and (state.maintenance[0] or 0.0) >= applied:
            return
        end = (applied if state.since <= applied else state.since) if state.status == UP else None
        state.maintenance = [applied, end]

    @staticmethod
    def _logs(state: TunnelCount, view) -> None:
        """The BGP log's session transitions since the tunnel was first seen with its log read: exact, and used
        where EC2 saw fewer (a log state that started over counts on from zero)."""
        if view is None:
            return
        total = sum(count for event, count in view.counts if event in LOG_TRANSITIONS)
        if state.log_seen is not None:
            state.log_changes += total - state.log_seen if total >= state.log_seen else total
        state.log_seen = total

    @staticmethod
    def _sweep(count: ConnectionCount, timelines, start: float, horizon: float) -> None:
        """The connection's seconds over [start, horizon): every tunnel's segments cut into pieces in which each
        tunnel's state is fixed, and each piece split at UTC midnight. Unavailable pieces wait for their cause."""
        if horizon <= start:
            return
        cuts = {start, horizon}
        for segments in timelines:
            cuts.update(point for segment in segments for point in segment[:2])
        day = _day_start(start) + 86400
        while day < horizon:
            cuts.add(day)
            day += 86400
        points = sorted(cuts)
        for begin, end in zip(points, points[1:], strict=False):
            middle = (begin + end) / 2
            statuses = [next((s[2] for s in segments if s[0] <= middle < s[1]), UNKNOWN) for segments in timelines]
            if not statuses:
                continue
            if UP in statuses:
                unavailable = False
            elif UNKNOWN in statuses:
                continue  # not known: not observed
            else:
                unavailable = True
            seconds = end - begin
            bucket = count.day(begin)
            count.observed += seconds
            bucket[0] += seconds
            if unavailable:
                _extend(count.pending, [begin, end])
                bucket[1] += seconds
            elif DOWN in statuses:
                count.unredundant += seconds
                bucket[2] += seconds

    # --- output --------------------------------------------------------------------------------------

    def _view(self, tunnels: set[TunnelKey], connections: set[ConnectionRef]) -> HistoryCollection:
        assert self._tunnels is not None
        return HistoryCollection(
            tunnels={
                key: TunnelHistory(
                    state_changes=state.changes,
                    down_seconds=tuple(sorted(state.down.items())),
                    bgp_down_seconds=tuple(sorted(state.bgp.items())),
                )
                for key, state in self._tunnels.items()
                if key in tunnels
            },
            connections={
                ref: ConnectionHistory(
                    unavailable_seconds=tuple(sorted(count.unavailable.items())),
                    unredundant_seconds=count.unredundant,
                    observed_seconds=count.observed,
                )
                for ref, count in self._connections.items()
                if ref in connections
            },
            days={
                ref: tuple(
                    HistoryDay(day, values[0], values[1], values[2], int(values[3]))
                    for day, values in sorted(count.days.items())
                )
                for ref, count in self._connections.items()
                if ref in connections
            },
        )

    # --- the state file ------------------------------------------------------------------------------

    def _save(self) -> None:
        if self.document is None:
            return
        assert self._tunnels is not None
        data = {
            "tunnels": {key.encode(): _tunnel_data(state) for key, state in self._tunnels.items()},
            "connections": {"|".join(ref): _connection_data(count) for ref, count in self._connections.items()},
        }
        try:
            self.document.save(data)
        except OSError as err:
            if not self._save_failing:
                log.error(
                    "history state not saved path=%s error=%r; counts go on, but a restart resets them",
                    self.document.path,
                    err.strerror,
                )
            self._save_failing = True
            return
        if self._save_failing:
            log.info("history state saved again path=%s", self.document.path)
        self._save_failing = False

    def _load(self) -> None:
        assert self._tunnels is not None
        data = None if self.document is None else self.document.load()
        if data is None or self.document is None:
            return
        problems: list[str] = []
        _read_entries(data, "tunnels", TunnelKey.decode, _tunnel_entry, self._tunnels, problems)
        _read_entries(data, "connections", _connection_ref, _connection_entry, self._connections, problems)
        if problems:
            self.document.dropped(len(problems), problems[0])


def _extend(pending: list, piece: list) -> None:
    """Add a piece to a pending list, joined to the last one when it continues it (a long outage is one item)."""
    if pending and pending[-1][1] == piece[0] and pending[-1][2:] == piece[2:]:
        pending[-1][1] = piece[1]
    else:
        pending.append(piece)


def _due(pending: list, until: float) -> list:
    """The pending pieces (or parts) before ``until``, taken out of ``pending``."""
    due, kept = [], []
    for piece in pending:
        if piece[1] <= until:
            due.append(piece)
        elif piece[0] < until:
            due.append([piece[0], until, *piece[2:]])
            kept.append([until, *piece[1:]])
        else:
            kept.append(piece)
    pending[:] = kept
    return due


def _settle_tunnel(state: TunnelCount, until: float) -> None:
    """DOWN seconds the status pass has seen past are counted: maintenance within the replacement window."""
    for begin, end, bgp in _due(state.pending, until):
        during = state.in_maintenance(begin, end)
        for counter in (state.down, state.bgp) if bgp else (state.down,):
            counter["maintenance"] += during
            counter["other"] += end - begin - during


def _settle_connection(count: ConnectionCount, states: list[TunnelCount], until: float) -> None:
    """Unavailable seconds are maintenance where a tunnel of the connection was in a replacement."""
    for begin, end in _due(count.pending, until):
        windows = sorted(
            (max(begin, w[0]), min(end, math.inf if w[1] is None else w[1]))
            for w in (state.maintenance for state in states)
            if w is not None and w[0] is not None
        )
        during, reached = 0.0, begin
        for low, high in windows:
            low = max(low, reached)
            if high > low:
                during, reached = during + high - low, high
        count.unavailable["maintenance"] += during
        count.unavailable["other"] += end - begin - during


def _tunnel_data(state: TunnelCount) -> dict[str, Any]:
    return {
        "status": state.status,
        "message": state.message,
        "bgp_down": state.bgp_down,
        "since": state.since,
        "seen_at": state.seen_at,
        "ec2_changes": state.ec2_changes,
        "log_changes": state.log_changes,
        "log_seen": state.log_seen,
        "down": state.down,
        "bgp": state.bgp,
        "maintenance": state.maintenance,
        "pending": state.pending,
    }


def _connection_data(count: ConnectionCount) -> dict[str, Any]:
    return {
        "counted_until": count.counted_until,
        "seen_at": count.seen_at,
        "unavailable": count.unavailable,
        "unredundant": count.unredundant,
        "observed": count.observed,
        "days": count.days,
        "pending": count.pending,
    }


def _number(value: Any, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < math.inf:
        raise ValueError("not a number in range")
    return float(value)


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise ValueError("not a count")
    return value


def _by_cause(value: Any) -> dict[str, float]:
    return {cause: _number(value[cause]) for cause in CAUSES}


def _tunnel_entry(entry: Any) -> TunnelCount:
    if entry["status"] not in (UP, DOWN, UNKNOWN) or not isinstance(entry["message"], str):
        raise ValueError("status")
    window = entry["maintenance"]
    if window is not None:
        window = [_number(window[0]), None if window[1] is None else _number(window[1])]
    return TunnelCount(
        status=entry["status"],
        message=entry["message"][:32],
        bgp_down=bool(entry["bgp_down"]),
        since=_number(entry["since"], -math.inf),
        seen_at=_number(entry["seen_at"], -math.inf),
        ec2_changes=_whole(entry["ec2_changes"]),
        log_changes=_whole(entry["log_changes"]),
        log_seen=None if entry["log_seen"] is None else _whole(entry["log_seen"]),
        down=_by_cause(entry["down"]),
        bgp=_by_cause(entry["bgp"]),
        maintenance=window,
        pending=[[_number(b, -math.inf), _number(e, -math.inf), bool(d)] for b, e, d in entry["pending"]],
    )


def _connection_entry(entry: Any) -> ConnectionCount:
    days = {}
    for day, values in entry["days"].items():
        datetime.strptime(day, "%Y-%m-%d")
        if not isinstance(values, list) or len(values) != 4:
            raise ValueError("day")
        days[day] = [_number(v) for v in values]
    return ConnectionCount(
        counted_until=_number(entry["counted_until"], -math.inf),
        seen_at=_number(entry["seen_at"], -math.inf),
        unavailable=_by_cause(entry["unavailable"]),
        unredundant=_number(entry["unredundant"]),
        observed=_number(entry["observed"]),
        days=days,
        pending=[[_number(b, -math.inf), _number(e, -math.inf)] for b, e in entry["pending"]],
    )


def _connection_ref(text: str) -> ConnectionRef:
    account_id, region, vpn_connection_id = text.split("|")
    return account_id, region, vpn_connection_id


K = TypeVar("K")
V = TypeVar("V")


def _read_entries(
    data: dict, kind: str, key: Callable[[str], K], entry: Callable[[Any], V], into: dict[K, V], problems: list[str]
) -> None:
    """The document's entries of one kind that pass their checks; each that does not is named in ``problems``."""
    entries = data.get(kind)
    for text, value in (entries if isinstance(entries, dict) else {}).items():
        try:
            into[key(text)] = entry(value)
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            problems.append(f"{kind} {str(text)[:80]!r}: {type(err).__name__}")
