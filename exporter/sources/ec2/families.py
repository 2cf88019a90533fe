"""EC2's metric families: the connections, their tunnels' state, their customer gateways, and what the tunnels and
connections are configured to do (their options, not their state)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from exporter.contract import (
    CONNECTION_INFO,
    CONNECTION_OPTIONS_INFO,
    CONNECTION_STATIC_ROUTES,
    CUSTOMER_GATEWAY_INFO,
    TUNNEL_ACCEPTED_ROUTES,
    TUNNEL_ACCEPTED_ROUTES_QUOTA_RATIO,
    TUNNEL_BGP_UP,
    TUNNEL_DPD_TIMEOUT,
    TUNNEL_IKE_LIFETIME,
    TUNNEL_INFO,
    TUNNEL_IPSEC_UP,
    TUNNEL_LAST_STATUS_CHANGE,
    TUNNEL_LOG_ENABLED,
    TUNNEL_OPTIONS_INFO,
    TUNNEL_UP,
)
from exporter.family import Families, Family, flag, yielding
from exporter.model import Connection, Snapshot, Tunnel
from exporter.sources.ec2.telemetry import route_quota_ratio


def families(snapshot: Snapshot, failed: list[str]) -> Iterator[Family]:
    yield from _state_families(snapshot, failed)
    yield from _configuration_families(snapshot, failed)


def _state_families(snapshot: Snapshot, failed: list[str]) -> Iterator[Family]:
    """What EC2 says of each connection and tunnel now, and the customer gateways."""
    family = Families(
        CONNECTION_INFO,
        TUNNEL_INFO,
        TUNNEL_UP,
        TUNNEL_IPSEC_UP,
        TUNNEL_BGP_UP,
        TUNNEL_ACCEPTED_ROUTES,
        TUNNEL_ACCEPTED_ROUTES_QUOTA_RATIO,
        TUNNEL_LAST_STATUS_CHANGE,
        TUNNEL_LOG_ENABLED,
        CUSTOMER_GATEWAY_INFO,
    )
    if snapshot.tag_labels:  # the operator's tag allowlist (config connection_tags), after the contract's labels
        info = family[CONNECTION_INFO]
        family.replace(Family(CONNECTION_INFO, info.documentation, info.labels + snapshot.tag_labels))
    no_tags = ("",) * len(snapshot.tag_labels)
    isolated = family.isolated(failed)
    for region, connection in yielding(snapshot.connections()):
        account, where = region.account_id, region.region
        with isolated(connection.vpn_connection_id):
            family[CONNECTION_INFO].add_metric(
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
                labels = [account, where, connection.vpn_connection_id, tunnel.outside_ip]
                _tunnel_rows(family, labels, tunnel)
                if (ratio := route_quota_ratio(connection, tunnel)) is not None:
                    family[TUNNEL_ACCEPTED_ROUTES_QUOTA_RATIO].add_metric(labels, ratio)
    for region in snapshot.regions:
        for gateway in region.customer_gateways:
            with isolated(gateway.customer_gateway_id):
                family[CUSTOMER_GATEWAY_INFO].add_metric(
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
    yield from family


def _tunnel_rows(family: Families, labels: list[str], tunnel: Tunnel) -> None:
    """One tunnel's EC2 series."""
    family[TUNNEL_INFO].add_metric(labels + [tunnel.inside_cidr, tunnel.status.lower(), tunnel.status_message], 1.0)
    if tunnel.status != "UNKNOWN":
        family[TUNNEL_UP].add_metric(labels, flag(tunnel.status == "UP"))
    if tunnel.ipsec_up is not None:
        family[TUNNEL_IPSEC_UP].add_metric(labels, flag(tunnel.ipsec_up))
    if tunnel.bgp_up is not None:
        family[TUNNEL_BGP_UP].add_metric(labels, flag(tunnel.bgp_up))
    if tunnel.accepted_routes is not None:
        family[TUNNEL_ACCEPTED_ROUTES].add_metric(labels, float(tunnel.accepted_routes))
    if tunnel.last_status_change is not None:
        family[TUNNEL_LAST_STATUS_CHANGE].add_metric(labels, float(tunnel.last_status_change))
    family[TUNNEL_LOG_ENABLED].add_metric(labels + ["ike"], flag(tunnel.ike_log.enabled))
    family[TUNNEL_LOG_ENABLED].add_metric(labels + ["bgp"], flag(tunnel.bgp_log.enabled))


def _configuration_families(snapshot: Snapshot, failed: list[str]) -> Iterator[Family]:
    """What the tunnels and connections are configured to do (their options, not their state)."""
    family = Families(
        TUNNEL_OPTIONS_INFO, TUNNEL_DPD_TIMEOUT, TUNNEL_IKE_LIFETIME, CONNECTION_OPTIONS_INFO, CONNECTION_STATIC_ROUTES
    )
    isolated = family.isolated(failed)
    for region, connection in yielding(snapshot.connections()):
        where = [region.account_id, region.region, connection.vpn_connection_id]
        with isolated(connection.vpn_connection_id):
            _connection_options(family, where, connection)
        for tunnel in connection.tunnels:
            with isolated(f"{connection.vpn_connection_id} {tunnel.outside_ip}"):
                _tunnel_options(family, where + [tunnel.outside_ip], tunnel)
    yield from family


def _connection_options(family: Families, where: list[str], connection: Connection) -> None:
    family[CONNECTION_OPTIONS_INFO].add_metric(
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
        family[CONNECTION_STATIC_ROUTES].add_metric(where + [state], float(routes))


def _tunnel_options(family: Families, labels: list[str], tunnel: Tunnel) -> None:
    config = tunnel.config
    lifecycle = "" if config.lifecycle_control is None else str(config.lifecycle_control).lower()
    family[TUNNEL_OPTIONS_INFO].add_metric(
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
        family[TUNNEL_DPD_TIMEOUT].add_metric(labels, config.dpd_timeout_seconds)
    for phase, seconds in (("1", config.phase1_lifetime_seconds), ("2", config.phase2_lifetime_seconds)):
        if seconds is not None:
            family[TUNNEL_IKE_LIFETIME].add_metric(labels + [phase], seconds)
