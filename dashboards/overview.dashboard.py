"""Overview: every connection and tunnel across accounts and regions, and what is wrong now."""

from dashboards.common import CONNECTION, SCOPE, TUNNEL, m, stat, table, timeline, timeseries, vpn_dashboard

HEADLINE = f"{m.TUNNEL_IPSEC_UP}{{{SCOPE}}} == 1 and on({TUNNEL}) {m.TUNNEL_BGP_UP}{{{SCOPE}}} == 0"

dashboard = vpn_dashboard(
    title="AWS VPN / Overview",
    uid="aws-vpn-overview",
    description="Every Site-to-Site VPN connection and tunnel: AWS status, IPsec, BGP, routes, active findings.",
    panels=[
        stat("VPN connections", f"count({m.CONNECTION_INFO}{{{SCOPE}}})", (0, 0, 4, 4)),
        stat("Tunnels up (AWS)", f"sum({m.TUNNEL_UP}{{{SCOPE}}})", (4, 0, 4, 4)),
        stat(
            "Tunnels with IPsec up, BGP down",
            f"count({HEADLINE}) or vector(0)",
            (8, 0, 5, 4),
            "The confusing state: DOWN with IPSEC IS UP.",
            red_above=1,
        ),
        stat(
            "Connections with no IPsec",
            f"count(max by ({CONNECTION}) ({m.TUNNEL_IPSEC_UP}{{{SCOPE}}}) == 0) or vector(0)",
            (13, 0, 5, 4),
            red_above=1,
        ),
        stat(
            "Critical findings",
            f'count({m.TUNNEL_FINDING}{{{SCOPE}, severity="critical"}}) or vector(0)',
            (18, 0, 6, 4),
            red_above=1,
        ),
        table(
            "Tunnels",
            [
                (f"{m.TUNNEL_UP}{{{SCOPE}}}", "AWS status"),
                (f"{m.TUNNEL_IPSEC_UP}{{{SCOPE}}}", "IPsec"),
                (f"{m.TUNNEL_BGP_UP}{{{SCOPE}}}", "BGP"),
                (f"{m.TUNNEL_ACCEPTED_ROUTES}{{{SCOPE}}}", "routes"),
            ],
            (0, 4, 24, 9),
            "One row per tunnel (BGP is empty for static connections).",
        ),
        table(
            "Active findings",
            [(f"({m.TUNNEL_FINDING}{{{SCOPE}}} == 1) * on({CONNECTION}) group_left(name) {m.CONNECTION_INFO}", "")],
            (0, 13, 24, 7),
            "What the diagnosis found; `aws-vpn-exporter diagnose` prints evidence and remedy.",
        ),
        timeline(
            "AWS tunnel status", [(f"{m.TUNNEL_UP}{{{SCOPE}}}", "{{vpn_connection_id}} {{tunnel}}")], (0, 20, 24, 9)
        ),
        timeseries(
            "Accepted routes",
            [(f"{m.TUNNEL_ACCEPTED_ROUTES}{{{SCOPE}}}", "{{vpn_connection_id}} {{tunnel}}")],
            (0, 29, 12, 8),
        ),
        timeseries(
            "Tunnels by state",
            [
                (f"sum({m.TUNNEL_UP}{{{SCOPE}}})", "AWS UP"),
                (f"count({HEADLINE}) or vector(0)", "IPsec up, BGP down"),
                (f"count({m.TUNNEL_IPSEC_UP}{{{SCOPE}}} == 0) or vector(0)", "IPsec down"),
            ],
            (12, 29, 12, 8),
        ),
    ],
)
