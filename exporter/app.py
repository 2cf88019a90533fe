"""Wires the parts together: AWS accounts, EC2 and log collection on schedules, one published
snapshot, and the web server."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from exporter import memory
from exporter.config import Config, ConfigError, Target, tag_label
from exporter.diagnosis.rules import diagnosed
from exporter.durable import all_saved
from exporter.exposition.instrumentation import ExporterMetrics
from exporter.exposition.render import RenderedSnapshot, paused_cyclic_gc
from exporter.frozen_heap import FrozenHeap
from exporter.model import LogCollection, Observation, Snapshot, TrafficCollection, TunnelStatusCollection
from exporter.schedule import Scheduler
from exporter.sources.aws import AwsAccount, client_config, own_credentials
from exporter.sources.discovery import Discovery, run_budget
from exporter.sources.ec2.poller import Ec2Collection, Poller
from exporter.sources.ec2.tunnel_status import TunnelStatusPoller
from exporter.sources.logs.reader import IngestCounters, LogIngestor
from exporter.sources.logs.state import StateFile
from exporter.sources.traffic import TrafficPoller
from exporter.web.config import WebConfig
from exporter.web.server import ExporterServer

log = logging.getLogger(__name__)


def _traffic_timeout(config: Config) -> float:
    """A traffic pass is reported as failed after its interval, at most 2 min (a call per 250 tunnels)."""
    return min(config.traffic.interval, 120.0)


def _log_poll_timeout(config: Config) -> float:
    """A log read is reported as failed (and goes on in the background) after its interval, at most 5 min."""
    return min(config.logs.poll_interval, 300.0)


class Exporter:
    """A running exporter: polls on schedules, serves the latest complete snapshot."""

    def __init__(
        self,
        config: Config,
        listen: tuple[str, int] | None = None,
        web_config: WebConfig | None = None,
        clock: Callable[[], float] = time.time,
    ):
        """``clock`` dates the EC2 collections (a benchmark runs an hour of 30 s polls in a minute with its own)."""
        self.config = config
        self._clock = clock
        self.metrics = ExporterMetrics(snapshot_monotonic=self._snapshot_monotonic)
        self._executor = ThreadPoolExecutor(max_workers=config.max_concurrency, thread_name_prefix="collect")
        # discovery's own pool: a slow account or home region never holds a worker an EC2 poll needs
        self._discovery_executor = ThreadPoolExecutor(
            max_workers=min(8, config.max_concurrency), thread_name_prefix="discover"
        )
        self._own_credentials = own_credentials()  # every role is assumed from it
        self.accounts: list[AwsAccount] = []
        self.poller: Poller | None = None
        self._collection: tuple | None = None  # what the running poller was built for (see _apply)
        self._discovered: tuple[Target, ...] = ()  # the organizations' targets, unsharded
        self._discovered_once = False
        self.discovery = self._discovery(config)
        self._apply(config)
        self.logs: LogIngestor | None = None
        if config.logs.enabled:
            counters = IngestCounters(
                ingested=lambda account, region, kind, n: self.metrics.log_events_ingested.labels(
                    account, region, kind
                ).inc(n),
                duplicates=lambda account, region, n: self.metrics.log_events_duplicate.labels(account, region).inc(n),
                parse_errors=lambda kind, reason, n: self.metrics.log_parse_errors.labels(kind, reason).inc(n),
                unattributed=lambda account, region, n: self.metrics.log_events_unattributed.labels(
                    account, region
                ).inc(n),
                future_dated=lambda account, region, n: self.metrics.log_events_future_dated.labels(
                    account, region
                ).inc(n),
            )
            state_file = StateFile(config.state_dir, on_corrupt=self.metrics.state_file_errors.inc)
            self.logs = LogIngestor(
                config.logs, state_file, self._executor, poll_timeout=_log_poll_timeout(config), counters=counters
            )
        self.tunnel_status = (
            TunnelStatusPoller(config.tunnel_status.max_calls_per_second) if config.tunnel_status.enabled else None
        )
        self.traffic = (
            TrafficPoller(
                config.traffic,
                self._executor,
                _traffic_timeout(config),
                state_dir=config.state_dir,
                on_corrupt=self.metrics.state_file_errors.inc,
                unrecognized=lambda field: self.metrics.unrecognized.labels(field).inc(),
            )
            if config.traffic.enabled
            else None
        )
        state_files = [owner.document for owner in (self.logs and state_file, self.traffic) if owner and owner.document]
        self.metrics.state_file_writable.set_function(lambda: 1.0 if all_saved(state_files) else 0.0)
        self._ec2: Ec2Collection | None = None
        self._traffic_data: TrafficCollection | None = None
        self._log_data: LogCollection | None = None
        self._tunnel_status_data: TunnelStatusCollection | None = None
        self._publish_lock = threading.Lock()
        self._heap = FrozenHeap()
        self._reported_failures: set[tuple[str, str]] = set()
        self._every_source_failing = False
        self.current: RenderedSnapshot | None = None
        self.scheduler = Scheduler()  # on the monotonic clock: a step of the wall clock stops no poll
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

    def _accounts(self, config: Config, targets: tuple[Target, ...]) -> list[AwsAccount]:
        """One AWS session per (sharded) target, with the config's retry and timeout settings. A target the running
        poller already has keeps its session when the AWS settings are unchanged, and a discovered one shares the
        session discovery read it with: no new AssumeRole, no new clients."""
        same_settings = self._collection is not None and self._collection[1] == config.aws
        running = {account.target: account for account in self.accounts} if same_settings else {}
        boto_config = client_config(config.aws.max_attempts, config.aws.connect_timeout, config.aws.read_timeout)

        def session(target: Target) -> AwsAccount:
            if target in running:
                return running[target]
            discovered = self.discovery.session_for(target) if self.discovery is not None else None
            if discovered is not None:  # the session discovery read the account with (made with these settings)
                return discovered.sharing(target)
            return AwsAccount(target, self.metrics.record_api_call, boto_config, self._own_credentials)

        return [session(target) for target in targets]

    def _watched(self, config: Config) -> tuple[Target, ...]:
        """This shard's targets: the explicit ones, then the discovered ones (a pair both name is the explicit's).
        The order is kept: where an account is known only at run time, the poller gives it to the first."""
        explicit = {(target.credentials, region) for target in config.targets for region in target.regions}
        explicit_accounts = {target.account_id_from_role for target in config.targets if target.role_arn}
        discovered = []
        for target in self._discovered:
            if target.role_arn and target.account_id_from_role in explicit_accounts:
                continue  # an explicit target (perhaps just reloaded) watches this account: never twice
            regions = tuple(r for r in target.regions if (target.credentials, r) not in explicit)
            if regions:
                discovered.append(replace(target, regions=regions))
        return config.shard.select(config.targets + tuple(discovered))

    def _apply(self, config: Config) -> None:
        """Point EC2 collection at the config's and the discovered targets: new sessions where needed and a new
        poller (keeping what the old one knew of the pairs still watched), when anything they depend on changed.
        A config reload and a change in the discovered set both apply here."""
        targets = self._watched(config)
        collection = (
            targets,
            config.aws,
            config.poll_timeout,
            config.poll_interval,
            config.connection_tags,
            config.empty_region_interval,
        )
        if collection == self._collection:
            return
        self.accounts = self._accounts(config, targets)
        self.poller = Poller(config, self.accounts, self._executor, clock=self._clock, inherit=self.poller)
        self._collection = collection

    def _discovery(self, config: Config) -> Discovery | None:
        if not config.organizations:
            return None
        boto_config = client_config(config.aws.max_attempts, config.aws.connect_timeout, config.aws.read_timeout)
        return Discovery(
            config.organizations,
            self.metrics.record_api_call,
            boto_config,
            self._discovery_executor,
            lambda field: self.metrics.unrecognized.labels(field).inc(),
            self._own_credentials,
            budget=lambda: run_budget(self.config.discovery_interval),
            rediscover=self.discover,
        )

    @property
    def address(self) -> tuple[str, int]:
        return self.server.server_address[:2]

    def _snapshot_monotonic(self) -> float | None:
        current = self.current
        return current.snapshot.completed_monotonic if current else None

    # --- collection ---------------------------------------------------------------------------------

    def discover(self) -> None:
        """List the organizations' accounts and regions again (its own job, hourly); a changed set applies at
        once, through the same path as a config reload. The first run starts the EC2 polls."""
        discovery = self.discovery
        try:
            if discovery is None:
                return
            found = discovery.discover(self.config.targets, self.config.shard)
            self.metrics.discovery.views = discovery.views
            with self._reload_lock:
                if discovery is self.discovery and found != self._discovered:
                    before = sum(len(t.regions) for t in self._discovered)
                    self._discovered = found
                    self._apply(self.config)
                    log.info(
                        "discovered targets changed accounts=%d regions=%d (were %d regions); applied",
                        len(found),
                        sum(len(t.regions) for t in found),
                        before,
                    )
        finally:
            if not self._discovered_once:
                self._discovered_once = True
                if self.scheduler.running and self.scheduler.get_job("poll-ec2") is not None:
                    self.scheduler.run_now("poll-ec2")

    def poll_ec2(self) -> None:
        if self.discovery is not None and not self._discovered_once:
            self.discover()  # poll_once (diagnose, tests): the organizations' accounts first
        ec2 = self.poller.poll()
        for field, count in ec2.unrecognized.items():
            self.metrics.unrecognized.labels(field).inc(count)
        first = self._ec2 is None
        self._ec2 = ec2
        self._publish()
        for job in ("poll-logs", "poll-tunnel-status", "poll-traffic"):  # they need EC2's tunnels first
            if first and self.scheduler.get_job(job) is not None:
                self.scheduler.run_now(job)

    def poll_logs(self) -> None:
        """Read new log events for the tunnels EC2 last reported (nothing before the first EC2 poll)."""
        ec2 = self._ec2
        if self.logs is None or ec2 is None:
            return
        self._log_data = self.logs.poll(ec2.regions, ec2.accounts)
        self._publish()

    def poll_tunnel_status(self, only: set[str] = frozenset(), within: float | None = None) -> None:
        """AWS's maintenance and provisioning status of the tunnels EC2 last reported (its own slow schedule);
        ``only`` these connections (ids or Name tags) and ``within`` seconds for a one-shot ``diagnose``."""
        ec2 = self._ec2
        if self.tunnel_status is None or ec2 is None:
            return
        regions = (
            ec2.regions
            if not only
            else tuple(
                replace(
                    region,
                    connections=tuple(c for c in region.connections if c.vpn_connection_id in only or c.name in only),
                )
                for region in ec2.regions
            )
        )
        self._tunnel_status_data = self.tunnel_status.poll(regions, ec2.accounts, within)
        for field, count in self._tunnel_status_data.unrecognized.items():
            self.metrics.unrecognized.labels(field).inc(count)
        self._publish()

    def poll_traffic(self, within: float | None = None) -> None:
        """CloudWatch's bytes for the tunnels EC2 last reported (its own schedule, the metrics' resolution);
        ``within`` seconds for a one-shot ``diagnose``."""
        ec2 = self._ec2
        if self.traffic is None or ec2 is None:
            return
        self._traffic_data = self.traffic.poll(ec2.regions, ec2.accounts, within)
        self._publish()

    def poll_once(self) -> RenderedSnapshot:
        """EC2 then logs, once, in the calling thread (tests, the diagnose command)."""
        self.poll_ec2()
        self.poll_logs()
        return self.current

    def _publish(self) -> None:
        """Combine the latest EC2 and log data into one snapshot, render it, and swap it in."""
        with self._publish_lock:
            ec2, logs, status, traffic = self._ec2, self._log_data, self._tunnel_status_data, self._traffic_data
            if ec2 is None:
                return
            with paused_cyclic_gc():
                observation = Observation(
                    completed_at=time.time(),
                    completed_monotonic=time.monotonic(),
                    regions=ec2.regions,
                    results=ec2.results
                    + (logs.results if logs else ())
                    + (status.results if status else ())
                    + (traffic.results if traffic else ()),
                    tunnel_logs=logs.tunnels if logs else {},
                    log_groups=logs.groups if logs else (),
                    tunnel_status=status.statuses if status else {},
                    traffic=traffic,
                    tag_labels=tuple(tag_label(key) for key in self.config.connection_tags),
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
        # AWS sessions are cycles: when what holds them changes (a reload, a changed discovered set), the heap is
        # collected first, so the sessions dropped are freed; an ordinary poll or discovery run costs nothing.
        self._heap.freeze((self.discovery, self._discovered, *self.accounts, *ec2.accounts.values()))
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

        Targets, AWS settings, sharding, intervals and log settings take effect at once; the state
        directory, the listen address and max_concurrency need a restart and are kept (logged).
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
            if new.logs.enabled != old.logs.enabled:
                kept.append("logs.enabled")
                new = replace(new, logs=replace(new.logs, enabled=old.logs.enabled))
            if new.tunnel_status.enabled != old.tunnel_status.enabled:
                kept.append("tunnel_status.enabled")
                new = replace(new, tunnel_status=replace(new.tunnel_status, enabled=old.tunnel_status.enabled))
            if new.traffic.enabled != old.traffic.enabled:
                kept.append("traffic.enabled")
                new = replace(new, traffic=replace(new.traffic, enabled=old.traffic.enabled))
            rediscover = (new.organizations, new.aws) != (old.organizations, old.aws)
            explicit_changed = {t.credentials for t in new.targets} != {t.credentials for t in old.targets}
            if rediscover:  # the discovered set is kept until the new discovery has run (at once, below)
                if self.discovery is not None:
                    self.discovery.close()
                self.discovery = self._discovery(new)
                if self.discovery is None:
                    self._discovered = ()
                    self.metrics.discovery.views = ()
            self._apply(new)
            if self.logs is not None:
                self.logs.reconfigure(new.logs, poll_timeout=_log_poll_timeout(new))
            if self.tunnel_status is not None:  # a reload also retries the accounts that refused the calls
                self.tunnel_status.reconfigure(new.tunnel_status.max_calls_per_second)
            if self.traffic is not None:  # likewise where GetMetricData was refused
                self.traffic.reconfigure(new.traffic, _traffic_timeout(new))
            self.config = new
            if self.scheduler.running:
                for job_id, seconds in (
                    ("poll-ec2", new.poll_interval),
                    ("poll-logs", new.logs.poll_interval),
                    ("poll-tunnel-status", new.tunnel_status.interval),
                    ("poll-traffic", new.traffic.interval),
                    ("discover", new.discovery_interval),
                ):
                    if self.scheduler.get_job(job_id) is not None:
                        self.scheduler.reschedule(job_id, seconds)
                self._schedule_discovery(at_once=rediscover or explicit_changed)
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

    def _schedule_discovery(self, at_once: bool) -> None:
        """The discovery job exists while organization targets do; a reload that changed them runs it now."""
        job = self.scheduler.get_job("discover")
        if self.discovery is None:
            if job is not None:
                job.remove()
        elif job is None:
            self.add_job(self.discover, self.config.discovery_interval, "discover")
        elif at_once:
            self.scheduler.run_now("discover")

    def start_polling(self) -> None:
        # With organization targets, the first EC2 poll waits for the first discovery (which starts it).
        self.add_job(self.poll_ec2, self.config.poll_interval, "poll-ec2", start=self.discovery is None)
        if self.discovery is not None:
            self.add_job(self.discover, self.config.discovery_interval, "discover")
        if self.logs is not None:
            self.add_job(self.poll_logs, self.config.logs.poll_interval, "poll-logs")
        if self.tunnel_status is not None:
            self.add_job(self.poll_tunnel_status, self.config.tunnel_status.interval, "poll-tunnel-status")
        if self.traffic is not None:
            self.add_job(self.poll_traffic, self.config.traffic.interval, "poll-traffic")
        self.scheduler.start()
        log.info(
            "polling targets=%d organizations=%d poll_interval=%gs logs=%s traffic=%s",
            len(self.config.targets),
            len(self.config.organizations),
            self.config.poll_interval,
            "on" if self.logs else "off",
            "on" if self.traffic else "off",
        )

    def start_server(self) -> None:
        """Serve HTTP in the background (tests poll by hand and call only this)."""
        # A poll renders for about a second at 10,000 tunnels; a 1 ms GIL switch interval (5 ms by
        # default) keeps scrapes served meanwhile (benchmarks/scrape.py: p99 at 1 ms vs 5 ms).
        sys.setswitchinterval(0.001)
        self.server = ExporterServer(
            self._listen,
            lambda: self.current,
            self.metrics.render,
            self._web_config,
            self.reload if self.lifecycle else None,
            demo=self.demo,
            discovery=lambda: self.metrics.discovery.views,
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
        self._discovery_executor.shutdown(wait=False, cancel_futures=True)
        if self.discovery is not None:
            self.discovery.close()
        if self.tunnel_status is not None:
            self.tunnel_status.close()
        if self.logs is not None:
            self.logs.close()
