"""Endpoint maintenance read from AWS's free text as far as the documented facts allow: only "Available" (or an
auto-apply date still ahead) is pending. Checked through the real path (the strict simulated AWS over HTTP,
the poller, the diagnosis, the exposition, and the generated alert rule evaluated by promtool on what was
scraped), with the simulation saying "None Available" for quiet tunnels as the API is quoted to."""

import math
import subprocess
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import boto3
import yaml

from exporter.config import Target
from exporter.demo import strict_aws
from exporter.sources.tunnel_status.poller import read_status
from generate import alerting
from generate.alert_cases import SCRAPE, _selector
from tests.conftest import add_vpn_connection, scrape, series, tunnel_telemetry, value
from tests.services import tool

REGION = "eu-west-1"
ACCOUNT = "123456789012"
FUTURE = datetime(2030, 1, 1, tzinfo=timezone.utc)
PAST = datetime(2020, 1, 1, tzinfo=timezone.utc)
UNRECOGNIZED = "aws_vpn_exporter_unrecognized_values_total"


def connection(ip: str, maintenance: dict | None, name: str) -> str:
    """A connection whose first tunnel answers ``maintenance`` (None: what the simulation says by itself)."""
    from moto.ec2.models import ec2_backends

    ips = (ip, ip[:-1] + "9")
    vpn = add_vpn_connection(
        REGION,
        [tunnel_telemetry(address, "UP", "1 BGP ROUTES", 1) for address in ips],
        {"StaticRoutesOnly": False, "TunnelOptions": [{"OutsideIpAddress": a} for a in ips]},
        name=name,
    )
    if maintenance is not None:
        ec2_backends[ACCOUNT][REGION].vpn_connections[vpn].tunnel_status = {ip: {"maintenance": maintenance}}
    return vpn


def polled(make_exporter):
    exporter = make_exporter([Target(regions=(REGION,))])
    exporter.sources["tunnel_status"].poller.max_calls_per_second = 1000  # the ceiling has its own test
    exporter.poll_once()
    exporter.poll("tunnel_status")
    return exporter, scrape(exporter.url)


def maintenance_findings(samples: dict) -> set[str]:
    return {s["tunnel"] for s in series(samples, "aws_vpn_tunnel_finding", finding="endpoint_maintenance_pending")}


def fires(samples: dict, alert: str, expected: set[tuple[str, str]], minutes: int = 30) -> str:
    """promtool's verdict on whether the generated rules fire ``alert`` for exactly the ``expected``
    (vpn_connection_id, tunnel) after ``minutes`` of this scrape held steady (as Prometheus keeps scraping it);
    "" when they do, else promtool's account of what it got instead."""
    inputs = [
        {
            "series": _selector(name, {**SCRAPE, **dict(labels)}),
            "values": f"{int(v) if float(v).is_integer() else repr(v)}x{minutes + 5}",
        }
        for (name, labels), v in samples.items()
        if math.isfinite(v)
    ]
    check = {
        "expr": f'count by (vpn_connection_id, tunnel) (ALERTS{{alertname="{alert}",alertstate="firing"}})',
        "eval_time": f"{minutes}m",
        "exp_samples": [
            {"labels": _selector("", {"vpn_connection_id": vpn, "tunnel": ip}), "value": 1}
            for vpn, ip in sorted(expected)
        ],
    }
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "scraped.test.yml"
        path.write_text(
            yaml.safe_dump(
                {
                    "rule_files": [str(alerting.RULES_FILE)],
                    "evaluation_interval": "1m",
                    "tests": [{"interval": "1m", "input_series": inputs, "promql_expr_test": [check]}],
                }
            )
        )
        result = subprocess.run(
            [tool("promtool"), "test", "rules", path.name], capture_output=True, text=True, timeout=120, cwd=directory
        )
    return "" if result.returncode == 0 else result.stdout + result.stderr


def test_the_simulated_aws_says_none_available_for_a_quiet_tunnel(aws):
    vpn = connection("198.51.100.1", None, "quiet")
    details = boto3.client("ec2", region_name=REGION).get_vpn_tunnel_replacement_status(
        VpnConnectionId=vpn, VpnTunnelOutsideIpAddress="198.51.100.1"
    )["MaintenanceDetails"]
    assert details == {"PendingMaintenance": "None Available"} == {"PendingMaintenance": strict_aws.NO_MAINTENANCE}


def test_none_available_raises_no_finding_and_no_alert_while_a_pending_tunnel_still_does(aws, make_exporter):
    quiet = connection("198.51.100.1", None, "quiet")  # "None Available", as the simulation says by itself
    pending = connection(
        "198.51.100.11", {"PendingMaintenance": "Available", "MaintenanceAutoAppliedAfter": FUTURE}, "pending"
    )
    exporter, samples = polled(make_exporter)
    assert maintenance_findings(samples) == {"198.51.100.11"}
    assert value(samples, "aws_vpn_tunnel_maintenance_pending", vpn_connection_id=quiet, tunnel="198.51.100.1") == 0
    assert value(samples, "aws_vpn_tunnel_maintenance_pending", vpn_connection_id=pending, tunnel="198.51.100.11") == 1
    assert value(samples, UNRECOGNIZED, field="pending_maintenance") is None  # "None Available" is known wording
    assert not [
        f
        for f in exporter.current.snapshot.findings
        if f.code == "endpoint_maintenance_pending" and f.vpn_connection_id == quiet
    ]
    assert fires(samples, "VpnEndpointMaintenancePending", {(pending, "198.51.100.11")}) == ""
    assert fires(samples, "VpnEndpointMaintenancePending", {(pending, "198.51.100.11"), (quiet, "198.51.100.1")})


def test_every_wording_the_facts_allow_and_unknown_text_is_counted_never_pending(aws, make_exporter):
    cases = {  # what PendingMaintenance says -> pending?
        "None": False,
        "none": False,
        " None  Available ": False,
        "NONE AVAILABLE": False,
        "": False,
        "Available": True,
        " available\n": True,
        "AVAILABLE": True,
        "Scheduled": False,
        "Not Available": False,
        "Available soon?": False,
    }
    for n, text in enumerate(cases, start=1):
        connection(f"198.51.{n}.1", {"PendingMaintenance": text}, f"case-{n}")
    absent = connection("198.51.99.1", {}, "absent")  # nothing said about maintenance at all
    unknown_but_dated = connection(
        "198.51.98.1", {"PendingMaintenance": "Queued", "MaintenanceAutoAppliedAfter": FUTURE}, "dated"
    )
    _, samples = polled(make_exporter)
    for n, (text, pending) in enumerate(cases.items(), start=1):
        assert value(samples, "aws_vpn_tunnel_maintenance_pending", tunnel=f"198.51.{n}.1") == pending, text
    assert maintenance_findings(samples) == {f"198.51.{n}.1" for n, p in enumerate(cases.values(), start=1) if p} | {
        "198.51.98.1"
    }
    assert value(samples, "aws_vpn_tunnel_maintenance_pending", vpn_connection_id=absent, tunnel="198.51.99.1") is None
    assert (
        value(samples, "aws_vpn_tunnel_maintenance_pending", vpn_connection_id=unknown_but_dated, tunnel="198.51.98.1")
        == 1
    )
    assert value(samples, UNRECOGNIZED, field="pending_maintenance") == 4  # Scheduled, Not..., Available soon?, Queued


def test_an_auto_apply_date_decides_only_while_it_is_ahead():
    now = FUTURE.timestamp() - 60
    odd = Counter()
    assert read_status({"MaintenanceAutoAppliedAfter": FUTURE}, {}, now, None, odd).pending_maintenance is True
    assert (
        read_status(
            {"PendingMaintenance": "None Available", "MaintenanceAutoAppliedAfter": PAST}, {}, now, None, odd
        ).pending_maintenance
        is False
    )  # applied: the date is history
    assert read_status({}, {}, now, None, odd).pending_maintenance is None
    assert (
        read_status({"PendingMaintenance": 7}, {"ProvisioningStatus": "rebooting"}, now, None, odd).provisioning_status
        == "other"
    )
    assert odd == {"pending_maintenance": 1, "provisioning_status": 1}
