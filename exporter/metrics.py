"""The metric contract and the rendering of a snapshot into the Prometheus text format.

Names live here only; the alert and dashboard generators import them. A snapshot is rendered once
per poll (plain and gzipped), so a scrape costs a memory copy, not a walk over every tunnel.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.model import Snapshot

PREFIX = "aws_vpn"
TUNNEL_LABELS = ("account_id", "region", "vpn_connection_id", "tunnel")
SOURCE_LABELS = ("account_id", "region", "source")
CACHED = " Cached from the latest poll; /metrics never calls AWS."

CONNECTION_INFO = "aws_vpn_connection_info"
TUNNEL_INFO = "aws_vpn_tunnel_info"
TUNNEL_UP = "aws_vpn_tunnel_up"
TUNNEL_IPSEC_UP = "aws_vpn_tunnel_ipsec_up"
TUNNEL_BGP_UP = "aws_vpn_tunnel_bgp_up"
TUNNEL_ACCEPTED_ROUTES = "aws_vpn_tunnel_accepted_routes"
TUNNEL_LAST_STATUS_CHANGE = "aws_vpn_tunnel_last_status_change_timestamp_seconds"
TUNNEL_LOG_ENABLED = "aws_vpn_tunnel_log_enabled"
CUSTOMER_GATEWAY_INFO = "aws_vpn_customer_gateway_info"

COLLECTION_SUCCESS = "aws_vpn_exporter_collection_success"
COLLECTION_DURATION = "aws_vpn_exporter_collection_duration_seconds"
COLLECTION_LAST_SUCCESS = "aws_vpn_exporter_last_success_timestamp_seconds"
POLL_TIMESTAMP = "aws_vpn_exporter_poll_timestamp_seconds"
SNAPSHOT_AGE = "aws_vpn_exporter_snapshot_age_seconds"
API_CALLS = "aws_vpn_exporter_aws_api_calls_total"
UNRECOGNIZED_VALUES = "aws_vpn_exporter_unrecognized_values_total"
BUILD_INFO = "aws_vpn_exporter_build_info"

CONNECTION_INFO_LABELS = ("account_id", "region", "vpn_connection_id", "name", "state", "routing",
                          "gateway_type", "gateway_id", "customer_gateway_id", "accelerated")


def _gauge(name: str, documentation: str, labels: Iterable[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation + CACHED, labels=list(labels))


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


def snapshot_families(snapshot: Snapshot) -> Iterator[Metric]:
    """Every metric family that a snapshot determines, built fresh so no stale series survive."""
    connection_info = _gauge(CONNECTION_INFO, "VPN connection metadata; always 1.", CONNECTION_INFO_LABELS)
    tunnel_info = _gauge(TUNNEL_INFO, "Tunnel metadata; always 1. status_message is AWS's StatusMessage classified.",
                         TUNNEL_LABELS + ("inside_cidr", "status", "status_message"))
    up = _gauge(TUNNEL_UP, "AWS's reported tunnel status (VgwTelemetry Status): 1 UP, 0 DOWN.", TUNNEL_LABELS)
    ipsec = _gauge(TUNNEL_IPSEC_UP, "1 when IPsec is established: Status UP, or DOWN with StatusMessage IPSEC IS UP.",
                   TUNNEL_LABELS)
    bgp = _gauge(TUNNEL_BGP_UP, "1 when the BGP session is established (dynamic connections only).", TUNNEL_LABELS)
    routes = _gauge(TUNNEL_ACCEPTED_ROUTES, "Routes AWS accepted from the customer gateway (AcceptedRouteCount).",
                    TUNNEL_LABELS)
    changed = _gauge(TUNNEL_LAST_STATUS_CHANGE, "When the tunnel's IKE, IPsec or BGP state last changed (LastStatusChange).",
                     TUNNEL_LABELS)
    log_enabled = _gauge(TUNNEL_LOG_ENABLED, "1 when the tunnel's log (ike or bgp) is delivered to CloudWatch Logs.",
                         TUNNEL_LABELS + ("log",))
    gateways = _gauge(CUSTOMER_GATEWAY_INFO, "Customer gateway metadata; always 1.",
                      ("account_id", "region", "customer_gateway_id", "name", "bgp_asn", "ip_address"))

    for region, connection in snapshot.connections():
        account, where = region.account_id, region.region
        connection_info.add_metric(
            [account, where, connection.vpn_connection_id, connection.name, connection.state, connection.routing,
             connection.gateway_type, connection.gateway_id, connection.customer_gateway_id,
             "true" if connection.accelerated else "false"], 1.0)
        for tunnel in connection.tunnels:
            labels = [account, where, connection.vpn_connection_id, tunnel.outside_ip]
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
                changed.add_metric(labels, tunnel.last_status_change)
            log_enabled.add_metric(labels + ["ike"], _flag(tunnel.ike_log.enabled))
            log_enabled.add_metric(labels + ["bgp"], _flag(tunnel.bgp_log.enabled))
    for region in snapshot.regions:
        for gateway in region.customer_gateways:
            gateways.add_metric([region.account_id, region.region, gateway.customer_gateway_id, gateway.name,
                                 gateway.bgp_asn, gateway.ip_address], 1.0)
    yield from (connection_info, tunnel_info, up, ipsec, bgp, routes, changed, log_enabled, gateways)
    yield from _collection_families(snapshot)


def _collection_families(snapshot: Snapshot) -> Iterator[Metric]:
    success = _gauge(COLLECTION_SUCCESS, "1 when the latest collection of this source succeeded.", SOURCE_LABELS)
    duration = _gauge(COLLECTION_DURATION, "How long the latest collection of this source took.", SOURCE_LABELS)
    last_success = _gauge(COLLECTION_LAST_SUCCESS, "When this source last collected successfully; older data is served "
                          "unchanged while it fails.", SOURCE_LABELS)
    for result in snapshot.results:
        labels = [result.account_id, result.region, result.source]
        success.add_metric(labels, _flag(result.success))
        duration.add_metric(labels, result.duration_seconds)
        if result.last_success_timestamp is not None:
            last_success.add_metric(labels, result.last_success_timestamp)
    poll = GaugeMetricFamily(POLL_TIMESTAMP, "When the poll that produced the served snapshot completed.",
                             value=snapshot.completed_at)
    yield from (success, duration, last_success, poll)


class _FamiliesCollector:
    def __init__(self, families: Iterable[Metric]):
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def render_families(families: Iterable[Metric]) -> bytes:
    """The text exposition of some metric families (prometheus-client does the escaping)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FamiliesCollector(families))
    return generate_latest(registry)


@dataclass(frozen=True)
class RenderedSnapshot:
    """A snapshot and its pre-rendered exposition, swapped in as one object."""

    snapshot: Snapshot
    body: bytes
    body_gzip: bytes

    @classmethod
    def of(cls, snapshot: Snapshot) -> "RenderedSnapshot":
        body = render_families(snapshot_families(snapshot))
        return cls(snapshot, body, gzip.compress(body, compresslevel=6, mtime=0))
