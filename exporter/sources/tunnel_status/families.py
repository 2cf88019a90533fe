"""The tunnel status source's metric families: maintenance, provisioning, and what the tunnels negotiated."""

from __future__ import annotations

from collections.abc import Iterator

from exporter.contract import (
    TUNNEL_LAST_MAINTENANCE,
    TUNNEL_MAINTENANCE_AUTO_APPLY,
    TUNNEL_MAINTENANCE_PENDING,
    TUNNEL_NEGOTIATED_INFO,
    TUNNEL_PROVISIONING_STATUS,
)
from exporter.family import Families, Family, flag
from exporter.model import Snapshot, TunnelStatus


def families(snapshot: Snapshot, failed: list[str]) -> Iterator[Family]:
    """AWS's maintenance and provisioning status of the tunnels, and what they negotiated."""
    family = Families(
        TUNNEL_MAINTENANCE_PENDING,
        TUNNEL_MAINTENANCE_AUTO_APPLY,
        TUNNEL_LAST_MAINTENANCE,
        TUNNEL_PROVISIONING_STATUS,
        TUNNEL_NEGOTIATED_INFO,
    )
    isolated = family.isolated(failed)
    live = {key for *_, key in snapshot.tunnels()}
    for key, status in sorted(snapshot.tunnel_status.items(), key=lambda item: item[0].encode()):
        if key not in live:  # the pass's status of a tunnel EC2 does not report now (kept for when it is back)
            continue
        with isolated(f"{key.vpn_connection_id} {key.outside_ip}"):
            _status_rows(family, key.labels, status)
    yield from family


def _status_rows(family: Families, labels: list[str], status: TunnelStatus) -> None:
    if status.pending_maintenance is not None:
        family[TUNNEL_MAINTENANCE_PENDING].add_metric(labels, flag(status.pending_maintenance))
    if status.maintenance_auto_applied_after is not None:
        family[TUNNEL_MAINTENANCE_AUTO_APPLY].add_metric(labels, status.maintenance_auto_applied_after)
    if status.last_maintenance_applied is not None:
        family[TUNNEL_LAST_MAINTENANCE].add_metric(labels, status.last_maintenance_applied)
    if status.provisioning_status:
        family[TUNNEL_PROVISIONING_STATUS].add_metric(labels + [status.provisioning_status], 1.0)
    if status.ike_version:
        family[TUNNEL_NEGOTIATED_INFO].add_metric(
            labels
            + [
                status.ike_version,
                status.phase1_encryption,
                status.phase1_integrity,
                status.phase1_dh_group,
                status.phase2_encryption,
                status.phase2_integrity,
                status.phase2_dh_group,
            ],
            1.0,
        )
