"""Route headroom: accepted routes over AWS's route quota for the connection's gateway type, a series per tunnel
only where the quota is documented and the connection speaks BGP."""

from dataclasses import replace

import pytest

from exporter.contract import TUNNEL_ACCEPTED_ROUTES_QUOTA_RATIO
from exporter.model import Connection, Observation, RegionTelemetry, Snapshot, Tunnel
from exporter.sources.ec2.families import families
from exporter.sources.ec2.telemetry import ROUTE_QUOTAS, route_quota_ratio

TUNNEL = Tunnel("198.51.100.1", "UP", "bgp_routes", 84, 1_800_000_000.0, True, True)
CONNECTION = Connection("vpn-1", "site", "available", "dynamic", "vgw", "vgw-1", "cgw-1", False, tunnels=(TUNNEL,))


def test_the_quotas_are_the_ones_the_quotas_page_gives():
    assert ROUTE_QUOTAS == {"vgw": 100, "tgw": 1000}


@pytest.mark.parametrize(
    "gateway,routing,routes,expected",
    [
        ("vgw", "dynamic", 84, 0.84),
        ("vgw", "dynamic", 0, 0.0),
        ("tgw", "dynamic", 84, 0.084),
        ("tgw", "dynamic", 950, 0.95),
        ("cloudwan", "dynamic", 84, None),  # the quotas page gives no figure
        ("none", "dynamic", 84, None),
        ("vgw<script>", "dynamic", 84, None),  # an unknown type: no series, never an alert
        ("vgw", "static", 84, None),  # no BGP, no dynamic routes
        ("vgw", "unknown", 84, None),
        ("vgw", "dynamic", None, None),  # AcceptedRouteCount missing
    ],
)
def test_the_ratio_by_gateway_type(gateway, routing, routes, expected):
    connection = replace(CONNECTION, gateway_type=gateway, routing=routing)
    ratio = route_quota_ratio(connection, replace(TUNNEL, accepted_routes=routes))
    assert ratio == pytest.approx(expected) if expected is not None else ratio is None


def _exported(*connections: Connection) -> dict[tuple[str, ...], float]:
    observation = Observation(1_800_000_000.0, (RegionTelemetry("111122223333", "eu-west-1", connections),))
    snapshot = Snapshot.of(observation, {}, ())
    family = next(f for f in families(snapshot, []) if f.name == TUNNEL_ACCEPTED_ROUTES_QUOTA_RATIO)
    return {tuple(labels): value for labels, value in family.rows}


def test_one_series_per_tunnel_of_a_known_quota_only():
    exported = _exported(
        CONNECTION,
        replace(CONNECTION, vpn_connection_id="vpn-2", gateway_type="tgw"),
        replace(CONNECTION, vpn_connection_id="vpn-3", gateway_type="cloudwan"),
        replace(CONNECTION, vpn_connection_id="vpn-4", routing="static"),
    )
    assert exported == {
        ("111122223333", "eu-west-1", "vpn-1", "198.51.100.1"): pytest.approx(0.84),
        ("111122223333", "eu-west-1", "vpn-2", "198.51.100.1"): pytest.approx(0.084),
    }
