"""The traffic source's metric families: CloudWatch's bytes per tunnel, and what collecting them costs."""

from __future__ import annotations

from collections.abc import Iterator

from exporter.contract import (
    TRAFFIC_METRICS_REQUESTED,
    TRAFFIC_MONTHLY_COST,
    TRAFFIC_UNATTRIBUTABLE,
    TUNNEL_LAST_TRAFFIC,
    TUNNEL_RECEIVED_BYTES,
    TUNNEL_SENT_BYTES,
    TUNNEL_TRAFFIC_COUNTED_UNTIL,
)
from exporter.family import Families, Family
from exporter.model import Snapshot


def families(snapshot: Snapshot, failed: list[str]) -> Iterator[Family]:
    """CloudWatch's bytes per tunnel, and what collecting them costs (only while traffic collection is on)."""
    traffic = snapshot.traffic
    if traffic is None:
        return
    family = Families(TUNNEL_RECEIVED_BYTES, TUNNEL_SENT_BYTES, TUNNEL_TRAFFIC_COUNTED_UNTIL, TUNNEL_LAST_TRAFFIC)
    isolated = family.isolated(failed)
    for key, tunnel in sorted(traffic.tunnels.items(), key=lambda item: item[0].encode()):
        labels = key.labels
        with isolated(f"{key.vpn_connection_id} {key.outside_ip}"):
            family[TUNNEL_RECEIVED_BYTES].add_metric(labels, tunnel.received_bytes)
            family[TUNNEL_SENT_BYTES].add_metric(labels, tunnel.sent_bytes)
            family[TUNNEL_TRAFFIC_COUNTED_UNTIL].add_metric(labels, tunnel.counted_until)
            if tunnel.last_traffic is not None:
                family[TUNNEL_LAST_TRAFFIC].add_metric(labels, tunnel.last_traffic)
    yield from family
    for name, values in (
        (TRAFFIC_METRICS_REQUESTED, traffic.metrics_requested),
        (TRAFFIC_MONTHLY_COST, traffic.monthly_cost),
        (TRAFFIC_UNATTRIBUTABLE, traffic.unattributable),
    ):
        cost = Family.of(name)
        for where, value in sorted(values.items()):
            cost.add_metric(list(where), float(value))
        yield cost
