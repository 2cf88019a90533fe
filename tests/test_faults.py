"""Faults injected on the real boto3 path (a proxy in front of moto): each stays with its target,
the rest stays fresh, retries are bounded, nothing leaks, and everything recovers by itself."""

import socket
import threading
import time
import tracemalloc

import pytest
import requests

from exporter.config import AwsSettings, LogsConfig, Target
from exporter.demo import strict_aws
from tests.conftest import add_vpn_connection, scrape, series, tunnel_telemetry, value
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
    # its AssumeRole (in WEST, its first region) is refused: the sts source fails, in place of EC2
    assert value(samples, "aws_vpn_exporter_collection_success", account_id="111111111111", source="sts") == 0
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
    assert error == (
        f"UnauthorizedOperation: DescribeVpnConnections at {faults.url}: injected fault; to fix: allow "
        "ec2:DescribeVpnConnections to the identity the exporter uses in this account; see the least-privilege IAM "
        "policy in docs/configuration.md"
    )
    assert any(error in record.getMessage() for record in caplog.records)


def test_every_source_failing_is_said_once_and_so_is_the_recovery(aws, faults, make_exporter, caplog):
    caplog.set_level("INFO", logger="exporter")
    two_regions()
    exporter = make_exporter([Target(regions=(EAST, WEST))], aws=AwsSettings(max_attempts=1))
    faults.faults.append(Fault(status=403, code="AuthFailure"))
    for _ in range(2):
        exporter.poll_once()
    failing = [r.getMessage() for r in caplog.records if "every source failed" in r.getMessage()]
    assert len(failing) == 1 and f"sts unknown/{WEST}: AuthFailure: GetCallerIdentity at {faults.url}" in failing[0]
    faults.faults.clear()
    exporter.poll_once()
    assert any("collection works again" in r.getMessage() for r in caplog.records)


# --- failures that say what to do (exporter/sources/failures.py) ---------------------------------------------------

POLICY = "least-privilege IAM policy"


def _failure(exporter, source):
    return next(r for r in exporter.current.snapshot.results if r.source == source and not r.success)


@pytest.mark.parametrize(
    ("operation", "code", "source", "action"),
    [
        ("DescribeVpnConnections", "UnauthorizedOperation", "ec2", "allow ec2:DescribeVpnConnections"),
        ("FilterLogEvents", "AccessDeniedException", "logs", "allow logs:FilterLogEvents"),
        (
            "GetVpnTunnelReplacementStatus",
            "UnauthorizedOperation",
            "tunnel_status",
            "ec2:GetVpnTunnelReplacementStatus",
        ),
        ("GetMetricData", "AccessDenied", "traffic", "allow cloudwatch:GetMetricData"),
    ],
)
def test_a_refused_call_names_the_iam_action_to_allow_and_the_policy(
    demo, faults, make_exporter, caplog, operation, code, source, action
):
    from exporter.cli import DEMO_TRAFFIC

    faults.faults.append(Fault(operation=operation, status=403, code=code))
    exporter = make_exporter(demo.targets(), traffic=DEMO_TRAFFIC)
    exporter.poll_once(every=True)
    error = _failure(exporter, source).error
    error = error.split(": ", 1)[1] if source == "logs" else error  # after the log groups' names
    assert error.startswith(f"{code}: {operation} at {faults.url}: injected fault; to fix: "), error
    assert action in error and POLICY in error, error
    assert any(error in record.getMessage() and f"source={source}" in record.getMessage() for record in caplog.records)
    exporter.poll(source)  # a source AWS refused is turned off (tunnel status, traffic): it still says why
    again = _failure(exporter, source).error
    assert action in again and POLICY in again, again


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "RequestExpired"])
def test_expired_credentials_say_to_renew_them(aws, faults, make_exporter, code):
    two_regions()
    exporter = make_exporter([Target(regions=(EAST,))], aws=AwsSettings(max_attempts=1))
    faults.faults.append(Fault(operation="DescribeVpnConnections", status=400, code=code))
    exporter.poll_once()
    error = _failure(exporter, "ec2").error
    assert error.startswith(f"{code}: DescribeVpnConnections") and "the credentials have expired: renew them" in error
    assert "instance or pod role" in error and ("NTP" in error) == (code == "RequestExpired")


def test_a_throttled_account_says_it_is_retried_and_what_to_lower(aws, faults, make_exporter):
    two_regions()
    exporter = make_exporter([Target(regions=(EAST,))], aws=AwsSettings(max_attempts=2))
    faults.faults.append(Fault(operation="DescribeVpnConnections", status=400, code="RequestLimitExceeded"))
    exporter.poll_once()
    error = _failure(exporter, "ec2").error
    assert "retried with backoff" in error and "lower max_concurrency" in error and "poll_interval" in error, error


@pytest.mark.parametrize(("service", "source"), [("EC2", "ec2"), ("STS", "sts")])
def test_an_unreachable_endpoint_names_its_host_and_the_endpoint_variables(
    aws, make_exporter, monkeypatch, service, source
):
    two_regions()
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", f"http://127.0.0.1:{port}")
    exporter = make_exporter([Target(regions=(EAST,))], aws=AwsSettings(max_attempts=1))
    exporter.poll_once()
    [result] = exporter.current.snapshot.results
    assert (result.source, result.success) == (source, False)
    assert result.error.startswith(f"EndpointConnectionError at http://127.0.0.1:{port}"), result.error
    assert "this host reaches 127.0.0.1" in result.error and "AWS_ENDPOINT_URL" in result.error


def test_a_role_that_cannot_be_assumed_is_the_sts_source_and_says_what_to_allow(aws, faults, make_exporter, caplog):
    add_vpn_connection(EAST, [tunnel_telemetry("1.1.1.1", "UP", "1 BGP ROUTES", 1)], {"StaticRoutesOnly": False})
    strict_aws.create_role("111111111111", "vpn", trusted="123456789012")  # the simulated STS checks, as AWS does
    faults.faults.append(Fault(operation="AssumeRole", status=403, code="AccessDenied"))
    exporter = make_exporter(
        [Target(regions=(EAST, WEST)), Target(regions=(EAST, WEST), role_arn="arn:aws:iam::111111111111:role/vpn")]
    )
    exporter.poll_once()
    samples = scrape(exporter.url)
    for region in (EAST, WEST):
        assert value(samples, "aws_vpn_exporter_collection_success", account_id="111111111111", region=region) == 0
        assert (
            value(
                samples, "aws_vpn_exporter_collection_success", account_id="111111111111", region=region, source="sts"
            )
            == 0
        )
    assert series(samples, "aws_vpn_exporter_collection_success", account_id="111111111111", source="ec2") == []
    assert (
        value(samples, "aws_vpn_exporter_collection_success", account_id="123456789012", region=EAST, source="ec2") == 1
    )
    error = _failure(exporter, "sts").error
    assert error.startswith("AccessDenied: AssumeRole") and "allow sts:AssumeRole on the target's role_arn" in error
    assert any("source=sts" in r.getMessage() and "sts:AssumeRole" in r.getMessage() for r in caplog.records)
    faults.faults.clear()
    exporter.poll_once()  # the role works again: the account is the ec2 source once more, and sts is gone
    samples = scrape(exporter.url)
    assert (
        value(samples, "aws_vpn_exporter_collection_success", account_id="111111111111", region=EAST, source="ec2") == 1
    )
    assert series(samples, "aws_vpn_exporter_collection_success", source="sts") == []


def test_a_failing_get_caller_identity_is_the_sts_source(aws, faults, make_exporter):
    two_regions()
    faults.faults.append(Fault(operation="GetCallerIdentity", status=403, code="AccessDenied"))
    exporter = make_exporter([Target(regions=(EAST,))], aws=AwsSettings(max_attempts=1))
    exporter.poll_once()
    [result] = exporter.current.snapshot.results
    assert (result.source, result.success) == ("sts", False)
    assert "allow sts:GetCallerIdentity" in result.error


@pytest.fixture
def no_credentials(aws, monkeypatch):
    """An environment with no credentials anywhere in botocore's chain."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    for key in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(key, raising=False)
    for key in ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.parametrize("role", [None, "arn:aws:iam::111111111111:role/vpn"])
def test_no_credentials_say_what_to_set_in_the_log_and_the_result(no_credentials, make_exporter, caplog, role):
    exporter = make_exporter([Target(regions=(EAST,), role_arn=role)], aws=AwsSettings(max_attempts=1))
    exporter.poll_once()
    [result] = exporter.current.snapshot.results
    assert (result.source, result.success) == ("sts", False)
    assert result.error.startswith("no AWS credentials (NoCredentialsError)"), result.error
    for what in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", "instance or pod role", "role_arn"):
        assert what in result.error
    assert any(result.error in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    page = requests.get(f"{exporter.url}/", timeout=10).text  # the status page's banner says it too
    assert "no AWS credentials" in page and "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in page


@pytest.mark.parametrize(
    ("operation", "code", "action"),
    [
        ("ListAccounts", "AccessDeniedException", "allow organizations:ListAccounts"),
        ("AssumeRole", "AccessDenied", "allow sts:AssumeRole on the target's role_arn"),
        ("DescribeRegions", "UnauthorizedOperation", "allow ec2:DescribeRegions"),
        ("GetActiveVpnTunnelStatus", "UnauthorizedOperation", "allow ec2:GetActiveVpnTunnelStatus"),
        ("DescribeVpnConnections", "AuthFailure", "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
    ],
)
def test_each_refusal_without_a_noted_service_still_names_its_iam_action(operation, code, action):
    from botocore.exceptions import ClientError

    from exporter.sources.aws import describe_error

    described = describe_error(ClientError({"Error": {"Code": code, "Message": "no"}}, operation))
    assert described.startswith(f"{code}: {operation}: no; to fix: ") and action in described, described


def test_a_description_is_bounded_and_redacted_whatever_aws_sends():
    from botocore.exceptions import ClientError

    from exporter.sources.aws import describe_error

    response = {
        "Error": {"Code": "AccessDenied" + "x" * 10_000, "Message": "PreSharedKey=abcdefgh12345678 " * 1000},
        "EndpointUrl": "https://" + "e" * 10_000,
    }
    described = describe_error(ClientError(response, "DescribeVpnConnections"))
    assert len(described) <= 800 and "abcdefgh12345678" not in described and "\n" not in described
