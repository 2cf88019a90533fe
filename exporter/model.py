"""Immutable records of what a poll saw. Built once per poll, then only read.

Nothing here can hold a secret: the reader in ``sources/ec2/telemetry.py`` copies only whitelisted fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the types of what other stages add to a snapshot (they import this module)
    from exporter.diagnosis.rules import Finding
    from exporter.diagnosis.selectors import SelectorCheck
    from exporter.sources.ec2.tunnel_status import TunnelStatus
    from exporter.sources.logs.reader import LogGroupStatus
    from exporter.sources.logs.state import TunnelKey, TunnelLogView
    from exporter.sources.traffic import TrafficCollection


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


@dataclass(frozen=True)
class Snapshot:
    """The complete result of one poll: what /metrics serves until the next one replaces it."""

    completed_at: float
    regions: tuple[RegionTelemetry, ...] = ()
    results: tuple[SourceResult, ...] = ()
    tunnel_logs: Mapping[TunnelKey, TunnelLogView] = field(default_factory=dict)
    log_groups: tuple[LogGroupStatus, ...] = ()
    findings: tuple[Finding, ...] = ()
    selector_checks: Mapping[TunnelKey, SelectorCheck] | None = None  # None: not made yet (selectors.checks_of)
    tunnel_status: Mapping[TunnelKey, TunnelStatus] = field(default_factory=dict)  # maintenance, provisioning
    traffic: TrafficCollection | None = None  # CloudWatch TunnelDataIn/Out, when traffic collection is on
    tag_labels: tuple[str, ...] = ()  # label names of the connections' ``tags`` (config connection_tags)
    completed_monotonic: float | None = None  # time.monotonic() at completed_at: the age, whatever the wall clock does

    def connections(self):
        """Yield (region telemetry, connection) pairs across accounts and regions."""
        for region in self.regions:
            for connection in region.connections:
                yield region, connection
