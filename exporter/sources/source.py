"""The shape every AWS source has, in the spirit of node_exporter's ``registerCollector``: a source declares its name,
its config section, its schedule and what it needs first, polls into its own output record, and is reconfigured
and closed by the exporter, which loops over ``sources.registry.SOURCES`` and names none of them.

Also here, written once for every source: the per-region busy guard (a read that outlived its poll goes on, and
the next polls leave that region alone) and the ``SourceResult`` bookkeeping with each region's last success.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from exporter.config import Config
from exporter.family import Family
from exporter.model import Connection, Observation, RegionTelemetry, Snapshot, SourceResult, Tunnel, TunnelKey

log = logging.getLogger(__name__)


Rule = tuple[str, tuple[str, ...]]  # a finding's code and its evidence


class Output(Protocol):
    """What a poll returns: its results per account and region, and the Observation fields it fills."""

    results: tuple[SourceResult, ...]

    def observed(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Context:
    """What the exporter lends its sources."""

    executor: Executor  # the collection pool (max_concurrency workers), shared by the sources
    background_executor: Executor  # slow side work (listing accounts): it never holds a worker a poll needs
    clock: Callable[[], float]  # dates the collections (a benchmark runs an hour of polls in a minute)
    own_credentials: Any  # the botocore session every role is assumed from
    # the exporter's own counters (exposition.instrumentation.ExporterMetrics; a source may not import the
    # exposition, so it is lent here): API calls, unrecognised values, state file errors, log ingestion
    metrics: Any
    run_now: Callable[[str], None]  # run a source's poll at once (a retry that is due)


class Source:
    """One AWS source. A subclass sets the class attributes and overrides what it needs."""

    name: ClassVar[str]  # its job ("poll-<name>"), its results' ``source`` label, its key in the upstream outputs
    section: ClassVar[str | None] = None  # its config section; its ``enabled`` takes a restart to change
    needs: ClassVar[tuple[str, ...]] = ()  # sources whose first output it waits for, and reads in ``poll``
    required: ClassVar[bool] = False  # nothing is published before its first output
    quick: ClassVar[bool] = False  # polled by Exporter.poll_once (no rate limit, no long pass)
    # derived from the others' outputs, with no AWS call: no job of its own; polled whenever a source it needs has a
    # new output, and published with it (its poll returns None when nothing it reads changed)
    derived: ClassVar[bool] = False
    # its state files a one-shot ``diagnose`` starts from: copied from the running exporter's state_dir, never written
    diagnose_reads: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Config, context: Context) -> None:
        """Every source is built so, by the exporter, from the registry (its own ``__init__`` keeps this shape)."""

    @classmethod
    def enabled(cls, config: Config) -> bool:
        return cls.section is None or bool(getattr(config, cls.section).enabled)

    def interval(self, config: Config) -> float:
        raise NotImplementedError

    def poll(self, upstream: Mapping[str, Any], within: float | None = None, only: frozenset[str] = frozenset()):
        """Collect once. ``upstream`` holds the latest output of each source it needs; ``within`` seconds for a
        one-shot ``diagnose``; ``only`` these connections (ids or Name tags)."""
        raise NotImplementedError

    def follow(self, upstream: Mapping[str, Any]) -> None:
        """A source it needs has a new output (e.g. EC2 applies the targets discovery found, at once)."""

    def reconfigure(self, config: Config) -> bool:
        """A config reload (``enabled`` kept as started); True when the source should run at once."""
        return False

    def standing_output(self) -> Any:
        """An output that replaces the last one at once after a reload (e.g. discovery turned off), or None."""
        return None

    def holds(self) -> tuple[object, ...]:
        """What holds this source's AWS sessions (for exporter.frozen_heap: collected when it changes)."""
        return ()

    @staticmethod
    def families(snapshot: Snapshot, failed: list[str]) -> Iterable[Family]:
        """Its metric families, built from a snapshot (in the renderer, perhaps in a forked child): each a family of
        the contract; a tunnel whose value cannot be rendered is left out (``Families.isolated``) and named in
        ``failed``."""
        return ()

    @staticmethod
    def connection_rules(
        observation: Observation, region: RegionTelemetry, connection: Connection, now: float
    ) -> Iterable[Rule]:
        """Its diagnosis of a connection: (finding code, evidence) pairs, codes from diagnosis/findings.py."""
        return ()

    @staticmethod
    def tunnel_rules(
        observation: Observation, connection: Connection, tunnel: Tunnel, key: TunnelKey, now: float
    ) -> Iterable[Rule]:
        """Its diagnosis of a tunnel (see ``connection_rules``); merged with the core checklist's, code by code."""
        return ()

    def state_documents(self) -> tuple[Any, ...]:
        """Its state files (durable.JsonDocument), for aws_vpn_exporter_state_file_writable."""
        return ()

    def close(self) -> None:
        """Shutdown: stop its work and save its state."""


Where = tuple[str, str]  # (account id, region)


class BusyRegions:
    """One read per account and region at a time: a read that outlived its poll goes on in the background, and
    the next polls leave that region alone (with a failed result saying so) until it is done."""

    def __init__(self, what: str):
        self._what = what  # "read", "pass": how the failure names it
        self._running: dict[Hashable, float] = {}  # -> monotonic start
        self._lock = threading.Lock()

    def start(self, where: Hashable) -> str | None:
        """Mark ``where`` running; or, when it already is, why it is skipped this time."""
        with self._lock:
            started = self._running.get(where)
            if started is None:
                self._running[where] = time.monotonic()
                return None
        return f"the previous {self._what} is still running ({time.monotonic() - started:.0f}s)"

    def running_for(self, where: Hashable) -> float:
        with self._lock:
            started = self._running.get(where)
        return 0.0 if started is None else time.monotonic() - started

    def finish(self, where: Hashable) -> None:
        with self._lock:
            self._running.pop(where, None)


class Results:
    """A source's results per account and region, with when each last succeeded (stale data keeps its age)."""

    def __init__(self, source: str, clock: Callable[[], float] = time.time):
        self.source, self._clock = source, clock
        self.last_success: dict[Where, float] = {}

    def result(self, where: Where, ok: bool, duration: float, error: str = "") -> SourceResult:
        """The region's result; a failure is logged (a warning per failed poll, as every source did)."""
        if ok:
            self.last_success[where] = self._clock()
        elif error:
            log.warning(
                "collection failed account=%s region=%s source=%s error=%r", where[0], where[1], self.source, error
            )
        return SourceResult(where[0], where[1], self.source, ok, duration, self.last_success.get(where), error)
