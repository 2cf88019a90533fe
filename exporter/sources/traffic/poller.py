"""Tunnel traffic from CloudWatch: ``AWS/VPN`` ``TunnelDataIn`` and ``TunnelDataOut``, optional, because
GetMetricData is billed per metric requested.

AWS publishes both per tunnel with the ``TunnelIpAddress`` dimension (and per connection with ``VpnId``,
never both), each data point the bytes since the previous one, so a period's ``Sum`` is the bytes in it; they
report even while a tunnel is down, so they are no sign of liveness (AWS Site-to-Site VPN user guide,
"Monitoring your Site-to-Site VPN tunnels using Amazon CloudWatch"). Each tunnel is asked for by its own
outside IP in its own account and region, so a series is joined to its connection and tunnel by construction:
peers that list metrics first and match dimensions afterwards lose exactly this join (YACE issues #1194 and
#158, cloudwatch_exporter #260). An outside IP shared by two tunnels of one account and region (private IP
VPNs over Direct Connect) cannot be told apart: those tunnels are skipped and counted.

CloudWatch fills a period in some minutes after it ends. A pass reads the periods that ended at least
``delay`` ago and re-reads the last ``window``, so a late data point, or a period that grew, is added once.
The bytes are counters (they only accumulate; ``rate()`` gives bytes per second), kept in ``state_dir`` so a
restart neither resets them nor counts a period twice, and catches up (at most a day) on what it missed. A
tunnel's first pass counts the window before it, and looks back ``idle_after`` at day resolution to learn
when it last carried traffic.

Exact whatever the clocks do: a period is keyed by the nearest point of the 5-minute grid (not by the timestamp
an answer gives it), and is closed for good only once CloudWatch itself has data a window later, so a wall clock
running ahead closes nothing CloudWatch has yet to fill. A tunnel EC2 stops reporting keeps its counters for
the retention the log state uses (``durable.forget_unseen``); a value CloudWatch gives that is no byte count
(negative, infinite, NaN) is skipped and counted as unrecognised.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from functools import partial
from pathlib import Path

from botocore.exceptions import ClientError

from exporter.config import TrafficConfig
from exporter.durable import RETENTION, JsonDocument, forget_unseen
from exporter.model import RegionTelemetry, TrafficCollection, TunnelKey, TunnelTraffic
from exporter.sources.aws import AwsAccount, describe_error
from exporter.sources.failures import Described
from exporter.sources.isolation import Outcome, run_isolated
from exporter.sources.source import BusyRegions, Results

log = logging.getLogger(__name__)
SOURCE = "traffic"
NAMESPACE = "AWS/VPN"
PERIOD = 300  # the metrics' resolution


def period_of(stamp: float) -> float:
    """The start of the period a data point belongs to: the grid's nearest to its timestamp, so an answer whose
    timestamps shift (late or early, by less than half a period) still names the same period."""
    return (stamp + PERIOD / 2) // PERIOD * PERIOD


HISTORY_PERIOD = 86400  # the first look-back, at day resolution: one data point per day and query
MAX_QUERIES = 500  # GetMetricData's limit per request
DIRECTIONS = (("in", "TunnelDataIn"), ("out", "TunnelDataOut"))  # received from / sent to the customer gateway
METRICS_PER_TUNNEL = len(DIRECTIONS)
MONTH_SECONDS = 30 * 86400
# A period counts as carrying traffic (for connection_idle and the last-traffic time) above what BGP's own
# keepalives send: about 60 bytes every 10 s each way, some 2 kB a period. Any byte counts as "received" for
# ipsec_up_no_traffic, which asks whether anything gets through at all.
KEEPALIVE_BYTES = 10_000  # per 5-minute period and direction
MAX_CATCH_UP = 86400  # after a restart or failed passes, read back at most this far to where the counts stopped
STATE_VERSION = 1
STATE_FILE = "traffic-state.json"
# Errors that retrying next pass will not mend: the source is off for that account and region until a reload.
REFUSED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "OptInRequired"})


def monthly_cost(tunnels: int, config: TrafficConfig) -> float:
    """GetMetricData's price for a month of passes over this many tunnels (the look-backs are left out: one per
    tunnel and start)."""
    return tunnels * METRICS_PER_TUNNEL * (MONTH_SECONDS / config.interval) * config.price_per_1000_metrics / 1000


class _Counting:
    """One tunnel's running totals, and the periods still open to late data with the Sum read of each."""

    __slots__ = ("totals", "periods", "last", "observed_since", "counted_until", "floor", "data_until", "seen_at")

    def __init__(self, observed_since: float, floor: float = 0.0):
        self.totals = {"in": 0.0, "out": 0.0}
        self.periods: dict[tuple[str, float], float] = {}  # (direction, period start) -> the Sum as last read
        self.last: dict[str, float | None] = {"in": None, "out": None, "used": None}  # used: above keepalives
        self.observed_since = observed_since
        self.counted_until = observed_since
        self.floor = floor  # periods that start before this are counted for good (no longer kept)
        self.data_until: float | None = None  # TunnelDataIn: the newest period with a data point, zeros included
        self.seen_at = observed_since  # when EC2 last reported the tunnel (durable.forget_unseen)

    def saw(self, direction: str, period_end: float) -> None:
        if period_end > (self.last[direction] or 0.0):
            self.last[direction] = period_end

    def saw_bytes(self, direction: str, start: float, period: float, value: float, end: float) -> None:
        """A period's Sum seen: bytes, and traffic if more than keepalives alone would send."""
        period_end = min(start + period, end)
        if value > 0:
            self.saw(direction, period_end)
        if value > KEEPALIVE_BYTES * period / PERIOD:
            self.saw("used", period_end)

    def count(self, direction: str, stamp: float, value: float) -> None:
        """A period's Sum: what it grew by since last read is added (a late data point counts once). The period
        is ``period_of`` the timestamp: flooring took one a minute early for the period before."""
        start = period_of(stamp)
        if direction == "in" and start + PERIOD > (self.data_until or 0.0):
            self.data_until = start + PERIOD
        if start < self.floor:
            return
        before = self.periods.get((direction, start), 0.0)
        if value > before:
            self.totals[direction] += value - before
            self.periods[(direction, start)] = value
        self.saw_bytes(direction, start, PERIOD, value, start + PERIOD)

    def close_before(self, window_start: float, window: float, first: bool = False) -> None:
        """Periods before the window are counted for good, but only as far as CloudWatch's own data shows the
        window has passed (a wall clock ahead of AWS's must not close periods CloudWatch is still filling), and
        never further back than a catch-up reads. After a tunnel's first pass (nothing before its window counted)
        the window is CloudWatch's too: a first pass with the clock ahead lowers it, and the next pass reads it."""
        floor = window_start if self.data_until is None else min(window_start, self.data_until - window)
        self.floor = max(floor if first else max(self.floor, floor), window_start + window - MAX_CATCH_UP)
        self.periods = {k: v for k, v in self.periods.items() if k[1] >= self.floor}

    def view(self) -> TunnelTraffic:
        return TunnelTraffic(
            self.totals["in"],
            self.totals["out"],
            self.counted_until,
            self.observed_since,
            self.last["in"],
            self.last["out"],
            self.data_until,
            self.last["used"],
        )

    def encode(self) -> dict:
        return {
            "in": self.totals["in"],
            "out": self.totals["out"],
            "last_in": self.last["in"],
            "last_out": self.last["out"],
            "last_used": self.last["used"],
            "observed_since": self.observed_since,
            "counted_until": self.counted_until,
            "floor": self.floor,
            "data_until": self.data_until,
            "seen_at": self.seen_at,
            "periods": [[direction, start, value] for (direction, start), value in self.periods.items()],
        }

    @classmethod
    def decode(cls, data: dict, now: float) -> tuple[_Counting, bool]:
        """A saved tunnel and whether its times were in the future, or ValueError (numbers finite, none negative).

        Times ahead of now (saved while the wall clock was fast) are clamped to the grid's now; the counters and
        the periods still open are kept as they are, so the next pass goes on from them exactly."""

        def number(value: object) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"not a count or time: {value!r}")
            return float(value)

        def optional(value: object) -> float | None:
            return None if value is None else number(value)

        counting = cls(number(data["observed_since"]))
        counting.totals = {"in": number(data["in"]), "out": number(data["out"])}
        counting.last = {
            "in": optional(data["last_in"]),
            "out": optional(data["last_out"]),
            "used": optional(data.get("last_used")),
        }
        counting.counted_until, counting.floor = number(data["counted_until"]), number(data["floor"])
        counting.data_until = optional(data.get("data_until"))
        counting.seen_at = number(data.get("seen_at", now))
        for direction, start, value in data["periods"]:
            if direction not in ("in", "out"):
                raise ValueError(f"not a direction: {direction!r}")
            counting.periods[(direction, period_of(number(start)))] = number(value)
        grid_now = now // PERIOD * PERIOD
        future = counting.counted_until > now + PERIOD
        if future:
            if counting.floor > grid_now:  # closed (by an older version) with a clock ahead: open again what
                # CloudWatch had no data for then (nothing of it is counted), the rest stays counted
                counting.floor = grid_now if counting.data_until is None else min(grid_now, counting.data_until)
            counting.counted_until = grid_now
        counting.observed_since = min(counting.observed_since, counting.counted_until)
        counting.seen_at = min(counting.seen_at, now)
        counting.last = {kind: None if at is None else min(at, grid_now) for kind, at in counting.last.items()}
        counting.data_until = None if counting.data_until is None else min(counting.data_until, grid_now)
        return counting, future


def _query_id(index: int, direction: str) -> str:
    """GetMetricData ids: a lower-case letter first, then letters, digits and underscores."""
    return f"{direction}{index}"


def _queries(ips: Iterable[str], period: int) -> list[dict]:
    return [
        {
            "Id": _query_id(index, direction),
            "ReturnData": True,
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": name,
                    "Dimensions": [{"Name": "TunnelIpAddress", "Value": ip}],
                },
                "Period": period,
                "Stat": "Sum",
                "Unit": "Bytes",
            },
        }
        for index, ip in enumerate(ips)
        for direction, name in DIRECTIONS
    ]


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TrafficPoller:
    """One pass over every tunnel EC2 last reported: a GetMetricData call per 250 tunnels and region."""

    def __init__(
        self,
        config: TrafficConfig,
        executor: Executor,
        timeout: float,
        clock: Callable[[], float] = time.time,
        state_dir: Path | None = None,
        on_corrupt: Callable[[], object] = lambda: None,
        unrecognized: Callable[[str], object] = lambda field: None,
        retention: float = RETENTION,
    ):
        self.config, self._executor, self._timeout, self._clock = config, executor, timeout, clock
        self.document = JsonDocument(Path(state_dir) / STATE_FILE, STATE_VERSION, on_corrupt) if state_dir else None
        self._unrecognized, self._retention = unrecognized, retention
        self._counting: dict[TunnelKey, _Counting] | None = None  # loaded by the first pass, with its clock
        self._requested: dict[tuple[str, str], int] = {}
        self._unattributable: dict[tuple[str, str], int] = {}
        self._refused: dict[tuple[str, str], str] = {}
        self._results = Results(SOURCE, clock)
        self._lock = threading.Lock()  # one pass at a time (the schedule and a one-shot diagnose)
        # regions' passes run in parallel threads (one may outlive its poll's timeout): they add tunnels and
        # billing counts under this lock
        self._state_lock = threading.Lock()
        self._busy = BusyRegions("pass")
        self._shared: set[TunnelKey] = set()  # tunnels left out: another of their region has the same outside IP

    def _load(self) -> dict[TunnelKey, _Counting]:
        """The counters of the last run, so a restart neither resets them nor counts a period twice."""
        if self.document is None:  # no state_dir: nothing was saved
            return {}
        data = self.document.load()
        tunnels: dict[TunnelKey, _Counting] = {}
        dropped, first, future, now = 0, "", 0, self._clock()
        for key, entry in ((data or {}).get("tunnels") or {}).items():
            try:
                tunnels[TunnelKey.decode(key)], ahead = _Counting.decode(entry, now)
                future += ahead
            except (ValueError, TypeError, KeyError, AttributeError) as err:
                dropped, first = dropped + 1, first or f"{key}: {err}"
        if dropped:
            self.document.dropped(dropped, first)
        if future:
            log.warning(
                "traffic state counted until the future path=%s tunnels=%d: saved while the clock was ahead; "
                "counters kept, their times clamped to now",
                self.document.path,
                future,
            )
        return tunnels

    @property
    def _counts(self) -> dict[TunnelKey, _Counting]:
        """The counters: a pass loads them before it saves or runs a region."""
        if self._counting is None:
            raise RuntimeError("traffic counters used before a pass loaded them")
        return self._counting

    def _save(self) -> None:
        if self.document is None:
            return
        failing = not self.document.saved
        try:
            self.document.save({"tunnels": {key.encode(): c.encode() for key, c in self._counts.items()}})
        except OSError as err:
            if not failing:  # said once per outage: the counts go on in memory
                log.error(
                    "traffic state not saved path=%s error=%r; counts go on, but a restart resets them",
                    self.document.path,
                    err.strerror,
                )
            return
        if failing:
            log.info("traffic state saved again path=%s", self.document.path)

    def reconfigure(self, config: TrafficConfig, timeout: float) -> None:
        """A config reload: new settings, and another try where the calls were refused."""
        self.config, self._timeout = config, timeout
        self._refused.clear()

    def poll(
        self, regions: tuple[RegionTelemetry, ...], accounts: Mapping[str, AwsAccount], within: float | None = None
    ) -> TrafficCollection:
        """One pass; a region not done ``within`` seconds (by default the configured timeout) fails this pass."""
        with self._lock:
            now = self._clock()
            if self._counting is None:
                self._counting = self._load()
            end = float(int(now - self.config.delay) // PERIOD * PERIOD)  # whole periods, published by now
            jobs, busy = {}, {}
            for r in regions:
                where = (r.account_id, r.region)
                if r.account_id not in accounts or not any(c.tunnels for c in r.connections):
                    continue
                still = self._busy.start(where)
                if still is not None:  # a pass that outlived its poll: never two at once
                    busy[where] = Outcome(False, still, self._busy.running_for(where))
                    continue
                jobs[where] = partial(self._run, where, r, accounts[r.account_id], end)
            outcomes = {**busy, **run_isolated(self._executor, jobs, self._timeout if within is None else within)}
            results = [
                self._results.result(where, outcome.ok, outcome.duration_seconds, "" if outcome.ok else outcome.value)
                for where, outcome in sorted(outcomes.items())
            ]
            live = {TunnelKey.of(r, c, t) for r in regions for c in r.connections for t in c.tunnels}
            with self._state_lock:
                # a tunnel EC2 did not report (its region's first poll after a restart failed, an answer without
                # the connection's tunnels, a target removed) keeps its counters a while: a passing gap is no reset
                forget_unseen(self._counting, live, now, self._retention)
                requested, unattributable = dict(self._requested), dict(self._unattributable)
                views = {
                    key: counting.view()
                    for key, counting in self._counting.items()
                    if key in live and key not in self._shared and (key.account_id, key.region) not in self._refused
                }
                self._save()
            size = {(r.account_id, r.region): sum(len(c.tunnels) for c in r.connections) for r in regions}
            asked = {where: n - unattributable.get(where, 0) for where, n in size.items()}
            return TrafficCollection(
                tunnels=views,
                results=tuple(results),
                metrics_requested={where: n for where, n in requested.items() if where in size},
                monthly_cost={
                    where: monthly_cost(n, self.config)
                    for where, n in asked.items()
                    if where not in self._refused and where in outcomes
                },
                unattributable={where: n for where, n in unattributable.items() if where in size},
                silent_after=self.config.silent_after,
                idle_after=self.config.idle_after,
            )

    def _run(self, where, region: RegionTelemetry, account: AwsAccount, end: float) -> None:
        try:
            self._pass(region, account, end)
        finally:
            self._busy.finish(where)

    def _pass(self, region: RegionTelemetry, account: AwsAccount, end: float) -> None:
        where = (region.account_id, region.region)
        if where in self._refused:
            raise Described(f"off: {self._refused[where]}")
        by_ip: dict[str, list[TunnelKey]] = {}
        for connection in region.connections:
            for tunnel in connection.tunnels:
                by_ip.setdefault(tunnel.outside_ip, []).append(
                    TunnelKey(*where, connection.vpn_connection_id, tunnel.outside_ip)
                )
        shared = {key for keys in by_ip.values() if len(keys) > 1 for key in keys}
        with self._state_lock:
            self._unattributable[where] = len(shared)
            self._shared = {key for key in self._shared if (key.account_id, key.region) != where} | shared
        tunnels = {keys[0].outside_ip: keys[0] for ip, keys in by_ip.items() if len(keys) == 1}
        client = account.client("cloudwatch", region.region)
        try:
            new = sorted(ip for ip, key in tunnels.items() if key not in self._counts)
            # whole days, one more than idle_after: "no bytes" is claimed from the end of the oldest day
            history_start = end - (math.ceil(self.config.idle_after / HISTORY_PERIOD) + 1) * HISTORY_PERIOD
            window = math.ceil(self.config.window / PERIOD) * PERIOD  # GetMetricData buckets from StartTime
            window_start = end - window
            looked_back = {ip: _Counting(end, floor=window_start) for ip in new}  # the first pass: the window
            for batch in _batches(new, MAX_QUERIES // METRICS_PER_TUNNEL):
                for ip, direction, start, value in self._read(client, where, batch, history_start, end, HISTORY_PERIOD):
                    counting = looked_back[ip]
                    # AWS reports zeros while a tunnel is down: only where data points exist is "no bytes" known
                    counting.observed_since = min(counting.observed_since, min(start + HISTORY_PERIOD, end))
                    counting.saw_bytes(direction, start, HISTORY_PERIOD, value, end)
            for ip in new:
                with self._state_lock:
                    self._counts[tunnels[ip]] = looked_back[ip]
            # the window, or back to the oldest period still open (a restart, a failed pass), at most a day
            known = [self._counts[key].floor for ip, key in tunnels.items() if ip not in looked_back]
            read_from = max(end - MAX_CATCH_UP, min([window_start, *known]))
            for counting in looked_back.values():  # the window's 5-minute data replace the day resolution there
                counting.last = {kind: None if at is None else min(at, read_from) for kind, at in counting.last.items()}
            for batch in _batches(sorted(tunnels), MAX_QUERIES // METRICS_PER_TUNNEL):
                for ip, direction, start, value in self._read(client, where, batch, read_from, end, PERIOD):
                    with self._state_lock:
                        self._counts[tunnels[ip]].count(direction, start, value)
            for ip in tunnels:
                counting = self._counts[tunnels[ip]]
                counting.counted_until = end
                counting.close_before(window_start, window, first=ip in looked_back)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in REFUSED:
                self._refused[where] = describe_error(err)
                log.warning(
                    "source turned off account=%s region=%s source=%s error=%r; the other sources are "
                    "unaffected; a config reload tries again",
                    *where,
                    SOURCE,
                    self._refused[where],
                )
            raise

    def _read(
        self, client, where: tuple[str, str], ips: list[str], start: float, end: float, period: int
    ) -> Iterator[tuple[str, str, float, float]]:
        """(outside IP, direction, period start, Sum) for every data point of these tunnels; a query AWS could
        not answer fails the pass (its tunnels keep their counts, and the next pass reads the window again)."""
        queries = _queries(ips, period)
        by_id = {
            _query_id(index, direction): (ip, direction) for index, ip in enumerate(ips) for direction, _ in DIRECTIONS
        }
        paginator = client.get_paginator("get_metric_data")
        failed = set()
        for page in paginator.paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
        ):
            with self._state_lock:  # each page is a call that names every query again: billed again
                self._requested[where] = self._requested.get(where, 0) + len(queries)
            for result in page.get("MetricDataResults") or ():
                target = by_id.get(result.get("Id", ""))
                if target is None:
                    continue
                if result.get("StatusCode") not in ("Complete", "PartialData"):
                    failed.add(str(result.get("StatusCode")))
                    continue
                for stamp, value in zip(result.get("Timestamps") or (), result.get("Values") or (), strict=False):
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                        self._unrecognized(dict(DIRECTIONS)[target[1]])  # no byte count: never a counter's +Inf
                        continue
                    yield target[0], target[1], stamp.timestamp(), float(value)
        if failed:
            raise Described(f"GetMetricData answered {', '.join(sorted(failed))} for some tunnels")
