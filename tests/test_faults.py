"""Faults injected on the real boto3 path (a proxy in front of moto): each stays with its target,
the rest stays fresh, retries are bounded, nothing leaks, and everything recovers by itself."""

import threading
import time
import tracemalloc

from exporter.config import AwsSettings, LogsConfig, Target
from exporter.demo import strict_aws
from tests.conftest import add_vpn_connection, scrape, tunnel_telemetry, value
from tests.faults import Fault
from tests.test_logs import dpd, logged_vpn, put

EAST, WEST = "us-east-1", "eu-west-1"


def two_regions():
    east = add_vpn_connection(EAST, [tunnel_telemetry("1.1.1.1", "UP", "2 BGP ROUTES", 2)], {"StaticRoutesOnly": False})
    west = add_vpn_connection(WEST, [tunnel_telemetry("2.2.2.2", "UP", "3 BGP ROUTES", 3)], {"StaticRoutesOnly": False})
    return east, west


def ec2_success(samples, region):
    return value(samples, "aws_vpn_exporter_collection_success", region=region, source="ec2")


def test_server_errors_are_retried_boundedly_then_recovered(aws, faults, make_exporter):
    east, west = two_regions()
    exporter = make_exporter([Target(regions=(EAST, WEST))], aws=AwsSettings(max_attempts=3))
    exporter.poll_once()
    faults.faults.append(Fault(region=EAST, operation="DescribeVpnConnections", status=500, code="InternalError"))
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert (ec2_success(samples, EAST), ec2_success(samples, WEST)) == (0, 1)
    assert (
        value(
            samples,
            "aws_vpn_exporter_aws_api_calls_total",
            region=EAST,
            operation="DescribeVpnConnections",
            outcome="error",
        )
        == 3
    )  # bounded by aws.max_attempts
    assert value(samples, "aws_vpn_tunnel_accepted_routes", vpn_connection_id=east) == 2  # last value kept
    faults.faults.clear()
    exporter.poll_once()
    assert ec2_success(scrape(exporter.url), EAST) == 1


def test_a_hung_endpoint_times_out_without_delaying_the_others(aws, faults, make_exporter):
    two_regions()
    exporter = make_exporter(
        [Target(regions=(EAST, WEST))], aws=AwsSettings(max_attempts=2, connect_timeout=1, read_timeout=1)
    )
    faults.faults.append(Fault(region=EAST, operation="DescribeVpnConnections", delay=3))
    started = time.monotonic()
    exporter.poll_once()
    elapsed = time.monotonic() - started
    samples = scrape(exporter.url)
    assert (ec2_success(samples, EAST), ec2_success(samples, WEST)) == (0, 1)
    assert value(samples, "aws_vpn_exporter_collection_duration_seconds", region=WEST, source="ec2") < 1
    assert elapsed < 10, elapsed  # two 1 s attempts and a backoff, not 2 x 3 s


def test_expired_credentials_in_one_account_never_hide_another(aws, faults, make_exporter):
    two_regions()
    strict_aws.create_role("111111111111", "vpn", trusted="123456789012")  # the simulated STS checks, as AWS does
    exporter = make_exporter(
        [Target(regions=(EAST,)), Target(regions=(WEST,), role_arn="arn:aws:iam::111111111111:role/vpn")]
    )
    faults.faults.append(Fault(region=WEST, status=400, code="ExpiredToken"))
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_collection_success", account_id="111111111111", source="ec2") == 0
    assert value(samples, "aws_vpn_exporter_collection_success", account_id="123456789012", source="ec2") == 1
    faults.faults.clear()
    exporter.poll_once()
    assert (
        value(scrape(exporter.url), "aws_vpn_exporter_collection_success", account_id="111111111111", source="ec2") == 1
    )


def test_throttled_log_reads_fail_only_the_logs_source_and_lose_nothing(aws, faults, make_exporter, tmp_path):
    vpn = logged_vpn()
    put(vpn, dpd(3))
    exporter = make_exporter(
        [Target(regions=(EAST,))], aws=AwsSettings(max_attempts=2), logs=LogsConfig(lookback=3600.0, overlap=300.0)
    )
    faults.faults.append(Fault(operation="FilterLogEvents", status=400, code="ThrottlingException"))
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_collection_success", source="logs") == 0
    assert value(samples, "aws_vpn_exporter_collection_success", source="ec2") == 1
    assert (
        value(samples, "aws_vpn_exporter_aws_api_calls_total", operation="FilterLogEvents", outcome="throttled") == 4
    )  # 2 attempts x 2 log groups
    faults.faults.clear()
    put(vpn, dpd(2))
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_collection_success", source="logs") == 1
    assert value(samples, "aws_vpn_tunnel_log_events_total", vpn_connection_id=vpn, event="dpd") == 5


def test_no_thread_or_memory_leak_under_repeated_faults(aws, faults, make_exporter):
    two_regions()
    exporter = make_exporter([Target(regions=(EAST, WEST))], aws=AwsSettings(max_attempts=1))
    for _ in range(5):  # warm up: pools, clients, label sets
        exporter.poll_once()
        faults.faults[:] = [Fault(region=EAST, reset=True)]
        exporter.poll_once()
        faults.faults.clear()
    threads = threading.active_count()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for round_ in range(30):
            faults.faults[:] = [Fault(region=EAST, reset=True)] if round_ % 2 else []
            exporter.poll_once()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert threading.active_count() <= threads
    assert grown < 2 * 1024 * 1024, f"{grown} bytes retained after 30 polls"
    faults.faults.clear()
    exporter.poll_once()
    assert ec2_success(scrape(exporter.url), EAST) == 1


def test_an_aws_error_names_its_code_operation_endpoint_and_message(aws, faults, make_exporter, caplog):
    two_regions()
    exporter = make_exporter([Target(regions=(EAST, WEST))])
    faults.faults.append(Fault(region=WEST, operation="DescribeVpnConnections", code="UnauthorizedOperation"))
    exporter.poll_once()
    error = next(r.error for r in exporter.current.snapshot.results if r.region == WEST and r.source == "ec2")
    assert error == f"UnauthorizedOperation: DescribeVpnConnections at {faults.url}: injected fault"
    assert any(error in record.getMessage() for record in caplog.records)


def test_every_source_failing_is_said_once_and_so_is_the_recovery(aws, faults, make_exporter, caplog):
    caplog.set_level("INFO", logger="exporter")
    two_regions()
    exporter = make_exporter([Target(regions=(EAST, WEST))], aws=AwsSettings(max_attempts=1))
    faults.faults.append(Fault(status=403, code="AuthFailure"))
    for _ in range(2):
        exporter.poll_once()
    failing = [r.getMessage() for r in caplog.records if "every source failed" in r.getMessage()]
    assert len(failing) == 1 and f"ec2 unknown/{WEST}: AuthFailure: GetCallerIdentity at {faults.url}" in failing[0]
    faults.faults.clear()
    exporter.poll_once()
    assert any("collection works again" in r.getMessage() for r in caplog.records)
