"""Discovery of a large organization: each account read as its page arrives, within the run's budget; an account not
answered by then keeps its regions (pending, not failed); a failed one is read again within minutes, not at the
next hourly run; a shard does not assume roles it cannot own when the regions are listed; an account listed twice
counts once."""

from __future__ import annotations

import time

from exporter.config import Shard
from exporter.demo import strict_aws
from exporter.sources import discovery
from tests.conftest import parse_exposition, value
from tests.test_discovery import EAST, MANAGEMENT, ROLE, WEST, A, B, calls, org, organization


def watched_accounts(exporter) -> set[str]:
    return {t.account_id_from_role or MANAGEMENT for t in exporter.sources["ec2"]._watched(exporter.config)}


def test_a_failed_account_is_read_again_within_minutes(aws, faults, make_exporter, monkeypatch):
    """AssumeRole refused once: the account is read again after RETRY_DELAYS[0] (a minute; shortened here), and
    the discovered set applies at once, instead of waiting for the next hourly run."""
    from tests.faults import Fault

    delays = getattr(discovery, "RETRY_DELAYS", (3600.0,))  # without retries: the next hourly run
    assert delays[0] <= 120 and sum(delays) < 3600  # minutes, within the hour
    monkeypatch.setattr(discovery, "RETRY_DELAYS", (0.3, 0.6), raising=False)
    organization(A, B)
    exporter = make_exporter([], organizations=(org(management_account="skip"),), discovery_interval=3600.0)
    fault = Fault(operation="AssumeRole", status=403, code="AccessDenied")
    faults.faults.append(fault)
    exporter.poll("discovery")
    assert watched_accounts(exporter) == set()
    faults.faults.remove(fault)
    deadline = time.time() + 15
    while watched_accounts(exporter) != {A, B} and time.time() < deadline:
        time.sleep(0.1)
    assert watched_accounts(exporter) == {A, B}
    samples = parse_exposition(exporter.metrics.render().decode())
    assert value(samples, "aws_vpn_exporter_discovered_accounts", state="watched") == 2
    assert value(samples, "aws_vpn_exporter_discovery_account_success", account_id=A) == 1
    assert calls(exporter, "ListAccounts") == 1  # the retry read the accounts again, not the listing


def test_an_account_not_answered_within_the_budget_keeps_its_regions_and_is_not_failed(aws, faults, make_exporter):
    from tests.faults import Fault

    organization(A)
    exporter = make_exporter([], organizations=(org(management_account="skip"),))
    exporter.poll("discovery")
    before = exporter.sources["ec2"]._watched(exporter.config)
    assert watched_accounts(exporter) == {A}
    exporter.sources["discovery"].discovery._budget = lambda: 0.5
    faults.faults.append(Fault(operation="DescribeRegions", delay=2.0))
    exporter.poll("discovery")
    assert exporter.sources["ec2"]._watched(exporter.config) == before
    samples = parse_exposition(exporter.metrics.render().decode())
    assert value(samples, "aws_vpn_exporter_discovered_accounts", state="pending") == 1
    assert value(samples, "aws_vpn_exporter_discovered_accounts", state="failed") is None
    assert value(samples, "aws_vpn_exporter_discovery_account_success", account_id=A) == 1  # its last answer
    assert exporter.sources["discovery"].discovery.organizations[0].next_retry() is not None  # read again soon


def test_a_shard_does_not_assume_roles_in_accounts_it_cannot_own_when_regions_are_listed(aws, make_exporter):
    members = [f"{610000000000 + n}" for n in range(12)]
    organization(*members)
    assumed, owned = 0, set()
    for index in range(3):
        exporter = make_exporter(
            [], organizations=(org(management_account="skip", regions=(EAST,)),), shard=Shard(index, 3)
        )
        exporter.poll("discovery")
        shard_owns = {
            m
            for m in members
            if exporter.config.shard.owns(
                discovery.Target(regions=(EAST,), role_arn=f"arn:aws:iam::{m}:role/{ROLE}"), EAST
            )
        }
        assert calls(exporter, "AssumeRole") == len(shard_owns)  # only the accounts whose pair it owns
        assert watched_accounts(exporter) == shard_owns
        samples = parse_exposition(exporter.metrics.render().decode())
        assert value(samples, "aws_vpn_exporter_discovered_accounts", state="other_shard") == 12 - len(shard_owns)
        assumed += len(shard_owns)
        owned |= shard_owns
    assert assumed == 12 and owned == set(members)  # each account read by exactly one shard


def test_an_account_listed_twice_counts_once(aws, make_exporter):
    organization(A, B, _222222222222="SUSPENDED")
    strict_aws.join_organization(MANAGEMENT, B, "member-b-again", state="SUSPENDED")  # ListAccounts lists B twice
    strict_aws.join_organization(MANAGEMENT, A, "member-a-again")
    exporter = make_exporter([], organizations=(org(management_account="skip"),))
    exporter.poll("discovery")
    samples = parse_exposition(exporter.metrics.render().decode())
    assert value(samples, "aws_vpn_exporter_discovered_accounts", state="inactive") == 1
    assert value(samples, "aws_vpn_exporter_discovered_accounts", state="watched") == 1
    assert value(samples, "aws_vpn_exporter_unrecognized_values_total", field="account_duplicate") == 2
    assert calls(exporter, "DescribeRegions") == 1
    assert {(t.account_id_from_role, t.regions) for t in exporter.sources["ec2"]._watched(exporter.config)} == {
        (A, (WEST, EAST))
    }


def test_with_regions_all_a_shard_keeps_the_sessions_only_of_the_accounts_it_polls(aws, make_exporter):
    """regions: all is read in every account (its regions are unknown until then); a shard then lets go of the
    session (and clients) of an account another replica polls every region of."""
    members = [f"{620000000000 + n}" for n in range(6)]
    organization(*members)
    shard = Shard(0, 20)  # 17 regions each: about 4 accounts in 10 have none owned by this shard
    exporter = make_exporter([], organizations=(org(management_account="skip", regions=None),), shard=shard)
    exporter.poll("discovery")
    members_read = exporter.sources["discovery"].discovery.organizations[0]._accounts
    assert set(members_read) == set(members)
    kept = {account for account, member in members_read.items() if member.session is not None}
    polled = {
        account
        for account in members
        if any(
            shard.owns(discovery.Target(regions=(r,), role_arn=f"arn:aws:iam::{account}:role/{ROLE}"), r)
            for r in strict_aws.DEFAULT_REGIONS
        )
    }
    assert kept == polled and polled != set(members), (kept, polled)
    assert {a.target.account_id_from_role for a in exporter.sources["ec2"].accounts} == polled


def test_accounts_are_read_while_the_later_pages_are_still_being_listed(aws, faults, make_exporter):
    """Page by page: the first page's accounts are assumed into before the last page is asked for (each
    ListAccounts answer slowed to 0.3 s, as a large organization's 150 pages take most of a minute)."""
    from tests.faults import Fault

    members = [f"{630000000000 + n}" for n in range(45)]
    organization(*members)
    faults.faults.append(Fault(operation="ListAccounts", delay=0.3))
    exporter = make_exporter([], organizations=(org(management_account="skip"),))
    exporter.poll("discovery")
    operations = [operation for _, operation in faults.requests]
    last_page = len(operations) - 1 - operations[::-1].index("ListAccounts")
    assert operations.count("ListAccounts") == 4
    assert "AssumeRole" in operations[:last_page], operations[:last_page]
    assert len(watched_accounts(exporter)) == 45


def test_a_reload_that_lengthens_discovery_interval_lengthens_the_run_budget(aws, make_exporter):
    from dataclasses import replace

    organization(A)
    exporter = make_exporter([], organizations=(org(management_account="skip"),), discovery_interval=300.0)
    exporter.poll("discovery")
    assert (
        exporter.sources["discovery"].discovery.organizations[0].budget == discovery.DISCOVERY_TIMEOUT
    )  # at least 2 minutes
    exporter.reload_source = lambda: replace(exporter.config, discovery_interval=7200.0, source="reloaded")
    assert exporter.reload() is None
    exporter.poll("discovery")
    assert exporter.sources["discovery"].discovery.organizations[0].budget == 1800.0  # a quarter of the interval
