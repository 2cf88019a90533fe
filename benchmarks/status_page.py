"""Benchmark: the status page at / built from a large snapshot.

    .venv/bin/python benchmarks/status_page.py [--tunnels 1000 10000] [--repeat 20]

For each size, on the scrape benchmark's snapshot (most tunnels healthy) and on a worst case (every
connection has findings: logging off everywhere, one tunnel of each down): the time to build the page
(per request, as the server does; median and worst of --repeat), its size, and the same through the
real HTTP server (GET /, median). Target: well under a second at 10,000 tunnels.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scrape import synthetic_snapshot  # noqa: E402

from exporter.diagnosis.rules import diagnose  # noqa: E402
from exporter.exposition.render import RenderedSnapshot  # noqa: E402
from exporter.model import LogDestination, Snapshot  # noqa: E402
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
        f"{label:<14} {tunnels:>7,} tunnels  {connections:>6,} connections  {len(snapshot.findings):>6,} findings  "
        f"render median {median:6.1f} ms  max {worst:6.1f} ms  GET / median {statistics.median(http_times):6.1f} ms  "
        f"page {len(body.encode()) / 1024:,.0f} KiB"
    )
    return worst < TARGET_MS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tunnels", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    ok = True
    for tunnels in args.tunnels:
        snapshot = synthetic_snapshot(tunnels)
        ok = bench("mostly healthy", snapshot, args.repeat) & ok
        ok = bench("worst", worst_case(snapshot), args.repeat) & ok
    print(f"target: every render under {TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
