"""Tunnel logs as the real CloudWatch Logs delivers them: streams that do not exist yet, stream names AWS
does not document, IKE and BGP in one group, and events no watched tunnel claims.

The simulated AWS is strict (exporter/demo/strict_aws.py): a FilterLogEvents that names a missing stream
fails, as on AWS. Every test here would pass against moto's lenient default and fail against AWS if the
exporter named streams."""

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from exporter.config import LogsConfig, Target
from exporter.demo import strict_aws
from exporter.model import TunnelKey
from exporter.sources.logs.reader import GroupPlan
from tests.conftest import add_vpn_connection, scrape, tunnel_telemetry, value
from tests.test_logs import BGP_GROUP, GROUP, REGION, put

ARN = f"arn:aws:logs:{REGION}:123456789012:log-group:"
IPS = ("198.51.100.1", "198.51.100.12", "198.51.100.123")  # each a prefix of the next: attribution must not blur


def phase2(aws_side="0.0.0.0/0", cgw_side="0.0.0.0/0", nat_t=True):
    return json.dumps(
        {
            "event_timestamp": int(time.time()),
            "details": "AWS tunnel Phase 2 SA is established with "
            f"inbound SPI: 0x1: outbound SPI: 0x2: traffic selectors: (AWS-side) {aws_side} <=> "
            f"(CGW-side) {cgw_side}",
            "dpd_enabled": True,
            "nat_t_detected": nat_t,
            "ike_phase1_state": "established",
            "ike_phase2_state": "established",
        }
    )


def bgp_up(vpn, ip):
    return json.dumps(
        {
            "resource_id": f"{vpn}_{ip}",
            "event_timestamp": int(time.time() * 1000),
            "type": "BGPStatus",
            "status": "UP",
            "message": {
                "details": "AWS-side peer BGP session state has changed from "
                "OpenConfirm to Established with neighbor 169.254.9.1"
            },
        }
    )


def connection(ips=IPS, ike_group=GROUP, bgp_group=BGP_GROUP, bgp_format="json"):
    """A dynamic connection whose tunnels all log IKE and BGP; no stream exists until a tunnel logs."""
    logs = boto3.client("logs", region_name=REGION)
    for group in {ike_group, bgp_group}:
        if group not in {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}:
            logs.create_log_group(logGroupName=group)
    options = {
        "StaticRoutesOnly": False,
        "TunnelOptions": [
            {
                "OutsideIpAddress": ip,
                "TunnelInsideCidr": f"169.254.{9 + index}.0/30",
                "LogOptions": {
                    "CloudWatchLogOptions": {
                        "LogEnabled": True,
                        "LogGroupArn": ARN + ike_group,
                        "LogOutputFormat": "json",
                        "BgpLogEnabled": True,
                        "BgpLogGroupArn": ARN + bgp_group,
                        "BgpLogOutputFormat": bgp_format,
                    }
                },
            }
            for index, ip in enumerate(ips)
        ],
    }
    return add_vpn_connection(REGION, [tunnel_telemetry(ip, "UP", "1 BGP ROUTES", 1) for ip in ips], options)


@pytest.fixture
def exporter(aws, make_exporter, tmp_path):
    def make():
        return make_exporter(
            [Target(regions=(REGION,))], state_dir=tmp_path / "state", logs=LogsConfig(lookback=3600.0, overlap=300.0)
        )

    return make


def test_the_simulated_aws_rejects_a_missing_stream_name_as_aws_does(aws):
    """Fails on moto's lenient default, which ignores missing names (shared/aws-facts.md)."""
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="exists")
    before = strict_aws.rejected_missing_streams
    with pytest.raises(ClientError) as missing:
        logs.filter_log_events(logGroupName=GROUP, logStreamNames=["exists", "never-logged"])
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "log stream does not exist" in missing.value.response["Error"]["Message"]
    assert strict_aws.rejected_missing_streams == before + 1
    with pytest.raises(ClientError) as both:
        logs.filter_log_events(logGroupName=GROUP, logStreamNames=["exists"], logStreamNamePrefix="ex")
    assert both.value.response["Error"]["Code"] == "InvalidParameterException"
    logs.put_log_events(
        logGroupName=GROUP, logStreamName="exists", logEvents=[{"timestamp": int(time.time() * 1000), "message": "m"}]
    )
    assert logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="nothing")["events"] == []
    assert len(logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="ex")["events"]) == 1


def test_tunnels_that_never_logged_cost_nothing_and_a_later_stream_is_picked_up(exporter):
    vpn = connection()
    rejected = strict_aws.rejected_missing_streams
    put(vpn, [phase2("10.0.0.0/16", "0.0.0.0/0", nat_t=False)], ip=IPS[0])  # only the first tunnel has logged
    put(vpn, [bgp_up(vpn, IPS[0])], kind="bgp", ip=IPS[0])
    running = exporter()
    running.poll_once()
    samples = scrape(running.url)
    assert value(samples, "aws_vpn_exporter_collection_success", source="logs") == 1
    assert value(samples, "aws_vpn_tunnel_traffic_selector_info", tunnel=IPS[0], aws_side="10.0.0.0/16") == 1
    assert value(samples, "aws_vpn_tunnel_nat_t_detected", tunnel=IPS[0]) == 0
    assert value(samples, "aws_vpn_tunnel_bgp_session_state", tunnel=IPS[0], state="established") == 1
    for log in ("ike", "bgp"):
        assert value(samples, "aws_vpn_tunnel_log_has_events", tunnel=IPS[0], log=log) == 1
        assert value(samples, "aws_vpn_tunnel_log_has_events", tunnel=IPS[1], log=log) == 0  # visible, not an error
    assert value(samples, "aws_vpn_tunnel_traffic_selector_info", tunnel=IPS[1]) is None

    put(vpn, [phase2()], ip=IPS[1])  # the second tunnel logs for the first time: AWS creates its stream now
    running.poll_once()
    samples = scrape(running.url)
    assert value(samples, "aws_vpn_tunnel_traffic_selector_info", tunnel=IPS[1], aws_side="0.0.0.0/0") == 1
    assert value(samples, "aws_vpn_tunnel_log_has_events", tunnel=IPS[1], log="ike") == 1
    assert value(samples, "aws_vpn_tunnel_log_has_events", tunnel=IPS[2], log="ike") == 0
    assert value(samples, "aws_vpn_exporter_collection_success", source="logs") == 1
    assert strict_aws.rejected_missing_streams == rejected  # the exporter never named a stream


@pytest.mark.parametrize(
    "name",
    [
        "{vpn}-{ip}-BGP.log",
        "{vpn}_{ip}",
        "{ip}-{vpn}",
        "bgp/{vpn}/{ip}",
        "{vpn}-{ip}-bgp-log",
        "{vpn}.{ip}.BGP",
    ],
)
def test_a_bgp_stream_is_found_whatever_its_name_holds_around_the_connection_and_ip(exporter, name):
    """Text lines carry no resource_id here, so only the stream name can place them."""
    vpn = connection(bgp_format="text")
    line = (
        "2026-11-25 10:00:00.000Z type=BGPStatus status=UP AWS-side peer BGP session state has changed from "
        "OpenConfirm to Established with neighbor 169.254.10.1"
    )
    put(vpn, [line], kind="bgp", stream=name.format(vpn=vpn, ip=IPS[1]))
    running = exporter()
    running.poll_once()
    samples = scrape(running.url)
    assert value(samples, "aws_vpn_tunnel_bgp_session_state", tunnel=IPS[1], state="established") == 1
    assert value(samples, "aws_vpn_tunnel_bgp_session_state", tunnel=IPS[0]) is None
    assert value(samples, "aws_vpn_tunnel_bgp_session_state", tunnel=IPS[2]) is None


def test_a_bgp_event_in_a_stream_named_otherwise_is_placed_by_its_resource_id(exporter):
    vpn = connection()
    put(vpn, [bgp_up(vpn, IPS[2])], kind="bgp", stream="bgp-session-log-1")
    running = exporter()
    running.poll_once()
    assert value(scrape(running.url), "aws_vpn_tunnel_bgp_session_state", tunnel=IPS[2], state="established") == 1


def test_ike_and_bgp_in_one_group_are_told_apart_by_the_event_itself(exporter):
    vpn = connection(ike_group="/vpn/all", bgp_group="/vpn/all")
    stream = f"{vpn}-{IPS[0]}"  # no IKE/BGP hint in the name
    put(vpn, [phase2("172.31.0.0/16", "10.0.0.0/16"), bgp_up(vpn, IPS[0])], group="/vpn/all", stream=stream)
    put(vpn, [bgp_up(vpn, IPS[1])], group="/vpn/all", stream=f"{vpn}-{IPS[1]}-BGP.log")
    running = exporter()
    running.poll_once()
    samples = scrape(running.url)
    assert value(samples, "aws_vpn_tunnel_traffic_selector_info", tunnel=IPS[0], aws_side="172.31.0.0/16") == 1
    assert value(samples, "aws_vpn_tunnel_bgp_session_state", tunnel=IPS[0], state="established") == 1
    assert value(samples, "aws_vpn_tunnel_bgp_session_state", tunnel=IPS[1], state="established") == 1
    assert value(samples, "aws_vpn_exporter_log_parse_errors_total") is None


def test_streams_of_tunnels_not_watched_here_are_counted_not_failed(exporter):
    vpn = connection()
    put(vpn, [phase2()], ip=IPS[0])
    put(vpn, [phase2(), phase2()], stream="vpn-0123456789abcdef0-203.0.113.9-IKE.log")  # another shard's tunnel
    put(vpn, ["an application's own line"], stream="app/web-1")
    running = exporter()
    running.poll_once()
    samples = scrape(running.url)
    assert value(samples, "aws_vpn_exporter_log_events_unattributed_total") == 3
    assert value(samples, "aws_vpn_exporter_log_events_ingested_total", log="ike") == 1
    assert value(samples, "aws_vpn_exporter_collection_success", source="logs") == 1
    running.poll_once()  # the overlap re-reads them: counted once
    assert value(scrape(running.url), "aws_vpn_exporter_log_events_unattributed_total") == 3


def test_a_deleted_group_costs_that_group_only(exporter):
    vpn = connection()
    put(vpn, [phase2()], ip=IPS[0])
    put(vpn, [bgp_up(vpn, IPS[0])], kind="bgp", ip=IPS[0])
    running = exporter()
    running.poll_once()
    boto3.client("logs", region_name=REGION).delete_log_group(logGroupName=BGP_GROUP)
    put(vpn, [phase2("10.9.0.0/16")], ip=IPS[1])
    running.poll_once()
    samples = scrape(running.url)
    assert value(samples, "aws_vpn_tunnel_traffic_selector_info", tunnel=IPS[1], aws_side="10.9.0.0/16") == 1
    assert value(samples, "aws_vpn_exporter_collection_success", source="logs") == 0
    assert value(samples, "aws_vpn_tunnel_log_has_events", tunnel=IPS[0], log="bgp") == 1  # read before
    assert value(samples, "aws_vpn_tunnel_log_has_events", tunnel=IPS[1], log="bgp") is None  # unknown, not "none"


@pytest.mark.parametrize(
    "name,ip,claimed",
    [
        ("vpn-0abc1234.198.51.100.12.BGP", "198.51.100.12", True),  # the id's last digit is not part of the address
        ("vpn-0abc1234-198.51.100.12-BGP.log", "198.51.100.1", False),  # a prefix of another tunnel's address
        ("vpn-0abc1234-198.51.100.1-BGP.log", "198.51.100.1", True),
        ("vpn-0abc1234-2001-db8--1-BGP.log", "2001:db8::1", True),  # CloudWatch forbids ":" in stream names
        ("vpn-0abc1234_2001_0db8_0000_0000_0000_0000_0000_0001", "2001:db8::1", True),
        ("vpn-0abc1234-2001-db8--10-BGP.log", "2001:db8::1", False),
        ("vpn-0abc12345-198.51.100.1-BGP.log", "198.51.100.1", False),  # another connection whose id starts alike
    ],
)
def test_stream_names_are_matched_as_whole_ids_and_addresses(name, ip, claimed):
    plan = GroupPlan()
    plan.add(TunnelKey("1", REGION, "vpn-0abc1234", ip), "bgp", "json")
    tunnel, kind = plan.stream(name)
    assert (tunnel is not None) == claimed
    assert kind == ("bgp" if claimed else None)


def test_a_pass_of_only_re_read_events_still_moves_on(exporter):
    """Other writers' events and the overlap count against the page budget; the cursor must still advance."""
    vpn = connection()
    base = int(time.time() * 1000) - 60_000
    put(vpn, ["noise"] * 12, stream="app/web-1", at_ms=base)
    put(vpn, [phase2()] * 3, ip=IPS[0], at_ms=base + 1000)
    running = exporter()
    running.sources["logs"].ingestor._page_size, running.sources["logs"].ingestor._max_pages = 3, 1
    for _ in range(8):
        running.poll_once()
    put(
        vpn,
        [json.dumps({"event_timestamp": int(time.time()), "details": "AWS tunnel DPD timed out after 3 retransmits"})],
        ip=IPS[0],
    )
    for _ in range(8):
        running.poll_once()
    samples = scrape(running.url)
    assert value(samples, "aws_vpn_tunnel_log_events_total", tunnel=IPS[0], event="dpd_timeout") == 1
    assert value(samples, "aws_vpn_tunnel_log_events_total", tunnel=IPS[0], event="phase2_established") == 3


def test_unclaimed_events_are_not_kept_in_the_state_file(exporter, tmp_path):
    vpn = connection()
    put(
        vpn, [f"an application's line {i}" for i in range(50)], stream="app/web-1", at_ms=int(time.time() * 1000) - 5000
    )
    running = exporter()
    running.poll_once()
    state = json.loads((tmp_path / "state" / "logs-state.json").read_text())
    assert all(not cursor["seen"] for cursor in state["cursors"].values())
    assert value(scrape(running.url), "aws_vpn_exporter_log_events_unattributed_total") == 50
