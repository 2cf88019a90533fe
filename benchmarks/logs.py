"""Benchmark: log parse throughput, and catching up a backlog of log events.

    .venv/bin/python benchmarks/logs.py [--events 1000000] [--parse 300000]

Prints figures and ratios against the targets (100,000 events/s per core; memory flat while
catching up). The backlog is served by an in-process stand-in for FilterLogEvents that generates
pages lazily (10,000 events each, as AWS's maximum), so the figures are the exporter's own cost:
parsing, dedup, state, and the state file, through the real LogIngestor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import rss_mib  # noqa: E402

from exporter.config import LogsConfig  # noqa: E402
from exporter.demo.tunnel_logs import stream_name  # noqa: E402
from exporter.model import Connection, LogDestination, RegionTelemetry, Tunnel  # noqa: E402
from exporter.sources.logs.parse import parse  # noqa: E402
from exporter.sources.logs.reader import LogIngestor  # noqa: E402
from exporter.sources.logs.state import StateFile  # noqa: E402

TARGET_EVENTS_PER_SECOND = 100_000
IKE_DETAILS = [
    "AWS tunnel is sending DPD R-U-THERE",
    "AWS tunnel Phase 2 SA is established with inbound SPI: 0xcbf7f2e3: outbound SPI: 0xc9be76cd: traffic selectors: "
    "(AWS-side) 0.0.0.0/0 <=> (CGW-side) 0.0.0.0/0",
    "AWS tunnel received DELETE for Phase 2 SA with SPI: 0xc9be76cd",
    "AWS tunnel is sending a CREATE_CHILD_SA request",
]
BGP_DETAILS = [
    (
        "BGPStatus",
        "UP",
        "AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.50.85",
    ),
    ("RouteStatus", "ADVERTISED", "Route 10.1.0.0/16 advertised by neighbor 169.254.50.85"),
    ("BGPStatus", "DOWN", "BGP notification sent to neighbor 169.254.50.85: Hold Timer Expired"),
]


def ike_json(i: int) -> str:
    return json.dumps(
        {
            "event_timestamp": 1_700_000_000 + i,
            "details": IKE_DETAILS[i % len(IKE_DETAILS)],
            "dpd_enabled": True,
            "nat_t_detected": False,
            "ike_phase1_state": "established",
            "ike_phase2_state": "established",
        }
    )


def ike_text(i: int) -> str:
    return (
        f"2026-11-24 18:00:00.000Z vpn-0123 198.51.100.1 dpd_enabled=true nat_t_detected=false "
        f"ike_phase1_state=established ike_phase2_state=established {IKE_DETAILS[i % len(IKE_DETAILS)]}"
    )


def bgp_json(i: int) -> str:
    kind, status, details = BGP_DETAILS[i % len(BGP_DETAILS)]
    return json.dumps(
        {
            "resource_id": "vpn-0123_198.51.100.1",
            "event_timestamp": 1_700_000_000_000 + i,
            "timestamp": "2026-11-24 18:00:00.000Z",
            "type": kind,
            "status": status,
            "message": {"details": details},
        }
    )


def bench_parse(count: int) -> None:
    print(f"== parse throughput ({count:,} events per format, one core)")
    for name, log, fmt, make in (
        ("ike json", "ike", "json", ike_json),
        ("ike text", "ike", "text", ike_text),
        ("bgp json", "bgp", "json", bgp_json),
    ):
        messages = [make(i) for i in range(count)]
        started = time.perf_counter()
        for message in messages:
            parse(log, fmt, message)
        rate = count / (time.perf_counter() - started)
        print(f"{name:10s} {rate:12,.0f} events/s   {rate / TARGET_EVENTS_PER_SECOND:5.2f}x target")


PAGE_EVENTS, PAGE_BYTES = 10_000, 1_048_576  # FilterLogEvents: up to 10,000 events or 1 MB per page
EVENT_OVERHEAD_BYTES = 26  # CloudWatch Logs counts each event as its message plus 26 bytes


class BacklogLogs:
    """A FilterLogEvents stand-in serving ``total`` events spread evenly over [start, end], lazily, in pages
    of up to 10,000 events or 1 MB, as AWS does. Like AWS's, it reads whole groups; naming streams fails."""

    def __init__(self, total: int, streams: list[str], start_ms: int, end_ms: int, page: int = PAGE_EVENTS):
        self.total, self.streams, self.page = total, streams, page
        self.start_ms, self.span = start_ms, max(1, end_ms - start_ms)
        self.calls = 0
        self.seconds = 0.0  # spent generating pages: AWS's side, not the exporter's

    def filter_log_events(self, **request):
        started = time.perf_counter()
        try:
            return self._page(**request)
        finally:
            self.seconds += time.perf_counter() - started

    def _page(self, logGroupName, startTime, endTime, limit=None, nextToken=None, **named):
        assert not named, f"the exporter must read whole groups, never name streams: {sorted(named)}"
        self.calls += 1
        size = min(limit or self.page, self.page)
        first = int(nextToken or self._first_at(startTime))
        last = min(self.total, first + size)
        events, size = [], 0
        for i in range(first, last):
            timestamp = self.start_ms + i * self.span // self.total
            stream = self.streams[i % len(self.streams)]
            message = ike_json(i) if stream.endswith("IKE.log") else bgp_json(i)
            size += len(message) + EVENT_OVERHEAD_BYTES
            if timestamp > endTime or (size > PAGE_BYTES and events):
                last = i
                break
            events.append(
                {
                    "eventId": f"{i:056d}",
                    "timestamp": timestamp,
                    "logStreamName": stream,
                    "message": message,
                    "ingestionTime": timestamp,
                }
            )
        return {"events": events, **({"nextToken": str(last)} if last < self.total and events else {})}

    def _first_at(self, start_ms: int) -> int:
        return max(0, -(-(start_ms - self.start_ms) * self.total // self.span))


class OneAccount:
    def __init__(self, logs):
        self.logs = logs

    def client(self, service, region):
        return self.logs


def logged_region(tunnels: int) -> tuple[RegionTelemetry, list[str]]:
    """A region whose ``tunnels`` log IKE and BGP to one group, and the names of their streams."""
    group_arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/vpn/logs"
    destination = LogDestination(True, group_arn, "json")
    connections = tuple(
        Connection(
            f"vpn-{n:08x}",
            "",
            "available",
            "dynamic",
            "vgw",
            "vgw-1",
            "cgw-1",
            False,
            tunnels=(
                Tunnel(
                    f"198.{n // 62500}.{n // 250 % 250}.{n % 250}",
                    "UP",
                    "bgp_routes",
                    1,
                    None,
                    True,
                    True,
                    "169.254.0.0/30",
                    destination,
                    destination,
                ),
            ),
        )
        for n in range(tunnels)
    )
    streams = [
        stream_name(c.vpn_connection_id, c.tunnels[0].outside_ip, kind) for c in connections for kind in ("ike", "bgp")
    ]
    return RegionTelemetry("123456789012", "us-east-1", connections), streams


STEADY_EVENTS_PER_TUNNEL_HOUR = 10  # a steady tunnel: hourly phase 2 rekeys (4 CREATE_CHILD_SA lines each), more
STORM_EVENTS_PER_TUNNEL_HOUR = 600  # every tunnel flapping or retrying once every 6 s, IKE and BGP together


def bench_api_calls(sizes: tuple[int, ...], config: LogsConfig | None = None) -> None:
    """FilterLogEvents calls per log poll, reading whole groups, against naming every stream (100 a call)."""
    config = config or LogsConfig()
    window = config.poll_interval + config.overlap  # each poll re-reads the overlap: the volume it pays for
    print(
        f"== FilterLogEvents calls per log poll (one group holding IKE and BGP; each poll reads "
        f"{window:.0f} s: poll_interval + overlap)"
    )
    print(
        f"{'tunnels':>8} {'events/h/tunnel':>16} {'events/poll':>12} {'calls, whole group':>19} "
        f"{'calls, naming streams':>22}  of the 10 TPS quota"
    )
    for tunnels in sizes:
        for rate in (STEADY_EVENTS_PER_TUNNEL_HOUR, STORM_EVENTS_PER_TUNNEL_HOUR):
            region, streams = logged_region(tunnels)
            total = max(1, int(tunnels * rate * window / 3600))
            now_ms = int(time.time() * 1000)
            logs = BacklogLogs(total, streams, now_ms - int(window * 1000) + 1000, now_ms - 1000)
            with tempfile.TemporaryDirectory() as state_dir:
                ingestor = LogIngestor(
                    LogsConfig(lookback=window, overlap=config.overlap),
                    StateFile(Path(state_dir)),
                    ThreadPoolExecutor(max_workers=1),
                    poll_timeout=3600,
                    max_pages_per_group=1000,
                )
                collection = ingestor.poll((region,), {"123456789012": OneAccount(logs)})
            counted = sum(count for view in collection.tunnels.values() for _, count in view.counts)
            assert counted == total, f"counted {counted} of {total}"
            named = max(-(-len(streams) // 100), logs.calls)  # at least one call per 100 names, and per page
            print(
                f"{tunnels:>8,} {rate:>16,} {total:>12,} {logs.calls:>19,} {named:>22,}  "
                f"{logs.calls / 10:.1f} s vs {named / 10:.1f} s"
            )


def bench_backlog(total: int, tunnels: int = 50) -> None:
    print(f"== catching up a backlog of {total:,} events ({tunnels} tunnels, IKE and BGP logs, lookback 24h)")
    region, streams = logged_region(tunnels)
    now_ms = int(time.time() * 1000)
    logs = BacklogLogs(total, streams, now_ms - 24 * 3600_000 + 1000, now_ms - 1000)
    with tempfile.TemporaryDirectory() as state_dir:
        samples = []
        ingestor = LogIngestor(
            LogsConfig(lookback=24 * 3600.0, overlap=300.0),
            StateFile(Path(state_dir)),
            ThreadPoolExecutor(max_workers=1),
            poll_timeout=3600,
            max_pages_per_group=1000,
        )
        original = ingestor._ingest_page

        def sampled(*args, **kwargs):
            newest = original(*args, **kwargs)
            if logs.calls % 10 == 0:
                samples.append((logs.calls, rss_mib()))
            return newest

        ingestor._ingest_page = sampled
        before = rss_mib()
        started = time.perf_counter()
        collection = ingestor.poll((region,), {"123456789012": OneAccount(logs)})
        elapsed = time.perf_counter() - started
        counted = sum(count for view in collection.tunnels.values() for _, count in view.counts)
        state_size = (Path(state_dir) / "logs-state.json").stat().st_size
        started = time.perf_counter()
        ingestor.save()
        save_seconds = time.perf_counter() - started
    assert counted == total, f"counted {counted} of {total}"
    print(f"events counted     {counted:,} (exactly the backlog) in {logs.calls} FilterLogEvents pages")
    own = elapsed - logs.seconds
    print(f"time               {elapsed:.1f} s in all, of which {logs.seconds:.1f} s generating the pages (AWS's side)")
    print(
        f"exporter's cost    {own:.1f} s, {total / own:,.0f} events/s   "
        f"{total / own / TARGET_EVENTS_PER_SECOND:.2f}x the parse target"
    )
    print(
        f"RSS                {before:.0f} MiB before; during (page: MiB) "
        + ", ".join(f"{page}: {mib:.0f}" for page, mib in samples[:: max(1, len(samples) // 8)])
    )
    growth = samples[-1][1] - samples[0][1] if len(samples) > 1 else 0.0
    print(
        f"RSS growth         {growth:+.1f} MiB from the first sample to the last (flat means bounded by the "
        f"overlap window, not the backlog)"
    )
    print(f"state file         {state_size / 1024:.0f} KiB, saved in {save_seconds * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="backlog size")
    parser.add_argument("--parse", type=int, default=300_000, help="messages per format for the parse benchmark")
    parser.add_argument(
        "--api-tunnels", default="10,1000,10000", help="tunnel counts for the API-calls-per-poll table, comma-separated"
    )
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}")
    bench_parse(args.parse)
    bench_api_calls(tuple(int(n) for n in args.api_tunnels.split(",")))
    bench_backlog(args.events)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
