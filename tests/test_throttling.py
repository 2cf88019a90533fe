"""EC2's request bucket, shared per account and region: the simulated AWS throttles as EC2 does, and a throttle
met by one source of the exporter pauses every EC2 call of that account and region (the other sources
included), exponentially up to a cap, until a call succeeds; other regions go on."""

import threading

import boto3
import botocore.config
import pytest
import requests
from botocore.exceptions import ClientError

from exporter.config import AwsSettings, Target
from exporter.demo import request_bucket
from exporter.sources.aws import Ec2Backoff
from tests.conftest import add_vpn_connection, scrape, tunnel_telemetry, value

REGIONS = ("us-east-1", "eu-west-1")
THROTTLED = "aws_vpn_exporter_aws_api_calls_total"


@pytest.fixture
def small_bucket(aws, monkeypatch):
    """EC2's bucket, small and barely refilled, so that a few calls reach it; refilled for the next test."""
    monkeypatch.setattr(request_bucket.buckets, "capacity", 12)
    monkeypatch.setattr(request_bucket.buckets, "refill", 0.001)
    request_bucket.buckets.reset()
    yield request_bucket.buckets
    request_bucket.buckets.reset()


def other_tool(region: str):
    """The customer's other tools, on the same account's bucket (one attempt per call, no retries)."""
    return boto3.client("ec2", region_name=region, config=botocore.config.Config(retries={"total_max_attempts": 1}))


def drain(region: str) -> None:
    client = other_tool(region)
    for _ in range(100):
        try:
            client.describe_vpn_connections()
        except ClientError as err:
            assert err.response["Error"]["Code"] == "RequestLimitExceeded"
            return
    raise AssertionError("never throttled")


def test_the_simulated_aws_throttles_describe_and_get_per_account_and_region(aws, small_bucket):
    client = other_tool("us-east-1")
    for _ in range(12):
        client.describe_vpn_connections()
    with pytest.raises(ClientError) as refused:
        client.describe_customer_gateways()
    assert refused.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    client.create_customer_gateway(Type="ipsec.1", PublicIp="203.0.113.9", BgpAsn=65009)  # another bucket
    other_tool("eu-west-1").describe_vpn_connections()  # another region's bucket is full
    assert small_bucket.throttled == 1
    requests.post(f"{aws}/moto-api/reset", timeout=10).raise_for_status()  # as each test's simulated AWS starts
    client.describe_vpn_connections()  # full again


def test_the_bucket_refills_at_its_rate():
    now = [0.0]
    buckets = request_bucket.TokenBuckets(capacity=100, refill=20.0, clock=lambda: now[0])
    assert sum(buckets.take(("1", "r")) for _ in range(150)) == 100  # the burst
    now[0] += 1.0
    assert sum(buckets.take(("1", "r")) for _ in range(150)) == 20  # a second's refill
    assert buckets.take(("2", "r")) and buckets.take(("1", "other"))


def test_the_backoff_doubles_to_a_cap_and_ends_on_success():
    now = [0.0]
    slept = []
    backoff = Ec2Backoff(clock=lambda: now[0], sleep=slept.append)
    assert backoff.remaining("r") == 0
    pauses = []
    for _ in range(7):
        backoff.throttled("r")
        pauses.append(backoff.remaining("r"))
    assert pauses == [1, 2, 4, 8, 16, 16, 16]  # doubled by each throttle, up to the cap
    backoff.wait("r")
    assert slept == [16] and backoff.remaining("other") == 0
    backoff.succeeded("r")
    assert backoff.remaining("r") == 0
    backoff.throttled("r")
    assert backoff.remaining("r") == 1  # the exponent starts again after a success


def test_the_backoff_is_thread_safe():
    """Sources throttled, succeeding and waiting at once in one account: no error, and the pause stays bounded."""
    backoff = Ec2Backoff(sleep=lambda seconds: None)
    errors = []

    def source(n: int) -> None:
        try:
            for i in range(2000):
                (backoff.throttled, backoff.wait, backoff.remaining, backoff.succeeded)[(i + n) % 4]("r")
                assert 0 <= backoff.remaining("r") <= Ec2Backoff.CAP
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=source, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    backoff.succeeded("r")
    assert backoff.remaining("r") == 0


def connections() -> None:
    for region in REGIONS:
        ips = ("198.51.100.1", "198.51.100.2")
        add_vpn_connection(
            region,
            [tunnel_telemetry(ip, "UP", "1 BGP ROUTES", 1) for ip in ips],
            {"StaticRoutesOnly": False, "TunnelOptions": [{"OutsideIpAddress": ip} for ip in ips]},
        )


def exporter_for_both_regions(make_exporter):
    exporter = make_exporter([Target(regions=REGIONS)], aws=AwsSettings(max_attempts=1))
    exporter.sources["tunnel_status"].poller.max_calls_per_second = 1000
    exporter.poll_once()
    account = exporter.sources["ec2"].poller._accounts[
        (exporter.sources["ec2"].accounts[0].target.credentials, REGIONS[0])
    ]
    return exporter, account


def test_a_throttled_tunnel_status_pass_pauses_the_ec2_polls_of_its_region_only(small_bucket, make_exporter):
    connections()
    exporter, account = exporter_for_both_regions(make_exporter)
    drain("us-east-1")  # the customer's other tools spent the bucket
    exporter.poll("tunnel_status")  # throttled at its first call in us-east-1
    assert account.backoff.remaining("us-east-1") > 0 and account.backoff.remaining("eu-west-1") == 0
    account.backoff.sleep = lambda seconds: None  # the wait is counted, not slept
    exporter.poll("ec2")
    assert set(account.backoff.waited) == {"us-east-1"}  # the EC2 poll waited there, and only there
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_collection_success", region="eu-west-1", source="ec2") == 1
    assert value(samples, "aws_vpn_exporter_collection_success", region="eu-west-1", source="tunnel_status") == 1
    assert value(samples, "aws_vpn_exporter_collection_success", region="us-east-1", source="tunnel_status") == 0
    assert (
        value(samples, THROTTLED, region="us-east-1", operation="GetVpnTunnelReplacementStatus", outcome="throttled")
        == 1
    )  # the throttle is counted where it happened


def test_a_throttled_ec2_poll_pauses_the_tunnel_status_pass_of_its_region_only(small_bucket, make_exporter):
    connections()
    exporter, account = exporter_for_both_regions(make_exporter)
    drain("us-east-1")
    exporter.poll("ec2")  # throttled in us-east-1
    assert account.backoff.remaining("us-east-1") > 0
    slept = []
    exporter.sources["tunnel_status"].poller._sleep = slept.append  # the pass's own (interruptible) sleep, recorded
    exporter.poll("tunnel_status")
    pauses = [seconds for seconds in slept if seconds > 0.1]  # the rest is the 1 ms spacing of the ceiling
    assert len(pauses) == 1 and pauses[0] <= Ec2Backoff.FIRST  # us-east-1 waited once, eu-west-1 never did
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_collection_success", region="eu-west-1", source="tunnel_status") == 1
    assert value(samples, THROTTLED, region="us-east-1", operation="DescribeVpnConnections", outcome="throttled") == 1


def test_a_success_ends_the_pause(small_bucket, make_exporter):
    connections()
    exporter, account = exporter_for_both_regions(make_exporter)
    drain("us-east-1")
    exporter.poll("ec2")
    assert account.backoff.remaining("us-east-1") > 0
    small_bucket.reset()  # the bucket refilled
    account.backoff.sleep = lambda seconds: None
    exporter.poll("ec2")
    assert account.backoff.remaining("us-east-1") == 0
