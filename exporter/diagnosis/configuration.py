"""Trouble before it happens: findings from the options DescribeVpnConnections already reports.

The rules, and the AWS guidance each one implements:

- ``tunnel_restart_depends_on_customer_gateway``: AWS initiates IKE only for a tunnel whose startup
  action is ``start``, which AWS supports for IKEv2 only ("IKE initiation (startup action) from the AWS side
  of the VPN connection is supported for IKEv2 only", Site-to-Site VPN user guide, "Initiate VPN
  tunnels"). After an endpoint replacement a tunnel "remains in the DOWN status until AWS or your customer
  gateway device initiates an IKE negotiation" (knowledge center, "vpn-tunnel-endpoint-replacement"), and
  the DPD timeout action ``clear`` "ends the IKE session". The rule: startup action ``add`` or IKEv1 only,
  together with DPD timeout action ``clear``. These are AWS's defaults, hence severity info.
- ``weak_cryptography_allowed``: AWS "strongly recommend[s] using IKEv2" (customer gateway best
  practices) and evaluates proposals from the lowest allowed value, so an allowed IKEv1, SHA1 or DH group
  below 14 can be negotiated. Allowed is not negotiated: severity info.
- ``tunnels_configured_differently``: the two tunnels of a connection allow different IKE versions,
  algorithms or DH groups (compared only where both report the option).
- ``gateway_not_associated``: GatewayAssociationState ``not-associated`` or ``disassociating``.
- ``static_route_not_available``: a static route ``pending`` or ``deleting`` (or a state AWS does not
  document).
"""

from __future__ import annotations

from collections.abc import Iterator

from exporter.model import Connection, Tunnel, TunnelConfig
from exporter.sources.ec2.telemetry import WEAK_DH_GROUPS

COMPARED = (
    ("IKE versions", "ike_versions"),
    ("phase 1 encryption", "phase1_encryption"),
    ("phase 2 encryption", "phase2_encryption"),
    ("phase 1 integrity", "phase1_integrity"),
    ("phase 2 integrity", "phase2_integrity"),
    ("phase 1 DH groups", "phase1_dh_groups"),
    ("phase 2 DH groups", "phase2_dh_groups"),
)


def tunnel_rules(tunnel: Tunnel) -> Iterator[tuple[str, tuple[str, ...]]]:
    config = tunnel.config
    ikev1_only = config.ike_versions == ("ikev1",)
    if (config.startup_action == "add" or ikev1_only) and config.dpd_timeout_action == "clear":
        yield (
            "tunnel_restart_depends_on_customer_gateway",
            (
                f"startup action {config.startup_action or 'unknown'}"
                + (" (IKEv1 only: AWS cannot initiate)" if ikev1_only else ""),
                f"DPD timeout action clear after {config.dpd_timeout_seconds:g} s"
                if config.dpd_timeout_seconds
                else "DPD timeout action clear",
            ),
        )
    weak = _weak(config)
    if weak:
        yield "weak_cryptography_allowed", tuple(weak)


def _weak(config: TunnelConfig) -> list[str]:
    found = []
    if "ikev1" in config.ike_versions:
        found.append("IKEv1 allowed (AWS strongly recommends IKEv2)")
    for phase, integrity, groups in (
        ("1", config.phase1_integrity, config.phase1_dh_groups),
        ("2", config.phase2_integrity, config.phase2_dh_groups),
    ):
        if "SHA1" in integrity:
            found.append(f"SHA1 allowed in phase {phase}")
        weak_groups = [group for group in groups if group in WEAK_DH_GROUPS]
        if weak_groups:
            found.append(
                f"DH group{'s' if len(weak_groups) > 1 else ''} {', '.join(weak_groups)} allowed in phase "
                f"{phase} (14 or higher recommended)"
            )
    return found


def connection_rules(connection: Connection) -> Iterator[tuple[str, tuple[str, ...]]]:
    if connection.gateway_association_state in ("not-associated", "disassociating"):
        yield (
            "gateway_not_associated",
            (
                f"GatewayAssociationState {connection.gateway_association_state}",
                f"{connection.gateway_type} {connection.gateway_id or '(none)'}",
            ),
        )
    unavailable = [
        f"{cidr}: {state}" for cidr, state in connection.static_routes if state not in ("available", "deleted")
    ]
    if unavailable:
        yield "static_route_not_available", tuple(unavailable)
    differences = _differences(connection.tunnels)
    if differences:
        yield "tunnels_configured_differently", tuple(differences)


def _differences(tunnels: tuple[Tunnel, ...]) -> list[str]:
    if len(tunnels) < 2:
        return []
    found = []
    for label, name in COMPARED:
        values = {tunnel.outside_ip: getattr(tunnel.config, name) for tunnel in tunnels}
        if all(values.values()) and len(set(values.values())) > 1:
            found.append(f"{label}: " + "; ".join(f"tunnel {ip} {', '.join(value)}" for ip, value in values.items()))
    return found


def allowed(config: TunnelConfig) -> str:
    """What the tunnel accepts, for the evidence of a proposal mismatch (empty when AWS did not say)."""
    parts = [f"{label} {', '.join(getattr(config, name))}" for label, name in COMPARED if getattr(config, name)]
    return "the tunnel allows: " + "; ".join(parts) if parts else ""
