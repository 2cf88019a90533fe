"""Reads EC2 ``DescribeVpnConnections`` items into the model, defensively.

This is the secrets boundary, in two walls. First, ``sources.secrets`` cuts
``customerGatewayConfiguration`` and ``preSharedKey`` out of the raw response before botocore
parses it. Second, only named, non-secret fields are copied into the model. Status strings are free text at AWS; anything
unrecognised is classified as such and counted, never raised.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from exporter.model import Connection, CustomerGateway, LogDestination, Tunnel, TunnelConfig

WEAK_DH_GROUPS = ("2", "5")  # below 14; AWS allows 2 in both phases and 5 in phase 2
# Dynamic routes a customer gateway may advertise to one VPN connection, by the connection's gateway type (AWS
# Site-to-Site VPN User Guide, "Site-to-Site VPN quotas", docs.aws.amazon.com/vpn/latest/s2svpn/vpn-limits.html,
# Routes): 100 on a virtual private gateway, 1,000 on a transit gateway, neither adjustable (older editions of the
# page said 100 for both). One prefix past it and AWS sends a BGP Cease (6/1, maximum number of prefixes reached)
# and drops the session. The page gives no figure for Cloud WAN (nor for a Site-to-Site VPN Concentrator, nor a
# connection without a gateway): no quota is known there, so no ratio is exported and nothing alerts, rather than
# a guess.
ROUTE_QUOTAS = {"vgw": 100, "tgw": 1000}
ROUTE_QUOTA_NEAR = 0.8  # the share of the quota past which route_quota_near warns
_BGP_ROUTES = re.compile(r"^\d+ BGP ROUTES?$")
# EC2's query protocol answers in XML; both elements hold escaped text, so no nested closing tag.
_LOG_FORMATS = {"json", "text"}
# The values AWS documents for each option (EC2 API reference, VpnTunnelOptionsSpecification and
# VpnConnectionOptions): anything else is exported as "other" and counted, so label values stay bounded.
_KNOWN = {
    "startup_action": {"add", "start"},
    "dpd_timeout_action": {"clear", "none", "restart"},
    "ike_versions": {"ikev1", "ikev2"},
    "encryption": {"AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"},
    "integrity": {"SHA1", "SHA2-256", "SHA2-384", "SHA2-512"},
    "dh_groups": {str(group) for group in (2, 5, *range(14, 25))},
    "tunnel_bandwidth": {"standard", "large"},
    "outside_ip_address_type": {"PublicIpv4", "PrivateIpv4", "Ipv6"},
    "tunnel_inside_ip_version": {"ipv4", "ipv6"},
    "gateway_association_state": {"associated", "not-associated", "associating", "disassociating"},
    "static_route_state": {"pending", "available", "deleting", "deleted"},
}


def route_quota_ratio(connection: Connection, tunnel: Tunnel) -> float | None:
    """Accepted routes over the route quota of the connection's gateway type: how close the customer gateway is to
    the prefix that resets the session. None where it means nothing: a static connection (no BGP), a gateway type
    of no documented quota, an unknown route count."""
    quota = ROUTE_QUOTAS.get(connection.gateway_type)
    if quota is None or connection.routing != "dynamic" or tunnel.accepted_routes is None:
        return None
    return tunnel.accepted_routes / quota


def classify_status_message(message: Any) -> str:
    """Map AWS's free-text StatusMessage onto a small, bounded set of kinds."""
    if message is None:
        return "missing"
    if not isinstance(message, str):
        return "other"
    text = message.strip().upper()
    if text == "":
        return "empty"
    if text == "IPSEC IS UP":
        return "ipsec_up"
    if text == "IPSEC IS DOWN":
        return "ipsec_down"
    if _BGP_ROUTES.match(text):
        return "bgp_routes"
    return "other"


def _list(value: Any, field: str, odd: Counter) -> list | tuple:
    """A list-shaped field, or nothing (counted) when AWS sent something else."""
    if isinstance(value, (list, tuple)):
        return value
    if value is not None:
        odd[field] += 1
    return ()


MAX_LABEL_CHARS = 256  # a label value longer than this (a 10 KB Name tag) is cut here and counted
_MAX_TEXT_CHARS = 1024  # ids, CIDRs and states are short; anything longer is not AWS's
_MAX_COUNT = 10**9  # far above any route quota: a larger "count" is not one


def _text(value: Any) -> str:
    return value[:_MAX_TEXT_CHARS] if isinstance(value, str) else ""


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNT:
        return value
    return None


def _log_destination(options: Mapping, prefix: str) -> LogDestination:
    enabled = options.get(f"{prefix}LogEnabled") is True
    output_format = _text(options.get(f"{prefix}LogOutputFormat")).lower()
    return LogDestination(
        enabled=enabled,
        log_group_arn=_text(options.get(f"{prefix}LogGroupArn")) if enabled else "",
        output_format=output_format if output_format in _LOG_FORMATS else "",
    )


def _known(value: Any, kind: str, odd: Counter) -> str:
    """A documented value as it is, "" when absent, ``other`` (counted) for anything else."""
    text = _text(value)
    if text and text not in _KNOWN[kind]:
        odd[kind] += 1
        return "other"
    return text


def _values(entries: Any, kind: str, odd: Counter) -> tuple[str, ...]:
    """An option list (``[{"Value": ...}]``) as its known values, deduplicated, in a stable order."""
    found = set()
    for entry in entries if isinstance(entries, list) else ():
        value = entry.get("Value") if isinstance(entry, Mapping) else entry
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # DH group numbers are integers in the response
        found.add(_known(value, kind, odd))
    found.discard("")
    return tuple(sorted(found, key=lambda v: (len(v), v) if kind == "dh_groups" else (0, v)))


def _seconds(value: Any, odd: Counter, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10**9:
        odd[field] += 1
        return None
    return float(value)


def _config(options: Mapping, telemetry: Mapping, odd: Counter) -> TunnelConfig:
    lifecycle = options.get("EnableTunnelLifecycleControl")
    return TunnelConfig(
        startup_action=_known(options.get("StartupAction"), "startup_action", odd),
        dpd_timeout_action=_known(options.get("DpdTimeoutAction"), "dpd_timeout_action", odd),
        dpd_timeout_seconds=_seconds(options.get("DpdTimeoutSeconds"), odd, "dpd_timeout_seconds"),
        lifecycle_control=lifecycle if isinstance(lifecycle, bool) else None,
        ike_versions=_values(options.get("IkeVersions"), "ike_versions", odd),
        phase1_encryption=_values(options.get("Phase1EncryptionAlgorithms"), "encryption", odd),
        phase2_encryption=_values(options.get("Phase2EncryptionAlgorithms"), "encryption", odd),
        phase1_integrity=_values(options.get("Phase1IntegrityAlgorithms"), "integrity", odd),
        phase2_integrity=_values(options.get("Phase2IntegrityAlgorithms"), "integrity", odd),
        phase1_dh_groups=_values(options.get("Phase1DHGroupNumbers"), "dh_groups", odd),
        phase2_dh_groups=_values(options.get("Phase2DHGroupNumbers"), "dh_groups", odd),
        phase1_lifetime_seconds=_seconds(options.get("Phase1LifetimeSeconds"), odd, "phase1_lifetime_seconds"),
        phase2_lifetime_seconds=_seconds(options.get("Phase2LifetimeSeconds"), odd, "phase2_lifetime_seconds"),
        authentication="certificate" if _text(telemetry.get("CertificateArn")) else "psk",
    )


def _static_routes(routes: Any, odd: Counter) -> tuple[tuple[str, str], ...]:
    found = []
    for route in routes if isinstance(routes, list) else ():
        if isinstance(route, Mapping) and _text(route.get("DestinationCidrBlock")):
            state = _known(route.get("State"), "static_route_state", odd)
            found.append((_text(route["DestinationCidrBlock"])[:64], state))
    return tuple(sorted(found))


def _tunnel(outside_ip: str, telemetry: Mapping, options: Mapping, routing: str, odd: Counter) -> Tunnel:
    raw_status = telemetry.get("Status")
    status = raw_status if raw_status in ("UP", "DOWN") else "UNKNOWN"
    if telemetry and status == "UNKNOWN":
        odd["status"] += 1
    message_kind = classify_status_message(telemetry.get("StatusMessage")) if telemetry else "missing"
    if message_kind == "other":
        odd["status_message"] += 1

    if status == "UP":
        ipsec_up: bool | None = True
    elif status == "DOWN":
        ipsec_up = message_kind == "ipsec_up"
    else:
        ipsec_up = None
    bgp_up = (status == "UP") if routing == "dynamic" and status != "UNKNOWN" else None

    routes = _count(telemetry.get("AcceptedRouteCount"))
    if telemetry and "AcceptedRouteCount" in telemetry and routes is None:
        odd["accepted_route_count"] += 1

    log_options = options.get("LogOptions")
    cloudwatch = log_options.get("CloudWatchLogOptions") if isinstance(log_options, Mapping) else None
    cloudwatch = cloudwatch if isinstance(cloudwatch, Mapping) else {}
    return Tunnel(
        outside_ip=outside_ip,
        status=status,
        status_message=message_kind,
        accepted_routes=routes,
        last_status_change=_epoch(telemetry.get("LastStatusChange")),
        ipsec_up=ipsec_up,
        bgp_up=bgp_up,
        inside_cidr=_text(options.get("TunnelInsideCidr")),
        ike_log=_log_destination(cloudwatch, ""),
        bgp_log=_log_destination(cloudwatch, "Bgp"),
        config=_config(options, telemetry, odd),
    )


def _gateway(item: Mapping) -> tuple[str, str]:
    for key, kind in (("TransitGatewayId", "tgw"), ("VpnGatewayId", "vgw"), ("CoreNetworkArn", "cloudwan")):
        value = _text(item.get(key))
        if value:
            return kind, value
    return "none", ""


def _tag(tags: Any, key: str, odd: Counter) -> str:
    """A tag's value as a label value: "" when absent, cut to MAX_LABEL_CHARS (and counted) when longer."""
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, Mapping) and tag.get("Key") == key:
                value = tag.get("Value")
                if isinstance(value, str) and len(value) > MAX_LABEL_CHARS:
                    odd["tag_value_too_long"] += 1
                    return value[:MAX_LABEL_CHARS]
                return _text(value)
    return ""


def _name(tags: Any, odd: Counter) -> str:
    return _tag(tags, "Name", odd)


def read_connection(item: Mapping, odd: Counter, tag_keys: tuple[str, ...] = ()) -> Connection | None:
    """One DescribeVpnConnections item to a Connection; None for one without an id.

    ``odd`` counts unrecognised values by field, for ``aws_vpn_exporter_unrecognized_values_total``.
    """
    connection_id = _text(item.get("VpnConnectionId"))
    if not connection_id:
        odd["vpn_connection_id"] += 1
        return None
    options = item.get("Options")
    options = options if isinstance(options, Mapping) else {}
    static = options.get("StaticRoutesOnly")
    routing = "static" if static is True else "dynamic" if static is False else "unknown"
    if routing == "unknown":
        odd["routing"] += 1

    telemetry_by_ip: dict[str, Mapping] = {}
    for entry in _list(item.get("VgwTelemetry"), "vgw_telemetry", odd):
        if isinstance(entry, Mapping) and _text(entry.get("OutsideIpAddress")):
            if entry["OutsideIpAddress"] in telemetry_by_ip:
                odd["duplicate_outside_ip"] += 1  # two tunnels cannot share one: the first is kept
                continue
            telemetry_by_ip[entry["OutsideIpAddress"]] = entry
    options_by_ip: dict[str, Mapping] = {}
    for entry in _list(options.get("TunnelOptions"), "tunnel_options", odd):
        if isinstance(entry, Mapping) and _text(entry.get("OutsideIpAddress")):
            options_by_ip.setdefault(entry["OutsideIpAddress"], entry)
    outside_ips = list(telemetry_by_ip) + [ip for ip in options_by_ip if ip not in telemetry_by_ip]

    gateway_type, gateway_id = _gateway(item)
    return Connection(
        vpn_connection_id=connection_id,
        name=_name(item.get("Tags"), odd),
        state=_text(item.get("State")) or "unknown",
        routing=routing,
        gateway_type=gateway_type,
        gateway_id=gateway_id,
        customer_gateway_id=_text(item.get("CustomerGatewayId")),
        accelerated=options.get("EnableAcceleration") is True,
        local_ipv4_network_cidr=_text(options.get("LocalIpv4NetworkCidr")),
        remote_ipv4_network_cidr=_text(options.get("RemoteIpv4NetworkCidr")),
        tunnels=tuple(
            _tunnel(ip, telemetry_by_ip.get(ip, {}), options_by_ip.get(ip, {}), routing, odd) for ip in outside_ips
        ),
        tunnel_bandwidth=_known(options.get("TunnelBandwidth"), "tunnel_bandwidth", odd),
        outside_ip_address_type=_known(options.get("OutsideIpAddressType"), "outside_ip_address_type", odd),
        tunnel_inside_ip_version=_known(options.get("TunnelInsideIpVersion"), "tunnel_inside_ip_version", odd),
        gateway_association_state=_known(item.get("GatewayAssociationState"), "gateway_association_state", odd),
        static_routes=_static_routes(item.get("Routes"), odd),
        tags=tuple(_tag(item.get("Tags"), key, odd) for key in tag_keys),
    )


def read_connections(items: Any, odd: Counter, tag_keys: tuple[str, ...] = ()) -> tuple[Connection, ...]:
    """All live connections of a response; ``deleted`` ones are dropped so their series vanish. An id listed
    twice is one connection: the first live item is kept, the others counted (``duplicate_vpn_connection``),
    as each would export every series of the connection again."""
    connections: dict[str, Connection] = {}
    for item in _list(items, "vpn_connections", odd):
        if not isinstance(item, Mapping):
            odd["vpn_connection"] += 1
            continue
        connection = read_connection(item, odd, tag_keys)
        if connection is None or connection.state == "deleted":
            continue
        if connection.vpn_connection_id in connections:
            odd["duplicate_vpn_connection"] += 1
            continue
        connections[connection.vpn_connection_id] = connection
    return tuple(sorted(connections.values(), key=lambda c: c.vpn_connection_id))


def read_customer_gateway(item: Mapping) -> CustomerGateway | None:
    gateway_id = _text(item.get("CustomerGatewayId"))
    if not gateway_id:
        return None
    return CustomerGateway(
        customer_gateway_id=gateway_id,
        bgp_asn=_text(item.get("BgpAsnExtended")) or _text(item.get("BgpAsn")),
        ip_address=_text(item.get("IpAddress")),
        name=_name(item.get("Tags"), Counter()),
    )
