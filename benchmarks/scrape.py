"""Benchmark: /metrics under load, from a pre-rendered snapshot.

    .venv/bin/python benchmarks/scrape.py [--tunnels 5000 10000] [--scrapers 50] [--seconds 60] [--sessions 100]

For each size: render cost per poll, body size, the server's own cost per scrape against
prometheus-client's generate_latest on the same data (the ratio), then HTTP latency p50/p99 with
N concurrent scrapers (Accept-Encoding: gzip, as Prometheus sends) running in separate processes,
errors, and the exporter process's RSS. Targets: p99 < 20 ms at 10,000 tunnels, RSS < 150 MB. With
``--sessions``, the process holds as many AWS sessions (with their clients, as for so many accounts) and replaces
them before every other re-render, as a reload does: the scrapes meanwhile pay for the full collection that
frees the old ones (exporter/frozen_heap.py).
"""

from __future__ import annotations

import argparse
import gc
import gzip
import http.client
import multiprocessing
import os
import random
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import RssSampler  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: E402

from exporter import memory  # noqa: E402
from exporter.config import Target  # noqa: E402
from exporter.contract import TUNNEL_IPSEC_UP  # noqa: E402
from exporter.diagnosis.rules import diagnosed  # noqa: E402
from exporter.exposition.instrumentation import ExporterMetrics  # noqa: E402
from exporter.exposition.render import RenderedSnapshot, snapshot_families  # noqa: E402
from exporter.frozen_heap import FrozenHeap  # noqa: E402
from exporter.model import (  # noqa: E402
    Connection,
    LogDestination,
    Observation,  # noqa: E402
    RegionTelemetry,
    Snapshot,
    SourceResult,
    Tunnel,
    TunnelKey,
)
from exporter.sources.aws import AwsAccount  # noqa: E402
from exporter.sources.logs.parse import LogEvent  # noqa: E402
from exporter.sources.logs.state import TunnelLogState
from exporter.web import server as web  # noqa: E402
from exporter.web.server import ExporterServer  # noqa: E402

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1")
TARGET_P99_MS, TARGET_RSS_MB = 20.0, 150.0
IPSEC_UP_SAMPLE = f"\n{TUNNEL_IPSEC_UP}{{".encode()  # one per tunnel in a complete body


def synthetic_snapshot(tunnels: int) -> Snapshot:
    """A realistic mix: most tunnels healthy, some IPsec-up-BGP-down, logs on, a few findings."""
    logged = LogDestination(True, "arn:aws:logs:us-east-1:111122223333:log-group:/vpn", "json")
    now = time.time()
    regions, views = [], {}
    per_region = tunnels // 2 // len(REGIONS)
    for r, region in enumerate(REGIONS):
        connections = []
        for c in range(per_region):
            vpn = f"vpn-{r:02d}{c:015x}"
            pair = []
            for t in range(2):
                ip = f"198.{r}.{c // 250}.{(c % 250) * 2 + t}"
                broken = c % 17 == 0 and t == 0
                pair.append(
                    Tunnel(
                        ip,
                        "DOWN" if broken else "UP",
                        "ipsec_up" if broken else "bgp_routes",
                        0 if broken else 12,
                        now - 3600,
                        True,
                        not broken,
                        f"169.254.{c % 250}.{t * 4}/30",
                        logged,
                        logged,
                    )
                )
                state = TunnelLogState()
                for event in (
                    LogEvent(
                        "phase2_established",
                        now - 60,
                        "established",
                        "established",
                        False,
                        True,
                        ("0.0.0.0/0", "0.0.0.0/0"),
                    ),
                    LogEvent("dpd", now - 30),
                    LogEvent("bgp_established", now - 60, bgp_state="established"),
                ):
                    state.apply("bgp" if event.event.startswith("bgp") else "ike", event, now)
                views[TunnelKey("111122223333", region, vpn, ip)] = state.view()
            connections.append(
                Connection(
                    vpn,
                    f"site-{r}-{c}",
                    "available",
                    "dynamic",
                    "vgw",
                    f"vgw-{c:x}",
                    f"cgw-{c:x}",
                    False,
                    "0.0.0.0/0",
                    "0.0.0.0/0",
                    tuple(pair),
                )
            )
        regions.append(RegionTelemetry("111122223333", region, tuple(connections)))
    results = tuple(
        SourceResult("111122223333", region, source, True, 0.5, now) for region in REGIONS for source in ("ec2", "logs")
    )
    return diagnosed(Observation(now, tuple(regions), results, views))


def generate_latest_exposition(snapshot: Snapshot) -> bytes:
    """The same families through prometheus-client's own objects and generate_latest: the baseline."""
    families = []
    for family in snapshot_families(snapshot):
        kind = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
        converted = kind(family.name, family.documentation, labels=list(family.labels))
        for values, value in family.rows:
            converted.add_metric(list(values), value)
        families.append(converted)

    class Collector:
        def collect(self):
            return iter(families)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return generate_latest(registry)


def _scraper(port: int, seconds: float, threads: int, interval: float, spread: bool, verify: int, queue) -> None:
    """``threads`` scrapers, each GETting /metrics (gzip) every ``interval`` s (0: back to back).

    Returns (wall-clock start, latency) per scrape. ``spread`` gives each scraper its own phase, as
    Prometheus spreads its targets' scrapes over the interval; without it they all fire at once.
    ``verify`` > 0: also decode every body (gzip CRCs) and count that many tunnels in it (costs client CPU).
    """
    latencies, errors = [], 0
    lock = threading.Lock()

    def loop():
        nonlocal errors
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        deadline = time.time() + seconds
        if spread:
            time.sleep(random.uniform(0, interval))
        mine = []
        while time.time() < deadline:
            wall, started = time.time(), time.perf_counter()
            try:
                connection.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
                response = connection.getresponse()
                body = response.read()
                if response.status != 200 or not body:
                    raise RuntimeError(response.status)
                if verify and gzip.decompress(body).count(IPSEC_UP_SAMPLE) != verify:
                    raise RuntimeError("incomplete body")
                mine.append((wall, time.perf_counter() - started))
            except Exception:
                with lock:
                    errors += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            time.sleep(max(0.0, interval - (time.perf_counter() - started)))
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put((latencies, errors))


class ServerSideTimer:
    """Times the handler's /metrics work, from the parsed request to the last byte handed to the kernel."""

    def __init__(self):
        self.durations: list[float] = []
        original = web._Handler._metrics

        def timed(handler):
            started = time.perf_counter()
            original(handler)
            self.durations.append(time.perf_counter() - started)

        web._Handler._metrics = timed

    def take(self) -> list[float]:
        taken, self.durations = self.durations, []
        return taken


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def load(
    port: int, scrapers: int, seconds: float, interval: float, spread: bool = True, verify: int = 0
) -> tuple[list[tuple[float, float]], int]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = 2
    clients = [
        context.Process(target=_scraper, args=(port, seconds, scrapers // processes, interval, spread, verify, queue))
        for _ in range(processes)
    ]
    for client in clients:
        client.start()
    results = [queue.get() for _ in clients]
    for client in clients:
        client.join()
    return [x for result in results for x in result[0]], sum(result[1] for result in results)


def aws_sessions(count: int) -> list[AwsAccount]:
    """``count`` AWS sessions with an STS and an EC2 client each, as the exporter holds for as many accounts (no
    call is made): most of its heap, which a full collection walks."""
    accounts = [
        AwsAccount(Target(regions=("us-east-1",), role_arn=f"arn:aws:iam::{100000000000 + n}:role/r"), lambda *_: None)
        for n in range(count)
    ]
    for account in accounts:
        account.client("sts", "us-east-1"), account.client("ec2", "us-east-1")
    return accounts


def bench(tunnels: int, scrapers: int, seconds: float, holder: dict, verify: bool = False) -> None:
    print(f"== {tunnels:,} tunnels")
    sampler = RssSampler()
    sampler.start()
    snapshot = synthetic_snapshot(tunnels)
    started = time.perf_counter()
    holder["rendered"] = rendered = RenderedSnapshot.of(snapshot)
    render_s = time.perf_counter() - started
    heap, accounts = FrozenHeap(), aws_sessions(holder.get("sessions", 0))
    heap.freeze(accounts)  # as the exporter's publish does (exporter/frozen_heap.py)
    plain = rendered.body
    samples = plain.count(b"\n") - plain.count(b"\n#")
    tunnels_in_body = plain.count(IPSEC_UP_SAMPLE)
    print(
        f"render per poll    {render_s * 1000:.0f} ms; {samples:,} samples ({samples / tunnels:.0f} per tunnel); "
        f"text {len(plain) / 1e6:.1f} MB, kept gzipped {len(rendered.body_gzip) / 1e6:.2f} MB"
    )
    del plain
    live = ExporterMetrics(time.monotonic)  # an age of 0: a snapshot just completed
    server_side = holder["timer"]
    server = ExporterServer(("127.0.0.1", 0), lambda: holder["rendered"], live.render)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    stop = threading.Event()
    renders: list[tuple[float, float]] = []

    reloads: list[tuple[float, float, float]] = []

    def poller():  # polls re-render while scrapes go on, as the exporter's do: the first two at fixed points of
        nonlocal accounts  # the run (so a short run on a slow machine still holds both), then every 30 s
        begun = time.monotonic()
        due = [min(10.0, seconds / 6), min(30.0, seconds / 2)]
        while not stop.wait(max(0.0, begun + due[0] - time.monotonic())):
            due = due[1:] or [due[0] + 30.0]
            started = time.time()
            if accounts and len(renders) > len(reloads):  # every other poll follows a reload: new sessions
                accounts = aws_sessions(len(accounts))
            holder["rendered"] = RenderedSnapshot.of(snapshot)
            if heap.freeze(accounts):
                reloads.append((started, time.time(), heap.last_pause))
            else:
                renders.append((started, time.time()))

    polls = threading.Thread(target=poller, daemon=True)
    polls.start()
    server_side.take()
    timed, errors = load(port, scrapers, seconds, interval=1.0, verify=tunnels_in_body if verify else 0)
    inside = server_side.take()
    latencies = [latency for _, latency in timed]
    during = [
        latency for wall, latency in timed if any(begin <= wall + latency and wall <= end for begin, end in renders)
    ]
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    print(
        f"HTTP, {scrapers} scrapers x 1/s at spread phases, {seconds:.0f} s: {len(latencies):,} scrapes, {errors} "
        f"errors, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies) * 1000:.0f} ms"
    )
    if during:
        print(
            f"  during renders   {len(renders)} re-renders ({statistics.mean(e - b for b, e in renders):.1f} s each, "
            f"in a child): {len(during)} scrapes overlapped them, p99 {percentile(during, 99) * 1000:.1f} ms, "
            f"max {max(during) * 1000:.0f} ms"
        )
    if reloads:

        def overlapping(windows):
            hit = [
                latency
                for wall, latency in timed
                if any(begin <= wall + latency and wall <= end for begin, end in windows)
            ]
            return f"{len(hit)} scrapes" + (
                f", p99 {percentile(hit, 99) * 1000:.0f} ms, max {max(hit) * 1000:.0f} ms" if hit else ""
            )

        print(
            f"  after reloads    {len(reloads)} re-renders after {len(accounts)} AWS sessions were replaced (made "
            f"anew, the old collected before the freeze, {statistics.mean(p for *_, p in reloads) * 1000:.0f} ms): "
            f"{overlapping([(b, e) for b, e, _ in reloads])} overlapped them; the full collection alone: "
            f"{overlapping([(e - p, e) for _, e, p in reloads])}"
        )
    print(
        f"  inside server    p50 {percentile(inside, 50) * 1000:.1f} ms, p99 {percentile(inside, 99) * 1000:.1f} ms "
        f"(request parsed to body handed to the kernel)"
    )
    print(f"                   p99 vs target {TARGET_P99_MS:.0f} ms: {TARGET_P99_MS / p99:.2f}x headroom")
    short = min(15.0, seconds)
    timed, errors = load(port, scrapers, short, interval=1.0, spread=False)
    burst, inside = [latency for _, latency in timed], server_side.take()
    print(
        f"worst case         all {scrapers} firing at the same instant each second, {short:.0f} s: {errors} errors, "
        f"p50 {percentile(burst, 50) * 1000:.1f} ms, p99 {percentile(burst, 99) * 1000:.1f} ms "
        f"(inside the server p99 {percentile(inside, 99) * 1000:.1f} ms: a write waits for its client to read, and "
        f"{scrapers} bodies sent at once share the machine's throughput, measured next)"
    )
    timed, errors = load(port, scrapers, short, interval=0.0)
    saturated = [latency for _, latency in timed]
    print(
        f"saturation         {scrapers} scrapers back to back, {short:.0f} s: {len(saturated) / short:,.0f} scrapes/s, "
        f"{errors} errors, mean {statistics.mean(saturated) * 1000:.0f} ms (queueing: {scrapers} / throughput)"
    )
    non_reading_clients(port, holder.get("non_reading", 20), tunnels_in_body)
    stop.set()
    polls.join()
    sampler.running = False
    server.shutdown()
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"exporter RSS       {sampler.peak:.0f} MiB peak in the serving process "
        f"(target {TARGET_RSS_MB:.0f} MB: {TARGET_RSS_MB / sampler.peak:.2f}x headroom); render child peak "
        f"{child:.0f} MiB, for ~1 s a poll (mostly pages shared with the parent)"
    )

    runs = 20
    started = time.perf_counter()
    for _ in range(runs):  # what a scrape computes: the live part; the snapshot part is sent as it is
        parts = (rendered.body_gzip, gzip.compress(live.render(), compresslevel=1, mtime=0))
    ours = (time.perf_counter() - started) / runs
    body = b"".join(parts)
    started = time.perf_counter()
    naive = gzip.compress(generate_latest_exposition(snapshot) + live.render(), compresslevel=6, mtime=0)
    theirs = time.perf_counter() - started
    assert gzip.decompress(naive).count(b"\n") == gzip.decompress(body).count(b"\n"), "not the same data"
    print(
        f"server cost/scrape {ours * 1000:.2f} ms pre-rendered vs {theirs * 1000:.0f} ms for generate_latest+gzip "
        f"on the same data per scrape: {theirs / ours:,.0f}x"
    )
    print(
        f"render per poll    {render_s * 1000:.0f} ms (ours, to gzip) vs {theirs * 1000:.0f} ms (generate_latest + "
        f"gzip): {theirs / render_s:.1f}x"
    )


def non_reading_clients(port: int, count: int, tunnels: int) -> None:
    """``count`` clients ask without gzip and never read: each holds what the server buffers for it."""
    import socket

    from measure import rss_mib

    before = rss_mib()
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n")
        clients.append(client)
    time.sleep(3)
    held = rss_mib()
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
    body = gzip.decompress(connection.getresponse().read())
    scrape_ms = (time.perf_counter() - started) * 1000
    assert body.count(IPSEC_UP_SAMPLE) == tunnels, "a scrape during the stall was incomplete"
    for client in clients:
        client.close()
    print(
        f"non-reading        {count} clients without gzip that never read: RSS {before:.0f} -> {held:.0f} MiB "
        f"(+{held - before:.1f}; target {TARGET_RSS_MB:.0f} MB); a gzip scrape meanwhile {scrape_ms:.0f} ms, complete"
    )


def main() -> int:
    sys.setswitchinterval(
        float(os.environ.get("BENCH_SWITCH_INTERVAL", "0.001"))
    )  # the exporter sets 1 ms (exporter/app.py)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tunnels", type=int, nargs="+", default=[5000, 10000])
    parser.add_argument("--scrapers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--non-reading", type=int, default=20, help="clients without gzip that never read")
    parser.add_argument(
        "--sessions",
        type=int,
        default=0,
        help="AWS sessions held (accounts, e.g. 100), replaced before every other re-render (a reload)",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="decode every body and count its tunnels (a correctness check; skews latency)",
    )
    args = parser.parse_args()
    memory.tune_malloc()  # as the command does
    print(f"python {sys.version.split()[0]}, {multiprocessing.cpu_count()} cores")
    timer = ServerSideTimer()
    for tunnels in args.tunnels:
        bench(
            tunnels,
            args.scrapers,
            args.seconds,
            {"timer": timer, "non_reading": args.non_reading, "sessions": args.sessions},
            args.verify,
        )
        gc.unfreeze()
        gc.collect()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
