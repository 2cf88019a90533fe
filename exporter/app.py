"""Wires the parts together: AWS accounts, the poller on a schedule, and the web server."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from exporter.aws import AwsAccount
from exporter.config import Config
from exporter.instrumentation import ExporterMetrics
from exporter.poller import Poller
from exporter.web import ExporterServer

log = logging.getLogger(__name__)


class Exporter:
    """A running exporter: polls on a schedule, serves the latest snapshot."""

    def __init__(self, config: Config, listen: tuple[str, int]):
        self.config = config
        self.metrics = ExporterMetrics(snapshot_time=self._snapshot_time)
        self.accounts = [AwsAccount(target, self.metrics.record_api_call) for target in config.targets]
        self.poller = Poller(config, self.accounts,
                             on_unrecognized=lambda field, count: self.metrics.unrecognized.labels(field).inc(count))
        self.scheduler = BackgroundScheduler(
            timezone=timezone.utc,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(config.poll_interval)})
        self.server = ExporterServer(listen, lambda: self.poller.current, self.metrics.render)
        self._server_thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self.server.server_address[:2]

    def _snapshot_time(self) -> float | None:
        current = self.poller.current
        return current.snapshot.completed_at if current else None

    def add_job(self, func: Callable[[], object], interval: float, job_id: str) -> None:
        """Run ``func`` now and every ``interval`` seconds; a failure is logged, never fatal."""
        def guarded() -> None:
            try:
                func()
            except Exception:
                log.exception("job failed job=%s", job_id)

        self.scheduler.add_job(guarded, "interval", seconds=interval, id=job_id,
                               next_run_time=datetime.now(timezone.utc))

    def start(self) -> None:
        self.start_server()
        self.add_job(self.poller.poll, self.config.poll_interval, "poll-ec2")
        self.scheduler.start()
        log.info("polling targets=%d poll_interval=%gs", len(self.config.targets), self.config.poll_interval)

    def start_server(self) -> None:
        """Serve HTTP in the background (tests poll by hand and call only this)."""
        self._server_thread.start()
        host, port = self.address
        log.info("listening address=%s:%d", host, port)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.server.shutdown()
        self.server.server_close()
        self.poller.close()
