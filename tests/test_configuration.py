"""Trouble before it happens: the findings made from the tunnels' and connections' options."""

from collections import Counter
from dataclasses import replace

import pytest

from exporter.demo.scenario import AWS_DEFAULT_TUNNEL, HARDENED_TUNNEL
from exporter.diagnosis import configuration
from exporter.model import Connection, Tunnel, TunnelConfig
from exporter.sources.ec2.telemetry import read_connection


def tunnel_from(options: dict, ip: str = "198.51.100.1") -> Tunnel:
    """A tunnel read from a DescribeVpnConnections item, as AWS shapes its options."""
    item = {
        "VpnConnectionId": "vpn-1",
        "State": "available",
        "Options": {"StaticRoutesOnly": False, "TunnelOptions": [{"OutsideIpAddress": ip, **options}]},
    }
    return read_connection(item, Counter()).tunnels[0]


def codes(tunnel: Tunnel) -> set[str]:
    return {code for code, _ in configuration.tunnel_rules(tunnel)}


def test_a_hardened_tunnel_has_no_configuration_finding():
    assert codes(tunnel_from(HARDENED_TUNNEL)) == set()


def test_awss_defaults_rely_on_the_customer_gateway_and_allow_weak_cryptography():
    found = dict(configuration.tunnel_rules(tunnel_from(AWS_DEFAULT_TUNNEL)))
    assert found["tunnel_restart_depends_on_customer_gateway"] == (
        "startup action add",
        "DPD timeout action clear after 40 s",
    )
    assert found["weak_cryptography_allowed"] == (
        "IKEv1 allowed (AWS strongly recommends IKEv2)",
        "SHA1 allowed in phase 1",
        "DH group 2 allowed in phase 1 (14 or higher recommended)",
        "SHA1 allowed in phase 2",
        "DH groups 2, 5 allowed in phase 2 (14 or higher recommended)",
    )


@pytest.mark.parametrize(
    "changes,fires",
    [
        ({"StartupAction": "add", "DpdTimeoutAction": "clear"}, True),
        (
            {"StartupAction": "start", "DpdTimeoutAction": "clear", "IkeVersions": [{"Value": "ikev1"}]},
            True,
        ),  # AWS cannot initiate IKEv1
        ({"StartupAction": "add", "DpdTimeoutAction": "restart"}, False),  # AWS restarts IKE on DPD timeout
        ({"StartupAction": "start", "DpdTimeoutAction": "clear"}, False),  # AWS initiates (IKEv2)
        ({"StartupAction": None, "DpdTimeoutAction": "clear"}, False),  # unknown: no guess
    ],
)
def test_the_restart_rule_is_awss(changes, fires):
    options = {key: value for key, value in {**HARDENED_TUNNEL, **changes}.items() if value is not None}
    tunnel = tunnel_from(options)
    assert ("tunnel_restart_depends_on_customer_gateway" in codes(tunnel)) is fires


def connection(*tunnels: Tunnel, **fields) -> Connection:
    return Connection(
        "vpn-1", "site", "available", "dynamic", "vgw", "vgw-1", "cgw-1", False, tunnels=tunnels, **fields
    )


def connection_codes(conn: Connection) -> dict:
    return dict(configuration.connection_rules(conn))


def test_tunnels_configured_differently_names_the_option_and_each_value():
    one = tunnel_from({**HARDENED_TUNNEL, "IkeVersions": [{"Value": "ikev2"}]}, "198.51.100.1")
    two = tunnel_from({**HARDENED_TUNNEL, "IkeVersions": [{"Value": "ikev1"}]}, "198.51.100.2")
    assert connection_codes(connection(one, two))["tunnels_configured_differently"] == (
        "IKE versions: tunnel 198.51.100.1 ikev2; tunnel 198.51.100.2 ikev1",
    )
    assert "tunnels_configured_differently" not in connection_codes(connection(one, replace(one, outside_ip="2")))
    unknown = replace(two, config=TunnelConfig())  # an option AWS did not report is not a difference
    assert "tunnels_configured_differently" not in connection_codes(connection(one, unknown))


@pytest.mark.parametrize(
    "state,fires",
    [("associated", False), ("associating", False), ("not-associated", True), ("disassociating", True), ("", False)],
)
def test_gateway_not_associated(state, fires):
    assert ("gateway_not_associated" in connection_codes(connection(gateway_association_state=state))) is fires


def test_static_routes_not_available_are_named():
    conn = connection(
        static_routes=(
            ("10.0.0.0/16", "available"),
            ("10.1.0.0/16", "pending"),
            ("10.2.0.0/16", "deleted"),
            ("10.3.0.0/16", "other"),
        )
    )
    assert connection_codes(conn)["static_route_not_available"] == ("10.1.0.0/16: pending", "10.3.0.0/16: other")


def test_a_proposal_mismatch_names_what_the_tunnel_allows():
    tunnel = tunnel_from({"IkeVersions": [{"Value": "ikev2"}], "Phase1DHGroupNumbers": [{"Value": 20}, {"Value": 14}]})
    assert configuration.allowed(tunnel.config) == "the tunnel allows: IKE versions ikev2; phase 1 DH groups 14, 20"
    assert configuration.allowed(TunnelConfig()) == ""  # nothing reported: no claim


def test_the_demo_proposal_mismatch_carries_the_allowed_options(demo, make_exporter):
    exporter = make_exporter(demo.targets())
    exporter.poll_once()
    evidence = next(f.evidence for f in exporter.current.snapshot.findings if f.code == "ike_proposal_mismatch")
    assert any(item.startswith("the tunnel allows: IKE versions ikev1;") for item in evidence), evidence
