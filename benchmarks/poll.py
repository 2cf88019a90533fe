"""Benchmark: poll cycles against the simulated AWS, scaled up.

    .venv/bin/python benchmarks/poll.py [--connections 1000 5000] [--regions 4] [--polls 3]

Seeds moto (through its backend, for speed) with N VPN connections of 2 tunnels in several regions,
in a process of its own, then polls them through the real boto3 path over HTTP, as the exporter does.
Prints per size: poll cycle time, AWS API calls per cycle by operation (target: one
DescribeVpnConnections per account and region, nothing else on a steady cycle, zero on a scrape),
render time, the exporter's RSS (moto's is separate), and /metrics size and latency under 50
scrapers on the real exporter serving that data.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import RssSampler, SimulatedAws, calls_by_operation, rss_mib  # noqa: E402
from scrape import load, percentile  # noqa: E402

from exporter import memory  # noqa: E402
from exporter.app import Exporter  # noqa: E402
from exporter.config import Config, LogsConfig, Target  # noqa: E402
from exporter.demo.environment import DEFAULT_ACCOUNT, simulated_aws_environment  # noqa: E402
from exporter.exposition.render import RenderedSnapshot  # noqa: E402

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "eu-central-1", "ap-southeast-2")


def seed(connections: int, regions: tuple[str, ...]) -> None:
    from moto.ec2.models import ec2_backends  # in moto's process only

    changed = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for index in range(connections):
        region = regions[index % len(regions)]
        backend = ec2_backends[DEFAULT_ACCOUNT][region]
        cgw = backend.create_customer_gateway(
            gateway_type="ipsec.1", ip_address=f"203.0.{index // 250}.{index % 250}", bgp_asn="65000"
        )
        vgw = backend.create_vpn_gateway(gateway_type="ipsec.1")
        vpn = backend.create_vpn_connection("ipsec.1", cgw.id, vpn_gateway_id=vgw.id, tags={"Name": f"site-{index}"})
        ips = [f"198.{index % 200}.{index // 200 % 250}.{t}" for t in (1, 2)]
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
            "EnableAcceleration": False,
            "TunnelOptions": [
                {"OutsideIpAddress": ip, "TunnelInsideCidr": "169.254.1.0/30", "PreSharedKey": "benchmark-psk"}
                for ip in ips
            ],
        }


def bench(
    connections: int, regions: tuple[str, ...], polls: int, scrapers: int, scrape_seconds: float, status_seconds: float
) -> None:
    aws = SimulatedAws(seed, connections, regions)
    os.environ.update(simulated_aws_environment(aws.url))
    print(
        f"== {connections:,} connections ({connections * 2:,} tunnels) in {len(regions)} regions "
        f"(seeded in {aws.seeded:.0f} s; moto's own process {aws.rss:.0f} MiB)"
    )
    sampler = RssSampler()
    sampler.start()
    with tempfile.TemporaryDirectory() as state_dir:
        exporter = Exporter(
            Config(
                targets=(Target(regions=regions),),
                poll_timeout=600,
                max_concurrency=16,
                logs=LogsConfig(enabled=False),
                state_dir=Path(state_dir),
            ),
            listen=("127.0.0.1", 0),
        )
        exporter.start_server()
        calls: list[Counter] = []
        for _ in range(polls):
            before = calls_by_operation(exporter)
            started = time.perf_counter()
            exporter.poll("ec2")
            cycle = time.perf_counter() - started
            calls.append(calls_by_operation(exporter) - before)
            snapshot = exporter.current.snapshot
            started = time.perf_counter()
            RenderedSnapshot.of(snapshot)
            render = time.perf_counter() - started
            tunnels = sum(len(c.tunnels) for _, c in snapshot.connections())
            slowest = max(r.duration_seconds for r in snapshot.results)
            print(
                f"poll cycle {cycle:6.2f} s (slowest region {slowest:.2f} s, moto serving and botocore parsing "
                f"the XML); render {render * 1000:.0f} ms; {tunnels:,} tunnels; calls {dict(calls[-1])}"
            )
        steady = calls[-1]
        assert steady == Counter({"DescribeVpnConnections": len(regions)}), steady
        print(
            f"API calls          steady cycle: {steady['DescribeVpnConnections']} DescribeVpnConnections = 1 per "
            f"region, nothing else; first cycle also {dict(calls[0] - steady)}"
        )
        before = calls_by_operation(exporter)
        timed, errors = load(exporter.address[1], scrapers, scrape_seconds, interval=1.0)
        assert calls_by_operation(exporter) == before, "a scrape called AWS"
        latencies = [latency for _, latency in timed]
        body = exporter.current.body_gzip
        print(
            f"/metrics           {len(gzip.decompress(body)) / 1e6:.1f} MB text, {len(body) / 1e6:.2f} MB gzip; "
            f"{scrapers} scrapers x 1/s, {scrape_seconds:.0f} s: {len(latencies):,} scrapes, {errors} errors, "
            f"p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms; "
            f"0 AWS calls"
        )
        sampler.running = False
        print(
            f"exporter RSS       {rss_mib():.0f} MiB now, {sampler.peak:.0f} MiB peak over the polls and scrapes "
            f"(target 150 MB at 10,000 tunnels); moto and the render child are other processes"
        )
        _tunnel_status_rate(exporter, regions, status_seconds)
        exporter.stop()
    aws.stop()


def _tunnel_status_rate(exporter: Exporter, regions: tuple[str, ...], seconds: float) -> None:
    """The per-tunnel status calls for ``seconds`` of a pass: their rate in each region stays under the ceiling."""
    ceiling = exporter.config.tunnel_status.max_calls_per_second
    operations = ("GetVpnTunnelReplacementStatus", "GetActiveVpnTunnelStatus")

    def by_region() -> Counter:
        counted = Counter()
        for metric in exporter.metrics.api_calls.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels["operation"] in operations:
                    counted[sample.labels["region"]] += int(sample.value)
        return counted

    before, started = by_region(), time.perf_counter()
    exporter.poll("tunnel_status", within=seconds)
    elapsed, made = time.perf_counter() - started, by_region() - before
    rates = {region: made[region] / elapsed for region in regions}
    tunnels = sum(len(c.tunnels) for _, c in exporter.current.snapshot.connections())
    print(
        f"tunnel status      {sum(made.values()):,} calls in {elapsed:.1f} s over {len(regions)} regions: "
        f"{max(rates.values()):.2f} calls/s in the busiest region, ceiling {ceiling:g}; a full pass over "
        f"{tunnels:,} tunnels takes {tunnels * 2 / ceiling / len(regions) / 60:.0f} min at the ceiling"
    )
    assert max(rates.values()) <= ceiling * 1.05, rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument("--scrapers", type=int, default=50)
    parser.add_argument("--scrape-seconds", type=float, default=20)
    parser.add_argument("--status-seconds", type=float, default=10, help="how long to measure the per-tunnel calls")
    args = parser.parse_args()
    memory.tune_malloc()  # as the command does
    for connections in args.connections:
        bench(connections, REGIONS[: args.regions], args.polls, args.scrapers, args.scrape_seconds, args.status_seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
