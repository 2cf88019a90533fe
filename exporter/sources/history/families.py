"""The history source's metric families: exact counters of state changes and of seconds down, unavailable,
unredundant and observed, per tunnel and per connection."""

from __future__ import annotations

from collections.abc import Iterator

from exporter.contract import (
    CONNECTION_OBSERVED_SECONDS,
    CONNECTION_UNAVAILABLE_SECONDS,
    CONNECTION_UNREDUNDANT_SECONDS,
    TUNNEL_BGP_DOWN_SECONDS,
    TUNNEL_DOWN_SECONDS,
    TUNNEL_STATE_CHANGES,
)
from exporter.family import Families, Family
from exporter.model import Snapshot


def families(snapshot: Snapshot, failed: list[str]) -> Iterator[Family]:
    """Only while the history source runs (it always does, unless the exporter has no state to keep)."""
    history = snapshot.history_counters
    if history is None:
        return
    family = Families(
        TUNNEL_STATE_CHANGES,
        TUNNEL_DOWN_SECONDS,
        TUNNEL_BGP_DOWN_SECONDS,
        CONNECTION_UNAVAILABLE_SECONDS,
        CONNECTION_UNREDUNDANT_SECONDS,
        CONNECTION_OBSERVED_SECONDS,
    )
    isolated = family.isolated(failed)
    for key, tunnel in sorted(history.tunnels.items(), key=lambda item: item[0].encode()):
        labels = key.labels
        with isolated(f"{key.vpn_connection_id} {key.outside_ip}"):
            family[TUNNEL_STATE_CHANGES].add_metric(labels, float(tunnel.state_changes))
            for cause, seconds in tunnel.down_seconds:
                family[TUNNEL_DOWN_SECONDS].add_metric([*labels, cause], seconds)
            for cause, seconds in tunnel.bgp_down_seconds:
                family[TUNNEL_BGP_DOWN_SECONDS].add_metric([*labels, cause], seconds)
    for ref, connection in sorted(history.connections.items()):
        labels = list(ref)
        with isolated(ref[2]):
            for cause, seconds in connection.unavailable_seconds:
                family[CONNECTION_UNAVAILABLE_SECONDS].add_metric([*labels, cause], seconds)
            family[CONNECTION_UNREDUNDANT_SECONDS].add_metric(labels, connection.unredundant_seconds)
            family[CONNECTION_OBSERVED_SECONDS].add_metric(labels, connection.observed_seconds)
    yield from family
