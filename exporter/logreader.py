"""Incremental reading of the tunnels' IKE and BGP logs from CloudWatch Logs.

Log groups come from each tunnel's own LogOptions; nothing is configured by hand. Per log group and
poll: one paginated ``FilterLogEvents`` pass over the known tunnels' streams, from the last read
minus an overlap window (CloudWatch delivers late and out of order), with duplicates dropped by
event id. Cursors, dedup ids and per-tunnel counts are saved together after each poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable

from exporter.aws import AwsAccount, describe_error
from exporter.config import LogsConfig
from exporter.isolation import run_isolated
from exporter.logparse import LogParseError, parse
from exporter.logstate import GroupCursor, StateFile, TunnelKey, TunnelLogState, TunnelLogView
from exporter.model import RegionTelemetry, SourceResult

log = logging.getLogger(__name__)

STREAM_NAMES_PER_CALL = 100  # FilterLogEvents accepts at most 100 logStreamNames
STREAM_SUFFIX = {"ike": "IKE", "bgp": "BGP"}


@dataclass(frozen=True, slots=True)
class LogGroupStatus:
    account_id: str
    region: str
    log_group: str
    read_until: float  # epoch seconds: every event before this has been read (bar late delivery)


@dataclass(frozen=True)
class LogCollection:
    tunnels: dict[TunnelKey, TunnelLogView]
    groups: tuple[LogGroupStatus, ...]
    results: tuple[SourceResult, ...]


@dataclass(frozen=True, slots=True)
class _Stream:
    tunnel: TunnelKey
    log: str  # ike | bgp
    output_format: str


class IngestCounters:
    """Callbacks into the live metrics; counted per page, not per event."""

    def __init__(self, ingested: Callable[[str, str, str, int], None] = lambda *a: None,
                 duplicates: Callable[[str, str, int], None] = lambda *a: None,
                 parse_errors: Callable[[str, str, int], None] = lambda *a: None):
        self.ingested, self.duplicates, self.parse_errors = ingested, duplicates, parse_errors


def stream_name(vpn_connection_id: str, outside_ip: str, log_kind: str) -> str:
    """``<vpn-id>-<tunnel-outside-ip>-IKE.log`` (BGP likewise), as the seed shows."""
    return f"{vpn_connection_id}-{outside_ip}-{STREAM_SUFFIX[log_kind]}.log"


def parse_log_group_arn(arn: str) -> tuple[str, str] | None:
    """``arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]`` to (region, name)."""
    parts = arn.split(":", 6)
    if len(parts) < 7 or parts[2] != "logs" or parts[5] != "log-group":
        return None
    name = parts[6].removesuffix(":*")
    return (parts[3], name) if name else None


def discover(region: RegionTelemetry) -> dict[tuple[str, str], dict[str, _Stream]]:
    """The log groups (region, name) of a region's tunnels, each with its streams."""
    groups: dict[tuple[str, str], dict[str, _Stream]] = {}
    for connection in region.connections:
        for tunnel in connection.tunnels:
            key = TunnelKey(region.account_id, region.region, connection.vpn_connection_id, tunnel.outside_ip)
            for kind, destination in (("ike", tunnel.ike_log), ("bgp", tunnel.bgp_log)):
                group = parse_log_group_arn(destination.log_group_arn) if destination.enabled else None
                if group is not None:
                    name = stream_name(connection.vpn_connection_id, tunnel.outside_ip, kind)
                    groups.setdefault(group, {})[name] = _Stream(key, kind, destination.output_format)
    return groups


class LogIngestor:
    """Reads new log events for every tunnel that has logging on, and keeps what they say."""

    def __init__(self, config: LogsConfig, state_file: StateFile, executor: Executor, poll_timeout: float,
                 counters: IngestCounters | None = None, clock: Callable[[], float] = time.time,
                 max_pages_per_group: int = 200, page_size: int | None = None):
        self._config = config
        self._state_file = state_file
        self._state = state_file.load()
        self._executor = executor
        self._poll_timeout = poll_timeout
        self._counters = counters or IngestCounters()
        self._clock = clock
        self._max_pages = max_pages_per_group
        self._page_size = page_size  # None: the API's default (up to 10,000 events or 1 MB)
        self._state_lock = threading.Lock()  # guards self._state between page updates and saving
        self._poll_lock = threading.Lock()
        self._last_success: dict[tuple[str, str], float] = {}

    def poll(self, regions: tuple[RegionTelemetry, ...], accounts: dict[str, AwsAccount]) -> LogCollection:
        """Read every region's log groups once, save the state, and return what is now known."""
        with self._poll_lock:
            now = self._clock()
            jobs = {}
            for region in regions:
                account = accounts.get(region.account_id)
                if account is not None:
                    jobs[(region.account_id, region.region)] = (
                        lambda a=account, r=region: self._ingest_region(a, r, int(now * 1000)))
            outcomes = run_isolated(self._executor, jobs, self._poll_timeout)
            results, groups = [], []
            for (account_id, region), outcome in sorted(outcomes.items()):
                region_groups, errors = outcome.value if outcome.ok else ((), [outcome.value])
                groups.extend(region_groups)
                if not errors:
                    self._last_success[(account_id, region)] = self._clock()
                else:
                    log.warning("collection failed account=%s region=%s source=logs error=%r",
                                account_id, region, "; ".join(errors))
                results.append(SourceResult(account_id, region, "logs", not errors, outcome.duration_seconds,
                                            self._last_success.get((account_id, region)), "; ".join(errors)))
            self.save()
            with self._state_lock:
                tunnels = {key: state.view() for key, state in self._state.tunnels.items()}
            return LogCollection(tunnels, tuple(groups), tuple(results))

    def save(self) -> None:
        with self._state_lock:
            self._state_file.save(self._state)

    def _ingest_region(self, account: AwsAccount, region: RegionTelemetry, now_ms: int):
        statuses, errors = [], []
        for (group_region, group_name), streams in sorted(discover(region).items()):
            try:
                read_until_ms = self._read_group(account.client("logs", group_region), region.account_id,
                                                 group_region, group_name, streams, now_ms)
            except Exception as err:  # one group's failure (e.g. deleted) must not stop the others
                errors.append(f"{group_name}: {describe_error(err)}")
                cursor = self._state.cursors.get(f"{region.account_id}|{group_region}|{group_name}")
                read_until_ms = cursor.read_until_ms if cursor else None
            if read_until_ms is not None:
                statuses.append(LogGroupStatus(region.account_id, group_region, group_name, read_until_ms / 1000))
        return tuple(statuses), errors

    def _read_group(self, client, account_id: str, region: str, group: str, streams: dict[str, _Stream],
                    now_ms: int) -> int:
        """One paginated pass over a group's known streams; returns how far it has now been read."""
        key = f"{account_id}|{region}|{group}"
        overlap_ms = int(self._config.overlap * 1000)
        with self._state_lock:
            cursor = self._state.cursors.get(key)
            if cursor is None:
                cursor = self._state.cursors[key] = GroupCursor(now_ms - int(self._config.lookback * 1000) + overlap_ms)
        start_ms = cursor.start_ms(overlap_ms)
        names = sorted(streams)
        resume_ms = None  # set when a page budget runs out before the pass is complete
        for offset in range(0, len(names), STREAM_NAMES_PER_CALL):
            request = {"logGroupName": group, "logStreamNames": names[offset:offset + STREAM_NAMES_PER_CALL],
                       "startTime": start_ms, "endTime": now_ms}
            if self._page_size:
                request["limit"] = self._page_size
            newest = start_ms
            for _ in range(self._max_pages):
                response = client.filter_log_events(**request)
                newest = max(newest, self._ingest_page(response.get("events") or (), streams, cursor, account_id,
                                                       region, overlap_ms))
                request["nextToken"] = response.get("nextToken")
                if not request["nextToken"]:
                    break
            else:  # budget spent: resume next poll from the newest event this chunk reached
                resume_ms = newest if resume_ms is None else min(resume_ms, newest)
        with self._state_lock:
            if resume_ms is None:
                cursor.read_until_ms, cursor.resume_ms = max(cursor.read_until_ms, now_ms), None
            else:
                cursor.resume_ms = resume_ms
            # Keep every id a later pass can return again: the next start, and any complete pass's overlap.
            cursor.prune(min(cursor.start_ms(overlap_ms), now_ms - overlap_ms))
        return cursor.read_until_ms if cursor.resume_ms is None else cursor.resume_ms

    def _ingest_page(self, events, streams: dict[str, _Stream], cursor: GroupCursor, account_id: str,
                     region: str, overlap_ms: int) -> int:
        ingested: Counter = Counter()
        errors: Counter = Counter()
        duplicates = newest = 0
        received_at = self._clock()
        with self._state_lock:
            for event in events:
                stream = streams.get(event.get("logStreamName"))
                timestamp = event.get("timestamp")
                if stream is None or not isinstance(timestamp, int):
                    errors[("unknown", "unmatched_event")] += 1
                    continue
                event_id = event.get("eventId") or f"{event.get('logStreamName')}:{timestamp}:{event.get('message')}"
                if event_id in cursor.seen:
                    duplicates += 1
                    continue
                cursor.seen[event_id] = timestamp
                newest = max(newest, timestamp)
                try:
                    parsed = parse(stream.log, stream.output_format, event.get("message"))
                except LogParseError as err:
                    errors[(stream.log, err.reason)] += 1
                    continue
                tunnel = self._state.tunnels.get(stream.tunnel)
                if tunnel is None:
                    tunnel = self._state.tunnels[stream.tunnel] = TunnelLogState()
                tunnel.apply(stream.log, parsed, received_at)
                ingested[stream.log] += 1
            if newest:
                cursor.prune(newest - overlap_ms)  # keeps memory flat while catching up a backlog
        for kind, count in ingested.items():
            self._counters.ingested(account_id, region, kind, count)
        if duplicates:
            self._counters.duplicates(account_id, region, duplicates)
        for (kind, reason), count in errors.items():
            self._counters.parse_errors(kind, reason, count)
        return newest
