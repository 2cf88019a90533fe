"""Polling through real boto3 over HTTP to moto: the metric contract, isolation, and series lifecycle."""

import boto3

from exporter.config import LogsConfig, Target, TunnelStatusConfig
from exporter.sources.aws import AwsAccount
from tests.conftest import add_vpn_connection, scrape, series, tunnel_telemetry, value
from tests.faults import Fault

ACCOUNT = "123456789012"


def by_name(demo, samples, name):
    """The connection id of a demo connection, checked against its Name tag in the info metric."""
    vpn_id = demo.connection_id(name)
    assert value(samples, "aws_vpn_connection_info", vpn_connection_id=vpn_id, name=name) == 1
    return vpn_id


def test_every_seed_case_of_the_demo(demo, make_exporter):
    exporter = make_exporter(demo.targets())
    exporter.poll_once()
    samples = scrape(exporter.url)

    healthy = by_name(demo, samples, "hq-core")
    for ip in ("198.51.100.11", "198.51.100.12"):
        labels = dict(account_id=ACCOUNT, region="us-east-1", vpn_connection_id=healthy, tunnel=ip)
        assert [
            value(samples, m, **labels)
            for m in (
                "aws_vpn_tunnel_up",
                "aws_vpn_tunnel_ipsec_up",
                "aws_vpn_tunnel_bgp_up",
                "aws_vpn_tunnel_accepted_routes",
            )
        ] == [1, 1, 1, 12]

    headline = by_name(demo, samples, "branch-tokyo")
    labels = dict(vpn_connection_id=headline, tunnel="198.51.100.21")
    assert (
        value(samples, "aws_vpn_tunnel_up", **labels),
        value(samples, "aws_vpn_tunnel_ipsec_up", **labels),
        value(samples, "aws_vpn_tunnel_bgp_up", **labels),
    ) == (0, 1, 0)
    assert value(samples, "aws_vpn_tunnel_info", status_message="ipsec_up", **labels) == 1

    static = by_name(demo, samples, "legacy-static")
    assert series(samples, "aws_vpn_tunnel_bgp_up", vpn_connection_id=static) == []
    assert value(samples, "aws_vpn_tunnel_ipsec_up", vpn_connection_id=static, tunnel="198.51.100.41") == 1
    assert value(samples, "aws_vpn_connection_info", vpn_connection_id=static, routing="static") == 1
    assert (
        value(samples, "aws_vpn_tunnel_log_enabled", vpn_connection_id=static, tunnel="198.51.100.41", log="ike") == 0
    )

    accelerated = by_name(demo, samples, "dc-accelerated")
    assert (
        value(samples, "aws_vpn_connection_info", vpn_connection_id=accelerated, accelerated="true", gateway_type="tgw")
        == 1
    )

    down = by_name(demo, samples, "lab-down")
    assert [
        value(samples, "aws_vpn_tunnel_ipsec_up", vpn_connection_id=down, tunnel=ip)
        for ip in ("198.51.100.51", "198.51.100.52")
    ] == [0, 0]

    other_account = by_name(demo, samples, "subsidiary-edge")
    assert (
        value(
            samples,
            "aws_vpn_tunnel_up",
            account_id="210987654321",
            vpn_connection_id=other_account,
            tunnel="198.51.100.72",
        )
        == 0
    )

    assert value(samples, "aws_vpn_customer_gateway_info", name="branch-tokyo-cgw", bgp_asn="65020") == 1
    for account, region in ((ACCOUNT, "us-east-1"), (ACCOUNT, "eu-west-1"), ("210987654321", "us-east-1")):
        assert (
            value(samples, "aws_vpn_exporter_collection_success", account_id=account, region=region, source="ec2") == 1
        )


def test_metric_contract_label_sets(demo, make_exporter):
    exporter = make_exporter(demo.targets())
    exporter.poll_once()
    samples = scrape(exporter.url)
    tunnel = {"account_id", "region", "vpn_connection_id", "tunnel"}
    for name in (
        "aws_vpn_tunnel_up",
        "aws_vpn_tunnel_ipsec_up",
        "aws_vpn_tunnel_bgp_up",
        "aws_vpn_tunnel_accepted_routes",
        "aws_vpn_tunnel_last_status_change_timestamp_seconds",
    ):
        found = series(samples, name)
        assert found and all(set(labels) == tunnel for labels in found), name
    info = series(samples, "aws_vpn_connection_info")
    assert len(info) == 9
    assert all(
        set(labels)
        == {
            "account_id",
            "region",
            "vpn_connection_id",
            "name",
            "state",
            "routing",
            "gateway_type",
            "gateway_id",
            "customer_gateway_id",
            "accelerated",
        }
        for labels in info
    )
    assert {labels["source"] for labels in series(samples, "aws_vpn_exporter_collection_success")} == {"ec2", "logs"}
    assert value(samples, "aws_vpn_exporter_snapshot_age_seconds") >= 0


def test_deleted_and_vanished_lose_their_series_at_the_next_poll(aws, make_exporter):
    keep = add_vpn_connection(
        "us-east-1",
        [tunnel_telemetry("1.1.1.1", "UP", "1 BGP ROUTES", 1), tunnel_telemetry("1.1.1.2", "UP", "1 BGP ROUTES", 1)],
        {"StaticRoutesOnly": False},
        name="keep",
    )
    gone = add_vpn_connection(
        "us-east-1", [tunnel_telemetry("2.2.2.1", "UP", "1 BGP ROUTES", 1)], {"StaticRoutesOnly": False}, name="gone"
    )
    exporter = make_exporter([Target(regions=("us-east-1",))])
    exporter.poll_once()
    before = scrape(exporter.url)
    assert value(before, "aws_vpn_tunnel_up", vpn_connection_id=gone) == 1
    assert len(series(before, "aws_vpn_tunnel_up", vpn_connection_id=keep)) == 2

    boto3.client("ec2", region_name="us-east-1").delete_vpn_connection(VpnConnectionId=gone)
    from moto.ec2.models import ec2_backends

    ec2_backends[ACCOUNT]["us-east-1"].vpn_connections[keep].vgw_telemetry = [
        tunnel_telemetry("1.1.1.1", "UP", "1 BGP ROUTES", 1)
    ]
    exporter.poll_once()
    after = scrape(exporter.url)
    assert not [k for k in after if dict(k[1]).get("vpn_connection_id") == gone]
    assert [s["tunnel"] for s in series(after, "aws_vpn_tunnel_up", vpn_connection_id=keep)] == ["1.1.1.1"]


def test_a_failing_region_keeps_its_last_values_and_never_hides_the_others(aws, faults, make_exporter):
    east = add_vpn_connection(
        "us-east-1", [tunnel_telemetry("1.1.1.1", "UP", "3 BGP ROUTES", 3)], {"StaticRoutesOnly": False}
    )
    west = add_vpn_connection(
        "eu-west-1", [tunnel_telemetry("3.3.3.3", "DOWN", "IPSEC IS UP")], {"StaticRoutesOnly": False}
    )
    exporter = make_exporter([Target(regions=("us-east-1", "eu-west-1"))])
    exporter.poll_once()
    first = scrape(exporter.url)
    west_success = value(first, "aws_vpn_exporter_last_success_timestamp_seconds", region="eu-west-1", source="ec2")

    faults.faults.append(
        Fault(region="eu-west-1", operation="DescribeVpnConnections", status=403, code="UnauthorizedOperation")
    )
    exporter.poll_once()
    failed = scrape(exporter.url)
    assert value(failed, "aws_vpn_exporter_collection_success", region="eu-west-1", source="ec2") == 0
    assert value(failed, "aws_vpn_exporter_collection_success", region="us-east-1", source="ec2") == 1
    assert value(failed, "aws_vpn_tunnel_ipsec_up", vpn_connection_id=west) == 1  # last known value kept
    assert (
        value(failed, "aws_vpn_exporter_last_success_timestamp_seconds", region="eu-west-1", source="ec2")
        == west_success
    )
    assert value(failed, "aws_vpn_tunnel_up", vpn_connection_id=east) == 1
    assert (
        value(
            failed,
            "aws_vpn_exporter_aws_api_calls_total",
            region="eu-west-1",
            operation="DescribeVpnConnections",
            outcome="error",
        )
        == 1
    )

    faults.faults.clear()
    exporter.poll_once()
    recovered = scrape(exporter.url)
    assert value(recovered, "aws_vpn_exporter_collection_success", region="eu-west-1", source="ec2") == 1
    assert (
        value(recovered, "aws_vpn_exporter_last_success_timestamp_seconds", region="eu-west-1", source="ec2")
        > west_success
    )


def test_a_region_that_never_succeeded_is_marked_failed(aws, faults, make_exporter):
    add_vpn_connection("us-east-1", [tunnel_telemetry("1.1.1.1", "UP", "1 BGP ROUTES", 1)], {"StaticRoutesOnly": False})
    faults.faults.append(Fault(region="eu-west-1", operation="DescribeVpnConnections", reset=True))
    exporter = make_exporter([Target(regions=("us-east-1", "eu-west-1"))])
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_collection_success", region="eu-west-1", source="ec2") == 0
    assert value(samples, "aws_vpn_exporter_last_success_timestamp_seconds", region="eu-west-1", source="ec2") is None
    assert value(samples, "aws_vpn_exporter_collection_success", region="us-east-1", source="ec2") == 1
    assert value(samples, "aws_vpn_exporter_aws_api_calls_total", region="eu-west-1", outcome="error") == 4


def test_throttling_is_retried_boundedly_and_counted(aws, faults, make_exporter):
    faults.faults.append(
        Fault(region="us-east-1", operation="DescribeVpnConnections", status=503, code="RequestLimitExceeded")
    )
    exporter = make_exporter([Target(regions=("us-east-1",))])
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_collection_success", region="us-east-1", source="ec2") == 0
    assert (
        value(samples, "aws_vpn_exporter_aws_api_calls_total", operation="DescribeVpnConnections", outcome="throttled")
        == 4
    )


def test_an_account_whose_role_fails_never_hides_another(aws, faults, make_exporter):
    add_vpn_connection("us-east-1", [tunnel_telemetry("1.1.1.1", "UP", "1 BGP ROUTES", 1)], {"StaticRoutesOnly": False})
    faults.faults.append(Fault(operation="AssumeRole", status=403, code="AccessDenied"))
    exporter = make_exporter(
        [Target(regions=("us-east-1",)), Target(regions=("us-east-1",), role_arn="arn:aws:iam::111111111111:role/vpn")]
    )
    exporter.poll_once()
    samples = scrape(exporter.url)
    # the role's failure is the account's sts source (its credentials), in place of its EC2 poll
    assert value(samples, "aws_vpn_exporter_collection_success", account_id="111111111111", source="sts") == 0
    assert value(samples, "aws_vpn_exporter_collection_success", account_id=ACCOUNT, source="ec2") == 1
    assert value(samples, "aws_vpn_tunnel_up", account_id=ACCOUNT) == 1


def test_api_calls_per_poll_and_none_per_scrape(aws, faults, make_exporter):
    add_vpn_connection("us-east-1", [tunnel_telemetry("1.1.1.1", "UP", "1 BGP ROUTES", 1)], {"StaticRoutesOnly": False})
    add_vpn_connection("eu-west-1", [tunnel_telemetry("2.2.2.2", "UP", "1 BGP ROUTES", 1)], {"StaticRoutesOnly": False})
    exporter = make_exporter([Target(regions=("us-east-1", "eu-west-1"))])
    exporter.poll_once()
    first = sorted(faults.requests)
    assert first.count(("us-east-1", "GetCallerIdentity")) == 1
    assert [r for r in first if r[1] == "DescribeVpnConnections"] == [
        ("eu-west-1", "DescribeVpnConnections"),
        ("us-east-1", "DescribeVpnConnections"),
    ]
    faults.requests.clear()
    exporter.poll_once()
    assert sorted(faults.requests) == [("eu-west-1", "DescribeVpnConnections"), ("us-east-1", "DescribeVpnConnections")]
    faults.requests.clear()
    for _ in range(5):
        scrape(exporter.url)
    assert faults.requests == []


def test_unrecognised_values_are_counted(aws, make_exporter):
    vpn = add_vpn_connection(
        "us-east-1", [tunnel_telemetry("1.1.1.1", "DEGRADED", "NEW MESSAGE")], {"StaticRoutesOnly": False}
    )
    exporter = make_exporter([Target(regions=("us-east-1",))])
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_unrecognized_values_total", field="status") == 1
    assert value(samples, "aws_vpn_exporter_unrecognized_values_total", field="status_message") == 1
    assert value(samples, "aws_vpn_tunnel_up", vpn_connection_id=vpn) is None
    assert value(samples, "aws_vpn_tunnel_info", vpn_connection_id=vpn, status="unknown") == 1


def test_missing_options_still_yield_the_tunnel(aws, make_exporter):
    vpn = add_vpn_connection("us-east-1", [tunnel_telemetry("1.1.1.1", "DOWN", "IPSEC IS UP")], None)
    exporter = make_exporter([Target(regions=("us-east-1",))])
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_connection_info", vpn_connection_id=vpn, routing="unknown") == 1
    assert value(samples, "aws_vpn_tunnel_ipsec_up", vpn_connection_id=vpn) == 1
    assert value(samples, "aws_vpn_tunnel_bgp_up", vpn_connection_id=vpn) is None


def test_accounts_share_one_botocore_data_loader():
    """Each loader caches EC2's service model (~38 MiB): one per account would cost that per account."""
    accounts = [
        AwsAccount(Target(regions=("us-east-1",), role_arn=f"arn:aws:iam::{n:012d}:role/vpn"), lambda *_: None)
        for n in (111111111111, 222222222222)
    ] + [AwsAccount(Target(regions=("eu-west-1",)), lambda *_: None)]
    loaders = {id(account.client("ec2", account.target.regions[0])._loader) for account in accounts}
    assert len(loaders) == 1


def test_clients_of_a_service_share_one_class_and_one_model():
    """botocore builds each client's class and service model anew: 1.4 MiB per EC2 client, 1.1 GiB for 200
    accounts x 4 regions. The exporter shares them (sources/aws.py); this fails if botocore stops letting it."""
    accounts = [
        AwsAccount(Target(regions=("us-east-1",), role_arn=f"arn:aws:iam::{n:012d}:role/vpn"), lambda *_: None)
        for n in (111111111111, 222222222222)
    ]
    clients = [account.client("ec2", region) for account in accounts for region in ("us-east-1", "eu-west-1")]
    assert len({type(client) for client in clients}) == 1
    assert len({id(client.meta.service_model) for client in clients}) == 1
    assert len({client.meta.region_name for client in clients}) == 2  # still one client per region


def test_allowlisted_connection_tags_become_bounded_labels_on_connection_info(aws, make_exporter):
    """connection_tags: chosen tag keys become tag_<key> labels (sanitised), "" where a connection lacks the tag,
    a long value cut and counted; other tags are not read."""
    from moto.ec2.models import ec2_backends

    tagged = add_vpn_connection("eu-west-1", [tunnel_telemetry("198.51.100.1", "UP", "1 BGP ROUTES", 1)])
    plain = add_vpn_connection("eu-west-1", [tunnel_telemetry("198.51.100.2", "UP", "1 BGP ROUTES", 1)])
    ec2_backends[ACCOUNT]["eu-west-1"].vpn_connections[tagged].add_tags(
        {"Team": "network", "cost-center": "x" * 300, "Secret": "not exported"}
    )
    exporter = make_exporter([Target(regions=("eu-west-1",))], connection_tags=("Team", "cost-center"))
    exporter.poll_once()
    samples = scrape(exporter.url)
    info = {labels["vpn_connection_id"]: labels for labels in series(samples, "aws_vpn_connection_info")}
    assert info[tagged]["tag_team"] == "network" and info[tagged]["tag_cost_center"] == "x" * 256
    assert info[plain]["tag_team"] == "" and info[plain]["tag_cost_center"] == ""
    assert not any("secret" in name.lower() for labels in info.values() for name in labels)
    assert value(samples, "aws_vpn_exporter_unrecognized_values_total", field="tag_value_too_long") == 1


def test_regions_still_queued_when_a_poll_times_out_are_not_asked_after_it(aws, faults, make_exporter):
    """At scale (3,000 discovered pairs, 16 workers) the first poll outlasts poll_timeout with most pairs still
    queued: those are given up (marked failed) and must not be asked after all, their answers thrown away, while the
    next poll asks them again behind them and the logs and traffic passes wait in the same pool."""
    regions = ("us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2")
    faults.faults.append(Fault(operation="DescribeVpnConnections", delay=1.5))  # each answer outlasts the poll
    exporter = make_exporter(
        [Target(regions=regions)],
        poll_timeout=1.0,
        max_concurrency=1,
        logs=LogsConfig(enabled=False),
        tunnel_status=TunnelStatusConfig(enabled=False),
    )
    exporter.poll("ec2")
    exporter._executor.shutdown(wait=True)  # whatever the poll left in the pool runs to its end
    samples = scrape(exporter.url)
    assert all(value(samples, "aws_vpn_exporter_collection_success", region=r, source="ec2") == 0 for r in regions)
    asked = [region for region, operation in faults.requests if operation == "DescribeVpnConnections"]
    assert len(asked) == 1, asked  # the one running when the poll gave up; the queued three were cancelled
