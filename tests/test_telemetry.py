"""The DescribeVpnConnections reader, on the shapes AWS really returns (see shared/aws-facts.md)."""

from collections import Counter
from datetime import datetime, timezone

import pytest

from exporter.sources.ec2.telemetry import classify_status_message, read_connection, read_connections

PSK = "Sup3rSecretPsk_for_tests"


def item(telemetry, static=False, **extra):
    base = {
        "VpnConnectionId": "vpn-0123",
        "State": "available",
        "CustomerGatewayId": "cgw-1",
        "VpnGatewayId": "vgw-1",
        "Type": "ipsec.1",
        "Tags": [{"Key": "Env", "Value": "x"}, {"Key": "Name", "Value": "hq"}],
        "CustomerGatewayConfiguration": f"<vpn_connection><pre_shared_key>{PSK}</pre_shared_key></vpn_connection>",
        "Options": {
            "StaticRoutesOnly": static,
            "EnableAcceleration": False,
            "LocalIpv4NetworkCidr": "0.0.0.0/0",
            "RemoteIpv4NetworkCidr": "10.0.0.0/16",
            "TunnelOptions": [
                {"OutsideIpAddress": "1.1.1.1", "TunnelInsideCidr": "169.254.1.0/30", "PreSharedKey": PSK}
            ],
        },
        "VgwTelemetry": telemetry,
    }
    base.update(extra)
    return base


def tel(status, message, routes=0, ip="1.1.1.1"):
    return {
        "OutsideIpAddress": ip,
        "Status": status,
        "StatusMessage": message,
        "AcceptedRouteCount": routes,
        "LastStatusChange": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    }


@pytest.mark.parametrize(
    "message,kind",
    [
        ("IPSEC IS UP", "ipsec_up"),
        ("ipsec is up", "ipsec_up"),
        ("IPSEC IS DOWN", "ipsec_down"),
        ("12 BGP ROUTES", "bgp_routes"),
        ("0 BGP ROUTES", "bgp_routes"),
        ("1 BGP ROUTE", "bgp_routes"),
        ("", "empty"),
        ("  ", "empty"),
        (None, "missing"),
        ("SOMETHING NEW", "other"),
        (42, "other"),
    ],
)
def test_status_messages_are_classified_into_a_bounded_set(message, kind):
    assert classify_status_message(message) == kind


@pytest.mark.parametrize(
    "static,status,message,routes,ipsec,bgp",
    [
        (False, "DOWN", "IPSEC IS UP", 0, True, False),  # the seed's headline state
        (False, "UP", "5 BGP ROUTES", 5, True, True),
        (False, "UP", "IPSEC IS UP", 0, True, True),  # seen in real output
        (False, "DOWN", "IPSEC IS DOWN", 0, False, False),
        (True, "UP", "", 0, True, None),  # static: no BGP series at all
        (True, "DOWN", "", 0, False, None),
    ],
)
def test_ipsec_and_bgp_from_status(static, status, message, routes, ipsec, bgp):
    connection = read_connection(item([tel(status, message, routes)], static=static), Counter())
    tunnel = connection.tunnels[0]
    assert (tunnel.ipsec_up, tunnel.bgp_up, tunnel.accepted_routes) == (ipsec, bgp, routes)
    assert tunnel.last_status_change == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp()
    assert connection.routing == ("static" if static else "dynamic")


def test_connection_fields():
    connection = read_connection(item([tel("UP", "1 BGP ROUTES", 1)]), Counter())
    assert (connection.name, connection.gateway_type, connection.gateway_id, connection.accelerated) == (
        "hq",
        "vgw",
        "vgw-1",
        False,
    )
    assert connection.remote_ipv4_network_cidr == "10.0.0.0/16"
    assert connection.tunnels[0].inside_cidr == "169.254.1.0/30"


def test_transit_gateway_and_acceleration():
    raw = item([], TransitGatewayId="tgw-9")
    del raw["VpnGatewayId"]
    raw["Options"]["EnableAcceleration"] = True
    connection = read_connection(raw, Counter())
    assert (connection.gateway_type, connection.gateway_id, connection.accelerated) == ("tgw", "tgw-9", True)


def test_secrets_never_reach_the_model():
    connection = read_connection(item([tel("UP", "1 BGP ROUTES", 1)]), Counter())
    assert PSK not in repr(connection)


def test_unknown_and_missing_values_are_counted_not_raised():
    odd = Counter()
    raw = item([tel("DEGRADED", "WHAT IS THIS", routes=-3), {"no": "ip"}, "garbage"])
    connection = read_connection(raw, odd)
    tunnel = connection.tunnels[0]
    assert (tunnel.status, tunnel.ipsec_up, tunnel.bgp_up, tunnel.accepted_routes) == ("UNKNOWN", None, None, None)
    assert odd == Counter({"status": 1, "status_message": 1, "accepted_route_count": 1})


def test_missing_options_and_telemetry():
    odd = Counter()
    connection = read_connection({"VpnConnectionId": "vpn-1", "State": "pending"}, odd)
    assert (connection.routing, connection.tunnels, connection.gateway_type) == ("unknown", (), "none")
    assert odd["routing"] == 1


def test_tunnel_known_only_from_options_has_unknown_status():
    connection = read_connection(item([]), Counter())
    assert [(t.outside_ip, t.status, t.status_message) for t in connection.tunnels] == [
        ("1.1.1.1", "UNKNOWN", "missing")
    ]


def test_ipv6_outside_address_and_single_tunnel():
    connection = read_connection(item([tel("UP", "2 BGP ROUTES", 2, ip="2001:db8::1")]), Counter())
    assert [t.outside_ip for t in connection.tunnels] == ["2001:db8::1", "1.1.1.1"]


def test_deleted_connections_and_junk_items_are_dropped():
    odd = Counter()
    deleted = item([], State="deleted", VpnConnectionId="vpn-gone")
    result = read_connections([item([]), deleted, "junk", {"State": "available"}], odd)
    assert [c.vpn_connection_id for c in result] == ["vpn-0123"]
    assert odd == Counter({"vpn_connection": 1, "vpn_connection_id": 1})


def test_log_options_are_read():
    raw = item([])
    raw["Options"]["TunnelOptions"][0]["LogOptions"] = {
        "CloudWatchLogOptions": {
            "LogEnabled": True,
            "LogGroupArn": "arn:aws:logs:us-east-1:1:log-group:g",
            "LogOutputFormat": "JSON",
            "BgpLogEnabled": False,
            "BgpLogGroupArn": "arn:ignored",
            "BgpLogOutputFormat": "bogus",
        }
    }
    tunnel = read_connection(raw, Counter()).tunnels[0]
    assert (tunnel.ike_log.enabled, tunnel.ike_log.log_group_arn, tunnel.ike_log.output_format) == (
        True,
        "arn:aws:logs:us-east-1:1:log-group:g",
        "json",
    )
    assert (tunnel.bgp_log.enabled, tunnel.bgp_log.log_group_arn, tunnel.bgp_log.output_format) == (False, "", "")


def test_absurd_values_are_counted_and_bounded_never_passed_on():
    """A route count of 10**400 once froze the renderer; a 10 KB Name tag became a 10,257-character label;
    a second tunnel with the same outside IP silently replaced the first."""
    odd = Counter()
    connection = read_connection(
        item(
            [tel("UP", "1 BGP ROUTES", routes=10**400), tel("DOWN", "IPSEC IS DOWN")],
            Tags=[{"Key": "Name", "Value": "n" * 10_000}],
        ),
        odd,
    )
    assert connection.tunnels[0].accepted_routes is None and odd["accepted_route_count"] == 1
    assert len(connection.tunnels) == 1 and connection.tunnels[0].status == "UP"
    assert odd["duplicate_outside_ip"] == 1
    assert connection.name == "n" * 256 and odd["tag_value_too_long"] == 1
    nan = read_connection(item([dict(tel("UP", "1 BGP ROUTES"), LastStatusChange=float("inf"))]), Counter())
    assert nan.tunnels[0].last_status_change is None


def test_tunnel_and_connection_options_are_read_with_bounded_values():
    """TunnelOptions as the EC2 API reference shapes them (lists of {"Value": ...}); a value AWS does not
    document reads "other" and is counted, so the options' label values stay bounded."""
    options = {
        "OutsideIpAddress": "1.1.1.1",
        "StartupAction": "start",
        "DpdTimeoutAction": "restart",
        "DpdTimeoutSeconds": 40,
        "EnableTunnelLifecycleControl": True,
        "IkeVersions": [{"Value": "ikev2"}, {"Value": "ikev1"}, {"Value": "ikev2"}],
        "Phase1EncryptionAlgorithms": [{"Value": "AES256"}, {"Value": "3DES"}],
        "Phase1IntegrityAlgorithms": [{"Value": "SHA2-256"}, {"Value": "SHA1"}],
        "Phase1DHGroupNumbers": [{"Value": 24}, {"Value": 14}, {"Value": 2}],
        "Phase2DHGroupNumbers": "not a list",
        "Phase1LifetimeSeconds": 28800,
        "Phase2LifetimeSeconds": -1,
    }
    item = {
        "VpnConnectionId": "vpn-1",
        "State": "available",
        "GatewayAssociationState": "not-associated",
        "Options": {
            "StaticRoutesOnly": True,
            "TunnelBandwidth": "large",
            "OutsideIpAddressType": "PrivateIpv4",
            "TunnelInsideIpVersion": "ipv4",
            "TunnelOptions": [options],
        },
        "Routes": [
            {"DestinationCidrBlock": "10.0.0.0/16", "State": "available"},
            {"DestinationCidrBlock": "10.1.0.0/16", "State": "failed-somehow"},
        ],
        "VgwTelemetry": [{"OutsideIpAddress": "1.1.1.1", "Status": "UP", "CertificateArn": "arn:aws:acm:x"}],
    }
    odd = Counter()
    connection = read_connection(item, odd)
    config = connection.tunnels[0].config
    assert (config.startup_action, config.dpd_timeout_action, config.dpd_timeout_seconds) == ("start", "restart", 40.0)
    assert config.lifecycle_control is True and config.ike_versions == ("ikev1", "ikev2")
    assert config.phase1_encryption == ("AES256", "other") and config.phase1_integrity == ("SHA1", "SHA2-256")
    assert config.phase1_dh_groups == ("2", "14", "24") and config.phase2_dh_groups == ()
    assert (config.phase1_lifetime_seconds, config.phase2_lifetime_seconds) == (28800.0, None)
    assert config.authentication == "certificate"
    assert (connection.tunnel_bandwidth, connection.outside_ip_address_type, connection.gateway_association_state) == (
        "large",
        "PrivateIpv4",
        "not-associated",
    )
    assert connection.static_routes == (("10.0.0.0/16", "available"), ("10.1.0.0/16", "other"))
    assert odd == Counter({"encryption": 1, "phase2_lifetime_seconds": 1, "static_route_state": 1})
