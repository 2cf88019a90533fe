"""AWS maintenance and configuration: what may go wrong before it does (issue-free tunnels included)."""

from dashboards.common import SCOPE, m, stat, table, vpn_dashboard

RISKS = (
    "tunnel_restart_depends_on_customer_gateway|weak_cryptography_allowed|weak_cryptography_negotiated|"
    "tunnels_configured_differently|endpoint_maintenance_pending|gateway_not_associated|"
    "static_route_not_available|tunnel_provisioning_failed|tunnel_provisioning_pending"
)
NAMED = f" * on(account_id, region, vpn_connection_id) group_left(name) {m.CONNECTION_INFO}"

dashboard = vpn_dashboard(
    title="AWS VPN / Maintenance and configuration",
    uid="aws-vpn-configuration",
    description="AWS endpoint maintenance, provisioning, and the tunnel options that decide what happens when a "
    "tunnel goes down: from DescribeVpnConnections and the per-tunnel status calls.",
    tags=("configuration", "maintenance"),
    panels=[
        stat(
            "Endpoint replacements pending",
            f"count({m.TUNNEL_MAINTENANCE_PENDING}{{{SCOPE}}} == 1) or vector(0)",
            (0, 0, 6, 4),
            red_above=1,
        ),
        stat(
            "Tunnels not provisioned",
            f'count({m.TUNNEL_PROVISIONING_STATUS}{{{SCOPE}, status!="available"}}) or vector(0)',
            (6, 0, 6, 4),
            red_above=1,
        ),
        stat(
            "Configuration findings",
            f'count({m.TUNNEL_FINDING}{{{SCOPE}, finding=~"{RISKS}"}}) or vector(0)',
            (12, 0, 6, 4),
        ),
        stat(
            "Tunnels AWS will not restart",
            f'count({m.TUNNEL_FINDING}{{{SCOPE}, finding="tunnel_restart_depends_on_customer_gateway"}}) or vector(0)',
            (18, 0, 6, 4),
        ),
        table(
            "Endpoint replacements: pending (AWS applies them after the date) and recent",
            [
                (
                    f"({m.TUNNEL_MAINTENANCE_AUTO_APPLY}{{{SCOPE}}} and on(account_id, region, vpn_connection_id, tunnel) "
                    f"{m.TUNNEL_MAINTENANCE_PENDING} == 1){NAMED}",
                    "",
                ),
                (f"{m.TUNNEL_LAST_MAINTENANCE}{{{SCOPE}}}{NAMED}", ""),
            ],
            (0, 4, 24, 7),
            description="Auto-apply and last-applied times are epoch seconds.",
        ),
        table(
            "Configuration and provisioning findings",
            [(f'{m.TUNNEL_FINDING}{{{SCOPE}, finding=~"{RISKS}"}}{NAMED}', "")],
            (0, 11, 24, 7),
            description="Each finding's fix is in the runbooks and in `diagnose`.",
        ),
        table(
            "Tunnel options",
            [(f"{m.TUNNEL_OPTIONS_INFO}{{{SCOPE}}}{NAMED}", "")],
            (0, 18, 24, 8),
            hidden=("Time", "__name__", "job", "instance", "Value"),
        ),
        table(
            "Negotiated (GetActiveVpnTunnelStatus)",
            [
                (f"{m.TUNNEL_NEGOTIATED_INFO}{{{SCOPE}}}{NAMED}", ""),
                (f"{m.TUNNEL_PROVISIONING_STATUS}{{{SCOPE}}}{NAMED}", ""),
            ],
            (0, 26, 24, 8),
        ),
    ],
)
