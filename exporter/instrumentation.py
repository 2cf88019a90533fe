"""The exporter's own live metrics: counters that grow between polls and values read at scrape time.

They sit in a small registry of their own, rendered on every scrape and appended to the
pre-rendered snapshot.
"""

from __future__ import annotations

import platform
import time
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, disable_created_metrics, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from exporter import __version__
from exporter import metrics as names


disable_created_metrics()  # *_created series double the counters and help no query here


class ExporterMetrics:
    """Counters and gauges about the exporter itself, in a registry of their own."""

    def __init__(self, snapshot_time: Callable[[], float | None]):
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        info = Info(names.BUILD_INFO.removesuffix("_info"), "The exporter's version; always 1.", registry=self.registry)
        info.info({"version": __version__, "python_version": platform.python_version()})
        self.api_calls = Counter(
            names.API_CALLS.removesuffix("_total"),
            "AWS API attempts (each retry counts) by operation and outcome: ok, throttled or error.",
            ["account_id", "region", "operation", "outcome"], registry=self.registry)
        self.unrecognized = Counter(
            names.UNRECOGNIZED_VALUES.removesuffix("_total"),
            "Values from AWS that the exporter did not recognise (per poll and occurrence), by field.",
            ["field"], registry=self.registry)
        self.log_events_ingested = Counter(
            names.LOG_EVENTS_INGESTED.removesuffix("_total"), "Tunnel log events read and parsed, by log (ike, bgp).",
            ["account_id", "region", "log"], registry=self.registry)
        self.log_events_duplicate = Counter(
            names.LOG_EVENTS_DUPLICATE.removesuffix("_total"),
            "Log events seen again in the overlap window and dropped.", ["account_id", "region"], registry=self.registry)
        self.log_parse_errors = Counter(
            names.LOG_PARSE_ERRORS.removesuffix("_total"), "Malformed log events, counted and skipped, by reason.",
            ["log", "reason"], registry=self.registry)
        self.log_events_unattributed = Counter(
            names.LOG_EVENTS_UNATTRIBUTED.removesuffix("_total"),
            "Events in a tunnel log group that no watched tunnel claims by stream name or resource_id (another "
            "shard's, a deleted connection's, another writer's); counted and skipped.",
            ["account_id", "region"], registry=self.registry)
        self.log_events_future_dated = Counter(
            names.LOG_EVENTS_FUTURE_DATED.removesuffix("_total"),
            "Log events whose own time lies more than 5 minutes after CloudWatch's time for them (a wrong "
            "clock); counted, and their facts dated by CloudWatch's time instead.",
            ["account_id", "region"], registry=self.registry)
        self.state_file_errors = Counter(
            names.STATE_FILE_ERRORS.removesuffix("_total"),
            "Unreadable or corrupt state files (moved aside) and loads that dropped invalid entries.",
            registry=self.registry)
        self.config_reload_successful = Gauge(
            names.CONFIG_RELOAD_SUCCESSFUL, "1 when the latest config reload (SIGHUP, POST /-/reload) succeeded.",
            registry=self.registry)
        self.config_reload_timestamp = Gauge(
            names.CONFIG_RELOAD_TIMESTAMP, "When the config was last loaded successfully.", registry=self.registry)
        self.diagnosis_errors = Counter(
            names.DIAGNOSIS_ERRORS.removesuffix("_total"),
            "Connections whose diagnosis failed on a snapshot (their findings are left out; the rest publish).",
            registry=self.registry)
        self.render_errors = Counter(
            names.RENDER_ERRORS.removesuffix("_total"),
            "Tunnels, connections or findings left out of a snapshot's exposition because a value could not be "
            "rendered (the rest publish).", registry=self.registry)
        self.state_file_writable = Gauge(
            names.STATE_FILE_WRITABLE, "1 when the latest save of the log state succeeded; 0 when the disk refused "
            "it (full, read-only, permissions): counts still grow, but would not survive a restart.",
            registry=self.registry)
        age = Gauge(names.SNAPSHOT_AGE, "Seconds since the served snapshot was completed; NaN before the first poll.",
                    registry=self.registry)

        def snapshot_age() -> float:
            completed = snapshot_time()
            return float("nan") if completed is None else max(0.0, time.time() - completed)

        age.set_function(snapshot_age)

    def record_api_call(self, account_id: str, region: str, operation: str, outcome: str) -> None:
        self.api_calls.labels(account_id, region, operation, outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
