"""AWS's per-tunnel status (GetVpnTunnelReplacementStatus, GetActiveVpnTunnelStatus), served by the simulated
AWS over HTTP as botocore shapes it: read, exported and diagnosed; refused calls turn the source off for
that account and region without touching EC2; the calls stay under their ceiling."""

from datetime import datetime, timezone

import boto3
import pytest

from exporter.config import Target
from exporter.diagnosis.rules import diagnosed
from exporter.model import Observation, TunnelStatus
from exporter.sources.tunnel_status import rules as aws_side
from exporter.sources.tunnel_status.poller import TunnelStatusPoller
from tests.conftest import add_vpn_connection, scrape, series, tunnel_telemetry, value
from tests.faults import Fault

REGION = "eu-west-1"
IPS = ("198.51.100.1", "198.51.100.2")
AUTO_APPLY = datetime(2030, 1, 1, tzinfo=timezone.utc)


def connection_with_status() -> str:
    vpn = add_vpn_connection(
        REGION,
        [tunnel_telemetry(ip, "DOWN", "IPSEC IS DOWN") for ip in IPS],
        {"StaticRoutesOnly": False, "TunnelOptions": [{"OutsideIpAddress": ip} for ip in IPS]},
    )
    from moto.ec2.models import ec2_backends

    ec2_backends["123456789012"][REGION].vpn_connections[vpn].tunnel_status = {
        IPS[0]: {
            "maintenance": {"PendingMaintenance": "Available", "MaintenanceAutoAppliedAfter": AUTO_APPLY},
            "active": {
                "ProvisioningStatus": "failed",
                "ProvisioningStatusReason": "Inside CIDR in use",
                "IkeVersion": "ikev1",
                "Phase1IntegrityAlgorithm": "SHA1",
                "Phase1DHGroup": 2,
            },
        },
        IPS[1]: {"maintenance": {"PendingMaintenance": "None"}, "active": {"ProvisioningStatus": "available"}},
    }
    return vpn


def ec2_poll():
    """One EC2 poll of the simulated AWS, for the status poller to work from."""
    from concurrent.futures import ThreadPoolExecutor

    from exporter.config import Config
    from exporter.sources.aws import AwsAccount
    from exporter.sources.ec2.poller import Poller

    config = Config(targets=(Target(regions=(REGION,)),))
    return Poller(config, [AwsAccount(config.targets[0], lambda *a: None)], ThreadPoolExecutor(2)).poll()


def test_the_simulated_aws_answers_as_aws_does(aws):
    vpn = connection_with_status()
    ec2 = boto3.client("ec2", region_name=REGION)
    details = ec2.get_vpn_tunnel_replacement_status(VpnConnectionId=vpn, VpnTunnelOutsideIpAddress=IPS[0])
    assert details["MaintenanceDetails"]["MaintenanceAutoAppliedAfter"] == AUTO_APPLY
    with pytest.raises(ec2.exceptions.ClientError, match="InvalidVpnConnectionID.NotFound"):
        ec2.get_active_vpn_tunnel_status(VpnConnectionId="vpn-0000", VpnTunnelOutsideIpAddress=IPS[0])
    with pytest.raises(ec2.exceptions.ClientError, match="InvalidParameterValue"):
        ec2.get_active_vpn_tunnel_status(VpnConnectionId=vpn, VpnTunnelOutsideIpAddress="192.0.2.99")


def test_status_is_exported_and_diagnosed(aws, make_exporter):
    vpn = connection_with_status()
    exporter = make_exporter([Target(regions=(REGION,))])
    exporter.sources["tunnel_status"].poller.max_calls_per_second = 1000  # the ceiling has its own test
    exporter.poll_once()
    exporter.poll("tunnel_status")
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_tunnel_maintenance_pending", tunnel=IPS[0]) == 1
    assert value(samples, "aws_vpn_tunnel_maintenance_pending", tunnel=IPS[1]) == 0
    assert (
        value(samples, "aws_vpn_tunnel_maintenance_auto_apply_timestamp_seconds", tunnel=IPS[0])
        == AUTO_APPLY.timestamp()
    )
    assert value(samples, "aws_vpn_tunnel_provisioning_status", tunnel=IPS[0], status="failed") == 1
    assert (
        value(
            samples,
            "aws_vpn_tunnel_negotiated_info",
            tunnel=IPS[0],
            ike_version="ikev1",
            phase1_integrity="SHA1",
            phase1_dh_group="2",
        )
        == 1
    )
    assert value(samples, "aws_vpn_exporter_collection_success", source="tunnel_status") == 1
    found = {(s["tunnel"], s["finding"]) for s in series(samples, "aws_vpn_tunnel_finding", vpn_connection_id=vpn)}
    assert {
        (IPS[0], "tunnel_provisioning_failed"),
        (IPS[0], "endpoint_maintenance_pending"),
        (IPS[0], "weak_cryptography_negotiated"),
    } <= found
    assert not {code for tunnel, code in found if tunnel == IPS[1]} & {
        "tunnel_provisioning_failed",
        "endpoint_maintenance_pending",
        "weak_cryptography_negotiated",
    }
    evidence = next(f.evidence for f in exporter.current.snapshot.findings if f.code == "tunnel_provisioning_failed")
    assert evidence == ("provisioning failed: Inside CIDR in use",)


def test_refused_calls_turn_the_source_off_there_and_leave_ec2_alone(aws, faults, make_exporter, caplog):
    caplog.set_level("WARNING", logger="exporter")
    connection_with_status()
    exporter = make_exporter([Target(regions=(REGION,))])
    exporter.sources["tunnel_status"].poller.max_calls_per_second = 1000
    exporter.poll_once()
    exporter.poll("tunnel_status")
    assert value(scrape(exporter.url), "aws_vpn_tunnel_maintenance_pending", tunnel=IPS[0]) == 1
    faults.faults.append(Fault(operation="GetVpnTunnelReplacementStatus", code="UnauthorizedOperation"))
    for _ in range(2):
        exporter.poll("tunnel_status")
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_tunnel_maintenance_pending", tunnel=IPS[0]) is None  # never to be refreshed
    assert value(samples, "aws_vpn_exporter_collection_success", source="ec2") == 1
    assert value(samples, "aws_vpn_exporter_collection_success", source="tunnel_status") == 0
    assert faults.faults[0].hits == 1  # the second pass did not call again
    assert len([r for r in caplog.records if "source turned off" in r.getMessage()]) == 1
    exporter.sources["tunnel_status"].poller.reconfigure(1000)  # a reload tries again
    faults.faults.clear()
    exporter.poll("tunnel_status")
    assert value(scrape(exporter.url), "aws_vpn_exporter_collection_success", source="tunnel_status") == 1


def test_the_calls_stay_under_the_ceiling(aws):
    """Each account and region's calls are spaced by 1 / max_calls_per_second (measured with a fake clock)."""
    for _ in range(5):
        connection_with_status()
    ec2 = ec2_poll()
    slept = []
    poller = TunnelStatusPoller(max_calls_per_second=4, sleep=slept.append)
    poller.poll(ec2.regions, ec2.accounts)
    assert poller.calls == 20  # 5 connections x 2 tunnels x 2 calls
    assert sum(slept) >= poller.calls / 4 and all(gap == 0.25 for gap in slept)


def test_provisioning_pending_is_a_finding_only_after_half_an_hour():
    pending = TunnelStatus(checked_at=0, provisioning_status="pending", pending_since=1000.0)
    assert not list(aws_side.tunnel_rules(pending, now=1000.0 + 1799))
    assert [code for code, _ in aws_side.tunnel_rules(pending, now=1000.0 + 1801)] == ["tunnel_provisioning_pending"]


def test_closing_ends_a_long_pass_at_once(aws):
    """A pass over many tunnels at a low ceiling lasts minutes; shutting down must not wait for it."""
    import threading
    import time as clock

    for _ in range(3):
        connection_with_status()
    ec2 = ec2_poll()
    poller = TunnelStatusPoller(max_calls_per_second=0.5)  # 2 s between calls: 12 calls would take 24 s
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(poller.poll(ec2.regions, ec2.accounts)))
    started = clock.monotonic()
    thread.start()
    clock.sleep(0.5)
    poller.close()
    thread.join(10)
    assert not thread.is_alive() and clock.monotonic() - started < 5
    assert outcome[0].results[0].error == "stopped: the exporter is shutting down"


def test_a_hung_endpoint_cannot_hold_a_pass_past_its_time(aws, faults, make_exporter):
    import time as clock

    connection_with_status()
    exporter = make_exporter([Target(regions=(REGION,))])
    exporter.sources["tunnel_status"].poller.max_calls_per_second = 1000
    exporter.poll_once()
    faults.faults.append(Fault(operation="GetVpnTunnelReplacementStatus", delay=8))
    started = clock.monotonic()
    exporter.poll("tunnel_status", within=1.0)
    assert clock.monotonic() - started < 4
    result = next(r for r in exporter.current.snapshot.results if r.source == "tunnel_status")
    assert not result.success and result.error == "timeout: no answer within 1s"


def test_tags_read_before_a_reload_never_misalign_the_labels():
    """A reload changes connection_tags before the next EC2 poll reads them: the labels win."""
    from exporter.exposition.render import RenderedSnapshot
    from exporter.model import Connection, RegionTelemetry
    from tests.conftest import parse_exposition

    def info(tags, labels):
        connection = Connection("vpn-1", "site", "available", "dynamic", "vgw", "vgw-1", "cgw-1", False, tags=tags)
        rendered = RenderedSnapshot.of(
            diagnosed(Observation(1.0, (RegionTelemetry("1", REGION, (connection,)),), tag_labels=labels)),
            isolate=False,
        )
        assert rendered.failed == ()
        return series(parse_exposition(rendered.body.decode()), "aws_vpn_connection_info")[0]

    assert info((), ("tag_team",))["tag_team"] == ""
    assert "tag_env" not in info(("prod", "net"), ("tag_team",)) and info(("prod",), ())["name"] == "site"


def test_one_odd_ec2_answer_during_a_pass_keeps_the_status_and_the_pending_clock(aws, make_exporter):
    """A connection EC2 answers once without its tunnels (empty VgwTelemetry and TunnelOptions) while a status
    pass runs: its tunnels' status is kept (the log state's retention, as the traffic counters), so when EC2
    reports them again, maintenance pending is back at once, not a pass (15 minutes) later, and a provisioning
    pending since long ago is still pending since then. Meanwhile no status is exported for tunnels EC2 does not
    report (nor for a deleted connection's, until the next pass)."""
    from moto.ec2.models import ec2_backends

    vpn = connection_with_status()
    backend = ec2_backends["123456789012"][REGION].vpn_connections[vpn]
    backend.tunnel_status[IPS[1]]["active"] = {"ProvisioningStatus": "pending"}
    exporter = make_exporter([Target(regions=(REGION,))])
    exporter.sources["tunnel_status"].poller.max_calls_per_second = 1000
    exporter.poll_once()
    exporter.poll("tunnel_status")
    since = (
        exporter._outputs["tunnel_status"]
        .statuses[next(k for k in exporter._outputs["tunnel_status"].statuses if k.outside_ip == IPS[1])]
        .pending_since
    )
    telemetry, options = backend.vgw_telemetry, backend.options
    backend.vgw_telemetry, backend.options = [], {"StaticRoutesOnly": False, "TunnelOptions": []}
    exporter.poll_once()
    exporter.poll("tunnel_status")  # the pass runs on the odd answer
    assert series(scrape(exporter.url), "aws_vpn_tunnel_maintenance_pending") == []
    backend.vgw_telemetry, backend.options = telemetry, options
    exporter.poll_once()  # EC2 reports the tunnels again; the next status pass is 15 minutes away
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_tunnel_maintenance_pending", tunnel=IPS[0]) == 1
    assert (IPS[0], "endpoint_maintenance_pending") in {
        (s["tunnel"], s["finding"]) for s in series(samples, "aws_vpn_tunnel_finding", vpn_connection_id=vpn)
    }
    exporter.poll("tunnel_status")
    assert (
        exporter._outputs["tunnel_status"]
        .statuses[next(k for k in exporter._outputs["tunnel_status"].statuses if k.outside_ip == IPS[1])]
        .pending_since
        == since
    )
    backend.state = "deleted"
    exporter.poll_once()  # deleted: no status series left until the next pass
    assert series(scrape(exporter.url), "aws_vpn_tunnel_maintenance_pending") == []
