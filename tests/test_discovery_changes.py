"""Discovery while things change: a reload that adds or removes an explicit target for a discovered account (never
collected twice, never left unwatched), a shorter empty_region_interval (at once), a slow discovery beside healthy
polls (its own pool); and each discovered account's calls counted under its own label, its keys stripped."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import requests

from exporter.config import Target
from exporter.demo import strict_aws
from tests.test_discovery import EAST, MANAGEMENT, ROLE, WEST, A, B, calls, org, organization, vpn


def test_reload_adding_an_explicit_target_for_a_discovered_account_does_not_collect_it_twice(aws, make_exporter):
    organization(A)
    strict_aws.create_role(A, "other-role", trusted=MANAGEMENT)
    site = vpn(A, EAST, "a-site")
    exporter = make_exporter([], organizations=(org(),))
    exporter.poll_once()
    explicit = Target(regions=(EAST,), role_arn=f"arn:aws:iam::{A}:role/other-role")
    exporter.reload_source = lambda: replace(exporter.config, targets=(explicit,), source="reloaded")
    assert exporter.reload() is None
    exporter.poll("ec2")
    pairs = [(r.account_id, r.region) for r in exporter.current.snapshot.results if r.source == "ec2"]
    assert pairs.count((A, EAST)) == 1, pairs
    text = requests.get(exporter.url + "/metrics", timeout=10).text  # one series each, a valid exposition
    lines = [line for line in text.splitlines() if line.startswith("aws_vpn_tunnel_up{") and site in line]
    assert len(lines) == len(set(lines)) == 1, lines


def test_reload_removing_an_explicit_target_hands_its_account_to_discovery_at_once(aws, make_exporter):
    organization(A)
    explicit = Target(regions=(EAST,), role_arn=f"arn:aws:iam::{A}:role/{ROLE}")
    exporter = make_exporter([explicit], organizations=(org(),), poll_interval=1.0)
    exporter.start_polling()
    deadline = time.time() + 10
    while exporter.current is None and time.time() < deadline:
        time.sleep(0.05)
    exporter.reload_source = lambda: replace(exporter.config, targets=(), source="reloaded")
    assert exporter.reload() is None
    seen, deadline = [], time.time() + 8
    while time.time() < deadline:  # the snapshots published after the reload (polls every second)
        if exporter.current is not None and (not seen or exporter.current is not seen[-1]):
            seen.append(exporter.current)
        time.sleep(0.05)
    assert len(seen) >= 3
    # handed to discovery at once, not at the next hourly run
    assert (A, EAST) in {(r.account_id, r.region) for r in seen[-1].snapshot.results if r.source == "ec2"}


def test_lowering_empty_region_interval_on_reload_applies_at_once(aws, make_exporter):
    clock = [1_000_000.0]
    exporter = make_exporter([Target(regions=(EAST,))], empty_region_interval=3600.0, poll_interval=30.0)
    exporter.sources["ec2"].clock = lambda: clock[0]
    exporter.sources["ec2"].poller._clock = exporter.sources["ec2"].clock
    exporter.poll("ec2")
    clock[0] += 30
    exporter.reload_source = lambda: replace(exporter.config, empty_region_interval=0.0, source="reloaded")
    assert exporter.reload() is None  # empty_region_interval 0: every region every poll
    created = vpn(MANAGEMENT, EAST, "new")
    for _ in range(3):
        clock[0] += 30
        exporter.poll("ec2")
    region = next(r for r in exporter._outputs["ec2"].regions if r.region == EAST)
    assert [c.vpn_connection_id for c in region.connections] == [created]


def test_each_accounts_calls_are_counted_with_its_own_account_label(aws, make_exporter):
    organization(A, B)
    for account in (MANAGEMENT, A, B):
        for region in (EAST, WEST):
            vpn(account, region, f"s-{account}-{region}")
    exporter = make_exporter([], organizations=(org(),))
    exporter.poll_once()
    exporter.poll("ec2")
    for account in (MANAGEMENT, A, B):
        assert calls(exporter, "DescribeVpnConnections", account_id=account) == 4, account  # 2 regions x 2 polls
    assert calls(exporter, "DescribeVpnConnections", account_id="unknown") == 0


def test_pre_shared_keys_are_stripped_for_every_discovered_account(aws, make_exporter):
    organization(A, B)
    for account in (A, B):
        vpn(account, WEST, f"site-{account}")
    seen = []
    exporter = make_exporter([], organizations=(org(),))
    exporter.poll_once()
    for account in exporter.sources["ec2"].accounts:
        for (service, region), client in account._clients.items():
            if service == "ec2":
                handlers = list(
                    client.meta.events._emitter._lookup_cache.get("before-parse.ec2.DescribeVpnConnections", [])
                )
                names = [getattr(h, "__name__", "") for h in handlers]
                seen.append((account.account_label, region, "strip_secrets_before_parse" in names))
    assert seen and all(ok for *_, ok in seen), seen


def test_an_empty_region_interval_of_zero_asks_every_poll(aws, make_exporter):
    clock = [1_000_000.0]
    exporter = make_exporter([Target(regions=(EAST,))], empty_region_interval=0.0, poll_interval=30.0)
    exporter.sources["ec2"].poller._clock = lambda: clock[0]
    exporter.poll("ec2")
    created = vpn(MANAGEMENT, EAST, "new")
    clock[0] += 30
    exporter.poll("ec2")
    region = next(r for r in exporter._outputs["ec2"].regions if r.region == EAST)
    assert [c.vpn_connection_id for c in region.connections] == [created]


def test_a_slow_discovery_does_not_time_out_the_polls_of_healthy_regions(aws, faults, make_exporter):
    """Discovery's AssumeRole and DescribeRegions run on a pool of their own: slow ones never starve EC2 polls."""
    from tests.faults import Fault

    members = [f"{800000000000 + n}" for n in range(4)]
    organization(*members)
    vpn(MANAGEMENT, WEST, "healthy")
    exporter = make_exporter(
        [Target(regions=(WEST,))], organizations=(org(regions=(EAST,)),), max_concurrency=2, poll_timeout=2.0
    )
    exporter.poll_once()
    faults.faults.append(Fault(region=EAST, operation="DescribeRegions", delay=3.0))
    runner = threading.Thread(target=exporter.poll, args=("discovery",))
    runner.start()
    time.sleep(0.5)
    exporter.poll("ec2")
    runner.join()
    result = next(r for r in exporter._outputs["ec2"].results if r.region == WEST and r.account_id == MANAGEMENT)
    assert result.success, result.error
