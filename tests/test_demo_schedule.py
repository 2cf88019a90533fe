"""The simulated AWS flaps for real: polled every 10 s (the demo's poll interval) over simulated time, its tunnels go
down and up on their schedule with LastStatusChange at each change's own time, one goes down and up twice between
two polls (a later LastStatusChange, the same status), and one is replaced by AWS (LastMaintenanceApplied)."""

import boto3
import pytest

from exporter.config import ConfigError
from exporter.demo.scenario import TunnelScenario, load_scenarios
from exporter.demo.tunnel_logs import stream_name

FLAPPING, REPLACED = "198.51.100.62", "198.51.100.61"  # partner-flapping's tunnels
POLLS = range(8, 700, 10)  # seconds after the start: straddling the double flip (370 s to 376 s)


def _poll(demo, vpn_id: str, ec2) -> dict[str, dict]:
    """What a poll sees of each tunnel: DescribeVpnConnections' telemetry and GetVpnTunnelReplacementStatus."""
    telemetry = ec2.describe_vpn_connections(VpnConnectionIds=[vpn_id])["VpnConnections"][0]["VgwTelemetry"]
    seen = {}
    for tunnel in telemetry:
        address = tunnel["OutsideIpAddress"]
        details = ec2.get_vpn_tunnel_replacement_status(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=address)
        seen[address] = {
            "status": tunnel["Status"],
            "message": tunnel["StatusMessage"],
            "changed": tunnel["LastStatusChange"].timestamp(),
            **details["MaintenanceDetails"],
        }
    return seen


@pytest.fixture
def polled(demo):
    vpn_id = demo.connection_id("partner-flapping")
    ec2 = boto3.client("ec2", region_name="eu-west-1")
    start = demo._started_at
    seen = {}
    for elapsed in POLLS:
        demo.apply(start + elapsed)
        seen[elapsed] = _poll(demo, vpn_id, ec2)
    return start, seen


def test_tunnels_go_down_and_up_on_their_schedule_with_last_status_change_at_each_change(polled):
    start, seen = polled
    flapping = [(seen[t][FLAPPING]["status"], seen[t][FLAPPING]["changed"] - int(start)) for t in (148, 158, 198, 228)]
    assert flapping == [("UP", -7200), ("DOWN", 150), ("DOWN", 190), ("UP", 220)]  # at the change, not the poll
    assert seen[198][FLAPPING]["message"] == "IPSEC IS UP"  # DOWN with IPsec up: BGP is the one down
    flips = [t for t in POLLS[1:] if seen[t][FLAPPING]["status"] != seen[t - 10][FLAPPING]["status"]]
    assert len(flips) >= 4


def test_down_and_up_twice_within_one_poll_moves_last_status_change_but_not_the_status(polled):
    start, seen = polled
    before, after = seen[368][FLAPPING], seen[378][FLAPPING]
    assert before["status"] == after["status"] == "UP" and before["message"] == after["message"]
    assert before["changed"] == int(start + 220) and after["changed"] == int(start + 376)


def test_the_logs_record_each_change_of_the_double_flip(demo, polled):
    start, _ = polled
    logs = boto3.client("logs", region_name="eu-west-1")
    stream = stream_name(demo.connection_id("partner-flapping"), FLAPPING, "ike")
    events = logs.filter_log_events(
        logGroupName="/aws/vpn/tunnel-activity",
        logStreamNames=[stream],
        startTime=int((start + 369) * 1000),
        endTime=int((start + 377) * 1000),
    )["events"]
    messages = [event["message"] for event in events]
    assert sum("Declaring peer dead" in m for m in messages) == 2  # down twice
    assert sum("Phase 1 SA is established" in m for m in messages) == 2  # and up twice
    assert sorted({event["timestamp"] // 1000 - int(start) for event in events}) == [370, 372, 374, 376]


def test_a_scheduled_endpoint_replacement_takes_the_tunnel_down_and_sets_last_maintenance_applied(polled):
    start, seen = polled
    pending, replacing, back = seen[598][REPLACED], seen[608][REPLACED], seen[668][REPLACED]
    assert pending["PendingMaintenance"] == "Available" and "LastMaintenanceApplied" not in pending
    assert pending["MaintenanceAutoAppliedAfter"].timestamp() == int(start + 600)
    assert pending["status"] == "UP"
    assert replacing["status"] == "DOWN" and replacing["changed"] == int(start + 600)
    assert replacing["LastMaintenanceApplied"].timestamp() == int(start + 600)
    assert replacing["PendingMaintenance"] != "Available"
    assert back["status"] == "UP" and back["changed"] == int(start + 660)
    assert back["LastMaintenanceApplied"].timestamp() == int(start + 600)
    assert back["PendingMaintenance"] == "Available"  # the next turn's replacement
    assert back["MaintenanceAutoAppliedAfter"].timestamp() == int(start + 1260)


def test_a_forced_state_still_changes_at_once_and_the_schedule_resumes(demo):
    start = demo._started_at
    demo.apply(start + 100)
    demo.set_state("partner-flapping", 1, "down")
    vpn_id = demo.connection_id("partner-flapping")
    ec2 = boto3.client("ec2", region_name="eu-west-1")
    assert _poll(demo, vpn_id, ec2)[FLAPPING]["status"] == "DOWN"
    demo.set_state("partner-flapping", 1, None)
    demo.apply(start + 158)
    assert _poll(demo, vpn_id, ec2)[FLAPPING]["changed"] == int(start + 150)


def test_a_replacement_step_must_be_a_down_one(tmp_path):
    text = load_scenarios.__defaults__[0].read_text()
    bad = text.replace("{state: down, for: 60s, maintenance: true}", "{state: healthy, for: 60s, maintenance: true}")
    assert bad != text
    path = tmp_path / "scenarios.yaml"
    path.write_text(bad)
    with pytest.raises(ConfigError, match=r"connections\[5\]\.tunnels\[0\]\.cycle\[1\]\.maintenance"):
        load_scenarios(path)


def _scenario(*cycle, replacements=()):
    return TunnelScenario("198.51.100.1", "169.254.1.0/30", cycle, 0, "off", "off", replacements=replacements)


def test_the_schedule_lists_every_change_in_a_window_each_at_its_own_time():
    blips = _scenario(("healthy", 10.0), ("down", 1.0), ("healthy", 1.0), ("down", 1.0), replacements=(1,))
    assert blips.changes(0, 13) == [
        (10.0, "healthy", "down"),
        (11.0, "down", "healthy"),
        (12.0, "healthy", "down"),
        (13.0, "down", "healthy"),
    ]
    assert blips.changes(10, 12) == [(11.0, "down", "healthy"), (12.0, "healthy", "down")]  # (after, until]
    assert blips.changes(5, 5) == [] and blips.changes(8, 5) == []
    assert [at for at, _, _ in blips.changes(13, 26)] == [23.0, 24.0, 25.0, 26.0]
    assert (blips.last_replacement(9.9), blips.last_replacement(10), blips.last_replacement(25)) == (None, 10.0, 23.0)
    assert (blips.next_replacement(0), blips.next_replacement(10), blips.next_replacement(14)) == (10.0, None, 23.0)
    steady = _scenario(("healthy", 0.0))
    assert (
        steady.changes(0, 86400) == [] and steady.last_replacement(60) is None and steady.next_replacement(60) is None
    )
    same = _scenario(("healthy", 5.0), ("healthy", 5.0))  # two steps of one state: no change between them
    assert same.changes(0, 20) == []
