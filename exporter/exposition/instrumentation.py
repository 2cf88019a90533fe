"""The exporter's own live metrics: counters that grow between polls and values read at scrape time.

They sit in a small registry of their own, rendered on every scrape and appended to the
pre-rendered snapshot.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from exporter import __version__
from exporter import contract as names

disable_created_metrics()  # *_created series double the counters and help no query here


class ExporterMetrics:
    """Counters and gauges about the exporter itself, in a registry of their own."""

    def __init__(self, snapshot_monotonic: Callable[[], float | None]):
        """``snapshot_monotonic``: the time.monotonic() instant the served snapshot completed (None: none yet); the
        age is measured on that clock, so a step of the wall clock neither hides a stall nor fakes one."""
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        info = _live(Info, names.BUILD_INFO, self.registry)
        info.info({"version": __version__, "python_version": platform.python_version()})
        self.api_calls = _live(Counter, names.API_CALLS, self.registry)
        self.unrecognized = _live(Counter, names.UNRECOGNIZED_VALUES, self.registry)
        self.log_events_ingested = _live(Counter, names.LOG_EVENTS_INGESTED, self.registry)
        self.log_events_duplicate = _live(Counter, names.LOG_EVENTS_DUPLICATE, self.registry)
        self.log_parse_errors = _live(Counter, names.LOG_PARSE_ERRORS, self.registry)
        self.log_events_unattributed = _live(Counter, names.LOG_EVENTS_UNATTRIBUTED, self.registry)
        self.log_events_future_dated = _live(Counter, names.LOG_EVENTS_FUTURE_DATED, self.registry)
        self.state_file_errors = _live(Counter, names.STATE_FILE_ERRORS, self.registry)
        self.shards = _live(Gauge, names.SHARDS, self.registry)
        self.config_reload_successful = _live(Gauge, names.CONFIG_RELOAD_SUCCESSFUL, self.registry)
        self.config_reload_timestamp = _live(Gauge, names.CONFIG_RELOAD_TIMESTAMP, self.registry)
        self.diagnosis_errors = _live(Counter, names.DIAGNOSIS_ERRORS, self.registry)
        self.render_errors = _live(Counter, names.RENDER_ERRORS, self.registry)
        self.duplicate_series_dropped = _live(Counter, names.DUPLICATE_SERIES_DROPPED, self.registry)
        self.state_file_writable = _live(Gauge, names.STATE_FILE_WRITABLE, self.registry)
        self.discovery = DiscoveryCollector()  # the organizations' views, set by their source after each run
        self.registry.register(self.discovery)
        age = _live(Gauge, names.SNAPSHOT_AGE, self.registry)

        def snapshot_age() -> float:
            completed = snapshot_monotonic()
            return float("nan") if completed is None else time.monotonic() - completed

        age.set_function(snapshot_age)

    def set_shard(self, index: int, count: int) -> None:
        self.shards.clear()  # one series: a reload that moves this replica to another index leaves no old one
        self.shards.labels(str(index)).set(count)

    def record_api_call(self, account_id: str, region: str, operation: str, outcome: str) -> None:
        self.api_calls.labels(account_id, region, operation, outcome).inc()

    def organization_views(self) -> tuple:
        """The organizations' latest discovery views (for the status page)."""
        return self.discovery.views

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _live(kind, name: str, registry: CollectorRegistry):
    """A prometheus-client metric as the contract defines it (the client adds ``_total`` and ``_info``)."""
    metric = names.METRICS[name]
    if not metric.live or metric.kind != ("gauge" if kind is Info else kind._type):
        raise ValueError(f"{name} is not a live {kind._type} in the contract")
    labels = () if kind is Info else metric.labels  # an Info's labels are the keys it is given
    return kind(name.removesuffix("_total").removesuffix("_info"), metric.help, labels, registry=registry)


class DiscoveryCollector:
    """The discovery metrics, built whole from the latest run's immutable views at each scrape, so an account
    that left the organization leaves no stale series behind."""

    def __init__(self):
        self.views: tuple = ()  # of sources.discovery.OrganizationView, replaced whole after each run

    def describe(self):
        return self._families(())

    def collect(self):
        return self._families(self.views)

    @staticmethod
    def _families(views) -> list[GaugeMetricFamily]:
        def family(name: str) -> GaugeMetricFamily:
            metric = names.METRICS[name]
            return GaugeMetricFamily(name, metric.help, labels=metric.labels)

        success, last, targets = (
            family(names.DISCOVERY_SUCCESS),
            family(names.DISCOVERY_LAST_SUCCESS),
            family(names.DISCOVERED_TARGETS),
        )
        accounts, account_success = family(names.DISCOVERED_ACCOUNTS), family(names.DISCOVERY_ACCOUNT_SUCCESS)
        # Two organizations listed from one account (known only at run time) give its series once, from the
        # first; likewise each account's: no series twice.
        listers, read = set(), set()
        for view in views:
            if view.discovery_account in listers:
                continue
            listers.add(view.discovery_account)
            where = [view.discovery_account]
            success.add_metric(where, 1.0 if view.success else 0.0)
            if view.last_success is not None:
                last.add_metric(where, view.last_success)
            targets.add_metric(where, float(view.owned_pairs))
            for state, count in sorted(view.accounts.items()):
                accounts.add_metric(where + [state], float(count))
            for account_id, ok in sorted(view.account_success.items()):
                if account_id not in read:
                    read.add(account_id)
                    account_success.add_metric([account_id], 1.0 if ok else 0.0)
        return [success, last, targets, accounts, account_success]
