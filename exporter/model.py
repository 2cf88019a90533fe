"""Immutable records of what the sources saw, what the diagnosis made of it, and what is published.
Built once per poll, then only read.

The pipeline reads observation -> diagnosis -> publication: the sources' outputs make an ``Observation``, the
diagnosis adds its selector checks and findings to make a ``Snapshot``, and the exposition renders that. This
module is the lowest layer: it imports nothing of the project (tests/test_layers.py keeps it so).

Nothing here can hold a secret: the reader in ``sources/ec2/telemetry.py`` copies only whitelisted fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class TunnelKey:
    """One tunnel, wherever it is: the key of every per-tunnel record (logs, status, traffic, checks)."""

    account_id: str
    region: str
    vpn_connection_id: str
    outside_ip: str

    @classmethod
    def of(cls, region: RegionTelemetry, connection: Connection, tunnel: Tunnel) -> TunnelKey:
        return cls(region.account_id, region.region, connection.vpn_connection_id, tunnel.outside_ip)

    def encode(self) -> str:
        return "|".join((self.account_id, self.region, self.vpn_connection_id, self.outside_ip))

    @classmethod
    def decode(cls, text: str) -> TunnelKey:
        account_id, region, vpn_connection_id, outside_ip = text.split("|")
        return cls(account_id, region, vpn_connection_id, outside_ip)

    @property
    def labels(self) -> list[str]:
        """The tunnel's label values, in the contract's ``TUNNEL_LABELS`` order."""
        return [self.account_id, self.region, self.vpn_connection_id, self.outside_ip]


@dataclass(frozen=True, slots=True)
class LogDestination:
    """Where one of a tunnel's log streams goes (IKE activity or BGP), from its LogOptions."""

    enabled: bool
    log_group_arn: str = ""
    output_format: str = ""  # json | text | "" when unset


@dataclass(frozen=True, slots=True)
class TunnelConfig:
    """A tunnel's non-secret options as DescribeVpnConnections reports them ("", () or None where AWS omits
    one). Algorithm lists hold AWS's names, sorted; a value outside AWS's documented set reads ``other``."""

    startup_action: str = ""  # add | start
    dpd_timeout_action: str = ""  # clear | none | restart
    dpd_timeout_seconds: float | None = None
    lifecycle_control: bool | None = None  # EnableTunnelLifecycleControl
    ike_versions: tuple[str, ...] = ()  # ikev1, ikev2
    phase1_encryption: tuple[str, ...] = ()
    phase2_encryption: tuple[str, ...] = ()
    phase1_integrity: tuple[str, ...] = ()
    phase2_integrity: tuple[str, ...] = ()
    phase1_dh_groups: tuple[str, ...] = ()  # group numbers, as text, in numeric order
    phase2_dh_groups: tuple[str, ...] = ()
    phase1_lifetime_seconds: float | None = None
    phase2_lifetime_seconds: float | None = None
    authentication: str = "psk"  # psk | certificate (VgwTelemetry CertificateArn)


@dataclass(frozen=True, slots=True)
class Tunnel:
    outside_ip: str
    status: str  # "UP" | "DOWN" | "UNKNOWN" (missing telemetry or an unrecognised value)
    status_message: str  # classified: ipsec_up | ipsec_down | bgp_routes | empty | other | missing
    accepted_routes: int | None
    last_status_change: float | None  # epoch seconds
    ipsec_up: bool | None  # None when the status is unknown
    bgp_up: bool | None  # None for static (or unknown) routing
    inside_cidr: str = ""
    ike_log: LogDestination = LogDestination(False)
    bgp_log: LogDestination = LogDestination(False)
    config: TunnelConfig = TunnelConfig()


@dataclass(frozen=True, slots=True)
class Connection:
    vpn_connection_id: str
    name: str
    state: str
    routing: str  # dynamic | static | unknown
    gateway_type: str  # vgw | tgw | cloudwan | none
    gateway_id: str
    customer_gateway_id: str
    accelerated: bool
    local_ipv4_network_cidr: str = ""
    remote_ipv4_network_cidr: str = ""
    tunnels: tuple[Tunnel, ...] = ()
    tunnel_bandwidth: str = ""  # standard | large
    outside_ip_address_type: str = ""  # PublicIpv4 | PrivateIpv4 | Ipv6
    tunnel_inside_ip_version: str = ""  # ipv4 | ipv6
    gateway_association_state: str = ""  # associated | not-associated | associating | disassociating
    static_routes: tuple[tuple[str, str], ...] = ()  # (destination CIDR, state), as AWS lists them
    tags: tuple[str, ...] = ()  # the values of the configured connection_tags, in their order ("" if absent)


@dataclass(frozen=True, slots=True)
class CustomerGateway:
    customer_gateway_id: str
    bgp_asn: str
    ip_address: str
    name: str


@dataclass(frozen=True, slots=True)
class SourceResult:
    """The outcome of collecting one source (ec2 or logs) for one account and region."""

    account_id: str
    region: str
    source: str
    success: bool
    duration_seconds: float
    last_success_timestamp: float | None  # when this source last succeeded; stale data keeps its age
    error: str = ""


@dataclass(frozen=True, slots=True)
class RegionTelemetry:
    """Everything EC2 said about one account and region, kept whole for reuse on a failed poll."""

    account_id: str
    region: str
    connections: tuple[Connection, ...] = ()
    customer_gateways: tuple[CustomerGateway, ...] = ()

    def customer_gateways_by_id(self) -> dict[str, CustomerGateway]:
        """The region's customer gateways, for joining on ``Connection.customer_gateway_id``."""
        return {gateway.customer_gateway_id: gateway for gateway in self.customer_gateways}


@dataclass(frozen=True, slots=True)
class TunnelLogView:
    """What a tunnel's own logs (IKE, BGP) have shown: an immutable copy of its log state."""

    counts: tuple[tuple[str, int], ...] = ()
    last_event: tuple[tuple[str, float], ...] = ()  # (log, epoch seconds)
    facts: tuple[tuple[str, Any, float], ...] = ()  # (fact, value, observed at)

    def fact(self, name: str) -> Any:
        return next((value for fact, value, _ in self.facts if fact == name), None)

    def fact_time(self, name: str) -> float | None:
        return next((at for fact, _, at in self.facts if fact == name), None)


@dataclass(frozen=True, slots=True)
class LogGroupStatus:
    """How far a log group has been read, for its ingestion lag."""

    account_id: str
    region: str
    log_group: str
    read_until: float  # epoch seconds: every event before this has been read (bar late delivery)


@dataclass(frozen=True)
class LogCollection:
    """What a log read saw: the tunnels' views, the groups' progress, and how each region's read went."""

    tunnels: Mapping[TunnelKey, TunnelLogView]
    groups: tuple[LogGroupStatus, ...]
    results: tuple[SourceResult, ...]

    def observed(self) -> dict[str, Any]:
        """The Observation fields it fills."""
        return {"tunnel_logs": self.tunnels, "log_groups": self.groups}


@dataclass(frozen=True, slots=True)
class TunnelStatus:
    """AWS's maintenance and provisioning status of one tunnel, and what it negotiated (GetVpnTunnelReplacementStatus
    and DescribeVpnConnections' tunnel details)."""

    checked_at: float
    pending_maintenance: bool | None = None  # see sources/ec2/tunnel_status.maintenance_pending; None: AWS said nothing
    maintenance_auto_applied_after: float | None = None
    last_maintenance_applied: float | None = None
    provisioning_status: str = ""  # available | pending | failed | other | "" (not reported)
    provisioning_reason: str = ""
    pending_since: float | None = None  # when this exporter first saw provisioning pending
    ike_version: str = ""
    phase1_encryption: str = ""
    phase2_encryption: str = ""
    phase1_integrity: str = ""
    phase2_integrity: str = ""
    phase1_dh_group: str = ""
    phase2_dh_group: str = ""


@dataclass(frozen=True)
class TunnelStatusCollection:
    """What a status pass saw: the tunnels' statuses (kept for tunnels EC2 may not report now)."""

    statuses: Mapping[TunnelKey, TunnelStatus] = field(default_factory=dict)
    results: tuple[SourceResult, ...] = ()
    unrecognized: Mapping[str, int] = field(default_factory=dict)  # values read since the last poll, by field

    def observed(self) -> dict[str, Any]:
        return {"tunnel_status": self.statuses}


@dataclass(frozen=True, slots=True)
class TunnelTraffic:
    """What CloudWatch said of one tunnel's bytes, as of the latest pass."""

    received_bytes: float  # TunnelDataIn counted since the tunnel was first seen (from a window before)
    sent_bytes: float  # TunnelDataOut likewise
    counted_until: float  # the end of the newest period read (CloudWatch's data lags by ``delay``)
    observed_since: float  # the oldest data point seen: how far back "no bytes" is known
    last_received: float | None = None  # the newest period's end with bytes in; None: none since observed_since
    last_sent: float | None = None
    received_data_until: float | None = None  # the end of the newest period CloudWatch had a TunnelDataIn point for
    last_traffic: float | None = None  # the newest period's end with more than keepalives either way


@dataclass(frozen=True)
class TrafficCollection:
    """What a traffic pass saw, what it cost, and the findings' thresholds it was read with (from the config)."""

    silent_after: float
    idle_after: float
    tunnels: Mapping[TunnelKey, TunnelTraffic] = field(default_factory=dict)
    results: tuple[SourceResult, ...] = ()
    metrics_requested: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (account, region): billed
    monthly_cost: Mapping[tuple[str, str], float] = field(default_factory=dict)  # USD per 30 days at this size
    unattributable: Mapping[tuple[str, str], int] = field(default_factory=dict)  # tunnels sharing an outside IP

    def observed(self) -> dict[str, Any]:
        return {"traffic": self}


@dataclass(frozen=True)
class SelectorCheck:
    """Whether a tunnel's negotiated traffic selectors fit its connection, and why not."""

    mismatch: bool
    reasons: tuple[str, ...]  # aws_side_differs | cgw_side_differs | inside_cidr_not_covered | unreadable


@dataclass(frozen=True)
class Finding:
    """One diagnosed cause on a tunnel or a connection, with its evidence (codes: diagnosis/findings.py)."""

    account_id: str
    region: str
    vpn_connection_id: str
    tunnel: str  # "" for a connection-level finding
    code: str
    evidence: tuple[str, ...]
    severity: str


@dataclass(frozen=True, slots=True)
class HistoryDay:
    """One UTC day of a connection's history, as the exporter itself counted it (sources/history): what the
    status page's 30-day strip and ``diagnose`` show, without Prometheus."""

    day: str  # "2026-12-04" (UTC)
    observed_seconds: float  # how much of the day the exporter covered (0: no data that day)
    unavailable_seconds: float  # no tunnel up (the SLA's unavailability)
    unredundant_seconds: float  # some tunnel down while another was up (no redundancy)
    flaps: int  # state changes of its tunnels that day


ConnectionRef = tuple[str, str, str]  # (account id, region, VPN connection id)


@dataclass(frozen=True, slots=True)
class TunnelHistory:
    """One tunnel's exact counters (sources/history), kept across restarts: state changes, and seconds DOWN and
    IPsec-up-BGP-down by cause, integrated from AWS's LastStatusChange edges."""

    state_changes: int
    down_seconds: tuple[tuple[str, float], ...]  # (cause, seconds): maintenance, other
    bgp_down_seconds: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class ConnectionHistory:
    """One connection's exact counters (sources/history): the SLA's numerator and denominator, and redundancy."""

    unavailable_seconds: tuple[tuple[str, float], ...]  # (cause, seconds): no tunnel UP
    unredundant_seconds: float  # some tunnel DOWN while another was UP
    observed_seconds: float  # what the counters cover (a restart's gap is filled from LastStatusChange)


@dataclass(frozen=True)
class HistoryCollection:
    """What the history source counted, as of its latest poll (derived from EC2's and the status pass's output:
    it calls no AWS API, so it has no results of its own)."""

    tunnels: Mapping[TunnelKey, TunnelHistory] = field(default_factory=dict)
    connections: Mapping[ConnectionRef, ConnectionHistory] = field(default_factory=dict)
    days: Mapping[ConnectionRef, tuple[HistoryDay, ...]] = field(default_factory=dict)  # oldest first, 30 days
    results: tuple[SourceResult, ...] = ()

    def observed(self) -> dict[str, Any]:
        return {"history": self.days, "history_counters": self}


@dataclass(frozen=True)
class Observation:
    """Everything the sources saw, as of one publish: EC2's telemetry and each other source's latest output."""

    completed_at: float
    regions: tuple[RegionTelemetry, ...] = ()
    results: tuple[SourceResult, ...] = ()
    tunnel_logs: Mapping[TunnelKey, TunnelLogView] = field(default_factory=dict)
    log_groups: tuple[LogGroupStatus, ...] = ()
    tunnel_status: Mapping[TunnelKey, TunnelStatus] = field(default_factory=dict)  # maintenance, provisioning
    traffic: TrafficCollection | None = None  # CloudWatch TunnelDataIn/Out, when traffic collection is on
    history: Mapping[ConnectionRef, tuple[HistoryDay, ...]] = field(default_factory=dict)  # oldest first, 30 days
    history_counters: HistoryCollection | None = None  # the exact counters behind it (sources/history)
    tag_labels: tuple[str, ...] = ()  # label names of the connections' ``tags`` (config connection_tags)
    completed_monotonic: float | None = None  # time.monotonic() at completed_at: the age, whatever the wall clock does

    def connections(self) -> Iterator[tuple[RegionTelemetry, Connection]]:
        """Yield (region telemetry, connection) pairs across accounts and regions."""
        for region in self.regions:
            for connection in region.connections:
                yield region, connection

    def tunnels(self) -> Iterator[tuple[RegionTelemetry, Connection, Tunnel, TunnelKey]]:
        """Yield every tunnel EC2 reported, with its connection and key."""
        for region in self.regions:
            for connection in region.connections:
                for tunnel in connection.tunnels:
                    yield region, connection, tunnel, TunnelKey.of(region, connection, tunnel)


@dataclass(frozen=True, kw_only=True)
class Snapshot(Observation):
    """An observation with its diagnosis: what /metrics, the status page and ``diagnose`` serve until the next
    publish replaces it (made by ``diagnosis.pipeline.diagnosed``)."""

    selector_checks: Mapping[TunnelKey, SelectorCheck]  # for the tunnels whose logs showed their selectors
    findings: tuple[Finding, ...]

    @classmethod
    def of(
        cls, observation: Observation, selector_checks: Mapping[TunnelKey, SelectorCheck], findings: tuple[Finding, ...]
    ) -> Snapshot:
        return cls(
            **{name.name: getattr(observation, name.name) for name in fields(Observation)},
            selector_checks=selector_checks,
            findings=findings,
        )
