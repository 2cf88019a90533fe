"""Benchmark: state and memory under churn, against the simulated AWS.

    .venv/bin/python benchmarks/churn.py [--scenario connections reloads discovery] [--rounds 20]
        [--connections 200] [--accounts 100] [--regions 2] [--reloads 25] [--discoveries 30]

connections: each round creates ``connections`` VPN connections whose two tunnels log (IKE and BGP), polls,
deletes them and polls again. With ``logs.retention`` short, the log state of deleted tunnels is forgotten:
the state file, the customer-gateway cache and the exporter's RSS must level off, not grow with every round.
Before retention existed, 20 rounds of 200 took the state file from 0 to 2.14 MB and RSS from 65 to 98 MiB,
linearly.

reloads and discovery: an organization of ``accounts`` members x ``regions`` regions (a tenth of them with 5
VPN connections), discovered and polled as benchmarks/organisation.py does. reloads: ``reloads`` config
reloads that each change the organization target, so each makes a new discovery with new sessions. discovery:
``discoveries`` discovery runs, a minute of churn each (as a 60 s discovery_interval would run them), before
each of which a tenth of the accounts are suspended and those suspended the run before reactivated: their
sessions are dropped, then made anew. Each step polls; the RSS after each, how often publishing collected the
heap (exporter/frozen_heap.py) and how long that took, then a verdict: flat, or growing with every step. Before
exporter/frozen_heap.py, gc.freeze() kept every dropped session: 25 reloads took the RSS from 166 to 1,031 MiB.

moto runs in a process of its own (it keeps deleted resources), so the RSS is the exporter's. Run it with
PYTHONMALLOC=malloc (as the image does) and without, to compare the allocators.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import SimulatedAws, rss_mib  # noqa: E402
from organisation import REGIONS, ROLE, member, seed  # noqa: E402

from exporter.config import Organization  # noqa: E402
from exporter.demo.environment import DEFAULT_ACCOUNT, simulated_aws_environment  # noqa: E402

REGION = "us-east-1"
GROUP = "/aws/vpn/churn"
SCENARIOS = ("connections", "reloads", "discovery")
FLAT_RATIO = 1.10  # RSS after the last step over the middle one: malloc's noise is within a few %
# and at most this much growth a step over the second half, per account x region polled, with a floor for malloc's
# noise: a ratio alone misses a leak on top of an earlier scenario's memory (the old discovery churn leak, +4.7 MiB a
# run after the reloads' 922 MiB, was a ratio of 1.07); fixed, 1 KiB or less; the old leaks, 23 and 150 KiB
SLOPE_KIB_PER_PAIR, SLOPE_FLOOR_MIB = 5.0, 1.0


def _create(round_: int, count: int) -> list[tuple[str, str]]:
    """In moto's process: ``count`` logged connections, each tunnel with one IKE and one BGP event."""
    import boto3
    from moto.ec2.models import ec2_backends

    from exporter.demo.tunnel_logs import stream_name

    ec2, logs = boto3.client("ec2", region_name=REGION), boto3.client("logs", region_name=REGION)
    arn = f"arn:aws:logs:{REGION}:123456789012:log-group:{GROUP}"
    created = []
    for index in range(count):
        cgw = ec2.create_customer_gateway(Type="ipsec.1", PublicIp="203.0.113.1", BgpAsn=65001)
        gateway_id = cgw["CustomerGateway"]["CustomerGatewayId"]
        vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
        vpn = ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=gateway_id, VpnGatewayId=vgw)[
            "VpnConnection"
        ]["VpnConnectionId"]
        ips = [f"198.{round_ % 250}.{index // 125}.{index % 125 * 2 + t}" for t in (0, 1)]
        backend = ec2_backends["123456789012"][REGION].vpn_connections[vpn]
        backend.vgw_telemetry = [
            {"OutsideIpAddress": ip, "Status": "UP", "StatusMessage": "1 BGP ROUTES", "AcceptedRouteCount": 1}
            for ip in ips
        ]
        backend.options = {
            "StaticRoutesOnly": False,
            "TunnelOptions": [
                {
                    "OutsideIpAddress": ip,
                    "TunnelInsideCidr": "169.254.1.0/30",
                    "LogOptions": {
                        "CloudWatchLogOptions": {
                            "LogEnabled": True,
                            "LogGroupArn": arn,
                            "LogOutputFormat": "json",
                            "BgpLogEnabled": True,
                            "BgpLogGroupArn": arn,
                            "BgpLogOutputFormat": "json",
                        }
                    },
                }
                for ip in ips
            ],
        }
        at_ms = int(time.time() * 1000) - 2000
        for ip in ips:
            for kind, message in (
                ("ike", {"details": "AWS tunnel is sending DPD R-U-THERE", "dpd_enabled": True}),
                (
                    "bgp",
                    {
                        "type": "BGPStatus",
                        "status": "UP",
                        "resource_id": f"{vpn}_{ip}",
                        "message": {
                            "details": "AWS-side peer BGP session state has changed from OpenConfirm to Established"
                        },
                    },
                ),
            ):
                stream = stream_name(vpn, ip, kind)
                logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
                logs.put_log_events(
                    logGroupName=GROUP,
                    logStreamName=stream,
                    logEvents=[{"timestamp": at_ms, "message": json.dumps(message)}],
                )
        created.append((vpn, gateway_id))
    return created


def _prepare(url: str) -> None:
    """In moto's process: the log group, and one connection that stays, as in a real account (its group's
    cursor lives on)."""
    import boto3

    from exporter.demo.environment import simulated_aws_environment

    os.environ.update(simulated_aws_environment(url))
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName=GROUP)
    _create(250, 1)


def _delete(created: list[tuple[str, str]]) -> None:
    """In moto's process: delete the connections and their customer gateways."""
    import boto3
    from moto.ec2.models import ec2_backends

    ec2 = boto3.client("ec2", region_name=REGION)
    backend = ec2_backends["123456789012"][REGION]
    for vpn, gateway in created:
        ec2.delete_vpn_connection(VpnConnectionId=vpn)
        ec2.delete_customer_gateway(CustomerGatewayId=gateway)
        # AWS lists a deleted connection for a while, then purges it; moto never does, and its
        # ever longer DescribeVpnConnections would be measured instead of the exporter.
        backend.vpn_connections.pop(vpn, None)


def _nothing() -> None:
    """The connections are created round by round, not seeded."""


def _set_states(states: dict[str, str]) -> None:
    """In moto's process: set member accounts' State (SUSPENDED, ACTIVE) as ListAccounts reports it."""
    from moto.organizations.models import organizations_backends

    from exporter.demo import strict_aws

    for account in organizations_backends[DEFAULT_ACCOUNT]["aws"].accounts:
        if account.id in states:
            strict_aws.set_account_state(account, states[account.id])


def flat(rss: list[float], what: str, before: str, pairs: int) -> bool:
    """Print the RSS's growth over the steps, and whether it is flat: a leak grows the RSS with every step, so
    the verdict is on the second half, after the first steps' allocations (a second generation of sessions
    alive while the new ones are made) have levelled off; within FLAT_RATIO and the slope allowed for ``pairs``
    (accounts x regions polled) is malloc's noise."""
    half = len(rss) // 2
    ratio, second = rss[-1] / rss[0], rss[-1] / rss[half]
    slope, allowed = (
        (rss[-1] - rss[half]) / max(1, len(rss) - 1 - half),
        max(SLOPE_FLOOR_MIB, SLOPE_KIB_PER_PAIR * pairs / 1024),
    )
    ok = second <= FLAT_RATIO and slope <= allowed
    print(
        f"{what}: exporter RSS {rss[0]:.0f} -> {rss[-1]:.0f} MiB after {len(rss)} steps "
        f"(ratio last/first {ratio:.2f}); "
        f"second half {rss[half]:.0f} -> {rss[-1]:.0f} MiB (ratio {second:.2f}, "
        f"{slope:+.2f} MiB a step); verdict: {'flat' if ok else 'GROWS'} (thresholds "
        f"{FLAT_RATIO:.2f} and {allowed:.2f} MiB a step over the second half; {before})"
    )
    return ok


def connections(rounds: int, count: int) -> bool:
    from exporter.app import Exporter
    from exporter.config import Config, LogsConfig, Target

    aws = SimulatedAws(_nothing)
    aws.call(_prepare, aws.url)
    os.environ.update(simulated_aws_environment(aws.url))
    state_dir = Path(tempfile.mkdtemp(prefix="churn-"))
    retention = 1.0
    exporter = Exporter(
        Config(
            targets=(Target(regions=(REGION,)),),
            state_dir=state_dir,
            poll_timeout=120,
            logs=LogsConfig(lookback=600.0, overlap=5.0, retention=retention),
        )
    )
    print(
        f"== connections: {rounds} rounds of {count} connections (2 tunnels each, IKE and BGP logs), created, "
        f"polled, deleted, polled; logs.retention {retention:.0f} s"
    )
    sizes, rss = [], []
    try:
        for round_ in range(rounds):
            created = aws.call(_create, round_, count)
            exporter.poll_once()
            known = len(exporter.sources["logs"].ingestor._state.tunnels)
            aws.call(_delete, created)
            time.sleep(retention + 0.1)
            exporter.poll_once()
            sizes.append((state_dir / "logs-state.json").stat().st_size)
            rss.append(rss_mib())
            cached = sum(len(g) for g in exporter.sources["ec2"].poller._customer_gateways.values())
            print(
                f"round {round_ + 1:2d}: {known:4d} tunnels in state after the poll; after deletion and retention: "
                f"state file {sizes[-1] / 1024:5.1f} KiB, {len(exporter.sources['logs'].ingestor._state.tunnels)} tunnels, {cached} "
                f"cached gateways, exporter RSS {rss[-1]:.0f} MiB"
            )
    finally:
        exporter.stop()
        aws.stop()
    half = len(rss) // 2
    print(
        f"state file after the last round {sizes[-1] / 1024:.1f} KiB; exporter RSS {rss[0]:.0f} -> {rss[-1]:.0f} "
        f"MiB, {rss[-1] - rss[half]:+.1f} MiB over the second half of the rounds"
    )
    assert sizes[-1] <= 1.25 * max(sizes[: max(1, len(sizes) // 2)]), "the state file grows with churn"
    return True


def _organisation_exporter(accounts: int, regions: int, state_dir: Path):
    """An exporter watching the simulated organization (moto seeded by benchmarks/organisation.py's seed)."""
    from exporter.app import Exporter
    from exporter.config import Config, LogsConfig, TunnelStatusConfig

    organization = Organization(role_name=ROLE, regions=REGIONS[:regions], management_account="skip")
    config = Config(
        targets=(),
        organizations=(organization,),
        poll_timeout=120.0,
        state_dir=state_dir,
        logs=LogsConfig(enabled=False),
        tunnel_status=TunnelStatusConfig(enabled=False),
    )
    return Exporter(config), organization


def _collections(exporter) -> str:
    """How often publishing collected the heap before freezing it (exporter/frozen_heap.py), the last pause."""
    heap = exporter._heap
    return f"{heap.full_collections} full collections so far, the last {heap.last_pause * 1000:.0f} ms"


def _pairs(exporter) -> int:
    return sum(len(account.target.regions) for account in exporter.sources["ec2"].accounts)


def _session_churn(
    what: str,
    step_name: str,
    title: str,
    accounts: int,
    regions: int,
    steps: int,
    change: Callable[[object, Organization, int], int],
    before: str,
) -> bool:
    """``steps`` times: ``change`` (returns the accounts then watched), a discovery run, a poll; the RSS after each."""
    with tempfile.TemporaryDirectory() as state_dir:
        exporter, organization = _organisation_exporter(accounts, regions, Path(state_dir))
        print(f"== {what}: {title}, then a discovery run and a poll")
        exporter.poll("discovery")
        exporter.poll("ec2")
        pairs = _pairs(exporter)
        print(f"start      {pairs} pairs polled, exporter RSS {rss_mib():.0f} MiB")
        rss = []
        try:
            for step in range(steps):
                started = time.perf_counter()
                watched = change(exporter, organization, step)
                exporter.poll("discovery")  # a reload that changes an organization rediscovers at once
                exporter.poll("ec2")
                pairs = _pairs(exporter)
                assert pairs == watched * regions, (pairs, watched)
                rss.append(rss_mib())
                print(
                    f"{step_name:6} {step + 1:2d}  {pairs} pairs polled, {time.perf_counter() - started:4.1f} "
                    f"s, {_collections(exporter)}, exporter RSS {rss[-1]:.0f} MiB"
                )
        finally:
            exporter.stop()
    return flat(rss, what, before, pairs)


def reloads(accounts: int, regions: int, count: int) -> bool:
    """``count`` reloads, each changing the organization target (one account excluded, then not)."""

    def reload(exporter, organization: Organization, step: int) -> int:
        excluded = (member(accounts - 1),) if step % 2 == 0 else ()
        changed = replace(exporter.config, organizations=(replace(organization, exclude_accounts=excluded),))
        exporter.reload_source = lambda: changed
        assert exporter.reload() is None
        return accounts - len(excluded)

    return _session_churn(
        "reloads",
        "reload",
        f"{count} config reloads of an organization of {accounts} accounts "
        f"x {regions} regions, each changing its target (member {member(accounts - 1)} excluded, "
        f"then not): a new discovery and new sessions each time",
        accounts,
        regions,
        count,
        reload,
        "before the fix, +36 MiB a reload at 100 accounts x 2 regions",
    )


def discovery_churn(aws: SimulatedAws, accounts: int, regions: int, runs: int) -> bool:
    """``runs`` discovery runs; before each, a tenth of the accounts are suspended and those the run before
    suspended are reactivated (their sessions are dropped, then made anew)."""
    share, suspended = max(1, accounts // 10), []

    def churn(exporter, organization: Organization, step: int) -> int:
        suspending = [member((step * share + n) % accounts) for n in range(share)]
        aws.call(_set_states, {**{a: "ACTIVE" for a in suspended}, **{a: "SUSPENDED" for a in suspending}})
        suspended[:] = suspending
        return accounts - share

    return _session_churn(
        "discovery churn",
        "run",
        f"{runs} discovery runs over an organization of {accounts} "
        f"accounts x {regions} regions (a minute each, as discovery_interval 60 s would: {runs} "
        f"minutes), each after {share} accounts are suspended and the {share} suspended before are "
        f"reactivated",
        accounts,
        regions,
        runs,
        churn,
        "before the fix, +0.5 MiB for each account suspended and reactivated",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", nargs="+", choices=SCENARIOS, default=SCENARIOS)
    parser.add_argument("--rounds", type=int, default=20, help="connections: rounds")
    parser.add_argument("--connections", type=int, default=200, help="connections: created and deleted a round")
    parser.add_argument("--accounts", type=int, default=100, help="reloads, discovery: the organization's members")
    parser.add_argument("--regions", type=int, default=2, help="reloads, discovery: regions each")
    parser.add_argument("--reloads", type=int, default=25)
    parser.add_argument("--discoveries", type=int, default=30, help="discovery runs (a minute of churn each)")
    args = parser.parse_args()

    from exporter import memory

    memory.tune_malloc()  # as the command does
    print(
        f"python {sys.version.split()[0]}, allocator {os.environ.get('PYTHONMALLOC') or 'pymalloc'} (the image sets "
        f"PYTHONMALLOC=malloc); moto in its own process"
    )
    results = []
    if "connections" in args.scenario:
        results.append(connections(args.rounds, args.connections))
    if {"reloads", "discovery"} & set(args.scenario):
        with_vpn = max(1, args.accounts // 10)
        aws = SimulatedAws(seed, args.accounts, REGIONS[: args.regions], with_vpn, 0, 5)
        os.environ.update(simulated_aws_environment(aws.url))
        print(
            f"organization of {args.accounts} accounts x {args.regions} regions, {with_vpn} with 5 VPN connections; "
            f"seeded in {aws.seeded:.0f} s"
        )
        try:
            if "reloads" in args.scenario:
                results.append(reloads(args.accounts, args.regions, args.reloads))
            if "discovery" in args.scenario:
                results.append(discovery_churn(aws, args.accounts, args.regions, args.discoveries))
        finally:
            aws.stop()
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
