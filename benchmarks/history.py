"""Benchmark: what the history source costs per poll, by tunnel count (no AWS: hand-built EC2 output).

    .venv/bin/python benchmarks/history.py [--tunnels 1000 10000] [--polls 20]

Each poll advances every connection by 30 s, with a tenth of the tunnels changing state, and saves the state file
(atomically, fsynced). Printed per size: the mean time of a poll (counting and saving apart), the state file's
size, and the ratio of the largest size's poll time to the smallest's per tunnel (about 1: linear).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from exporter.model import Connection, RegionTelemetry, SourceResult, Tunnel
from exporter.sources.history.counter import HistoryCounter

START = 1_790_000_000.0


def regions(tunnels: int, step: int) -> tuple[RegionTelemetry, ...]:
    connections = []
    for index in range(tunnels // 2):
        pair = []
        for side in range(2):
            flapping = (index * 2 + side) % 10 == 0 and step % 2 == 1
            status = "DOWN" if flapping else "UP"
            changed = START + step * 30 - 7 if (index * 2 + side) % 10 == 0 and step else START - 3600
            ip = f"10.{index // 250}.{index % 250}.{side + 1}"
            pair.append(Tunnel(ip, status, "bgp_routes", 1, changed, status == "UP", status == "UP"))
        connections.append(
            Connection(f"vpn-{index:08x}", "", "available", "dynamic", "vgw", "vgw", "cgw", False, tunnels=tuple(pair))
        )
    return (RegionTelemetry("123456789012", "us-east-1", tuple(connections)),)


def measure(tunnels: int, polls: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as directory:
        clock = [START]
        counter = HistoryCounter(Path(directory), clock=lambda: clock[0])
        document = counter.document
        assert document is not None
        saves = []
        real_save = document.save

        def timed_save(data):
            started = time.perf_counter()
            real_save(data)
            saves.append(time.perf_counter() - started)

        document.save = timed_save  # type: ignore[method-assign]
        total = 0.0
        for step in range(polls + 1):
            clock[0] = START + step * 30
            seen = regions(tunnels, step)
            started = time.perf_counter()
            counter.poll(seen, (SourceResult("123456789012", "us-east-1", "ec2", True, 0.1, clock[0]),), None, None)
            if step:  # the first poll loads and sees everything first
                total += time.perf_counter() - started
        size = document.path.stat().st_size
        return total / polls, sum(saves[1:]) / polls, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tunnels", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--polls", type=int, default=20)
    args = parser.parse_args()
    per_tunnel = {}
    for tunnels in args.tunnels:
        poll, save, size = measure(tunnels, args.polls)
        per_tunnel[tunnels] = poll / tunnels
        print(
            f"{tunnels:>6} tunnels: {poll * 1000:7.1f} ms a poll ({save * 1000:.1f} ms of it saving), "
            f"state file {size / 1e6:.2f} MB"
        )
    smallest, largest = min(per_tunnel), max(per_tunnel)
    print(f"per-tunnel cost, {largest} vs {smallest} tunnels: {per_tunnel[largest] / per_tunnel[smallest]:.2f}x")


if __name__ == "__main__":
    main()
