"""What AWS itself says about a tunnel, beyond its telemetry: endpoint maintenance, provisioning, and what
was negotiated (``GetVpnTunnelReplacementStatus``, ``GetActiveVpnTunnelStatus``)."""

from __future__ import annotations

from collections.abc import Iterator

from exporter.model import TunnelStatus
from exporter.sources.ec2.telemetry import WEAK_DH_GROUPS
from exporter.timefmt import duration, utc

PENDING_TOO_LONG = 1800.0  # a tunnel options change normally provisions within minutes


def tunnel_rules(status: TunnelStatus | None, now: float) -> Iterator[tuple[str, tuple[str, ...]]]:
    if status is None:
        return
    if status.provisioning_status == "failed":
        yield "tunnel_provisioning_failed", (f"provisioning failed: {status.provisioning_reason or 'no reason given'}",)
    if (
        status.provisioning_status == "pending"
        and status.pending_since is not None
        and now - status.pending_since > PENDING_TOO_LONG
    ):
        yield (
            "tunnel_provisioning_pending",
            (f"pending for {duration(now - status.pending_since)}, since {utc(status.pending_since, now)}",),
        )
    if status.pending_maintenance:
        after = status.maintenance_auto_applied_after
        yield (
            "endpoint_maintenance_pending",
            (
                f"AWS applies it by itself after {utc(after, now)} (in {duration(after - now)})"
                if after and after > now
                else "AWS may apply it at any time now",
            ),
        )
    weak = ["IKE version ikev1"] if status.ike_version.lower() == "ikev1" else []
    for phase, integrity, group in (
        ("1", status.phase1_integrity, status.phase1_dh_group),
        ("2", status.phase2_integrity, status.phase2_dh_group),
    ):
        weak += [f"phase {phase} integrity SHA1"] if integrity == "SHA1" else []
        weak += [f"phase {phase} DH group {group}"] if group in WEAK_DH_GROUPS else []
    if weak:
        yield "weak_cryptography_negotiated", tuple(f"negotiated {item}" for item in weak)
