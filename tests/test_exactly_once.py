"""Exactly once, for real: against a slow CloudWatch Logs (a delay on every FilterLogEvents page, through the
real boto3 path), N events in are N counted, when a read outlives its poll interval, across SIGTERM in the
middle of a catch-up, and across kill -9."""

import json
import signal
import time

import boto3
import pytest

from exporter.config import LogsConfig, Target
from exporter.demo.tunnel_logs import stream_name
from tests.conftest import scrape, value
from tests.faults import Fault
from tests.services import free_port, stop_within, wait_until
from tests.test_logs import GROUP, IP, REGION, logged_vpn
from tests.test_shutdown import events, start


def write_dpd(vpn, count, span_seconds, batch=2000):
    """``count`` DPD events in the tunnel's IKE stream, spread evenly over ``span_seconds`` (longer than
    the overlap window, so a reader that re-reads what it already pruned would count twice)."""
    logs = boto3.client("logs", region_name=REGION)
    stream = stream_name(vpn, IP, "ike")
    logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    end = int(time.time() * 1000) - 5_000
    step = span_seconds * 1000 // count
    message = json.dumps(
        {
            "event_timestamp": 1,
            "details": "AWS tunnel is sending DPD R-U-THERE",
            "ike_phase1_state": "established",
            "ike_phase2_state": "established",
        }
    )
    for offset in range(0, count, batch):
        logs.put_log_events(
            logGroupName=GROUP,
            logStreamName=stream,
            logEvents=[
                {"timestamp": end - (count - i) * step, "message": message}
                for i in range(offset, min(count, offset + batch))
            ],
        )


@pytest.mark.parametrize("page_delay", [0.1, 0.4])
def test_a_read_longer_than_its_interval_is_never_overlapped(aws, faults, make_exporter, tmp_path, page_delay):
    """Ten slow pages take several poll intervals; the polls meanwhile leave the region to its one reader."""
    vpn = logged_vpn(bgp=False)
    write_dpd(vpn, 200, span_seconds=600)
    faults.faults.append(Fault(operation="FilterLogEvents", delay=page_delay))
    exporter = make_exporter(
        [Target(regions=(REGION,))],
        state_dir=tmp_path / "state",
        logs=LogsConfig(lookback=3600.0, overlap=30.0, poll_interval=0.5),
    )
    exporter.sources["logs"].ingestor._page_size = 20
    exporter.poll("ec2")
    seen_busy = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        exporter.poll("logs")  # returns after its 0.5 s interval; the read goes on in the background
        samples = scrape(exporter.url)
        seen_busy |= value(samples, "aws_vpn_exporter_collection_success", source="logs") == 0
        if value(samples, "aws_vpn_tunnel_log_events_total", vpn_connection_id=vpn, event="dpd") == 200:
            break
    for _ in range(4):  # more polls re-read the overlap window, now at full speed
        exporter.poll("logs")
        time.sleep(page_delay)
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_tunnel_log_events_total", vpn_connection_id=vpn, event="dpd") == 200
    assert value(samples, "aws_vpn_exporter_log_events_ingested_total", log="ike") == 200
    assert seen_busy  # the slow read was reported as behind while it ran


@pytest.mark.parametrize("stop", ["sigterm", "kill"])
def test_a_catch_up_cut_by_sigterm_or_kill_resumes_exactly(aws, faults, tmp_path, stop):
    """30,000 events in three pages of 10,000, each page slow; the exporter is stopped after the first."""
    vpn = logged_vpn(bgp=False)
    write_dpd(vpn, 30_000, span_seconds=1800)  # half an hour: six times the 300 s overlap window
    faults.faults.append(Fault(operation="FilterLogEvents", delay=2.0))
    config = tmp_path / "config.yaml"
    config.write_text(
        f"poll_interval: 2s\ntargets:\n  - regions: [us-east-1]\nlogs:\n  poll_interval: 1s\n"
        f"state_dir: {tmp_path / 'state'}\n"
    )
    port = free_port()
    first = start(config, port)
    try:
        wait_until(lambda: (events(port, vpn) or 0) >= 10_000, 90, "the first page to be counted")
        assert events(port, vpn) < 30_000  # mid-catch-up
        if stop == "sigterm":
            code, errors = stop_within(first, 10)
            assert code == 0, errors
        else:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    second = start(config, port)
    try:
        wait_until(lambda: events(port, vpn) == 30_000, 120, "the restarted exporter to count 30,000")
        time.sleep(4)  # more log polls re-read the overlap window
        assert events(port, vpn) == 30_000
    finally:
        stop_within(second, 10)
