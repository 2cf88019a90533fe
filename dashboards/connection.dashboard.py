"""Connection detail: both tunnels over time, IKE and BGP from the logs, selectors, NAT-T, findings."""

from dashboards.common import CONNECTION_SCOPE, m, table, timeline, timeseries, value_map, vpn_dashboard
from exporter.sources.ec2.telemetry import ROUTE_QUOTA_NEAR

S = CONNECTION_SCOPE
STATE_MAP = value_map(("no", "transparent"), ("yes", "blue"))

dashboard = vpn_dashboard(
    title="AWS VPN / Connection",
    uid="aws-vpn-connection",
    description="One VPN connection: tunnel states over time, routes, IKE and BGP log events, selectors, NAT-T.",
    since="now-24h",
    connection=True,
    panels=[
        table("Connection", [(f"{m.CONNECTION_INFO}{{{S}}}", "")], (0, 0, 24, 3)),
        timeline(
            "Tunnel state",
            [
                (f"{m.TUNNEL_UP}{{{S}}}", "{{tunnel}} AWS"),
                (f"{m.TUNNEL_IPSEC_UP}{{{S}}}", "{{tunnel}} IPsec"),
                (f"{m.TUNNEL_BGP_UP}{{{S}}}", "{{tunnel}} BGP"),
            ],
            (0, 3, 24, 8),
            "AWS status, IPsec and BGP per tunnel: IPsec UP with BGP DOWN is the state this product explains.",
        ),
        timeseries("Accepted routes", [(f"{m.TUNNEL_ACCEPTED_ROUTES}{{{S}}}", "{{tunnel}}")], (0, 11, 12, 8)),
        timeseries(
            "IKE and BGP log events",
            [
                (
                    f"sum by (tunnel, event) (increase({m.TUNNEL_LOG_EVENTS}{{{S}}}[$__rate_interval]))",
                    "{{tunnel}} {{event}}",
                )
            ],
            (12, 11, 12, 8),
            stacking=True,
        ),
        table(
            "Traffic selectors (latest Phase 2)",
            [
                (f"{m.TUNNEL_SELECTOR_INFO}{{{S}}}", ""),
                (f"{m.TUNNEL_SELECTOR_MISMATCH}{{{S}}}", "mismatch"),
            ],
            (0, 19, 12, 5),
            "Both sides should be 0.0.0.0/0 on a dynamic connection (the AWS article's second check).",
        ),
        table(
            "NAT-T and DPD (latest IKE event)",
            [
                (f"{m.TUNNEL_NAT_T}{{{S}}}", "NAT-T"),
                (f"{m.TUNNEL_DPD}{{{S}}}", "DPD"),
            ],
            (12, 19, 12, 5),
            "An accelerated connection needs NAT-T (the AWS article's third check).",
        ),
        timeline(
            "IKE phase state",
            [(f"{m.TUNNEL_IKE_PHASE_STATE}{{{S}}} == 1", "{{tunnel}} phase {{phase}} {{state}}")],
            (0, 24, 12, 7),
            mappings=STATE_MAP,
        ),
        timeline(
            "BGP session state",
            [(f"{m.TUNNEL_BGP_SESSION_STATE}{{{S}}} == 1", "{{tunnel}} {{state}}")],
            (12, 24, 12, 7),
            mappings=STATE_MAP,
        ),
        table("Findings", [(f"{m.TUNNEL_FINDING}{{{S}}} == 1", "")], (0, 31, 12, 6)),
        table(
            "Latest BGP error",
            [(f"{m.TUNNEL_BGP_LAST_ERROR}{{{S}}} * 1000", "")],
            (12, 31, 12, 6),
            "Time of the latest BGP error per tunnel, by kind.",
        ),
        timeseries(
            "Time since the last log event",
            [(f"time() - {m.TUNNEL_LOG_LAST_EVENT}{{{S}}}", "{{tunnel}} {{log}}")],
            (0, 37, 24, 6),
            unit="s",
        ),
        timeseries(
            "Tunnel traffic (CloudWatch, 10+ minutes late)",
            [
                (f"rate({m.TUNNEL_RECEIVED_BYTES}{{{S}}}[15m]) * 8", "{{tunnel}} in (from the customer gateway)"),
                (f"rate({m.TUNNEL_SENT_BYTES}{{{S}}}[15m]) * 8", "{{tunnel}} out (to the customer gateway)"),
            ],
            (0, 43, 16, 8),
            unit="bps",
            description="TunnelDataIn/Out, counted per 5-minute period as CloudWatch publishes it (traffic.enabled). "
            "They report while a tunnel is down too: a tunnel's liveness is its state above, not this.",
        ),
        timeseries(
            "Time since traffic last crossed",
            [(f"time() - {m.TUNNEL_LAST_TRAFFIC}{{{S}}}", "{{tunnel}}")],
            (16, 43, 8, 8),
            unit="s",
        ),
        timeseries(
            "Route quota used",
            [
                (f"{m.TUNNEL_ACCEPTED_ROUTES_QUOTA_RATIO}{{{S}}}", "{{tunnel}}"),
                (f"max_over_time({m.TUNNEL_ACCEPTED_ROUTES_QUOTA_RATIO}{{{S}}}[1d])", "{{tunnel}} highest in a day"),
            ],
            (0, 51, 24, 8),
            unit="percentunit",
            description="Accepted routes over AWS's quota of dynamic routes from the customer gateway (100 on a "
            "virtual private gateway, 1,000 on a transit gateway): past the red line route_quota_near warns; at 100 % "
            "the next prefix makes AWS reset the BGP session. The routes themselves are in Accepted routes above.",
            line_at=ROUTE_QUOTA_NEAR,
        ),
    ],
)
