"""Benchmark: an AWS Organization discovered and polled, against the simulated AWS.

    .venv/bin/python benchmarks/organisation.py [--accounts 200] [--regions 4] [--with-vpn 20] [--cycles 20]
    .venv/bin/python benchmarks/organisation.py --discovery-only --accounts 3000   # by hand: discovery at scale

moto runs in a process of its own (as in benchmarks/poll.py), seeded through its backends with an
organization of N member accounts (a few suspended), each with the exporter's role, most regions empty and
``--with-vpn`` accounts holding VPN connections in their first region. The exporter (this process) discovers
the organization over HTTP (ListAccounts, AssumeRole, DescribeRegions, as in production), then runs poll
cycles against a 30 s interval on a virtual clock, so an hour of polls takes a minute. Prints: discovery's
time and calls, each cycle's wall and CPU time and AWS API calls (counted by the exporter itself in
aws_vpn_exporter_aws_api_calls_total), the calls per cycle over a whole empty_region_interval, the RSS,
and the ratios against the interval. Its checks (asserted): every active account and region is found and
polled, suspended accounts are not, no account is failed or pending (discovery finished within its run's
budget), the steady cycle asks the non-empty regions every time and each empty one once per
empty_region_interval. ``--discovery-only`` seeds only the organization and its roles (seconds at 3,000 accounts,
where building moto's EC2 backends for every region would take minutes and gigabytes) and stops after discovery.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import RssSampler, SimulatedAws, calls_by_operation, rss_mib  # noqa: E402

from exporter import memory  # noqa: E402
from exporter.app import Exporter  # noqa: E402
from exporter.config import Config, LogsConfig, Organization, TunnelStatusConfig  # noqa: E402
from exporter.demo.environment import DEFAULT_ACCOUNT, simulated_aws_environment  # noqa: E402
from exporter.sources.discovery import DISCOVERY_TIMEOUT, FAILED, PENDING, WATCHED, run_budget  # noqa: E402

# The 17 regions every account has enabled (what regions: all watches where no opt-in region is enabled)
REGIONS = (
    "us-east-1",
    "eu-west-1",
    "us-west-2",
    "ap-southeast-2",
    "eu-central-1",
    "ap-northeast-1",
    "us-east-2",
    "us-west-1",
    "ap-south-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ca-central-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "sa-east-1",
)
ROLE = "vpn-exporter"
POLL_INTERVAL, POLL_TIMEOUT, EMPTY_INTERVAL = 30.0, 25.0, 300.0


def member(n: int) -> str:
    return f"{100000000000 + n:012d}"


def seed(accounts: int, regions: tuple[str, ...], with_vpn: int, suspended: int, connections: int) -> None:
    """In moto's process: the organization, its members' roles, and the VPN connections of a few (no regions:
    only the organization and the roles, for --discovery-only)."""
    from moto.ec2.models import ec2_backends
    from moto.organizations.models import organizations_backends

    from exporter.demo import strict_aws

    organizations_backends[DEFAULT_ACCOUNT]["aws"].create_organization(region="us-east-1", FeatureSet="ALL")
    changed = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for n in range(accounts):
        account = member(n)
        strict_aws.join_organization(
            DEFAULT_ACCOUNT, account, f"member-{n}", state="SUSPENDED" if n >= accounts - suspended else "ACTIVE"
        )
        strict_aws.create_role(account, ROLE, trusted=DEFAULT_ACCOUNT)
        for region in regions:  # (none with --discovery-only)
            ec2_backends[account][region].describe_vpn_connections()  # moto builds a backend on first use: not ours
        if n < with_vpn and regions:
            backend = ec2_backends[account][regions[0]]
            for c in range(connections):
                cgw = backend.create_customer_gateway(
                    gateway_type="ipsec.1", ip_address=f"203.0.{n % 250}.{c + 1}", bgp_asn="65000"
                )
                vgw = backend.create_vpn_gateway(gateway_type="ipsec.1")
                vpn = backend.create_vpn_connection(
                    "ipsec.1", cgw.id, vpn_gateway_id=vgw.id, tags={"Name": f"site-{n}-{c}"}
                )
                ips = [f"198.51.{n % 250}.{2 * c + t}" for t in (1, 2)]
                vpn.vgw_telemetry = [
                    {
                        "OutsideIpAddress": ip,
                        "Status": "UP",
                        "StatusMessage": "12 BGP ROUTES",
                        "AcceptedRouteCount": 12,
                        "LastStatusChange": changed,
                    }
                    for ip in ips
                ]
                vpn.options = {
                    "StaticRoutesOnly": False,
                    "TunnelOptions": [
                        {"OutsideIpAddress": ip, "TunnelInsideCidr": "169.254.1.0/30", "PreSharedKey": "psk"}
                        for ip in ips
                    ],
                }


def _warm_up(url: str) -> None:
    """One call of each kind, so that moto's first-use imports are not counted as the exporter's time."""
    import boto3

    os.environ.update(simulated_aws_environment(url))
    boto3.client("organizations", region_name="us-east-1").list_accounts(MaxResults=1)
    boto3.client("sts", region_name="us-east-1").get_caller_identity()
    ec2 = boto3.client("ec2", region_name="us-east-1")
    ec2.describe_regions()
    ec2.describe_vpn_connections()


def bench(
    accounts: int,
    regions: tuple[str, ...],
    with_vpn: int,
    suspended: int,
    connections: int,
    cycles: int,
    discovery_only: bool = False,
) -> None:
    aws = SimulatedAws(
        seed, accounts, () if discovery_only else regions, with_vpn, suspended, connections, warm_up=_warm_up
    )
    os.environ.update(simulated_aws_environment(aws.url))
    active = accounts - suspended
    pairs = active * len(regions)
    busy = min(with_vpn, active)  # accounts with connections (in their first region)
    print(
        f"== organization of {accounts} member accounts ({suspended} suspended) x {len(regions)} regions: "
        f"{pairs} account x region pairs, {busy} with VPN connections ({busy * connections * 2} tunnels); "
        f"seeded in {aws.seeded:.0f} s, moto's own process {aws.rss:.0f} MiB"
    )
    clock = [time.time()]
    sampler = RssSampler()
    sampler.start()
    with tempfile.TemporaryDirectory() as state_dir:
        config = Config(
            targets=(),
            organizations=(Organization(role_name=ROLE, regions=regions, management_account="skip"),),
            poll_interval=POLL_INTERVAL,
            poll_timeout=POLL_TIMEOUT,
            empty_region_interval=EMPTY_INTERVAL,
            logs=LogsConfig(enabled=False),
            tunnel_status=TunnelStatusConfig(enabled=False),
            state_dir=Path(state_dir),
        )
        exporter = Exporter(config, clock=lambda: clock[0])
        budget = run_budget(config.discovery_interval)
        rss_before = rss_mib()
        started, cpu = time.perf_counter(), time.process_time()
        exporter.poll("discovery")
        discovery_wall, discovery_cpu = time.perf_counter() - started, time.process_time() - cpu
        discovery_calls = calls_by_operation(exporter)
        watched = {a.target.account_id_from_role for a in exporter.sources["ec2"].accounts}
        assert len(watched) == active and all(member(n) in watched for n in range(active)), len(watched)
        assert sum(len(a.target.regions) for a in exporter.sources["ec2"].accounts) == pairs
        states = exporter.sources["discovery"].discovery.views[0].accounts
        assert states.get(WATCHED) == active and not states.get(FAILED) and not states.get(PENDING), states
        rss_discovered = rss_mib()
        print(
            f"discovery          {discovery_wall:5.2f} s wall, {discovery_cpu:.2f} s CPU; calls {dict(discovery_calls)}"
            f" ({accounts + 1} accounts listed, 20 a page, one page empty); RSS {rss_before:.0f} -> "
            f"{rss_discovered:.0f} MiB ({(rss_discovered - rss_before) / pairs * 1024:.0f} KiB per account x region)"
        )
        print(
            f"budget             discovery took {discovery_wall / budget:.3f} of the run's budget ({budget:g} s at "
            f"the default hourly interval), {discovery_wall / DISCOVERY_TIMEOUT:.3f} of {DISCOVERY_TIMEOUT:g} s; "
            f"accounts by state {dict(states)}"
        )
        if discovery_only:
            exporter.stop()
            aws.stop()
            return

        per_cycle = []
        for cycle in range(cycles):
            before = calls_by_operation(exporter)
            started, cpu = time.perf_counter(), time.process_time()
            exporter.poll("ec2")
            wall, used = time.perf_counter() - started, time.process_time() - cpu
            made = calls_by_operation(exporter) - before
            results = exporter.current.snapshot.results
            assert len(results) == pairs and all(r.success for r in results), [
                r.error for r in results if not r.success
            ][:3]
            per_cycle.append((wall, used, made))
            if cycle < 3 or cycle == cycles - 1:
                print(f"cycle {cycle + 1:3d}          {wall:5.2f} s wall, {used:5.2f} s CPU; calls {dict(made)}")
            clock[0] += POLL_INTERVAL
        rss_after = rss_mib()
        sampler.running = False
        tunnels = sum(len(c.tunnels) for _, c in exporter.current.snapshot.connections())
        assert tunnels == busy * connections * 2, tunnels

        first_wall, first_cpu, first = per_cycle[0]
        window = round(EMPTY_INTERVAL / POLL_INTERVAL)  # cycles in one empty_region_interval
        steady = per_cycle[-window:]
        steady_calls = [made["DescribeVpnConnections"] for _, _, made in steady]
        asked = sum(steady_calls)
        assert first["DescribeVpnConnections"] == pairs, first
        # over one whole interval: the busy regions every cycle, each empty region once (a phase of its own)
        expected = busy * window + (pairs - busy)
        assert abs(asked - expected) <= max(2, (pairs - busy) // 10), (asked, expected)
        worst_wall = max(wall for wall, _, _ in steady)
        steady_cpu = statistics.mean(used for _, used, _ in steady)
        cpu_per_call = sum(used for _, used, _ in steady) / max(1, asked)
        print(
            f"steady cycle       {statistics.mean(steady_calls):.1f} DescribeVpnConnections on average over "
            f"{window} cycles (= one empty_region_interval: {busy} busy regions every cycle, {pairs - busy} empty "
            f"ones once each), {min(steady_calls)}-{max(steady_calls)}; nothing else"
        )
        print(
            f"                   {statistics.mean(w for w, _, _ in steady):.2f} s wall (worst {worst_wall:.2f} s), "
            f"{steady_cpu:.2f} s CPU, {cpu_per_call * 1000:.1f} ms exporter CPU per call"
        )
        print(
            f"first cycle        {first['DescribeVpnConnections']} DescribeVpnConnections (every pair) + "
            f"{first['GetCallerIdentity'] + first['AssumeRole']} STS; {first_wall:.2f} s wall, {first_cpu:.2f} s CPU "
            f"({first_cpu / max(1, sum(first.values())) * 1000:.1f} ms a call, new clients included)"
        )
        print(
            f"ratios             calls per cycle steady / first {statistics.mean(steady_calls) / pairs:.3f}; "
            f"worst steady cycle / interval {worst_wall / POLL_INTERVAL:.3f}; first cycle / poll_timeout "
            f"{first_wall / POLL_TIMEOUT:.3f}"
        )
        print(
            f"exporter RSS       {rss_after:.0f} MiB after {cycles} cycles, {sampler.peak:.0f} MiB peak "
            f"({(rss_after - rss_before) / pairs * 1024:.0f} KiB per account x region pair over the "
            f"{rss_before:.0f} MiB before discovery); moto is another process"
        )
        exporter.stop()
    aws.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--regions", type=int, default=4, help=f"at most {len(REGIONS)} (every default region)")
    parser.add_argument("--with-vpn", type=int, default=20, help="accounts with VPN connections")
    parser.add_argument("--suspended", type=int, default=5)
    parser.add_argument("--connections", type=int, default=5, help="VPN connections in each such account")
    parser.add_argument("--cycles", type=int, default=20, help="poll cycles of 30 s (virtual time)")
    parser.add_argument(
        "--discovery-only",
        action="store_true",
        help="seed only the organization and its roles, and stop after discovery (3,000 accounts)",
    )
    args = parser.parse_args()
    memory.tune_malloc()  # as the command does
    bench(
        args.accounts,
        REGIONS[: args.regions],
        args.with_vpn,
        args.suspended,
        args.connections,
        args.cycles,
        args.discovery_only,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
