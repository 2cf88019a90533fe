"""Incremental reading of the tunnels' IKE and BGP logs from CloudWatch Logs.

Log groups come from each tunnel's own LogOptions; nothing is configured by hand. Per log group and
poll: one paginated ``FilterLogEvents`` pass over the **whole group**, from the last read minus an
overlap window (CloudWatch delivers late and out of order), with duplicates dropped by event id.

Streams are never named. AWS fails a whole ``FilterLogEvents`` when any named stream is missing, and a
stream exists only after a tunnel's first event; AWS also does not document the stream names beyond
"they use VpnConnectionID and TunnelOutsideIPAddress". So each event is attributed by what it carries:
its ``logStreamName`` names a tunnel when it holds both the connection id and the outside IP, and a BGP
event's ``resource_id`` (``vpn-id_outside-ip``) names its tunnel whatever the stream is called. Whether an
event is IKE or BGP follows from the tunnel's log options, then the stream name, then the event's shape.
One call per group and page costs the same at 10 or 10,000 tunnels (docs/logs.md has the table). Events no
tunnel claims are counted, not failed. Cursors, dedup ids and per-tunnel counts are saved together.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial

from exporter.config import LogsConfig
from exporter.durable import forget_unseen
from exporter.model import LogCollection, LogGroupStatus, RegionTelemetry, SourceResult, TunnelKey
from exporter.sources.aws import AwsAccount, describe_error
from exporter.sources.isolation import Outcome, run_isolated
from exporter.sources.logs.parse import LogParseError, log_kind_of, parse
from exporter.sources.logs.state import GroupCursor, StateFile, TunnelLogState
from exporter.sources.source import BusyRegions, Results

log = logging.getLogger(__name__)

LOG_KINDS = ("ike", "bgp")
_CONNECTION_ID = re.compile(r"vpn-[0-9a-f]+")
_RESOURCE_ID = re.compile(r"(vpn-[0-9a-f]+)_([0-9A-Fa-f.:]+)")  # a BGP event's resource_id


@dataclass(frozen=True, slots=True)
class TunnelLogs:
    """One tunnel's logs that go to one log group: which kinds (ike, bgp) and in what output format."""

    key: TunnelKey
    formats: tuple[tuple[str, str], ...]  # (log kind, output format)

    def output_format(self, kind: str) -> str | None:
        return next((fmt for k, fmt in self.formats if k == kind), None)


@dataclass
class GroupPlan:
    """The tunnels that log to one group, and which tunnel (and log) each stream or event belongs to."""

    tunnels: dict[tuple[str, str], TunnelLogs] = field(default_factory=dict)  # (connection id, outside ip)
    _by_connection: dict[str, list[str]] = field(default_factory=dict)  # connection id -> outside IPs
    _streams: dict[str, tuple[TunnelLogs | None, str | None]] = field(default_factory=dict)  # cache
    addresses: AddressPatterns = field(default_factory=lambda: AddressPatterns())

    def add(self, key: TunnelKey, kind: str, output_format: str) -> None:
        where = (key.vpn_connection_id, key.outside_ip)
        known = self.tunnels.get(where)
        formats = (known.formats if known else ()) + ((kind, output_format),)
        self.tunnels[where] = TunnelLogs(key, formats)
        if known is None:
            self._by_connection.setdefault(key.vpn_connection_id, []).append(key.outside_ip)

    def stream(self, name: str) -> tuple[TunnelLogs | None, str | None]:
        """(tunnel, log kind) of a stream; the kind is None when only each event's shape can tell."""
        if name not in self._streams:
            self._streams[name] = self._attribute_stream(name)
        return self._streams[name]

    def _attribute_stream(self, name: str) -> tuple[TunnelLogs | None, str | None]:
        connection_ids = _CONNECTION_ID.findall(name)
        rest = _CONNECTION_ID.sub(" ", name)  # so an id's last digit never reads as part of an address
        for connection_id in connection_ids:
            for outside_ip in self._by_connection.get(connection_id, ()):
                if self.addresses.contains(rest, outside_ip):
                    tunnel = self.tunnels[(connection_id, outside_ip)]
                    return tunnel, _stream_kind(tunnel, name)
        return None, None

    def by_resource_id(self, message: str) -> TunnelLogs | None:
        """The tunnel a BGP event names in its ``resource_id`` (``vpn-1234abcd_1.2.3.4``)."""
        for match in _RESOURCE_ID.finditer(message):
            tunnel = self.tunnels.get((match.group(1), match.group(2).rstrip(".:")))
            if tunnel is not None:
                return tunnel
        return None


def _address_spellings(address: str) -> tuple[str, ...]:
    """How an outside IP may be written in a stream name. CloudWatch forbids ":" in stream names, so an
    IPv6 address can only appear with its colons replaced; AWS does not say by what, so accept them all."""
    if ":" not in address:
        return (address,)
    try:
        forms = {address, ipaddress.ip_address(address).compressed, ipaddress.ip_address(address).exploded}
    except ValueError:
        forms = {address}
    return tuple(form.replace(":", separator) for form in sorted(forms) for separator in (":", "-", "_", "."))


class AddressPatterns:
    """Whole-address patterns per outside IP, compiled once per IP rather than once per stream and poll, and
    kept only for the IPs of tunnels that still exist (``retain``): under connection churn a cache keyed by
    every IP ever seen grew the exporter by about 0.8 MiB per 400 deleted tunnels."""

    def __init__(self):
        self._compiled: dict[str, tuple[re.Pattern, ...]] = {}
        self._lock = threading.Lock()

    def contains(self, name: str, address: str) -> bool:
        """``address`` appears in ``name`` as a whole address: 10.0.0.1 is in ``x-10.0.0.1.BGP`` but not in
        ``x-10.0.0.12``; an IPv6 address is not followed by another hex group (``2001-db8--1-BGP`` holds
        2001:db8::1, ``2001-db8--1-a`` does not)."""
        patterns = self._compiled.get(address)
        if patterns is None:
            patterns = _compile_address_patterns(address)
            with self._lock:
                self._compiled[address] = patterns
        return any(pattern.search(name) for pattern in patterns)

    def retain(self, addresses: set[str]) -> None:
        with self._lock:
            self._compiled = {address: p for address, p in self._compiled.items() if address in addresses}


def _compile_address_patterns(address: str) -> tuple[re.Pattern, ...]:
    if ":" in address:
        pattern = r"(?<![0-9a-f])(?<![0-9a-f][.:_-]){}(?![0-9a-f])(?![.:_-][0-9a-f]{{1,4}}(?![0-9a-z]))"
    else:
        pattern = r"(?<![0-9])(?<![0-9][.:]){}(?![.:]?[0-9])"
    return tuple(re.compile(pattern.format(re.escape(form)), re.IGNORECASE) for form in _address_spellings(address))


def _stream_kind(tunnel: TunnelLogs, name: str) -> str | None:
    """IKE or BGP: the only kind this tunnel sends to the group, else what the stream name says."""
    if len(tunnel.formats) == 1:
        return tunnel.formats[0][0]
    lower = name.lower()
    says = [kind for kind in LOG_KINDS if kind in lower]
    return says[0] if len(says) == 1 else None


class IngestCounters:
    """Callbacks into the live metrics; counted per page, not per event."""

    def __init__(
        self,
        ingested: Callable[[str, str, str, int], None] = lambda *a: None,
        duplicates: Callable[[str, str, int], None] = lambda *a: None,
        parse_errors: Callable[[str, str, int], None] = lambda *a: None,
        unattributed: Callable[[str, str, int], None] = lambda *a: None,
        future_dated: Callable[[str, str, int], None] = lambda *a: None,
    ):
        self.ingested, self.duplicates, self.parse_errors = ingested, duplicates, parse_errors
        self.unattributed, self.future_dated = unattributed, future_dated


def parse_log_group_arn(arn: str) -> tuple[str, str] | None:
    """``arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]`` to (region, name)."""
    parts = arn.split(":", 6)
    if len(parts) < 7 or parts[2] != "logs" or parts[5] != "log-group":
        return None
    name = parts[6].removesuffix(":*")
    return (parts[3], name) if name else None


def discover(region: RegionTelemetry, addresses: AddressPatterns | None = None) -> dict[tuple[str, str], GroupPlan]:
    """The log groups (region, name) of a region's tunnels, each with the tunnels that log to it."""
    addresses = addresses or AddressPatterns()
    groups: dict[tuple[str, str], GroupPlan] = {}
    for connection in region.connections:
        for tunnel in connection.tunnels:
            key = TunnelKey.of(region, connection, tunnel)
            for kind, destination in (("ike", tunnel.ike_log), ("bgp", tunnel.bgp_log)):
                group = parse_log_group_arn(destination.log_group_arn) if destination.enabled else None
                if group is not None:
                    groups.setdefault(group, GroupPlan(addresses=addresses)).add(key, kind, destination.output_format)
    return groups


class LogIngestor:
    """Reads new log events for every tunnel that has logging on, and keeps what they say."""

    def __init__(
        self,
        config: LogsConfig,
        state_file: StateFile,
        executor: Executor,
        poll_timeout: float,
        counters: IngestCounters | None = None,
        clock: Callable[[], float] = time.time,
        max_pages_per_group: int = 200,
        page_size: int | None = None,
    ):
        self._config = config
        self._state_file = state_file
        self._state = state_file.load(clock())
        self._executor = executor
        self._poll_timeout = poll_timeout
        self._counters = counters or IngestCounters()
        self._clock = clock
        self._max_pages = max_pages_per_group
        self._page_size = page_size  # None: the API's default (up to 10,000 events or 1 MB)
        self._state_lock = threading.Lock()  # guards self._state between page updates and saving
        self._poll_lock = threading.Lock()
        self._results = Results("logs", clock)
        # One reader per account and region, however long it runs: a read that outlives its poll keeps
        # going in the background, and the next polls leave that region alone until it is done.
        self._busy = BusyRegions("read")
        self._addresses = AddressPatterns()
        self._closed = False  # after close(): the final state is saved; nothing may overwrite it

    @property
    def state_writable(self) -> bool:
        return self._state_file.document.saved

    def poll(self, regions: tuple[RegionTelemetry, ...], accounts: dict[str, AwsAccount]) -> LogCollection:
        """Read every region's log groups once, save the state, and return what is now known."""
        with self._poll_lock:
            now = self._clock()
            jobs, outcomes = {}, {}
            for region in regions:
                key, account = (region.account_id, region.region), accounts.get(region.account_id)
                if account is None:
                    continue
                still = self._busy.start(key)
                if still is not None:
                    outcomes[key] = Outcome(False, still, self._busy.running_for(key))
                    continue
                jobs[key] = partial(self._read_region, key, account, region, int(now * 1000))
            outcomes.update(run_isolated(self._executor, jobs, self._poll_timeout))
            results: list[SourceResult] = []
            groups: list[LogGroupStatus] = []
            for where, outcome in sorted(outcomes.items()):
                region_groups, errors = outcome.value if outcome.ok else ((), [outcome.value])
                groups.extend(region_groups)
                results.append(self._results.result(where, not errors, outcome.duration_seconds, "; ".join(errors)))
            self._forget_gone(regions, now)
            self.save()
            with self._state_lock:
                tunnels = {key: state.view() for key, state in self._state.tunnels.items()}
            return LogCollection(tunnels, tuple(groups), tuple(results))

    def _forget_gone(self, regions: tuple[RegionTelemetry, ...], now: float) -> None:
        """Drop the state of tunnels EC2 has not reported, and of groups not read, for ``logs.retention``
        (deleted connections, removed targets): the state file and memory stay bounded under churn. A
        region whose EC2 poll fails keeps its last data, so its tunnels are not forgotten meanwhile."""
        present = {
            TunnelKey.of(region, connection, tunnel)
            for region in regions
            for connection in region.connections
            for tunnel in connection.tunnels
        }
        self._addresses.retain({key.outside_ip for key in present})
        cutoff = now - self._config.retention
        with self._state_lock:
            forget_unseen(self._state.tunnels, present, now, self._config.retention)
            for group in [group for group, cursor in self._state.cursors.items() if cursor.used_at < cutoff]:
                del self._state.cursors[group]

    def reconfigure(self, config: LogsConfig, poll_timeout: float) -> None:
        """New lookback, overlap, interval and retention (a config reload); cursors and counts are kept.
        No lock: a poll in progress finishes with the settings it started with."""
        self._config, self._poll_timeout = config, poll_timeout

    def save(self) -> bool:
        """Write the state; False (and ``state_writable`` False) when the disk refuses, logged on change."""
        with self._state_lock:
            if self._closed:
                return self.state_writable
            failing = not self.state_writable
            try:
                self._state_file.save(self._state)
            except OSError as err:
                if failing is False:
                    log.error(
                        "cannot write state file path=%s error=%r; log counts will not survive a restart until it can",
                        self._state_file.path,
                        err.strerror or str(err),
                    )
                return False
            if failing:
                log.info("state file writable again path=%s", self._state_file.path)
            return True

    def close(self) -> bool:
        """Save the state one last time (shutdown); reads still running in the background never save again."""
        saved = self.save()
        with self._state_lock:
            self._closed = True
        return saved

    def _read_region(self, key: tuple[str, str], account: AwsAccount, region: RegionTelemetry, now_ms: int):
        try:
            return self._ingest_region(account, region, now_ms)
        finally:
            self._busy.finish(key)

    def _ingest_region(self, account: AwsAccount, region: RegionTelemetry, now_ms: int):
        statuses: list[LogGroupStatus] = []
        failed: dict[str, list[str]] = {}  # a description -> the groups that failed so (said once, with what to do)
        for (group_region, group_name), plan in sorted(discover(region, self._addresses).items()):
            try:
                read_until_ms: int | None = self._read_group(
                    account.client("logs", group_region), region.account_id, group_region, group_name, plan, now_ms
                )
            except Exception as err:  # one group's failure (e.g. deleted) must not stop the others
                failed.setdefault(describe_error(err), []).append(group_name)
                cursor = self._state.cursors.get(f"{region.account_id}|{group_region}|{group_name}")
                read_until_ms = cursor.read_until_ms if cursor else None
            if read_until_ms is not None:
                statuses.append(LogGroupStatus(region.account_id, group_region, group_name, read_until_ms / 1000))
        return tuple(statuses), [f"{', '.join(groups)}: {error}" for error, groups in failed.items()]

    def _read_group(self, client, account_id: str, region: str, group: str, plan: GroupPlan, now_ms: int) -> int:
        """One paginated pass over a whole group; returns how far it has now been read."""
        key = f"{account_id}|{region}|{group}"
        overlap_ms = int(self._config.overlap * 1000)
        with self._state_lock:
            cursor = self._state.cursors.get(key)
            if cursor is None:
                cursor = self._state.cursors[key] = GroupCursor(now_ms - int(self._config.lookback * 1000) + overlap_ms)
            cursor.used_at = now_ms / 1000
        start_ms = newest = cursor.start_ms(overlap_ms)
        request = {"logGroupName": group, "startTime": start_ms, "endTime": now_ms}
        if self._page_size:
            request["limit"] = self._page_size
        complete = False
        for _ in range(self._max_pages):
            response = client.filter_log_events(**request)
            newest = self._ingest_page(
                response.get("events") or (), plan, cursor, account_id, region, overlap_ms, newest
            )
            request["nextToken"] = response.get("nextToken")
            if not request["nextToken"]:
                complete = True
                break
        with self._state_lock:
            if complete:
                cursor.read_until_ms, cursor.resume_ms = max(cursor.read_until_ms, now_ms), None
            # else: budget spent; the pages left resume_ms at the newest event read
            # Keep every id a later pass can return again: the next start, and any complete pass's overlap.
            cursor.prune(min(cursor.start_ms(overlap_ms), now_ms - overlap_ms))
        return cursor.read_until_ms if cursor.resume_ms is None else cursor.resume_ms

    def _ingest_page(
        self, events, plan: GroupPlan, cursor: GroupCursor, account_id: str, region: str, overlap_ms: int, newest: int
    ) -> int:
        """Apply one page and move the cursor past it, atomically: a save between pages (a poll's end, a
        shutdown) always holds counts and a cursor that agree, so a restart neither loses nor recounts.
        Returns the newest event time of the pass so far (``newest`` on entry)."""
        ingested: Counter = Counter()
        errors: Counter = Counter()
        duplicates = unattributed = future_dated = 0
        with self._state_lock:
            for event in events:
                timestamp = event.get("timestamp") if isinstance(event, dict) else None
                if not isinstance(timestamp, int):
                    errors[("unknown", "unmatched_event")] += 1
                    continue
                newest = max(newest, timestamp)  # duplicates too: a pass of only re-reads still moves on
                message = event.get("message")
                event_id = event.get("eventId") or f"{event.get('logStreamName')}:{timestamp}:{message}"
                if event_id in cursor.seen:
                    duplicates += 1
                    continue
                tunnel, kind = plan.stream(str(event.get("logStreamName") or ""))
                if tunnel is None and isinstance(message, str):
                    tunnel, kind = plan.by_resource_id(message), "bgp"
                if tunnel is not None and kind is None:
                    kind = log_kind_of(message)
                output_format = tunnel.output_format(kind) if tunnel is not None and kind is not None else None
                if tunnel is None or kind is None or output_format is None:  # no tunnel watched here claims it
                    # (another shard's, a deleted one's)
                    # Not remembered (a shared, busy group would fill the state file); counted once by
                    # counting only what lies beyond the last complete read, so the overlap is not recounted.
                    if timestamp > cursor.read_until_ms:
                        unattributed += 1
                    continue
                cursor.seen[event_id] = timestamp
                try:
                    parsed = parse(kind, output_format, message)
                except LogParseError as err:
                    errors[(kind, err.reason)] += 1
                    continue
                state = self._state.tunnels.get(tunnel.key)
                if state is None:
                    state = self._state.tunnels[tunnel.key] = TunnelLogState(seen_at=timestamp / 1000)
                if not state.apply(kind, parsed, timestamp / 1000):
                    future_dated += 1
                ingested[kind] += 1
            # Every event before ``newest`` has been read (AWS interleaves by time): resume there if cut short.
            cursor.resume_ms = newest
            cursor.prune(newest - overlap_ms)  # keeps memory flat while catching up a backlog
        for kind, count in ingested.items():
            self._counters.ingested(account_id, region, kind, count)
        if duplicates:
            self._counters.duplicates(account_id, region, duplicates)
        if unattributed:
            self._counters.unattributed(account_id, region, unattributed)
        if future_dated:
            self._counters.future_dated(account_id, region, future_dated)
        for (kind, reason), count in errors.items():
            self._counters.parse_errors(kind, reason, count)
        return newest
