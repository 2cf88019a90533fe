"""AWS's per-tunnel maintenance and provisioning status (EC2 GetVpnTunnelReplacementStatus and the tunnels'
details) as a source: a slow, rate-limited pass over the tunnels EC2 last reported."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.config import Config
from exporter.model import Connection, Observation, Tunnel, TunnelKey, TunnelStatusCollection
from exporter.sources.ec2.source import Ec2Source, tunnels_of
from exporter.sources.source import Context, Rule, Source
from exporter.sources.tunnel_status import rules
from exporter.sources.tunnel_status.families import families
from exporter.sources.tunnel_status.poller import SOURCE, TunnelStatusPoller


class TunnelStatusSource(Source):
    """AWS's maintenance and provisioning status of the tunnels EC2 last reported, on its own slow schedule."""

    name = SOURCE
    section = "tunnel_status"
    families = staticmethod(families)
    needs = (Ec2Source.name,)

    def __init__(self, config: Config, context: Context):
        self.poller = TunnelStatusPoller(config.tunnel_status.max_calls_per_second)
        self._context = context

    @staticmethod
    def tunnel_rules(
        observation: Observation, connection: Connection, tunnel: Tunnel, key: TunnelKey, now: float
    ) -> Iterable[Rule]:
        return rules.tunnel_rules(observation.tunnel_status.get(key), now)

    def interval(self, config: Config) -> float:
        return config.tunnel_status.interval

    def poll(self, upstream, within=None, only=frozenset()) -> TunnelStatusCollection | None:
        """``only`` these connections (ids or Name tags) and ``within`` seconds for a one-shot ``diagnose``."""
        tunnels = tunnels_of(upstream, only)
        if tunnels is None:
            return None
        status = self.poller.poll(tunnels.regions, tunnels.accounts, within)
        for field, count in status.unrecognized.items():
            self._context.metrics.unrecognized.labels(field).inc(count)
        return status

    def reconfigure(self, config: Config) -> bool:
        """A reload also retries the accounts that refused the calls."""
        self.poller.reconfigure(config.tunnel_status.max_calls_per_second)
        return False

    def close(self) -> None:
        self.poller.close()
