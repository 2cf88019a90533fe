"""The rendering of a snapshot into the Prometheus text format, from the metric contract (``contract``).

A snapshot is rendered once
per poll, straight into gzip, so a scrape costs a memory copy, not a walk over every tunnel. The
renderer is a lean one of its own: at 10,000 tunnels (200,000 samples) prometheus-client's objects
cost seconds of GIL and ~100 MB; rows of label tuples that share the model's strings cost little.
The format (escaping, float spelling) follows prometheus-client's, and promtool checks it in the tests.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import logging
import os
import select
import struct
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from exporter.contract import (
    COLLECTION_DURATION,
    COLLECTION_LAST_SUCCESS,
    COLLECTION_SUCCESS,
    FINDING_INFO,
    POLL_TIMESTAMP,
    TUNNEL_FINDING,
)
from exporter.diagnosis.findings import FINDINGS
from exporter.family import Family, Isolated, flag
from exporter.model import Snapshot
from exporter.sources.registry import SOURCES

log = logging.getLogger(__name__)
FORK_RENDER_MIN_TUNNELS = 2000  # below this an in-process render is quicker than a fork
FORK_RENDER_TIMEOUT = 120.0


def snapshot_families(snapshot: Snapshot, failed: list[str] | None = None) -> Iterator[Family]:
    """Every metric family that a snapshot determines, built fresh so no stale series survive: each registered
    source's, then the findings and the collection's. A tunnel or connection whose values cannot be rendered is left
    out and named in ``failed``; the rest publish."""
    failed = [] if failed is None else failed
    for source in SOURCES:
        yield from source.families(snapshot, failed)
    finding = Family.of(TUNNEL_FINDING)
    isolated = Isolated((finding,), failed)
    for item in snapshot.findings:
        with isolated(f"{item.vpn_connection_id} {item.tunnel} {item.code}"):
            finding.add_metric(
                [item.account_id, item.region, item.vpn_connection_id, item.tunnel, item.code, item.severity], 1.0
            )
    yield finding
    yield _finding_catalogue()
    yield from _collection_families(snapshot)


def _finding_catalogue() -> Family:
    """The findings catalogue as series, one per code: alert templates join it to a tunnel's active findings
    to put each cause's summary and fix in the page, worded by the exporter that diagnosed it."""
    catalogue = Family.of(FINDING_INFO)
    for spec in FINDINGS.values():
        catalogue.add_metric([spec.code, spec.severity, spec.alert, spec.summary, spec.remedy], 1.0)
    return catalogue


def _collection_families(snapshot: Snapshot) -> Iterator[Family]:
    success = Family.of(COLLECTION_SUCCESS)
    duration = Family.of(COLLECTION_DURATION)
    last_success = Family.of(COLLECTION_LAST_SUCCESS)
    for result in snapshot.results:
        labels = [result.account_id, result.region, result.source]
        success.add_metric(labels, flag(result.success))
        duration.add_metric(labels, result.duration_seconds)
        if result.last_success_timestamp is not None:
            last_success.add_metric(labels, result.last_success_timestamp)
    poll = Family.of(POLL_TIMESTAMP)
    poll.add_metric((), snapshot.completed_at)
    yield from (success, duration, last_success, poll)


@contextlib.contextmanager
def paused_cyclic_gc():
    """Building and rendering a snapshot allocates millions of acyclic objects: a cyclic GC pass in the
    middle would walk them all while holding the GIL, stalling every scrape. Reference counting frees them."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _each_name_once(families: Iterable[Family], dropped: Counter | None) -> Iterator[Family]:
    """The families, but a name seen before is left out with its rows (counted): a second TYPE line would make
    Prometheus reject the whole scrape."""
    names = set()
    for family in families:
        if family.name in names:
            if dropped is not None:
                dropped[family.name] += len(family.rows)
            continue
        names.add(family.name)
        yield family


def render_families(families: Iterable[Family], dropped: Counter | None = None) -> bytes:
    """The text exposition of some metric families (duplicate series dropped and counted in ``dropped``)."""
    return "".join(family.render(dropped) for family in _each_name_once(families, dropped)).encode("utf-8")


def render_gzip(families: Iterable[Family], dropped: Counter | None = None) -> bytes:
    """The gzipped exposition, family by family: the whole plain text never exists at once. Duplicate series
    are dropped and counted in ``dropped``."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    chunks = []
    for family in _each_name_once(families, dropped):
        chunks.append(compressor.compress(family.render(dropped).encode("utf-8")))
        time.sleep(0)  # between families, let the HTTP threads run
    chunks.append(compressor.flush())
    return b"".join(chunks)


@dataclass(frozen=True)
class RenderedSnapshot:
    """A snapshot and its pre-rendered exposition, swapped in as one object.

    Only the gzipped exposition is kept (Prometheus always asks for gzip): at 10,000 tunnels the plain
    text is ~35 MB, the gzip ~1 MB. A client without gzip gets it decompressed on demand.
    """

    snapshot: Snapshot
    body_gzip: bytes
    failed: tuple[str, ...] = ()  # tunnels, connections or findings left out: their values could not be rendered
    duplicates: tuple[tuple[str, int], ...] = ()  # (metric, series dropped because the exposition had them twice)

    @property
    def body(self) -> bytes:
        return gzip.decompress(self.body_gzip)

    @classmethod
    def of(cls, snapshot: Snapshot, isolate: bool | None = None) -> RenderedSnapshot:
        """Render a snapshot. Large ones (``isolate``: by default from FORK_RENDER_MIN_TUNNELS) are
        rendered in a forked child, so the CPU-bound render never holds the GIL that scrapes need."""
        if isolate is None:
            isolate = (
                hasattr(os, "fork")
                and sum(len(c.tunnels) for _, c in snapshot.connections()) >= FORK_RENDER_MIN_TUNNELS
            )
        rendered = _render_in_child(snapshot) if isolate else None
        if rendered is None:
            failed: list[str] = []
            dropped: Counter = Counter()
            with paused_cyclic_gc():
                rendered = render_gzip(snapshot_families(snapshot, failed), dropped), failed, dropped
        body, failed, dropped = rendered
        return cls(snapshot, body, tuple(failed), tuple(sorted(dropped.items())))


def _render_in_child(snapshot: Snapshot) -> tuple[bytes, list[str], Counter] | None:
    """Render in a forked child that writes the gzip body to a pipe, then what it left out and the duplicate
    series it dropped (JSON) and that trailer's length (4 bytes); None (render here) on any failure.

    The child only computes: no logging, no locks, no threads; it leaves with os._exit. The parent
    waits on the pipe, which releases the GIL, so its HTTP threads serve scrapes meanwhile."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        status = 1
        try:
            os.close(read_end)
            os.nice(10)  # the render is background work: scrapes in the parent come first
            gc.disable()
            failed: list[str] = []
            dropped: Counter = Counter()
            body = render_gzip(snapshot_families(snapshot, failed), dropped)
            trailer = json.dumps([failed, dropped]).encode()
            with os.fdopen(write_end, "wb") as out:
                out.write(body + trailer + struct.pack("!I", len(trailer)))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + FORK_RENDER_TIMEOUT
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
                os.kill(pid, 9)
                log.warning("render child timed out after %.0fs; rendering in process", FORK_RENDER_TIMEOUT)
                return None
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    if status != 0:
        log.warning("render child failed status=%d; rendering in process", status)
        return None
    output = b"".join(chunks)
    (trailer_length,) = struct.unpack("!I", output[-4:])
    failed, dropped = json.loads(output[-4 - trailer_length : -4])
    return output[: -4 - trailer_length], failed, Counter(dropped)
