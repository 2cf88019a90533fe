"""The rendering of a snapshot into the Prometheus text format, from the metric contract (``contract``).

A snapshot is rendered once
per poll, straight into gzip, so a scrape costs a memory copy, not a walk over every tunnel. The
renderer is a lean one of its own: at 10,000 tunnels (200,000 samples) prometheus-client's objects
cost seconds of GIL and ~100 MB; rows of label tuples that share the model's strings cost little.
The format (escaping, float spelling) follows prometheus-client's, and promtool checks it in the tests.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import logging
import os
import select
import struct
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter

from prometheus_client.utils import floatToGoString

from exporter.diagnosis.findings import FINDINGS
from exporter.exposition.contract import (
    COLLECTION_DURATION,
    COLLECTION_LAST_SUCCESS,
    COLLECTION_SUCCESS,
    CONNECTION_INFO,
    CONNECTION_OPTIONS_INFO,
    CONNECTION_STATIC_ROUTES,
    CUSTOMER_GATEWAY_INFO,
    FINDING_INFO,
    LOG_INGESTION_LAG,
    METRICS,
    POLL_TIMESTAMP,
    TRAFFIC_METRICS_REQUESTED,
    TRAFFIC_MONTHLY_COST,
    TRAFFIC_UNATTRIBUTABLE,
    TUNNEL_ACCEPTED_ROUTES,
    TUNNEL_BGP_LAST_ERROR,
    TUNNEL_BGP_SESSION_STATE,
    TUNNEL_BGP_UP,
    TUNNEL_DPD,
    TUNNEL_DPD_TIMEOUT,
    TUNNEL_FINDING,
    TUNNEL_IKE_LIFETIME,
    TUNNEL_IKE_PHASE_STATE,
    TUNNEL_INFO,
    TUNNEL_IPSEC_UP,
    TUNNEL_LAST_MAINTENANCE,
    TUNNEL_LAST_STATUS_CHANGE,
    TUNNEL_LAST_TRAFFIC,
    TUNNEL_LOG_ENABLED,
    TUNNEL_LOG_EVENTS,
    TUNNEL_LOG_HAS_EVENTS,
    TUNNEL_LOG_LAST_EVENT,
    TUNNEL_MAINTENANCE_AUTO_APPLY,
    TUNNEL_MAINTENANCE_PENDING,
    TUNNEL_NAT_T,
    TUNNEL_NEGOTIATED_INFO,
    TUNNEL_OPTIONS_INFO,
    TUNNEL_PROVISIONING_STATUS,
    TUNNEL_RECEIVED_BYTES,
    TUNNEL_SELECTOR_INFO,
    TUNNEL_SELECTOR_MISMATCH,
    TUNNEL_SENT_BYTES,
    TUNNEL_TRAFFIC_COUNTED_UNTIL,
    TUNNEL_UP,
)
from exporter.model import SelectorCheck, Snapshot, TunnelKey, TunnelLogView
from exporter.sources.logs.parse import BGP_STATES, IKE_STATES

log = logging.getLogger(__name__)
FORK_RENDER_MIN_TUNNELS = 2000  # below this an in-process render is quicker than a fork
FORK_RENDER_TIMEOUT = 120.0
YIELD_EVERY = 200  # connections between yields of the GIL while rendering, so scrapes are served meanwhile


class Family:
    """One metric family: its rows are (label values, value), rendered in the text format 0.0.4."""

    __slots__ = ("name", "kind", "documentation", "labels", "rows")

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = (), kind: str = "gauge"):
        self.name, self.kind, self.documentation, self.labels = name, kind, documentation, tuple(labels)
        self.rows: list[tuple[Sequence[str], float]] = []

    @classmethod
    def of(cls, name: str) -> Family:
        """An empty family as the contract defines it."""
        metric = METRICS[name]
        return cls(name, metric.help_text, metric.labels, metric.kind)

    def add_metric(self, values: Sequence[str], value: float) -> None:
        """Checked here, so a bad value fails inside its tunnel's isolation rather than in ``render``."""
        if len(values) != len(self.labels) or not isinstance("".join(values), str):
            raise ValueError(f"{self.name}: {len(values)} label values for {len(self.labels)} labels")
        self.rows.append((values, float(value)))

    def render(self, dropped: Counter | None = None) -> str:
        """The family's lines; a series whose labels an earlier row already had is left out (Prometheus would
        reject the scrape's samples for it) and counted in ``dropped`` by metric name: the one guard that holds
        whatever a source or a family builder got wrong. Checking costs one C-level set of the label strings."""
        help_text = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
        lines = [f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.kind}\n"]
        names = self.labels
        keys = (
            [
                ",".join(f'{name}="{_escape(v)}"' for name, v in zip(names, values, strict=True))
                for values, _ in self.rows
            ]
            if names
            else [""] * len(self.rows)
        )
        rows: Iterable[tuple[str, float]] = zip(keys, map(itemgetter(1), self.rows), strict=False)
        if len(set(keys)) != len(keys):  # a bug upstream: keep each series' first row
            first: dict[str, float] = {}
            for pairs, value in rows:
                first.setdefault(pairs, value)
            rows = list(first.items())
            if dropped is not None:
                dropped[self.name] += len(keys) - len(rows)
        if names:
            lines.extend(f"{self.name}{{{pairs}}} {floatToGoString(value)}\n" for pairs, value in rows)
        else:
            lines.extend(f"{self.name} {floatToGoString(value)}\n" for _, value in rows)
        return "".join(lines)


class _Isolated:
    """Rows added inside ``with isolated(unit):`` are kept only if the block completes: a value no code path
    expected drops that one tunnel's (or connection's) series and is reported, never the whole publish."""

    __slots__ = ("families", "failed", "unit", "_marks")

    def __init__(self, families: Sequence[Family], failed: list[str]):
        self.families, self.failed = families, failed

    def __call__(self, unit: str) -> _Isolated:
        self.unit = unit
        return self

    def __enter__(self) -> None:
        self._marks = [len(family.rows) for family in self.families]

    def __exit__(self, kind, err, traceback) -> bool:
        if err is None:
            return False
        if not isinstance(err, Exception):
            return False  # KeyboardInterrupt and the like are not a bad value
        for family, mark in zip(self.families, self._marks, strict=False):
            del family.rows[mark:]
        self.failed.append(f"{self.unit} ({type(err).__name__})")
        return True


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


def snapshot_families(snapshot: Snapshot, failed: list[str] | None = None) -> Iterator[Family]:
    """Every metric family that a snapshot determines, built fresh so no stale series survive. A tunnel or
    connection whose values cannot be rendered is left out and named in ``failed``; the rest publish."""
    failed = [] if failed is None else failed
    connection_info = Family.of(CONNECTION_INFO)
    if snapshot.tag_labels:  # the operator's tag allowlist (config connection_tags), after the contract's labels
        connection_info = Family(
            CONNECTION_INFO, connection_info.documentation, connection_info.labels + snapshot.tag_labels
        )
    no_tags = ("",) * len(snapshot.tag_labels)
    tunnel_info = Family.of(TUNNEL_INFO)
    up = Family.of(TUNNEL_UP)
    ipsec = Family.of(TUNNEL_IPSEC_UP)
    bgp = Family.of(TUNNEL_BGP_UP)
    routes = Family.of(TUNNEL_ACCEPTED_ROUTES)
    changed = Family.of(TUNNEL_LAST_STATUS_CHANGE)
    log_enabled = Family.of(TUNNEL_LOG_ENABLED)
    gateways = Family.of(CUSTOMER_GATEWAY_INFO)

    families = (connection_info, tunnel_info, up, ipsec, bgp, routes, changed, log_enabled, gateways)
    isolated = _Isolated(families, failed)
    for count, (region, connection) in enumerate(snapshot.connections()):
        if count % YIELD_EVERY == 0:
            time.sleep(0)  # let the HTTP threads run: this loop is pure Python for a second at 10,000 tunnels
        account, where = region.account_id, region.region
        with isolated(connection.vpn_connection_id):
            connection_info.add_metric(
                [
                    account,
                    where,
                    connection.vpn_connection_id,
                    connection.name,
                    connection.state,
                    connection.routing,
                    connection.gateway_type,
                    connection.gateway_id,
                    connection.customer_gateway_id,
                    "true" if connection.accelerated else "false",
                    *(connection.tags + no_tags)[: len(no_tags)],
                ],
                1.0,
            )  # tags read before a reload changed the list
        for tunnel in connection.tunnels:
            with isolated(f"{connection.vpn_connection_id} {tunnel.outside_ip}"):
                _tunnel_rows([account, where, connection.vpn_connection_id, tunnel.outside_ip], tunnel, *families[1:8])
    for region in snapshot.regions:
        for gateway in region.customer_gateways:
            with isolated(gateway.customer_gateway_id):
                gateways.add_metric(
                    [
                        region.account_id,
                        region.region,
                        gateway.customer_gateway_id,
                        gateway.name,
                        gateway.bgp_asn,
                        gateway.ip_address,
                    ],
                    1.0,
                )
    yield from families
    yield from _configuration_families(snapshot, failed)
    yield from _tunnel_status_families(snapshot, failed)
    yield from _log_families(snapshot, failed)
    yield from _traffic_families(snapshot, failed)
    finding = Family.of(TUNNEL_FINDING)
    isolated = _Isolated((finding,), failed)
    for item in snapshot.findings:
        with isolated(f"{item.vpn_connection_id} {item.tunnel} {item.code}"):
            finding.add_metric(
                [item.account_id, item.region, item.vpn_connection_id, item.tunnel, item.code, item.severity], 1.0
            )
    yield finding
    yield _finding_catalogue()
    yield from _collection_families(snapshot)


def _finding_catalogue() -> Family:
    """The findings catalogue as series, one per code: alert templates join it to a tunnel's active findings
    to put each cause's summary and fix in the page, worded by the exporter that diagnosed it."""
    catalogue = Family.of(FINDING_INFO)
    for spec in FINDINGS.values():
        catalogue.add_metric([spec.code, spec.severity, spec.alert, spec.summary, spec.remedy], 1.0)
    return catalogue


def _tunnel_rows(
    labels: list[str],
    tunnel,
    tunnel_info: Family,
    up: Family,
    ipsec: Family,
    bgp: Family,
    routes: Family,
    changed: Family,
    log_enabled: Family,
) -> None:
    """One tunnel's EC2 series."""
    tunnel_info.add_metric(labels + [tunnel.inside_cidr, tunnel.status.lower(), tunnel.status_message], 1.0)
    if tunnel.status != "UNKNOWN":
        up.add_metric(labels, _flag(tunnel.status == "UP"))
    if tunnel.ipsec_up is not None:
        ipsec.add_metric(labels, _flag(tunnel.ipsec_up))
    if tunnel.bgp_up is not None:
        bgp.add_metric(labels, _flag(tunnel.bgp_up))
    if tunnel.accepted_routes is not None:
        routes.add_metric(labels, float(tunnel.accepted_routes))
    if tunnel.last_status_change is not None:
        changed.add_metric(labels, float(tunnel.last_status_change))
    log_enabled.add_metric(labels + ["ike"], _flag(tunnel.ike_log.enabled))
    log_enabled.add_metric(labels + ["bgp"], _flag(tunnel.bgp_log.enabled))


def _configuration_families(snapshot: Snapshot, failed: list[str]) -> Iterator[Family]:
    """What the tunnels and connections are configured to do (their options, not their state)."""
    options, dpd = Family.of(TUNNEL_OPTIONS_INFO), Family.of(TUNNEL_DPD_TIMEOUT)
    lifetime = Family.of(TUNNEL_IKE_LIFETIME)
    connection_options, static_routes = Family.of(CONNECTION_OPTIONS_INFO), Family.of(CONNECTION_STATIC_ROUTES)
    isolated = _Isolated((options, dpd, lifetime, connection_options, static_routes), failed)
    for count, (region, connection) in enumerate(snapshot.connections()):
        if count % YIELD_EVERY == 0:
            time.sleep(0)
        where = [region.account_id, region.region, connection.vpn_connection_id]
        with isolated(connection.vpn_connection_id):
            connection_options.add_metric(
                where
                + [
                    connection.tunnel_bandwidth,
                    connection.outside_ip_address_type,
                    connection.tunnel_inside_ip_version,
                    connection.gateway_association_state,
                ],
                1.0,
            )
            for state, routes in sorted(Counter(state for _, state in connection.static_routes).items()):
                static_routes.add_metric(where + [state], float(routes))
        for tunnel in connection.tunnels:
            with isolated(f"{connection.vpn_connection_id} {tunnel.outside_ip}"):
                config, labels = tunnel.config, where + [tunnel.outside_ip]
                lifecycle = "" if config.lifecycle_control is None else str(config.lifecycle_control).lower()
                options.add_metric(
                    labels
                    + [
                        config.startup_action,
                        config.dpd_timeout_action,
                        lifecycle,
                        ",".join(config.ike_versions),
                        ",".join(config.phase1_encryption),
                        ",".join(config.phase1_integrity),
                        ",".join(config.phase1_dh_groups),
                        ",".join(config.phase2_encryption),
                        ",".join(config.phase2_integrity),
                        ",".join(config.phase2_dh_groups),
                        config.authentication,
                    ],
                    1.0,
                )
                if config.dpd_timeout_seconds is not None:
                    dpd.add_metric(labels, config.dpd_timeout_seconds)
                for phase, seconds in (("1", config.phase1_lifetime_seconds), ("2", config.phase2_lifetime_seconds)):
                    if seconds is not None:
                        lifetime.add_metric(labels + [phase], seconds)
    yield from (options, dpd, lifetime, connection_options, static_routes)


def _tunnel_status_families(snapshot: Snapshot, failed: list[str]) -> Iterator[Family]:
    """AWS's maintenance and provisioning status of the tunnels, and what they negotiated."""
    pending, auto_apply = Family.of(TUNNEL_MAINTENANCE_PENDING), Family.of(TUNNEL_MAINTENANCE_AUTO_APPLY)
    last, provisioning = Family.of(TUNNEL_LAST_MAINTENANCE), Family.of(TUNNEL_PROVISIONING_STATUS)
    negotiated = Family.of(TUNNEL_NEGOTIATED_INFO)
    isolated = _Isolated((pending, auto_apply, last, provisioning, negotiated), failed)
    live = {key for *_, key in snapshot.tunnels()}
    for key, status in sorted(snapshot.tunnel_status.items(), key=lambda item: item[0].encode()):
        if key not in live:  # the pass's status of a tunnel EC2 does not report now (kept for when it is back)
            continue
        labels = [key.account_id, key.region, key.vpn_connection_id, key.outside_ip]
        with isolated(f"{key.vpn_connection_id} {key.outside_ip}"):
            if status.pending_maintenance is not None:
                pending.add_metric(labels, _flag(status.pending_maintenance))
            if status.maintenance_auto_applied_after is not None:
                auto_apply.add_metric(labels, status.maintenance_auto_applied_after)
            if status.last_maintenance_applied is not None:
                last.add_metric(labels, status.last_maintenance_applied)
            if status.provisioning_status:
                provisioning.add_metric(labels + [status.provisioning_status], 1.0)
            if status.ike_version:
                negotiated.add_metric(
                    labels
                    + [
                        status.ike_version,
                        status.phase1_encryption,
                        status.phase1_integrity,
                        status.phase1_dh_group,
                        status.phase2_encryption,
                        status.phase2_integrity,
                        status.phase2_dh_group,
                    ],
                    1.0,
                )
    yield from (pending, auto_apply, last, provisioning, negotiated)


def _traffic_families(snapshot: Snapshot, failed: list[str]) -> Iterator[Family]:
    """CloudWatch's bytes per tunnel, and what collecting them costs (only while traffic collection is on)."""
    traffic = snapshot.traffic
    if traffic is None:
        return
    received, sent = Family.of(TUNNEL_RECEIVED_BYTES), Family.of(TUNNEL_SENT_BYTES)
    until, last = Family.of(TUNNEL_TRAFFIC_COUNTED_UNTIL), Family.of(TUNNEL_LAST_TRAFFIC)
    isolated = _Isolated((received, sent, until, last), failed)
    for key, tunnel in sorted(traffic.tunnels.items(), key=lambda item: item[0].encode()):
        labels = [key.account_id, key.region, key.vpn_connection_id, key.outside_ip]
        with isolated(f"{key.vpn_connection_id} {key.outside_ip}"):
            received.add_metric(labels, tunnel.received_bytes)
            sent.add_metric(labels, tunnel.sent_bytes)
            until.add_metric(labels, tunnel.counted_until)
            if tunnel.last_traffic is not None:
                last.add_metric(labels, tunnel.last_traffic)
    requested, cost = Family.of(TRAFFIC_METRICS_REQUESTED), Family.of(TRAFFIC_MONTHLY_COST)
    unattributable = Family.of(TRAFFIC_UNATTRIBUTABLE)
    for family, values in (
        (requested, traffic.metrics_requested),
        (cost, traffic.monthly_cost),
        (unattributable, traffic.unattributable),
    ):
        for where, value in sorted(values.items()):
            family.add_metric(list(where), float(value))
    yield from (received, sent, until, last, requested, cost, unattributable)


def _current_state(family: Family, labels: list[str], states: tuple[str, ...], current: str) -> None:
    """One series, for the current state, = 1 (``unknown`` when AWS said something else). A full stateset
    would cost 5-7 series per tunnel and phase; at 10,000 tunnels that is most of the exposition."""
    family.add_metric(labels + [current if current in states else "unknown"], 1.0)


def _log_families(snapshot: Snapshot, failed: list[str]) -> Iterator[Family]:
    """What the tunnels' own logs say, for tunnels in the current EC2 data only."""
    events = Family.of(TUNNEL_LOG_EVENTS)
    mismatch = Family.of(TUNNEL_SELECTOR_MISMATCH)
    selectors = Family.of(TUNNEL_SELECTOR_INFO)
    nat_t = Family.of(TUNNEL_NAT_T)
    dpd = Family.of(TUNNEL_DPD)
    phases = Family.of(TUNNEL_IKE_PHASE_STATE)
    last_event = Family.of(TUNNEL_LOG_LAST_EVENT)
    bgp_state = Family.of(TUNNEL_BGP_SESSION_STATE)
    bgp_error = Family.of(TUNNEL_BGP_LAST_ERROR)
    has_events = Family.of(TUNNEL_LOG_HAS_EVENTS)
    families = (events, mismatch, selectors, nat_t, dpd, phases, last_event, has_events, bgp_state, bgp_error)
    # "No event yet" is only known where the read succeeded: a region whose read failed says nothing.
    read = {(r.account_id, r.region) for r in snapshot.results if r.source == "logs" and r.success}
    isolated = _Isolated(families, failed)
    checks = snapshot.selector_checks
    for count, (region, connection) in enumerate(snapshot.connections()):
        if count % YIELD_EVERY == 0:
            time.sleep(0)
        for tunnel in connection.tunnels:
            key = TunnelKey.of(region, connection, tunnel)
            view: TunnelLogView | None = snapshot.tunnel_logs.get(key)
            labels = [region.account_id, region.region, connection.vpn_connection_id, tunnel.outside_ip]
            with isolated(f"{connection.vpn_connection_id} {tunnel.outside_ip}"):
                logged = dict(view.last_event) if view is not None else {}
                for kind, destination in (("ike", tunnel.ike_log), ("bgp", tunnel.bgp_log)):
                    if destination.enabled and (kind in logged or (region.account_id, region.region) in read):
                        has_events.add_metric(labels + [kind], _flag(kind in logged))
                if view is not None:
                    _tunnel_log_rows(labels, connection, tunnel, view, checks.get(key), *families[:7], *families[8:])
    lag = Family.of(LOG_INGESTION_LAG)
    behind: dict[tuple[str, str, str], float] = {}  # two regions' tunnels may log to one group: its furthest behind
    for group in snapshot.log_groups:
        key = (group.account_id, group.region, group.log_group)
        behind[key] = min(behind.get(key, group.read_until), group.read_until)
    for key, read_until in behind.items():
        lag.add_metric(list(key), max(0.0, snapshot.completed_at - read_until))
    yield from (events, mismatch, selectors, nat_t, dpd, phases, last_event, has_events, bgp_state, bgp_error, lag)


def _tunnel_log_rows(
    labels: list[str],
    connection,
    tunnel,
    view: TunnelLogView,
    check: SelectorCheck | None,
    events: Family,
    mismatch: Family,
    selectors: Family,
    nat_t: Family,
    dpd: Family,
    phases: Family,
    last_event: Family,
    bgp_state: Family,
    bgp_error: Family,
) -> None:
    """One tunnel's series from its logs."""
    for event, count in view.counts:
        events.add_metric(labels + [event], float(count))
    for kind, at in view.last_event:
        last_event.add_metric(labels + [kind], at)
    negotiated = view.fact("selectors")
    if negotiated is not None:
        selectors.add_metric(labels + list(negotiated), 1.0)
        if check is not None:  # made for every tunnel with negotiated selectors (diagnosis.selectors)
            mismatch.add_metric(labels, _flag(check.mismatch))
    for fact, family in (("nat_t", nat_t), ("dpd", dpd)):
        if view.fact(fact) is not None:
            family.add_metric(labels, _flag(view.fact(fact)))
    for phase in ("1", "2"):
        if view.fact(f"phase{phase}") is not None:
            _current_state(phases, labels + [phase], IKE_STATES, view.fact(f"phase{phase}"))
    if view.fact("bgp_state") is not None:
        _current_state(bgp_state, labels, BGP_STATES, view.fact("bgp_state"))
    if view.fact("bgp_error") is not None:
        bgp_error.add_metric(labels + [view.fact("bgp_error")], view.fact_time("bgp_error"))


def _collection_families(snapshot: Snapshot) -> Iterator[Family]:
    success = Family.of(COLLECTION_SUCCESS)
    duration = Family.of(COLLECTION_DURATION)
    last_success = Family.of(COLLECTION_LAST_SUCCESS)
    for result in snapshot.results:
        labels = [result.account_id, result.region, result.source]
        success.add_metric(labels, _flag(result.success))
        duration.add_metric(labels, result.duration_seconds)
        if result.last_success_timestamp is not None:
            last_success.add_metric(labels, result.last_success_timestamp)
    poll = Family.of(POLL_TIMESTAMP)
    poll.add_metric((), snapshot.completed_at)
    yield from (success, duration, last_success, poll)


@contextlib.contextmanager
def paused_cyclic_gc():
    """Building and rendering a snapshot allocates millions of acyclic objects: a cyclic GC pass in the
    middle would walk them all while holding the GIL, stalling every scrape. Reference counting frees them."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _each_name_once(families: Iterable[Family], dropped: Counter | None) -> Iterator[Family]:
    """The families, but a name seen before is left out with its rows (counted): a second TYPE line would make
    Prometheus reject the whole scrape."""
    names = set()
    for family in families:
        if family.name in names:
            if dropped is not None:
                dropped[family.name] += len(family.rows)
            continue
        names.add(family.name)
        yield family


def render_families(families: Iterable[Family], dropped: Counter | None = None) -> bytes:
    """The text exposition of some metric families (duplicate series dropped and counted in ``dropped``)."""
    return "".join(family.render(dropped) for family in _each_name_once(families, dropped)).encode("utf-8")


def render_gzip(families: Iterable[Family], dropped: Counter | None = None) -> bytes:
    """The gzipped exposition, family by family: the whole plain text never exists at once. Duplicate series
    are dropped and counted in ``dropped``."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    chunks = []
    for family in _each_name_once(families, dropped):
        chunks.append(compressor.compress(family.render(dropped).encode("utf-8")))
        time.sleep(0)  # between families, let the HTTP threads run
    chunks.append(compressor.flush())
    return b"".join(chunks)


@dataclass(frozen=True)
class RenderedSnapshot:
    """A snapshot and its pre-rendered exposition, swapped in as one object.

    Only the gzipped exposition is kept (Prometheus always asks for gzip): at 10,000 tunnels the plain
    text is ~35 MB, the gzip ~1 MB. A client without gzip gets it decompressed on demand.
    """

    snapshot: Snapshot
    body_gzip: bytes
    failed: tuple[str, ...] = ()  # tunnels, connections or findings left out: their values could not be rendered
    duplicates: tuple[tuple[str, int], ...] = ()  # (metric, series dropped because the exposition had them twice)

    @property
    def body(self) -> bytes:
        return gzip.decompress(self.body_gzip)

    @classmethod
    def of(cls, snapshot: Snapshot, isolate: bool | None = None) -> RenderedSnapshot:
        """Render a snapshot. Large ones (``isolate``: by default from FORK_RENDER_MIN_TUNNELS) are
        rendered in a forked child, so the CPU-bound render never holds the GIL that scrapes need."""
        if isolate is None:
            isolate = (
                hasattr(os, "fork")
                and sum(len(c.tunnels) for _, c in snapshot.connections()) >= FORK_RENDER_MIN_TUNNELS
            )
        rendered = _render_in_child(snapshot) if isolate else None
        if rendered is None:
            failed: list[str] = []
            dropped: Counter = Counter()
            with paused_cyclic_gc():
                rendered = render_gzip(snapshot_families(snapshot, failed), dropped), failed, dropped
        body, failed, dropped = rendered
        return cls(snapshot, body, tuple(failed), tuple(sorted(dropped.items())))


def _render_in_child(snapshot: Snapshot) -> tuple[bytes, list[str], Counter] | None:
    """Render in a forked child that writes the gzip body to a pipe, then what it left out and the duplicate
    series it dropped (JSON) and that trailer's length (4 bytes); None (render here) on any failure.

    The child only computes: no logging, no locks, no threads; it leaves with os._exit. The parent
    waits on the pipe, which releases the GIL, so its HTTP threads serve scrapes meanwhile."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        status = 1
        try:
            os.close(read_end)
            os.nice(10)  # the render is background work: scrapes in the parent come first
            gc.disable()
            failed: list[str] = []
            dropped: Counter = Counter()
            body = render_gzip(snapshot_families(snapshot, failed), dropped)
            trailer = json.dumps([failed, dropped]).encode()
            with os.fdopen(write_end, "wb") as out:
                out.write(body + trailer + struct.pack("!I", len(trailer)))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + FORK_RENDER_TIMEOUT
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
                os.kill(pid, 9)
                log.warning("render child timed out after %.0fs; rendering in process", FORK_RENDER_TIMEOUT)
                return None
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    if status != 0:
        log.warning("render child failed status=%d; rendering in process", status)
        return None
    output = b"".join(chunks)
    (trailer_length,) = struct.unpack("!I", output[-4:])
    failed, dropped = json.loads(output[-4 - trailer_length : -4])
    return output[: -4 - trailer_length], failed, Counter(dropped)
