"""The tunnels' history as a source: derived from what EC2 (and, when on, the status pass and the logs) last
reported, counted in the publish of each of their new outputs; it calls no AWS API."""

from __future__ import annotations

from exporter.config import Config
from exporter.model import HistoryCollection
from exporter.sources.ec2.source import Ec2Source
from exporter.sources.history.counter import STATE_FILE, HistoryCounter
from exporter.sources.history.families import families
from exporter.sources.logs.source import LogsSource
from exporter.sources.source import Context, Source
from exporter.sources.tunnel_status.source import TunnelStatusSource


def status_wait(config: Config) -> float:
    """With the status pass on, DOWN seconds wait for its next check of the tunnel (two intervals at most), so a
    replacement it reports after the outage is still their cause; without it, the cause is decided at once."""
    return 2 * config.tunnel_status.interval if config.tunnel_status.enabled else 0.0


class HistorySource(Source):
    """Exact counters from EC2's LastStatusChange edges, saved in ``state_dir`` after every poll.

    It needs EC2 only. The status pass (maintenance) and the logs (the BGP session's exact transitions) are read
    when they are on and have run, never waited for: the status pass runs every 15 minutes and is rate-limited,
    and a one-shot ``poll_once`` would otherwise call it. Without them, downtime is ``other`` and changes are
    EC2's count. Quick: it only counts in memory and writes its state file."""

    name = "history"
    needs = (Ec2Source.name,)
    quick = True
    derived = True
    diagnose_reads = (STATE_FILE,)  # the 30 days of its strip
    families = staticmethod(families)

    def __init__(self, config: Config, context: Context):
        metrics = context.metrics
        self.counter = HistoryCounter(
            config.state_dir,
            clock=context.clock,
            on_corrupt=metrics.state_file_errors.inc,
            unrecognized=lambda field: metrics.unrecognized.labels(field).inc(),
            status_wait=status_wait(config),
        )
        self._counted: tuple = (None, None, None)  # the outputs the latest count read

    def interval(self, config: Config) -> float:
        return config.poll_interval

    def poll(self, upstream, within=None, only=frozenset()) -> HistoryCollection | None:
        """Count what EC2 (and the status pass and logs) reported since the last poll; nothing new, no output: a
        republished snapshot would hide that EC2 stalled (the snapshot's age is the data's)."""
        ec2 = upstream.get(Ec2Source.name)
        inputs = (ec2, upstream.get(TunnelStatusSource.name), upstream.get(LogsSource.name))
        if ec2 is None or all(a is b for a, b in zip(inputs, self._counted, strict=True)):
            return None
        self._counted = inputs
        return self.counter.poll(ec2.regions, ec2.results, inputs[1], inputs[2])

    def reconfigure(self, config: Config) -> bool:
        """A reload may change the status pass's interval (whether it runs takes a restart)."""
        self.counter.status_wait = status_wait(config)
        return False

    def state_documents(self):
        return (self.counter.document,) if self.counter.document is not None else ()
