"""Wires the parts together: every registered source (sources/registry.py) on its schedule, one published
snapshot, and the web server. It names no source: what a source needs, and what it contributes, it declares."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any

from exporter import memory
from exporter.config import Config, ConfigError, tag_label
from exporter.diagnosis.rules import diagnosed
from exporter.durable import all_saved
from exporter.exposition.instrumentation import ExporterMetrics
from exporter.exposition.render import RenderedSnapshot, paused_cyclic_gc
from exporter.frozen_heap import FrozenHeap
from exporter.model import Observation, Snapshot
from exporter.schedule import Scheduler
from exporter.sources.aws import own_credentials
from exporter.sources.registry import SOURCES
from exporter.sources.source import Context, Source
from exporter.web.config import WebConfig
from exporter.web.server import ExporterServer

log = logging.getLogger(__name__)


class Exporter:
    """A running exporter: polls its sources on schedules, serves the latest complete snapshot."""

    def __init__(
        self,
        config: Config,
        listen: tuple[str, int] | None = None,
        web_config: WebConfig | None = None,
        clock: Callable[[], float] = time.time,
    ):
        """``clock`` dates the collections (a benchmark runs an hour of 30 s polls in a minute with its own)."""
        self.config = config
        self.metrics = ExporterMetrics(snapshot_monotonic=self._snapshot_monotonic)
        self._executor = ThreadPoolExecutor(max_workers=config.max_concurrency, thread_name_prefix="collect")
        # a pool for the sources' slow side work (listing accounts): it never holds a worker a poll needs
        self._background_executor = ThreadPoolExecutor(
            max_workers=min(8, config.max_concurrency), thread_name_prefix="background"
        )
        self.scheduler = Scheduler()  # on the monotonic clock: a step of the wall clock stops no poll
        context = Context(
            executor=self._executor,
            background_executor=self._background_executor,
            clock=clock,
            own_credentials=own_credentials(),  # every role is assumed from it
            metrics=self.metrics,
            run_now=self._poll_soon,
        )
        # every registered source the config enables, in the registry's order (each after those it needs)
        self.sources: dict[str, Source] = {
            source.name: source(config, context) for source in SOURCES if source.enabled(config)
        }
        self._outputs: dict[str, Any] = {}  # each source's latest output, read by the sources that need it
        self._attempted: set[str] = set()  # sources polled at least once
        self._produced: set[str] = set()  # sources with an output
        documents = [document for source in self.sources.values() for document in source.state_documents()]
        self.metrics.state_file_writable.set_function(lambda: 1.0 if all_saved(documents) else 0.0)
        self._publish_lock = threading.Lock()
        self._derive_lock = threading.Lock()  # two sources' jobs may end at once: one derivation at a time
        self._heap = FrozenHeap()
        self._reported_failures: set[tuple[str, str]] = set()
        self._every_source_failing = False
        self.current: RenderedSnapshot | None = None
        self._listen = listen
        self._web_config = web_config
        self.server: ExporterServer | None = None  # bound by start_server(); a one-shot diagnose binds nothing
        self._reload_lock = threading.Lock()
        self.reload_source: Callable[[], Config] | None = None  # how to re-read the config (set by the CLI)
        self.lifecycle = False  # --web.enable-lifecycle: POST /-/reload
        self.demo = False  # --demo: the status page says it shows the simulated AWS (set by the CLI)
        self.metrics.config_reload_successful.set(1)
        self.metrics.config_reload_timestamp.set(time.time())
        self.metrics.set_shard(config.shard.index, config.shard.count)

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None, "bound by start_server()"
        host, port = self.server.server_address[:2]
        assert isinstance(host, str)  # an IPv4 or IPv6 socket's address
        return host, port

    def _snapshot_monotonic(self) -> float | None:
        current = self.current
        return current.snapshot.completed_monotonic if current else None

    # --- collection ---------------------------------------------------------------------------------

    def poll(self, name: str, within: float | None = None, only: frozenset[str] = frozenset()) -> None:
        """Poll one source (its job, or a one-shot ``diagnose`` with ``within`` seconds and ``only`` these
        connections), first polling once what it needs that never ran. Its output is kept for the sources that need
        it, which follow it at once, and published. The first time a source ends a poll (and the first time it has an
        output), the sources that need it run at once."""
        source = self.sources.get(name)
        if source is None:
            return
        for need in source.needs:
            if need in self.sources and need not in self._attempted:
                self.poll(need)  # poll_once (diagnose, tests): what it needs first
        output = None
        try:
            output = source.poll(self._outputs, within, only)
            if output is not None:
                with self._reload_lock:
                    self._outputs[name] = output
                    for dependent in self._dependents(name):
                        dependent.follow(self._outputs)
                derived = self._derive(name)
                if derived or output.results or output.observed():
                    self._publish()
        finally:
            fresh = name not in self._attempted or (output is not None and name not in self._produced)
            self._attempted.add(name)
            if output is not None:
                self._produced.add(name)
            if fresh:
                for dependent in self._dependents(name):
                    self._run_now(dependent.name)

    def _derive(self, changed: str) -> bool:
        """Recompute the derived sources that need ``changed`` (no job, no AWS call) from the outputs as they are now,
        so their counts go out in the same publish as its new output; True when one has a new output. A derived
        source that fails is logged, and the other sources' data publish all the same."""
        produced = False
        with self._derive_lock:
            for name, source in self.sources.items():
                if not source.derived or changed not in source.needs:
                    continue
                if any(need in self.sources and need not in self._outputs for need in source.needs):
                    continue
                try:
                    output = source.poll(self._outputs)
                except Exception:
                    log.exception("derived source failed source=%s; the others publish", name)
                    continue
                self._attempted.add(name)
                if output is not None:
                    with self._reload_lock:
                        self._outputs[name] = output
                    self._produced.add(name)
                    produced = True
        return produced

    def _dependents(self, name: str) -> list[Source]:
        return [source for source in self.sources.values() if name in source.needs]

    def _poll_soon(self, name: str) -> None:
        """A source asks to be polled again now (a retry that is due): through its job, or here and now."""
        if not self._run_now(name) and not self.scheduler.stopped:
            self.poll(name)

    def _run_now(self, name: str) -> bool:
        """Run a source's job at once, when the scheduler runs it; False when there is no such job running."""
        if self.scheduler.running and self.scheduler.get_job(_job(name)) is not None:
            self.scheduler.run_now(_job(name))
            return True
        return False

    def poll_once(self, every: bool = False, within: float | None = None, only: frozenset[str] = frozenset()):
        """Poll the quick sources (each after what it needs), or ``every`` source, once each in the
        calling thread (tests; the diagnose command, with ``within`` and ``only``); return what is published."""
        for name, source in self.sources.items():
            if every or source.quick:
                self.poll(name, within, only)
        return self.current

    def _publish(self) -> None:
        """Combine every source's latest output into one observation, diagnose it, render it, and swap it in
        (nothing before each required source has an output)."""
        with self._publish_lock:
            outputs = [self._outputs.get(name) for name in self.sources]
            if any(source.required and name not in self._outputs for name, source in self.sources.items()):
                return
            observed: dict[str, Any] = {}
            for output in outputs:
                if output is not None:
                    observed.update(output.observed())
            with paused_cyclic_gc():
                observation = Observation(
                    completed_at=time.time(),
                    completed_monotonic=time.monotonic(),
                    results=tuple(result for output in outputs if output is not None for result in output.results),
                    tag_labels=tuple(tag_label(key) for key in self.config.connection_tags),
                    **observed,
                )
                snapshot = diagnosed(observation, on_error=self._diagnosis_failed)
                self.current = RenderedSnapshot.of(snapshot)
            self._say_if_every_source_fails(snapshot)
            for unit in self.current.failed:
                self.metrics.render_errors.inc()
                self._report_once("render", unit, "its series are left out")
            for metric, dropped in self.current.duplicates:  # a bug upstream; /metrics stays valid
                self.metrics.duplicate_series_dropped.labels(metric).inc(dropped)
                self._report_once(
                    "render", f"{metric} (duplicate series)", "the first of each is kept, the rest dropped"
                )
        # The snapshot is long-lived and acyclic (freed by reference counting when replaced): keep the
        # cyclic GC from walking its millions of objects on every full collection, which stalls scrapes.
        # AWS sessions are cycles: when what holds them changes (a reload, a changed set of targets), the heap is
        # collected first, so the sessions dropped are freed; an ordinary poll costs nothing.
        self._heap.freeze(tuple(held for source in self.sources.values() for held in source.holds()))
        memory.release_free_memory()  # what the poll parsed and the old snapshot held

    def _say_if_every_source_fails(self, snapshot: Snapshot) -> None:
        """One error line when every account, region and source fails (credentials, network, endpoint), one
        info line when collection works again: the per-source warnings alone do not say it is all of them."""
        failing = bool(snapshot.results) and not any(result.success for result in snapshot.results)
        if failing and not self._every_source_failing:
            errors = sorted({f"{r.source} {r.account_id}/{r.region}: {r.error}" for r in snapshot.results})
            log.error(
                "every source failed; no fresh data is served (see / and /metrics) errors=%r",
                "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else ""),
            )
        elif not failing and self._every_source_failing:
            log.info("collection works again sources=%d", len(snapshot.results))
        self._every_source_failing = failing

    def _diagnosis_failed(self, vpn_connection_id: str, err: Exception) -> None:
        self.metrics.diagnosis_errors.inc()
        self._report_once("diagnosis", f"{vpn_connection_id} ({type(err).__name__})", "its findings are left out")

    def _report_once(self, stage: str, unit: str, consequence: str) -> None:
        """Log a failing tunnel or connection once, not once per publish (bounded: churn brings new ones)."""
        if (stage, unit) not in self._reported_failures:
            if len(self._reported_failures) >= 10_000:
                self._reported_failures.clear()
            self._reported_failures.add((stage, unit))
            log.error("%s failed for=%r; %s", stage, unit, consequence)

    # --- configuration reload (SIGHUP, POST /-/reload) ------------------------------------------------

    def reload(self) -> str | None:
        """Re-read the config and apply it; None on success, else why not (the old config keeps running).

        Targets, AWS settings, sharding, intervals and every source's settings take effect at once; the state
        directory, the listen address, max_concurrency and whether a source is enabled need a restart and are kept
        (logged).
        """
        with self._reload_lock:
            try:
                if self.reload_source is None:
                    raise ConfigError("<none>", "", "this exporter was not started from a config file")
                new = self.reload_source()
            except ConfigError as err:
                self.metrics.config_reload_successful.set(0)
                log.error("config reload failed error=%r; keeping the running config", str(err))
                return str(err)
            old, kept = self.config, []
            for name in ("state_dir", "max_concurrency"):
                if getattr(new, name) != getattr(old, name):
                    kept.append(name)
                    new = replace(new, **{name: getattr(old, name)})
            for section in (source.section for source in SOURCES if source.section):
                was, now = getattr(old, section), getattr(new, section)
                if now.enabled != was.enabled:
                    kept.append(f"{section}.enabled")
                    new = replace(new, **{section: replace(now, enabled=was.enabled)})
            run_now = [name for name, source in self.sources.items() if source.reconfigure(new)]
            self.config = new
            for name, source in self.sources.items():
                standing = source.standing_output()
                if standing is not None:  # e.g. a source turned off by the reload: its output is empty now
                    self._outputs[name] = standing
                    for dependent in self._dependents(name):
                        dependent.follow(self._outputs)
            if self.scheduler.running:
                for name, source in self.sources.items():
                    if self.scheduler.get_job(_job(name)) is not None:
                        self.scheduler.reschedule(_job(name), source.interval(new))
                for name in run_now:
                    self._run_now(name)
            self.metrics.config_reload_successful.set(1)
            self.metrics.config_reload_timestamp.set(time.time())
            self.metrics.set_shard(new.shard.index, new.shard.count)
            log.info(
                "config reloaded source=%s targets=%d%s",
                new.source,
                len(new.targets),
                f" kept_until_restart={','.join(kept)}" if kept else "",
            )
            return None

    # --- lifecycle ----------------------------------------------------------------------------------

    def add_job(self, func: Callable[[], object], interval: float, job_id: str, start: bool = True) -> None:
        """Run ``func`` now (or, with ``start`` false, once resumed) and every ``interval`` seconds; a failure
        is logged, never fatal."""
        self.scheduler.add_job(func, interval, job_id, start=start)

    def start(self) -> None:
        self.start_server()
        self.start_polling()

    def start_polling(self) -> None:
        """A job per source on its interval (a derived one has none); a source that needs another waits, paused,
        until that one has run."""
        for name, source in self.sources.items():
            if source.derived:
                continue  # recomputed with the outputs it reads (see _derive)
            waits = any(need in self.sources for need in source.needs)
            self.add_job(partial(self.poll, name), source.interval(self.config), _job(name), start=not waits)
        self.scheduler.start()
        log.info(
            "polling targets=%d organizations=%d poll_interval=%gs sources=%s",
            len(self.config.targets),
            len(self.config.organizations),
            self.config.poll_interval,
            ",".join(self.sources),
        )

    def start_server(self) -> None:
        """Serve HTTP in the background (tests poll by hand and call only this)."""
        # A poll renders for about a second at 10,000 tunnels; a 1 ms GIL switch interval (5 ms by
        # default) keeps scrapes served meanwhile (benchmarks/scrape.py: p99 at 1 ms vs 5 ms).
        sys.setswitchinterval(0.001)
        assert self._listen is not None, "an exporter that serves is given an address (a one-shot diagnose is not)"
        self.server = ExporterServer(
            self._listen,
            lambda: self.current,
            self.metrics.render,
            self._web_config,
            self.reload if self.lifecycle else None,
            demo=self.demo,
            organizations=self.metrics.organization_views,
            runbook_base=lambda: self.config.runbook_base,
        )
        threading.Thread(target=self.server.serve_forever, name="http", daemon=True).start()
        host, port = self.address
        log.info("listening address=%s:%d", host, port)

    def stop(self) -> None:
        """Stop scheduling, stop serving, and save the log state so a restart loses nothing."""
        if self.scheduler.running:
            self.scheduler.shutdown()  # state is consistent at page granularity; no need to wait
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._background_executor.shutdown(wait=False, cancel_futures=True)
        for source in self.sources.values():
            source.close()


def _job(source: str) -> str:
    return f"poll-{source}"
