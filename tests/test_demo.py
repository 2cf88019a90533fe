"""The demo's scenarios are data: their states over time reach boto3 as AWS would report them."""

import boto3
import pytest

from exporter.config import ConfigError
from exporter.demo.scenario import load_scenarios


def telemetry(demo, name):
    vpn_id = demo.connection_id(name)
    region = next(c.scenario.region for c in demo.connections if c.scenario.name == name)
    connection = boto3.client("ec2", region_name=region).describe_vpn_connections(VpnConnectionIds=[vpn_id])
    return connection["VpnConnections"][0]["VgwTelemetry"]


def test_the_scenarios_cover_every_case_of_the_seed():
    scenarios = load_scenarios()
    states = {t.state_at(0) for c in scenarios.connections for t in c.tunnels}
    assert states == {"healthy", "ipsec_up_bgp_down", "down"}
    assert any(c.routing == "static" for c in scenarios.connections)
    assert any(c.accelerated and c.gateway == "tgw" for c in scenarios.connections)
    assert any(len(t.cycle) > 1 for c in scenarios.connections for t in c.tunnels)
    assert len({c.region for c in scenarios.connections}) == 2
    assert len(scenarios.accounts) == 2


def test_a_cycle_runs_through_its_states():
    flapping = next(t for c in load_scenarios().connections for t in c.tunnels if t.outside_ip == "198.51.100.62")
    assert [flapping.state_at(s) for s in (0, 149, 150, 189, 190, 219, 220)] == [
        "healthy",
        "healthy",
        "down",
        "down",
        "ipsec_up_bgp_down",
        "ipsec_up_bgp_down",
        "healthy",
    ]


def test_telemetry_follows_the_state_and_last_status_change_moves(demo):
    start = demo._started_at
    demo.apply(start + 10)
    steady_before, before = telemetry(demo, "partner-flapping")
    assert (before["Status"], before["StatusMessage"], before["AcceptedRouteCount"]) == ("UP", "84 BGP ROUTES", 84)
    demo.apply(start + 160)
    steady_after, after = telemetry(demo, "partner-flapping")
    assert (after["Status"], after["StatusMessage"], after["AcceptedRouteCount"]) == ("DOWN", "IPSEC IS DOWN", 0)
    assert after["LastStatusChange"].timestamp() == int(start + 150)  # when it changed, not when it was polled
    assert steady_after["LastStatusChange"] == steady_before["LastStatusChange"]
    assert steady_after["Status"] == "UP"


def test_a_tunnel_can_be_driven_and_released(demo):
    demo.set_state("hq-core", 0, "ipsec_up_bgp_down")
    assert (telemetry(demo, "hq-core")[0]["Status"], telemetry(demo, "hq-core")[0]["StatusMessage"]) == (
        "DOWN",
        "IPSEC IS UP",
    )
    demo.set_state("hq-core", 0, None)
    assert telemetry(demo, "hq-core")[0]["Status"] == "UP"


def test_static_connections_report_an_empty_status_message(demo):
    assert {t["StatusMessage"] for t in telemetry(demo, "legacy-static")} == {""}


@pytest.mark.parametrize(
    "change,key",
    [
        (("state: healthy, routes: 12}", "state: fine, routes: 12}"), "connections[0].tunnels[0].state"),
        (('account: "210987654321"', 'account: "999999999999"'), "connections[7].account"),
        (("routing: static", "routing: bgp"), "connections[3].routing"),
        (("{state: down, for: 40s}", "{state: down, for: soon}"), "connections[5].tunnels[1].cycle[1].for"),
    ],
)
def test_a_broken_scenario_file_names_the_key(tmp_path, change, key):
    from exporter.demo.scenario import SCENARIOS

    path = tmp_path / "scenarios.yaml"
    path.write_text(SCENARIOS.read_text().replace(*change, 1))
    with pytest.raises(ConfigError) as caught:
        load_scenarios(path)
    assert caught.value.key == key
