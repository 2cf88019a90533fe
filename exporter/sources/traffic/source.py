"""The tunnels' traffic (CloudWatch TunnelDataIn/TunnelDataOut) as a source: a GetMetricData pass over the tunnels
EC2 last reported, on the metrics' resolution."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.config import Config
from exporter.model import Connection, Observation, RegionTelemetry, TrafficCollection, Tunnel, TunnelKey
from exporter.sources.ec2.source import Ec2Source, tunnels_of
from exporter.sources.source import Context, Rule, Source
from exporter.sources.traffic import rules
from exporter.sources.traffic.families import families
from exporter.sources.traffic.poller import SOURCE, TrafficPoller


def pass_timeout(config: Config) -> float:
    """A traffic pass is reported as failed after its interval, at most 2 min (a call per 250 tunnels)."""
    return min(config.traffic.interval, 120.0)


class TrafficSource(Source):
    """CloudWatch's bytes for the tunnels EC2 last reported, on its own schedule (the metrics' resolution)."""

    name = SOURCE
    section = "traffic"
    families = staticmethod(families)
    needs = (Ec2Source.name,)

    def __init__(self, config: Config, context: Context):
        metrics = context.metrics
        self.poller = TrafficPoller(
            config.traffic,
            context.executor,
            pass_timeout(config),
            state_dir=config.state_dir,
            on_corrupt=metrics.state_file_errors.inc,
            unrecognized=lambda field: metrics.unrecognized.labels(field).inc(),
        )

    @staticmethod
    def connection_rules(
        observation: Observation, region: RegionTelemetry, connection: Connection, now: float
    ) -> Iterable[Rule]:
        traffic = observation.traffic
        if traffic is None:
            return ()
        seen = [traffic.tunnels.get(TunnelKey.of(region, connection, tunnel)) for tunnel in connection.tunnels]
        return rules.connection_rules(connection, seen, traffic.idle_after, now)

    @staticmethod
    def tunnel_rules(
        observation: Observation, connection: Connection, tunnel: Tunnel, key: TunnelKey, now: float
    ) -> Iterable[Rule]:
        traffic = observation.traffic
        if traffic is None:
            return ()
        return rules.tunnel_rules(connection, tunnel, traffic.tunnels.get(key), traffic.silent_after, now)

    def interval(self, config: Config) -> float:
        return config.traffic.interval

    def poll(self, upstream, within=None, only=frozenset()) -> TrafficCollection | None:
        """``within`` seconds for a one-shot ``diagnose``."""
        tunnels = tunnels_of(upstream)
        return None if tunnels is None else self.poller.poll(tunnels.regions, tunnels.accounts, within)

    def reconfigure(self, config: Config) -> bool:
        """A reload also retries where GetMetricData was refused."""
        self.poller.reconfigure(config.traffic, pass_timeout(config))
        return False

    def state_documents(self):
        return (self.poller.document,) if self.poller.document is not None else ()
