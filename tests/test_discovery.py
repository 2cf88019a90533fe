"""Organisation discovery through the simulated AWS over HTTP (real boto3): the organization's active accounts
and their enabled regions become targets, failures stay with their account, a new account is picked up
without a restart, shards split the discovered pairs exactly; and the simulation refuses what AWS refuses."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError

from exporter.config import Config, Organization, Shard, Target
from exporter.demo import strict_aws
from exporter.sources.aws import AwsAccount
from exporter.sources.ec2.poller import Poller
from tests.conftest import parse_exposition, scrape, series, tunnel_telemetry, value

MANAGEMENT = "123456789012"  # the default credentials' account manages the simulated organization
A, B, C = "111111111111", "222222222222", "333333333333"
ROLE = "vpn-exporter"
EAST, WEST = "us-east-1", "eu-west-1"


def organization(*members: str, role: str | None = ROLE, **states: str) -> None:
    """An organization managed by the default account; members with the exporter's role, trusting it, as a
    StackSet deploys it (``role=None``: without); ``states``: account id (as ``_<id>``) -> State."""
    boto3.client("organizations", region_name=EAST).create_organization(FeatureSet="ALL")
    for account in members:
        strict_aws.join_organization(
            MANAGEMENT, account, f"member-{account}", state=states.get(f"_{account}", "ACTIVE")
        )
        if role:
            strict_aws.create_role(account, role, trusted=MANAGEMENT)


def vpn(account: str, region: str, name: str) -> str:
    """A VPN connection with one UP tunnel in any account of the simulated AWS (through moto's backend)."""
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[account][region]
    gateway = backend.create_customer_gateway(gateway_type="ipsec.1", ip_address="203.0.113.9", bgp_asn="65000")
    vgw = backend.create_vpn_gateway(gateway_type="ipsec.1")
    connection = backend.create_vpn_connection("ipsec.1", gateway.id, vpn_gateway_id=vgw.id, tags={"Name": name})
    connection.vgw_telemetry = [tunnel_telemetry("198.51.100.1", "UP", "1 BGP ROUTES", 1)]
    connection.options = {"StaticRoutesOnly": False}
    return connection.id


def org(**settings) -> Organization:
    settings.setdefault("management_account", "discovery_credentials")
    settings.setdefault("regions", (EAST, WEST))
    return Organization(role_name=ROLE, **settings)


def polled(exporter) -> set[tuple[str, str]]:
    """The (account, region) pairs of the served snapshot's EC2 collection."""
    return {(r.account_id, r.region) for r in exporter.current.snapshot.results if r.source == "ec2"}


def calls(exporter, operation: str, **labels) -> int:
    return sum(
        int(s.value)
        for metric in exporter.metrics.api_calls.collect()
        for s in metric.samples
        if s.name.endswith("_total") and s.labels["operation"] == operation and labels.items() <= s.labels.items()
    )


def test_the_active_accounts_of_the_organization_are_discovered_and_polled(aws, make_exporter):
    organization(A, B, C, "444444444444", _333333333333="SUSPENDED")
    boto3.client("organizations", region_name=EAST).close_account(AccountId="444444444444")  # PENDING_CLOSURE
    strict_aws.organization_account(MANAGEMENT, B).status = None  # AWS retires Status: State alone must do
    member_vpn = vpn(A, WEST, "member-site")
    exporter = make_exporter([], organizations=(org(),))
    exporter.poll_once()
    assert polled(exporter) == {(account, region) for account in (MANAGEMENT, A, B) for region in (EAST, WEST)}
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_tunnel_up", account_id=A, vpn_connection_id=member_vpn) == 1
    assert value(samples, "aws_vpn_exporter_discovery_success", account_id=MANAGEMENT) == 1
    assert value(samples, "aws_vpn_exporter_discovered_targets", account_id=MANAGEMENT) == 6
    assert {
        labels["state"]: value(samples, "aws_vpn_exporter_discovered_accounts", **labels)
        for labels in series(samples, "aws_vpn_exporter_discovered_accounts")
    } == {"watched": 3, "inactive": 2}
    assert value(samples, "aws_vpn_exporter_discovery_last_success_timestamp_seconds") > time.time() - 60
    assert calls(exporter, "ListAccounts") == 1 and calls(exporter, "DescribeRegions") == 3


def test_accounts_are_listed_page_by_page_through_an_empty_page(aws, make_exporter):
    """ListAccounts pages at most 20 and may answer an empty page with a NextToken (the simulation always does,
    on the second page): 45 members plus the management account, all listed, in 4 calls."""
    members = [f"{500000000000 + n}" for n in range(45)]
    organization(*members, role=None)
    exporter = make_exporter([], organizations=(org(exclude_accounts=tuple(members)),))
    exporter.poll("discovery")
    samples = parse_exposition(exporter.metrics.render().decode())
    assert value(samples, "aws_vpn_exporter_discovered_accounts", state="excluded") == 45
    assert value(samples, "aws_vpn_exporter_discovered_accounts", state="watched") == 1
    assert calls(exporter, "ListAccounts") == 4


def test_include_and_exclude_choose_the_accounts(aws, make_exporter):
    organization(A, B)
    included = make_exporter([], organizations=(org(include_accounts=(A,)),))
    included.poll("discovery")
    assert {a.target.account_id_from_role for a in included.sources["ec2"].accounts} == {A}
    excluded = make_exporter([], organizations=(org(exclude_accounts=(A,)),))
    excluded.poll("discovery")
    assert {a.target.account_id_from_role for a in excluded.sources["ec2"].accounts} == {
        None,
        B,
    }  # None: the management's own


def test_only_the_regions_each_account_has_enabled_are_watched(aws, make_exporter):
    """regions: all reads DescribeRegions per account; an opt-in region is watched only where enabled, and a
    listed region an account has not enabled is skipped."""
    organization(A, B)
    strict_aws.enable_region(A, "ap-east-1")
    everything = make_exporter([], organizations=(org(regions=None),))
    everything.poll("discovery")
    regions = {
        a.target.account_id_from_role or MANAGEMENT: set(a.target.regions) for a in everything.sources["ec2"].accounts
    }
    assert regions[A] == set(strict_aws.DEFAULT_REGIONS) | {"ap-east-1"}
    assert regions[B] == regions[MANAGEMENT] == set(strict_aws.DEFAULT_REGIONS)
    listed = make_exporter([], organizations=(org(regions=(EAST, "ap-east-1")),))
    listed.poll_once()
    assert polled(listed) == {(MANAGEMENT, EAST), (A, EAST), (A, "ap-east-1"), (B, EAST)}


def test_an_account_refusing_its_role_hides_no_other_and_is_read_once_it_allows(aws, make_exporter, caplog):
    organization(A, role=None)  # the StackSet never reached A (nor, as usual, the management account)
    strict_aws.join_organization(MANAGEMENT, B, "member-b")
    strict_aws.create_role(B, ROLE, trusted=MANAGEMENT)
    vpn(B, EAST, "b-site")
    exporter = make_exporter([], organizations=(org(management_account="member_role"),))
    with caplog.at_level(logging.WARNING, logger="exporter.sources.discovery"):
        exporter.poll_once()
    assert polled(exporter) == {(B, EAST), (B, WEST)}
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_discovery_account_success", account_id=A) == 0
    assert value(samples, "aws_vpn_exporter_discovery_account_success", account_id=MANAGEMENT) == 0
    assert value(samples, "aws_vpn_exporter_discovery_account_success", account_id=B) == 1
    assert value(samples, "aws_vpn_exporter_discovered_accounts", state="failed") == 2
    assert value(samples, "aws_vpn_tunnel_up", account_id=B) == 1
    failures = [r.getMessage() for r in caplog.records if "could not read" in r.getMessage()]
    assert len(failures) == 1 and "AccessDenied" in failures[0] and A in failures[0]

    strict_aws.create_role(A, ROLE, trusted=MANAGEMENT)  # the StackSet caught up
    exporter.poll("discovery")
    exporter.poll("ec2")
    assert (A, EAST) in polled(exporter)


def test_a_new_account_is_picked_up_without_a_restart_keeping_the_others_sessions(aws, make_exporter):
    organization(A)
    vpn(A, EAST, "a-site")
    exporter = make_exporter([], organizations=(org(),))
    exporter.poll_once()
    before_poller, sessions = exporter.sources["ec2"].poller, {a.target: a for a in exporter.sources["ec2"].accounts}
    assume_a = calls(exporter, "AssumeRole", account_id=A)
    assert assume_a == 1  # once, by discovery; the poller shares that session
    strict_aws.join_organization(MANAGEMENT, B, "new-member")
    strict_aws.create_role(B, ROLE, trusted=MANAGEMENT)
    new_vpn = vpn(B, WEST, "b-site")
    exporter.poll("discovery")  # what the hourly job runs
    exporter.poll("ec2")
    assert exporter.sources["ec2"].poller is not before_poller  # rebuilt, as a config reload rebuilds it
    assert all(
        sessions.get(a.target, a) is a for a in exporter.sources["ec2"].accounts
    )  # unchanged targets keep their session
    assert value(scrape(exporter.url), "aws_vpn_tunnel_up", vpn_connection_id=new_vpn) == 1
    assert calls(exporter, "AssumeRole", account_id=A) == assume_a  # A's credentials were not fetched again


def test_the_first_poll_waits_for_the_first_discovery(aws, make_exporter):
    organization(A)
    exporter = make_exporter([], organizations=(org(),), poll_interval=30.0)
    exporter.start_polling()
    deadline = time.time() + 20
    while exporter.current is None and time.time() < deadline:
        time.sleep(0.05)
    assert exporter.current is not None
    assert (A, EAST) in polled(exporter)  # the very first snapshot holds the discovered account


def test_a_failed_listing_keeps_the_last_good_set_and_says_so(aws, faults, make_exporter, caplog):
    from tests.faults import Fault

    organization(A)
    exporter = make_exporter([], organizations=(org(),))
    exporter.poll("discovery")
    targets = exporter.sources["ec2"]._watched(exporter.config)
    faults.faults.append(Fault(operation="ListAccounts", status=400, code="AWSOrganizationsNotInUseException"))
    with caplog.at_level(logging.ERROR, logger="exporter.sources.discovery"):
        exporter.poll("discovery")
    assert exporter.sources["ec2"]._watched(exporter.config) == targets
    samples = parse_exposition(exporter.metrics.render().decode())
    assert value(samples, "aws_vpn_exporter_discovery_success", account_id=MANAGEMENT) == 0
    assert value(samples, "aws_vpn_exporter_discovered_targets", account_id=MANAGEMENT) == 4
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "keeping the last good set (2 accounts, 4 regions)" in lines[0]


def test_shards_partition_the_discovered_pairs_exactly(aws, make_exporter):
    members = [f"{600000000000 + n}" for n in range(4)]
    organization(*members)
    owned = []
    for index in range(3):
        exporter = make_exporter(
            [Target(regions=(EAST,))], organizations=(org(management_account="skip"),), shard=Shard(index, 3)
        )
        exporter.poll("discovery")
        owned += [
            (a.target.credentials, region) for a in exporter.sources["ec2"].accounts for region in a.target.regions
        ]
    everything = [(f"arn:aws:iam::{m}:role/{ROLE}", r) for m in members for r in (EAST, WEST)] + [("default", EAST)]
    assert sorted(owned) == sorted(everything)  # each pair once, in exactly one shard


def test_an_account_watched_by_an_explicit_target_is_left_to_it(aws, make_exporter):
    organization(A)
    explicit = Target(regions=(EAST,), role_arn=f"arn:aws:iam::{A}:role/{ROLE}")
    exporter = make_exporter(
        [explicit, Target(regions=(WEST,))], organizations=(org(management_account="member_role"),)
    )
    exporter.poll("discovery")
    assert [a.target for a in exporter.sources["ec2"].accounts] == [explicit, Target(regions=(WEST,))]
    samples = parse_exposition(exporter.metrics.render().decode())
    assert value(samples, "aws_vpn_exporter_discovered_accounts", state="elsewhere") == 2  # A and the management


def test_a_delegated_administrator_lists_the_accounts_but_is_not_the_management_account(aws, make_exporter):
    organization(A, B)
    strict_aws.create_role(A, "org-reader", trusted=MANAGEMENT)
    boto3.client("organizations", region_name=EAST).register_delegated_administrator(
        AccountId=A, ServicePrincipal="ssm.amazonaws.com"
    )
    exporter = make_exporter([], organizations=(org(role_arn=f"arn:aws:iam::{A}:role/org-reader"),))
    exporter.poll("discovery")
    samples = parse_exposition(exporter.metrics.render().decode())
    assert value(samples, "aws_vpn_exporter_discovery_success", account_id=A) == 1
    # discovery_credentials names the management account's credentials; a delegated administrator's are not
    assert value(samples, "aws_vpn_exporter_discovery_account_success", account_id=MANAGEMENT) == 0
    assert {a.account_label for a in exporter.sources["ec2"].accounts} == {A, B}


def test_an_account_leaving_the_organization_leaves_no_series(aws, make_exporter):
    organization(A, B)
    exporter = make_exporter([], organizations=(org(),))
    exporter.poll("discovery")
    boto3.client("organizations", region_name=EAST).remove_account_from_organization(AccountId=B)
    exporter.poll("discovery")
    samples = parse_exposition(exporter.metrics.render().decode())
    assert {s["account_id"] for s in series(samples, "aws_vpn_exporter_discovery_account_success")} == {MANAGEMENT, A}


def test_a_reload_that_adds_an_organization_discovers_it(aws, make_exporter):
    organization(A)
    exporter = make_exporter([Target(regions=(EAST,))])
    exporter.reload_source = lambda: Config(
        targets=(Target(regions=(EAST,)),),
        organizations=(org(management_account="skip"),),
        state_dir=exporter.config.state_dir,
        source="reloaded",
    )
    assert exporter.reload() is None
    exporter.poll("discovery")
    exporter.poll("ec2")
    assert polled(exporter) == {(MANAGEMENT, EAST), (A, EAST), (A, WEST)}


# --- empty regions --------------------------------------------------------------------------------------


def test_an_empty_region_is_asked_every_tenth_poll_and_served_with_its_real_age(aws):
    """30 s polls, empty_region_interval 5m: the empty region is asked about every 10th poll; between, its
    empty, successful result is served again with the time it was really read; a connection created there is
    seen within the interval."""
    clock = [1_000_000.0]
    asked: list[str] = []
    account = AwsAccount(
        Target(regions=(EAST, WEST)),
        lambda _a, region, op, _o: asked.append(region) if op == "DescribeVpnConnections" else None,
    )
    vpn(MANAGEMENT, EAST, "busy")
    config = Config(targets=(), poll_interval=30.0, empty_region_interval=300.0, poll_timeout=20.0)
    with ThreadPoolExecutor(4) as executor:
        poller = Poller(config, [account], executor, clock=lambda: clock[0])
        ages = []
        for _ in range(40):  # 20 minutes
            results = {r.region: r for r in poller.poll().results}
            assert results[WEST].success
            ages.append(clock[0] - results[WEST].last_success_timestamp)
            clock[0] += 30
        assert asked.count(EAST) == 40
        assert 4 <= asked.count(WEST) <= 5  # once at first, then every 10th poll (its first wait is shorter)
        assert max(ages) == pytest.approx(270, abs=1) and min(ages) == 0
        created = vpn(MANAGEMENT, WEST, "new")
        for polls in range(1, 12):  # noqa: B007 (read after the loop)
            region = next(r for r in poller.poll().regions if r.region == WEST)
            clock[0] += 30
            if region.connections:
                break
        assert region.connections[0].vpn_connection_id == created and polls <= 10


# --- the simulated AWS refuses what AWS refuses (each fails on moto's own behaviour) ----------------------


def _client_of(service: str, account: str, role: str = ROLE):
    credentials = boto3.client("sts", region_name=EAST).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="test"
    )["Credentials"]
    return boto3.client(
        service,
        region_name=EAST,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def test_list_accounts_answers_only_the_management_account_or_a_delegated_administrator(aws):
    with pytest.raises(ClientError, match="AWSOrganizationsNotInUseException"):
        boto3.client("organizations", region_name=EAST).list_accounts()  # in no organization yet
    organization(A, B)
    member = _client_of("organizations", A)
    with pytest.raises(ClientError, match="AccessDeniedException"):  # moto: an empty list
        member.list_accounts()
    boto3.client("organizations", region_name=EAST).register_delegated_administrator(
        AccountId=A, ServicePrincipal="ssm.amazonaws.com"
    )
    assert {a["Id"] for a in member.list_accounts()["Accounts"]} == {MANAGEMENT, A, B}


def test_list_accounts_pages_at_most_20_and_refuses_more(aws):
    organization(*[f"{700000000000 + n}" for n in range(25)], role=None)
    client = boto3.client("organizations", region_name=EAST)
    with pytest.raises(ClientError, match="InvalidInputException"):
        client.list_accounts(MaxResults=21)
    pages = [len(page["Accounts"]) for page in client.get_paginator("list_accounts").paginate()]
    assert pages == [20, 0, 6]  # moto: one page of 26


def test_closing_an_account_makes_it_pending_closure_first(aws):
    organization(A)
    client = boto3.client("organizations", region_name=EAST)
    client.close_account(AccountId=A)
    account = client.describe_account(AccountId=A)["Account"]
    assert (account["State"], account["Status"]) == ("PENDING_CLOSURE", "PENDING_CLOSURE")  # moto: SUSPENDED


def test_describe_regions_answers_the_callers_enabled_regions_of_its_partition(aws):
    organization(A, B)
    strict_aws.enable_region(A, "ap-east-1")
    of_a, of_b = _client_of("ec2", A), _client_of("ec2", B)
    enabled_a = {r["RegionName"]: r["OptInStatus"] for r in of_a.describe_regions()["Regions"]}
    assert enabled_a["ap-east-1"] == "opted-in" and enabled_a[EAST] == "opt-in-not-required"
    assert set(enabled_a) == set(strict_aws.DEFAULT_REGIONS) | {"ap-east-1"}  # moto: every region, gov and cn too
    every = {r["RegionName"]: r["OptInStatus"] for r in of_b.describe_regions(AllRegions=True)["Regions"]}
    assert every["ap-east-1"] == every["af-south-1"] == "not-opted-in"
    assert not any(name.startswith(("us-gov-", "cn-")) for name in every)


def test_assume_role_needs_a_role_that_trusts_the_caller(aws):
    sts = boto3.client("sts", region_name=EAST)
    organization(A)
    with pytest.raises(ClientError, match="AccessDenied"):  # moto: any role ARN, even in an unknown account
        sts.assume_role(RoleArn=f"arn:aws:iam::999999999999:role/{ROLE}", RoleSessionName="test")
    with pytest.raises(ClientError, match="AccessDenied"):
        sts.assume_role(RoleArn=f"arn:aws:iam::{A}:role/missing", RoleSessionName="test")
    strict_aws.create_role(B, ROLE, trusted="444444444444")  # trusts another account only
    with pytest.raises(ClientError, match="AccessDenied"):
        sts.assume_role(RoleArn=f"arn:aws:iam::{B}:role/{ROLE}", RoleSessionName="test")
    strict_aws.create_role(C, ROLE, trusted=MANAGEMENT, external_id="secret-id")
    with pytest.raises(ClientError, match="AccessDenied"):
        sts.assume_role(RoleArn=f"arn:aws:iam::{C}:role/{ROLE}", RoleSessionName="test")
    assert sts.assume_role(RoleArn=f"arn:aws:iam::{C}:role/{ROLE}", RoleSessionName="test", ExternalId="secret-id")[
        "Credentials"
    ]["AccessKeyId"]
