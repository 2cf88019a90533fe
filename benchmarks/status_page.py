"""Benchmark: the status page at / built from a large snapshot.

    .venv/bin/python benchmarks/status_page.py [--tunnels 1000 10000 | --connections 9 400] [--repeat 20]

For each size, on the scrape benchmark's snapshot (most tunnels healthy), on a worst case (every
connection has findings: logging off everywhere, one tunnel of each down) and on that worst case with 30
days of history per connection (the strips: mostly up days, some degraded, some down): the time to build
the page (per request, as the server does; median and worst of --repeat), its size (and gzipped, as the
server sends it), and the same through the real HTTP server (GET /, median). Target: well under a second at
10,000 tunnels.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import statistics
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scrape import synthetic_snapshot  # noqa: E402

from exporter.diagnosis.rules import diagnose  # noqa: E402
from exporter.exposition.render import RenderedSnapshot  # noqa: E402
from exporter.model import HistoryDay, LogDestination, Snapshot  # noqa: E402
from exporter.web import statuspage  # noqa: E402
from exporter.web.server import ExporterServer  # noqa: E402

TARGET_MS = 1000.0


def worst_case(snapshot: Snapshot) -> Snapshot:
    """Every connection needs attention: tunnel logging off everywhere, the first tunnel of each down."""
    off = LogDestination(False)
    regions = tuple(
        replace(
            region,
            connections=tuple(
                replace(
                    c,
                    tunnels=tuple(
                        replace(
                            t,
                            ike_log=off,
                            bgp_log=off,
                            **(
                                {"status": "DOWN", "status_message": "ipsec_down", "ipsec_up": False, "bgp_up": False}
                                if i == 0
                                else {}
                            ),
                        )
                        for i, t in enumerate(c.tunnels)
                    ),
                )
                for c in region.connections
            ),
        )
        for region in snapshot.regions
    )
    worst = replace(snapshot, regions=regions, tunnel_logs={}, selector_checks={}, findings=())
    return replace(worst, findings=diagnose(worst))


def with_history(snapshot: Snapshot) -> Snapshot:
    """30 days per connection: mostly up, a degraded day every 7th (a flap, minutes without redundancy), a down
    day every 23rd (minutes unavailable), today so far; varied per connection so no two strips are alike."""
    today = datetime.fromtimestamp(snapshot.completed_at, tz=timezone.utc).date()
    history = {}
    for n, (region, connection) in enumerate(snapshot.connections()):
        days = []
        for i in range(30):
            day = (today - timedelta(days=29 - i)).isoformat()
            observed = 86400.0 if i < 29 else 3600.0
            if (i + n) % 23 == 0:
                days.append(HistoryDay(day, observed, 60.0 * (1 + n % 50), 600.0, 2 + n % 3))
            elif (i + n) % 7 == 0:
                days.append(HistoryDay(day, observed, 0.0, 30.0 * (1 + n % 40), 1 + n % 2))
            else:
                days.append(HistoryDay(day, observed, 0.0, 0.0, 0))
        history[(region.account_id, region.region, connection.vpn_connection_id)] = tuple(days)
    return replace(snapshot, history=history)


def exactly(connections: int) -> Snapshot:
    """The scrape benchmark's snapshot cut to exactly this many connections (it makes them by fours)."""
    snapshot = synthetic_snapshot(8 * -(-connections // 4))
    left, regions = connections, []
    for region in snapshot.regions:
        kept = region.connections[:left]
        left -= len(kept)
        regions.append(replace(region, connections=kept))
    kept_ids = {(r.account_id, r.region, c.vpn_connection_id) for r in regions for c in r.connections}
    findings = tuple(f for f in snapshot.findings if (f.account_id, f.region, f.vpn_connection_id) in kept_ids)
    return replace(snapshot, regions=tuple(regions), findings=findings)


def bench(label: str, snapshot: Snapshot, repeat: int) -> bool:
    tunnels = sum(len(c.tunnels) for _, c in snapshot.connections())
    connections = sum(1 for _ in snapshot.connections())
    times, body = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        body = statuspage.render(snapshot)
        times.append((time.perf_counter() - start) * 1000)
    rendered = RenderedSnapshot(snapshot, b"")
    server = ExporterServer(("127.0.0.1", 0), lambda: rendered, lambda: b"")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    http_times = []
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
            connection.request("GET", "/")
            response = connection.getresponse()
            page = response.read()
            connection.close()
            http_times.append((time.perf_counter() - start) * 1000)
            assert response.status == 200 and b"need attention" in page
    finally:
        server.shutdown()
        server.server_close()
    median, worst = statistics.median(times), max(times)
    print(
        f"{label:<15} {tunnels:>7,} tunnels  {connections:>6,} connections  {len(snapshot.findings):>6,} findings  "
        f"render median {median:6.1f} ms  max {worst:6.1f} ms  GET / median {statistics.median(http_times):6.1f} ms  "
        f"page {len(body.encode()) / 1024:,.1f} KiB (gzip {len(gzip.compress(body.encode())) / 1024:,.1f} KiB)"
    )
    return worst < TARGET_MS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tunnels", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--connections", type=int, nargs="+", help="exact connection counts instead of --tunnels")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    ok = True
    sizes = [exactly(n) for n in args.connections] if args.connections else map(synthetic_snapshot, args.tunnels)
    for snapshot in sizes:
        ok = bench("mostly healthy", snapshot, args.repeat) & ok
        ok = bench("worst", worst_case(snapshot), args.repeat) & ok
        ok = bench("worst+history", with_history(worst_case(snapshot)), args.repeat) & ok
    print(f"target: every render under {TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
