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
The bytes are counters (they only accumulate; ``rate()`` gives bytes per second), starting when the exporter
starts, as counters do: a tunnel's first pass looks back ``idle_after`` at day resolution to learn when it
last carried traffic, without counting what it finds.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping

from botocore.exceptions import ClientError

from exporter.config import TrafficConfig
from exporter.model import RegionTelemetry, SourceResult
from exporter.sources.aws import AwsAccount, describe_error
from exporter.sources.isolation import run_isolated
from exporter.sources.logs.state import TunnelKey

log = logging.getLogger(__name__)
SOURCE = "traffic"
NAMESPACE = "AWS/VPN"
PERIOD = 300  # the metrics' resolution
HISTORY_PERIOD = 86400  # the first look-back, at day resolution: one data point per day and query
MAX_QUERIES = 500  # GetMetricData's limit per request
DIRECTIONS = (("in", "TunnelDataIn"), ("out", "TunnelDataOut"))  # received from / sent to the customer gateway
METRICS_PER_TUNNEL = len(DIRECTIONS)
MONTH_SECONDS = 30 * 86400
# Errors that retrying next pass will not mend: the source is off for that account and region until a reload.
REFUSED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "OptInRequired"})


@dataclass(frozen=True, slots=True)
class TunnelTraffic:
    """What CloudWatch said of one tunnel's bytes, as of the latest pass."""

    received_bytes: float  # TunnelDataIn counted since the exporter started
    sent_bytes: float  # TunnelDataOut likewise
    counted_until: float  # the end of the newest period read (CloudWatch's data lags by ``delay``)
    observed_since: float  # the oldest data point seen: how far back "no bytes" is known
    last_received: float | None = None  # the newest period's end with bytes in; None: none since observed_since
    last_sent: float | None = None

    @property
    def last_traffic(self) -> float | None:
        """The end of the newest period with bytes either way."""
        return max((t for t in (self.last_received, self.last_sent) if t is not None), default=None)


@dataclass(frozen=True)
class TrafficCollection:
    tunnels: Mapping[TunnelKey, TunnelTraffic] = field(default_factory=dict)
    results: tuple[SourceResult, ...] = ()
    metrics_requested: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (account, region): billed
    monthly_cost: Mapping[tuple[str, str], float] = field(default_factory=dict)  # USD per 30 days at this size
    unattributable: Mapping[tuple[str, str], int] = field(default_factory=dict)  # tunnels sharing an outside IP
    silent_after: float = TrafficConfig.silent_after  # the findings' thresholds, from the config
    idle_after: float = TrafficConfig.idle_after


def monthly_cost(tunnels: int, config: TrafficConfig) -> float:
    """GetMetricData's price for a month of passes over this many tunnels (the look-backs are left out: one per
    tunnel and start)."""
    return tunnels * METRICS_PER_TUNNEL * (MONTH_SECONDS / config.interval) * config.price_per_1000_metrics / 1000


class _Counting:
    """One tunnel's running totals and the window of periods already counted."""

    __slots__ = ("totals", "periods", "last", "observed_since", "counted_until")

    def __init__(self, observed_since: float):
        self.totals = {"in": 0.0, "out": 0.0}
        self.periods: dict[tuple[str, float], float] = {}  # (direction, period start) -> the Sum as last read
        self.last: dict[str, float | None] = {"in": None, "out": None}
        self.observed_since = observed_since
        self.counted_until = observed_since

    def saw(self, direction: str, period_end: float) -> None:
        if period_end > (self.last[direction] or 0.0):
            self.last[direction] = period_end

    def count(self, direction: str, start: float, value: float) -> None:
        """A period's Sum: what it grew by since last read is added (a late data point counts once)."""
        before = self.periods.get((direction, start), 0.0)
        if value > before:
            self.totals[direction] += value - before
            self.periods[(direction, start)] = value
        if value > 0:
            self.saw(direction, start + PERIOD)

    def view(self) -> TunnelTraffic:
        return TunnelTraffic(self.totals["in"], self.totals["out"], self.counted_until, self.observed_since,
                             self.last["in"], self.last["out"])


def _query_id(index: int, direction: str) -> str:
    """GetMetricData ids: a lower-case letter first, then letters, digits and underscores."""
    return f"{direction}{index}"


def _queries(ips: Iterable[str], period: int) -> list[dict]:
    return [{"Id": _query_id(index, direction), "ReturnData": True,
             "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": name,
                                       "Dimensions": [{"Name": "TunnelIpAddress", "Value": ip}]},
                            "Period": period, "Stat": "Sum", "Unit": "Bytes"}}
            for index, ip in enumerate(ips) for direction, name in DIRECTIONS]


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class TrafficPoller:
    """One pass over every tunnel EC2 last reported: a GetMetricData call per 250 tunnels and region."""

    def __init__(self, config: TrafficConfig, executor: Executor, timeout: float,
                 clock: Callable[[], float] = time.time):
        self.config, self._executor, self._timeout, self._clock = config, executor, timeout, clock
        self._counting: dict[TunnelKey, _Counting] = {}
        self._requested: dict[tuple[str, str], int] = {}
        self._unattributable: dict[tuple[str, str], int] = {}
        self._refused: dict[tuple[str, str], str] = {}
        self._last_success: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()  # one pass at a time (the schedule and a one-shot diagnose)
        # regions' passes run in parallel threads (one may outlive its poll's timeout): they add tunnels and
        # billing counts under this lock
        self._state_lock = threading.Lock()

    def reconfigure(self, config: TrafficConfig, timeout: float) -> None:
        """A config reload: new settings, and another try where the calls were refused."""
        self.config, self._timeout = config, timeout
        self._refused.clear()

    def poll(self, regions: tuple[RegionTelemetry, ...], accounts: Mapping[str, AwsAccount],
             within: float | None = None) -> TrafficCollection:
        """One pass; a region not done ``within`` seconds (by default the configured timeout) fails this pass."""
        with self._lock:
            now = self._clock()
            end = float(int(now - self.config.delay) // PERIOD * PERIOD)  # whole periods, published by now
            jobs = {(r.account_id, r.region): (lambda r=r: self._pass(r, accounts[r.account_id], end))
                    for r in regions if r.account_id in accounts and any(c.tunnels for c in r.connections)}
            outcomes = run_isolated(self._executor, jobs, self._timeout if within is None else within)
            results = []
            for where, outcome in sorted(outcomes.items()):
                if outcome.ok:
                    self._last_success[where] = self._clock()
                else:
                    log.warning("collection failed account=%s region=%s source=%s error=%r", *where, SOURCE,
                                outcome.value)
                results.append(SourceResult(*where, SOURCE, outcome.ok, outcome.duration_seconds,
                                            self._last_success.get(where), "" if outcome.ok else outcome.value))
            live = {TunnelKey(r.account_id, r.region, c.vpn_connection_id, t.outside_ip)
                    for r in regions for c in r.connections for t in c.tunnels}
            with self._state_lock:
                self._counting = {key: counting for key, counting in self._counting.items()
                                  if key in live and (key.account_id, key.region) not in self._refused}
                requested = dict(self._requested)
            size = {(r.account_id, r.region): sum(len(c.tunnels) for c in r.connections) for r in regions}
            return TrafficCollection(
                tunnels={key: counting.view() for key, counting in self._counting.items()},
                results=tuple(results),
                metrics_requested={where: n for where, n in requested.items() if where in size},
                monthly_cost={where: monthly_cost(n, self.config) for where, n in size.items()
                              if n and where not in self._refused and where in jobs},
                unattributable={where: n for where, n in self._unattributable.items() if where in size},
                silent_after=self.config.silent_after, idle_after=self.config.idle_after)

    def _pass(self, region: RegionTelemetry, account: AwsAccount, end: float) -> None:
        where = (region.account_id, region.region)
        if where in self._refused:
            raise RuntimeError(f"off: {self._refused[where]}")
        by_ip: dict[str, list[TunnelKey]] = {}
        for connection in region.connections:
            for tunnel in connection.tunnels:
                by_ip.setdefault(tunnel.outside_ip, []).append(
                    TunnelKey(*where, connection.vpn_connection_id, tunnel.outside_ip))
        shared = [ip for ip, keys in by_ip.items() if len(keys) > 1]
        self._unattributable[where] = sum(len(by_ip[ip]) for ip in shared)
        tunnels = {keys[0].outside_ip: keys[0] for ip, keys in by_ip.items() if len(keys) == 1}
        client = account.client("cloudwatch", region.region)
        try:
            new = sorted(ip for ip, key in tunnels.items() if key not in self._counting)
            history_start = end - (self.config.idle_after // HISTORY_PERIOD + 1) * HISTORY_PERIOD
            looked_back = {ip: _Counting(end) for ip in new}
            for batch in _batches(new, MAX_QUERIES // METRICS_PER_TUNNEL):
                for ip, direction, start, value in self._read(client, where, batch, history_start, end, HISTORY_PERIOD):
                    counting = looked_back[ip]
                    # AWS reports zeros while a tunnel is down: only where data points exist is "no bytes" known
                    counting.observed_since = min(counting.observed_since, start)
                    if value > 0:
                        counting.saw(direction, min(start + HISTORY_PERIOD, end))
            for ip in new:
                counting = looked_back[ip]
                counting.counted_until = end
                with self._state_lock:
                    self._counting[tunnels[ip]] = counting
            window_start = end - self.config.window
            fresh, recent = set(new), {}
            for batch in _batches(sorted(tunnels), MAX_QUERIES // METRICS_PER_TUNNEL):
                for ip, direction, start, value in self._read(client, where, batch, window_start, end, PERIOD):
                    counting = self._counting[tunnels[ip]]
                    if ip in fresh:  # a first pass learns the window without counting it (counters start at 0)
                        counting.periods[(direction, start)] = value
                        if value > 0:
                            recent[(ip, direction)] = max(recent.get((ip, direction), 0.0), start + PERIOD)
                    else:
                        counting.count(direction, start, value)
            for ip in fresh:  # within the window its 5-minute data replace the look-back's day resolution
                counting = self._counting[tunnels[ip]]
                for direction, _ in DIRECTIONS:
                    before = counting.last[direction]
                    counting.last[direction] = recent.get((ip, direction)) or (
                        None if before is None else min(before, window_start))
            for ip in tunnels:
                counting = self._counting[tunnels[ip]]
                counting.counted_until = end
                counting.periods = {k: v for k, v in counting.periods.items() if k[1] >= window_start}
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in REFUSED:
                self._refused[where] = describe_error(err)
                log.warning("source turned off account=%s region=%s source=%s error=%r; the other sources are "
                            "unaffected; a config reload tries again", *where, SOURCE, self._refused[where])
            raise

    def _read(self, client, where: tuple[str, str], ips: list[str], start: float, end: float,
              period: int) -> Iterator[tuple[str, str, float, float]]:
        """(outside IP, direction, period start, Sum) for every data point of these tunnels; a query AWS could
        not answer fails the pass (its tunnels keep their counts, and the next pass reads the window again)."""
        queries = _queries(ips, period)
        by_id = {_query_id(index, direction): (ip, direction)
                 for index, ip in enumerate(ips) for direction, _ in DIRECTIONS}
        with self._state_lock:
            self._requested[where] = self._requested.get(where, 0) + len(queries)
        paginator = client.get_paginator("get_metric_data")
        failed = set()
        for page in paginator.paginate(MetricDataQueries=queries, StartTime=start, EndTime=end,
                                       ScanBy="TimestampAscending"):
            for result in page.get("MetricDataResults") or ():
                target = by_id.get(result.get("Id", ""))
                if target is None:
                    continue
                if result.get("StatusCode") not in ("Complete", "PartialData"):
                    failed.add(str(result.get("StatusCode")))
                    continue
                for stamp, value in zip(result.get("Timestamps") or (), result.get("Values") or ()):
                    yield target[0], target[1], stamp.timestamp(), float(value)
        if failed:
            raise RuntimeError(f"GetMetricData answered {', '.join(sorted(failed))} for some tunnels")
