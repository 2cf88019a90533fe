"""Log ingestion through moto's CloudWatch Logs over HTTP: incremental, exactly once, across restarts."""

import json
import time

import boto3

from exporter.config import LogsConfig, Target
from exporter.demo.tunnel_logs import stream_name
from tests.conftest import add_vpn_connection, scrape, series, tunnel_telemetry, value

REGION = "us-east-1"
GROUP = "/vpn/ike"
BGP_GROUP = "/vpn/bgp"
IP = "198.51.100.1"


def logged_vpn(ike_format="json", bgp=True, group=GROUP):
    """A dynamic connection whose one tunnel logs IKE (and BGP) to CloudWatch; as on AWS, its streams
    appear only with their first event (``put``)."""
    arn = f"arn:aws:logs:{REGION}:123456789012:log-group:"
    options = {
        "StaticRoutesOnly": False,
        "LocalIpv4NetworkCidr": "0.0.0.0/0",
        "RemoteIpv4NetworkCidr": "0.0.0.0/0",
        "TunnelOptions": [
            {
                "OutsideIpAddress": IP,
                "TunnelInsideCidr": "169.254.9.0/30",
                "LogOptions": {
                    "CloudWatchLogOptions": {
                        "LogEnabled": True,
                        "LogGroupArn": arn + group + ":*",
                        "LogOutputFormat": ike_format,
                        "BgpLogEnabled": bgp,
                        "BgpLogGroupArn": arn + BGP_GROUP,
                        "BgpLogOutputFormat": "json",
                    }
                },
            }
        ],
    }
    vpn = add_vpn_connection(REGION, [tunnel_telemetry(IP, "DOWN", "IPSEC IS UP")], options)
    logs = boto3.client("logs", region_name=REGION)
    for name in (group, BGP_GROUP):
        if name not in {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}:
            logs.create_log_group(logGroupName=name)
    return vpn


def put(vpn, messages, kind="ike", at_ms=None, group=None, ip=IP, stream=None):
    """Write events as AWS does: the stream is created with its first event."""
    at_ms = at_ms if at_ms is not None else int(time.time() * 1000)
    logs = boto3.client("logs", region_name=REGION)
    group = group or (GROUP if kind == "ike" else BGP_GROUP)
    stream = stream or stream_name(vpn, ip, kind)
    if not logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": at_ms + index, "message": m} for index, m in enumerate(messages)],
    )


def dpd(n):
    return [
        json.dumps(
            {
                "event_timestamp": 1,
                "details": f"AWS tunnel is sending DPD R-U-THERE {i}",
                "dpd_enabled": True,
                "nat_t_detected": False,
                "ike_phase1_state": "established",
                "ike_phase2_state": "established",
            }
        )
        for i in range(n)
    ]


def events(samples, vpn, event="dpd"):
    return value(samples, "aws_vpn_tunnel_log_events_total", vpn_connection_id=vpn, event=event)


def make(make_exporter, tmp_path, **logs):
    return make_exporter(
        [Target(regions=(REGION,))],
        state_dir=tmp_path / "state",
        logs=LogsConfig(**{"lookback": 3600.0, "overlap": 300.0, **logs}),
    )


def test_each_event_is_counted_once_across_polls(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    put(vpn, dpd(5))
    exporter = make(make_exporter, tmp_path)
    exporter.poll_once()
    assert events(scrape(exporter.url), vpn) == 5
    put(vpn, dpd(3))
    exporter.poll_once()
    exporter.poll_once()  # nothing new: the overlap re-reads, dedup drops
    samples = scrape(exporter.url)
    assert events(samples, vpn) == 8
    assert value(samples, "aws_vpn_exporter_log_events_ingested_total", log="ike") == 8
    assert value(samples, "aws_vpn_exporter_log_events_duplicate_total") >= 8
    assert value(samples, "aws_vpn_exporter_collection_success", source="logs") == 1
    assert value(samples, "aws_vpn_tunnel_dpd_enabled", vpn_connection_id=vpn) == 1
    assert value(samples, "aws_vpn_tunnel_ike_phase_state", vpn_connection_id=vpn, phase="2", state="established") == 1
    assert value(samples, "aws_vpn_tunnel_ike_phase_state", vpn_connection_id=vpn, phase="2", state="down") is None


def test_a_late_event_inside_the_overlap_is_counted_once(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    put(vpn, dpd(2))
    exporter = make(make_exporter, tmp_path)
    exporter.poll_once()
    put(vpn, dpd(1), at_ms=int(time.time() * 1000) - 120_000)  # delivered late: two minutes old
    exporter.poll_once()
    exporter.poll_once()
    assert events(scrape(exporter.url), vpn) == 3


def test_restart_loses_nothing_and_counts_nothing_twice(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    put(vpn, dpd(4))
    first = make(make_exporter, tmp_path)
    first.poll_once()
    first.stop()  # SIGTERM path: state saved
    put(vpn, dpd(2))
    second = make(make_exporter, tmp_path)
    second.poll_once()
    samples = scrape(second.url)
    assert events(samples, vpn) == 6  # restored 4, re-read overlap deduplicated, 2 new
    assert value(samples, "aws_vpn_exporter_log_events_ingested_total", log="ike") == 2


def test_a_crash_after_a_poll_loses_nothing(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    put(vpn, dpd(3))
    crashed = make(make_exporter, tmp_path)
    crashed.poll_once()  # saved at the end of the poll; never stopped
    put(vpn, dpd(1))
    survivor = make(make_exporter, tmp_path)
    survivor.poll_once()
    assert events(scrape(survivor.url), vpn) == 4


def test_first_read_goes_back_lookback_only(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    put(vpn, dpd(2), at_ms=int(time.time() * 1000) - 2 * 3600_000)
    put(vpn, dpd(1))
    exporter = make(make_exporter, tmp_path, lookback=3600.0)
    exporter.poll_once()
    assert events(scrape(exporter.url), vpn) == 1


def test_pages_are_followed_and_a_page_budget_resumes_next_poll(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    base = int(time.time() * 1000) - 60_000
    for batch in range(5):
        put(vpn, dpd(10), at_ms=base + batch * 1000)
    exporter = make(make_exporter, tmp_path)
    exporter.sources["logs"].ingestor._page_size, exporter.sources["logs"].ingestor._max_pages = 7, 3
    exporter.poll_once()
    partial = events(scrape(exporter.url), vpn)
    assert partial == 21
    for _ in range(3):
        exporter.poll_once()
    assert events(scrape(exporter.url), vpn) == 50


def test_malformed_lines_are_counted_and_skipped(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    put(vpn, ["{not json", "[1,2]", '{"details": 7}'] + dpd(2))
    exporter = make(make_exporter, tmp_path)
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert events(samples, vpn) == 2
    assert value(samples, "aws_vpn_exporter_log_parse_errors_total", log="ike", reason="invalid_json") == 1
    assert value(samples, "aws_vpn_exporter_log_parse_errors_total", log="ike", reason="wrong_type") == 2
    assert value(samples, "aws_vpn_exporter_collection_success", source="logs") == 1


def test_text_format_and_bgp_logs(aws, make_exporter, tmp_path):
    vpn = logged_vpn(ike_format="text")
    put(
        vpn,
        [
            "2026-01-01 00:00:00.000Z nat_t_detected=true ike_phase1_state=established ike_phase2_state="
            "established AWS tunnel Phase 2 SA is established with inbound SPI: 0x1: outbound SPI: 0x2: traffic "
            "selectors: (AWS-side) 172.31.0.0/16 <=> (CGW-side) 10.0.0.0/16"
        ],
    )
    put(
        vpn,
        [
            json.dumps(
                {
                    "type": "BGPStatus",
                    "status": "DOWN",
                    "event_timestamp": 1767225600000,
                    "message": {
                        "details": "AWS-side peer BGP session state has changed from Established to Idle with neighbor x"
                    },
                }
            ),
            json.dumps(
                {
                    "type": "BGPStatus",
                    "status": "DOWN",
                    "event_timestamp": 1767225601000,
                    "message": {"details": "BGP notification sent: Hold Timer Expired"},
                }
            ),
        ],
        kind="bgp",
    )
    exporter = make(make_exporter, tmp_path)
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert (
        value(
            samples,
            "aws_vpn_tunnel_traffic_selector_info",
            vpn_connection_id=vpn,
            aws_side="172.31.0.0/16",
            cgw_side="10.0.0.0/16",
        )
        == 1
    )
    assert value(samples, "aws_vpn_tunnel_selector_mismatch", vpn_connection_id=vpn) == 1
    assert value(samples, "aws_vpn_tunnel_nat_t_detected", vpn_connection_id=vpn) == 1
    assert value(samples, "aws_vpn_tunnel_bgp_session_state", vpn_connection_id=vpn, state="idle") == 1
    assert (
        value(
            samples,
            "aws_vpn_tunnel_bgp_last_error_timestamp_seconds",
            vpn_connection_id=vpn,
            error="hold_timer_expired",
        )
        == 1767225601.0
    )
    assert (
        value(samples, "aws_vpn_tunnel_log_last_event_timestamp_seconds", vpn_connection_id=vpn, log="bgp")
        == 1767225601.0
    )


def test_a_corrupt_state_file_is_reported_and_replaced(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    put(vpn, dpd(2))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "logs-state.json").write_text('{"version": 1, "cursors": {"x": ')
    exporter = make(make_exporter, tmp_path)
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_state_file_errors_total") == 1
    assert events(samples, vpn) == 2
    assert len(list((tmp_path / "state").glob("logs-state.json.corrupt-*"))) == 1
    assert json.loads((tmp_path / "state" / "logs-state.json").read_text())["version"] == 1


def test_a_deleted_log_group_fails_only_its_source(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    put(vpn, dpd(1))
    put(
        vpn,
        [json.dumps({"type": "BGPStatus", "status": "UP", "message": {"details": "End-of-RIB received"}})],
        kind="bgp",
    )
    exporter = make(make_exporter, tmp_path)
    exporter.poll_once()
    boto3.client("logs", region_name=REGION).delete_log_group(logGroupName=GROUP)
    put(
        vpn,
        [json.dumps({"type": "BGPStatus", "status": "UP", "message": {"details": "End-of-RIB received"}})],
        kind="bgp",
    )
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_collection_success", source="logs") == 0
    assert value(samples, "aws_vpn_exporter_collection_success", source="ec2") == 1
    assert events(samples, vpn, "bgp_end_of_rib") == 2  # the other group kept being read
    assert events(samples, vpn) == 1


def test_only_known_tunnels_streams_are_read(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="vpn-unknown-203.0.113.9-IKE.log")
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="vpn-unknown-203.0.113.9-IKE.log",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": dpd(1)[0]}],
    )
    put(vpn, dpd(1))
    exporter = make(make_exporter, tmp_path)
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_log_events_ingested_total", log="ike") == 1


def test_the_demo_shows_the_seed_checks_in_its_logs(demo, make_exporter, tmp_path):
    exporter = make_exporter(demo.targets(), state_dir=tmp_path / "state")
    exporter.poll_once()
    samples = scrape(exporter.url)
    headline, healthy = demo.connection_id("branch-tokyo"), demo.connection_id("hq-core")
    accelerated, static = demo.connection_id("dc-accelerated"), demo.connection_id("legacy-static")
    assert value(samples, "aws_vpn_tunnel_selector_mismatch", vpn_connection_id=headline, tunnel="198.51.100.21") == 1
    assert (
        value(
            samples,
            "aws_vpn_tunnel_traffic_selector_info",
            vpn_connection_id=headline,
            tunnel="198.51.100.21",
            aws_side="172.31.0.0/16",
            cgw_side="10.0.0.0/16",
        )
        == 1
    )
    assert value(samples, "aws_vpn_tunnel_selector_mismatch", vpn_connection_id=healthy, tunnel="198.51.100.11") == 0
    assert value(samples, "aws_vpn_tunnel_nat_t_detected", vpn_connection_id=accelerated, tunnel="198.51.100.31") == 0
    assert (
        value(
            samples,
            "aws_vpn_tunnel_bgp_session_state",
            vpn_connection_id=healthy,
            tunnel="198.51.100.11",
            state="established",
        )
        == 1
    )
    assert (
        value(
            samples,
            "aws_vpn_tunnel_bgp_session_state",
            vpn_connection_id=headline,
            tunnel="198.51.100.21",
            state="active",
        )
        == 1
    )
    assert series(samples, "aws_vpn_tunnel_log_events_total", vpn_connection_id=static) == []
    flapping = demo.connection_id("partner-flapping")  # its tunnel .62 logs IKE in text format
    assert (
        value(
            samples,
            "aws_vpn_tunnel_ike_phase_state",
            vpn_connection_id=flapping,
            tunnel="198.51.100.62",
            phase="2",
            state="established",
        )
        == 1
    )
    # As on AWS, a tunnel that has not logged has no stream: not an error, and visible per tunnel.
    subsidiary = demo.connection_id("subsidiary-edge")
    assert (
        value(samples, "aws_vpn_tunnel_log_has_events", vpn_connection_id=subsidiary, tunnel="198.51.100.71", log="ike")
        == 0
    )
    assert (
        value(samples, "aws_vpn_tunnel_log_has_events", vpn_connection_id=subsidiary, tunnel="198.51.100.72", log="ike")
        == 1
    )
    assert (
        value(samples, "aws_vpn_tunnel_log_has_events", vpn_connection_id=subsidiary, tunnel="198.51.100.72", log="bgp")
        == 0
    )
    assert value(samples, "aws_vpn_tunnel_log_has_events", vpn_connection_id=static) is None  # logging off
    for account, region in (
        ("123456789012", "us-east-1"),
        ("123456789012", "eu-west-1"),
        ("210987654321", "us-east-1"),
    ):
        assert (
            value(samples, "aws_vpn_exporter_collection_success", account_id=account, region=region, source="logs") == 1
        )
