"""Property-based fuzzing of what reads outside input: the EC2 response reader and the config file.
Nothing crashes; everything odd is either counted or reported as a ConfigError naming the file."""

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.config import ConfigError, parse_config
from exporter.diagnosis.rules import diagnosed
from exporter.exposition.render import render_families, snapshot_families
from exporter.model import Observation, RegionTelemetry
from exporter.sources.ec2.telemetry import read_connections

anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
status = st.sampled_from(["UP", "DOWN", "up", "", None, 3, "DEGRADED"]) | anything
telemetry = st.fixed_dictionaries(
    {},
    optional={
        "OutsideIpAddress": st.sampled_from(["1.1.1.1", "2001:db8::1", "", None]) | anything,
        "Status": status,
        "StatusMessage": st.sampled_from(["IPSEC IS UP", "IPSEC IS DOWN", "5 BGP ROUTES", ""]) | anything,
        "AcceptedRouteCount": st.integers(-5, 500) | anything,
        "LastStatusChange": anything,
        "CertificateArn": anything,
    },
)
tunnel_options = st.fixed_dictionaries(
    {},
    optional={
        "OutsideIpAddress": st.sampled_from(["1.1.1.1", "3.3.3.3"]) | anything,
        "TunnelInsideCidr": anything,
        "PreSharedKey": st.text(),
        "LogOptions": st.fixed_dictionaries(
            {},
            optional={
                "CloudWatchLogOptions": st.fixed_dictionaries(
                    {},
                    optional={
                        k: anything
                        for k in (
                            "LogEnabled",
                            "LogGroupArn",
                            "LogOutputFormat",
                            "BgpLogEnabled",
                            "BgpLogGroupArn",
                            "BgpLogOutputFormat",
                        )
                    },
                )
            },
        )
        | anything,
    },
)
connection = st.fixed_dictionaries(
    {},
    optional={
        "VpnConnectionId": st.sampled_from(["vpn-1", "vpn-2", ""]) | anything,
        "State": st.sampled_from(["available", "pending", "deleted", "deleting"]) | anything,
        "VpnGatewayId": anything,
        "TransitGatewayId": anything,
        "CustomerGatewayId": anything,
        "Tags": anything,
        "CustomerGatewayConfiguration": st.text(),
        "Options": st.fixed_dictionaries(
            {},
            optional={
                "StaticRoutesOnly": anything,
                "EnableAcceleration": anything,
                "LocalIpv4NetworkCidr": anything,
                "TunnelOptions": st.lists(tunnel_options, max_size=3) | anything,
            },
        )
        | anything,
        "VgwTelemetry": st.lists(telemetry, max_size=3) | anything,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(connection, max_size=4) | anything)
def test_any_describe_vpn_connections_response_is_read_and_rendered(items):
    odd = Counter()
    connections = read_connections(items, odd)
    for item in connections:
        assert item.state != "deleted"
        for tunnel in item.tunnels:
            assert tunnel.status in ("UP", "DOWN", "UNKNOWN")
            assert tunnel.accepted_routes is None or tunnel.accepted_routes >= 0
    assert all(isinstance(count, int) and count > 0 for count in odd.values())
    snapshot = diagnosed(Observation(0.0, (RegionTelemetry("1", "us-east-1", connections),)))
    render_families(snapshot_families(snapshot))  # the exposition can always be produced


config_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "targets",
                    "regions",
                    "role_arn",
                    "poll_interval",
                    "logs",
                    "lookback",
                    "state_dir",
                    "shard",
                    "index",
                    "count",
                    "aws",
                    "max_attempts",
                    "organization",
                    "role_name",
                    "include_accounts",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(data=config_values)
def test_any_config_document_loads_or_fails_with_a_config_error(data):
    try:
        config = parse_config(data, "fuzz.yaml")
    except ConfigError as err:
        assert str(err).startswith("fuzz.yaml")
        return
    assert config.targets or config.organizations
    assert all(target.regions for target in config.targets)
    assert all(o.role_name and (o.regions is None or o.regions) for o in config.organizations)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_any_config_text_loads_or_fails_with_a_config_error(tmp_path_factory, text):
    from exporter.config import load_config

    path = tmp_path_factory.mktemp("fuzz") / "config.yaml"
    path.write_text(text)
    try:
        load_config(path)
    except ConfigError as err:  # anything else (a YAMLError, a TypeError) fails the test
        assert str(err).startswith(str(path))
