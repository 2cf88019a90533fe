"""The tunnels' IKE and BGP logs (CloudWatch Logs) as a source: read for the tunnels EC2 last reported."""

from __future__ import annotations

from exporter.config import Config
from exporter.model import LogCollection
from exporter.sources.ec2.source import Ec2Source, tunnels_of
from exporter.sources.logs.families import families as log_families
from exporter.sources.logs.reader import IngestCounters, LogIngestor
from exporter.sources.logs.state import StateFile
from exporter.sources.source import Context, Source


def poll_timeout(config: Config) -> float:
    """A log read is reported as failed (and goes on in the background) after its interval, at most 5 min."""
    return min(config.logs.poll_interval, 300.0)


class LogsSource(Source):
    name = "logs"
    section = "logs"
    needs = (Ec2Source.name,)
    quick = True
    families = staticmethod(log_families)

    def __init__(self, config: Config, context: Context):
        metrics = context.metrics
        counters = IngestCounters(
            ingested=lambda account, region, kind, n: metrics.log_events_ingested.labels(account, region, kind).inc(n),
            duplicates=lambda account, region, n: metrics.log_events_duplicate.labels(account, region).inc(n),
            parse_errors=lambda kind, reason, n: metrics.log_parse_errors.labels(kind, reason).inc(n),
            unattributed=lambda account, region, n: metrics.log_events_unattributed.labels(account, region).inc(n),
            future_dated=lambda account, region, n: metrics.log_events_future_dated.labels(account, region).inc(n),
        )
        self.state_file = StateFile(config.state_dir, on_corrupt=metrics.state_file_errors.inc)
        self.ingestor = LogIngestor(
            config.logs, self.state_file, context.executor, poll_timeout=poll_timeout(config), counters=counters
        )

    def interval(self, config: Config) -> float:
        return config.logs.poll_interval

    def poll(self, upstream, within=None, only=frozenset()) -> LogCollection | None:
        """Read new log events for the tunnels EC2 last reported (nothing before the first EC2 poll)."""
        tunnels = tunnels_of(upstream)
        return None if tunnels is None else self.ingestor.poll(tunnels.regions, dict(tunnels.accounts))

    def reconfigure(self, config: Config) -> bool:
        self.ingestor.reconfigure(config.logs, poll_timeout=poll_timeout(config))
        return False

    def state_documents(self):
        return (self.state_file.document,)

    def close(self) -> None:
        self.ingestor.close()
