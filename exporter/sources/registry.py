"""Every AWS source, one line each, in the order they run and publish (a source after those it needs); their
metric families and results appear on /metrics in this order.

Adding a source: its module or package (a ``sources.source.Source``), one line here, its config section and
docs, its part of the simulated AWS and its tests (docs/contributing.md has the whole list).
"""

from __future__ import annotations

from exporter.sources.discovery import DiscoverySource
from exporter.sources.ec2.source import Ec2Source
from exporter.sources.history.source import HistorySource
from exporter.sources.logs.source import LogsSource
from exporter.sources.source import Source
from exporter.sources.traffic.source import TrafficSource
from exporter.sources.tunnel_status.source import TunnelStatusSource

SOURCES: tuple[type[Source], ...] = (
    DiscoverySource,
    Ec2Source,
    TunnelStatusSource,
    LogsSource,
    TrafficSource,
    HistorySource,
)
