"""Every AWS source, one line each, in the order they run and publish (a source after those it needs).

Adding a source: its module or package (a ``sources.source.Source``), one line here, its config section and
docs, its part of the simulated AWS and its tests (docs/contributing.md has the whole list).
"""

from __future__ import annotations

from exporter.sources.discovery import DiscoverySource
from exporter.sources.ec2.source import Ec2Source
from exporter.sources.ec2.tunnel_status import TunnelStatusSource
from exporter.sources.logs.source import LogsSource
from exporter.sources.source import Source
from exporter.sources.traffic import TrafficSource

SOURCES: tuple[type[Source], ...] = (
    DiscoverySource,
    Ec2Source,
    LogsSource,
    TunnelStatusSource,
    TrafficSource,
)
