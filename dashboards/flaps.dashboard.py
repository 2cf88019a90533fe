"""Flaps and trends: status changes per day over 30 or 90 days, time spent with IPsec up but BGP down,
and the worst offenders."""

from dashboards.common import SCOPE, m, table, timeseries, vpn_dashboard
from generate.alerting import HEADLINE_STATE as RECORDED

CHANGES = f"changes({m.TUNNEL_LAST_STATUS_CHANGE}{{{SCOPE}}}[1d])"
# Recorded (alerts/aws-vpn.rules.yml): 1 while IPsec is up and BGP down on a dynamic connection, else 0.
HEADLINE_STATE = f"{RECORDED}{{{SCOPE}}}"

dashboard = vpn_dashboard(
    title="AWS VPN / Flaps and trends",
    uid="aws-vpn-flaps",
    description="Long-range behaviour: status changes per day, time in IPsec-up-BGP-down, worst offenders. "
    "Use 30 or 90 days; long ranges need Prometheus retention or Thanos/Mimir (see README).",
    since="now-30d",
    refresh=None,
    panels=[
        timeseries(
            "Status changes per day",
            [(f"sum by (vpn_connection_id, tunnel) ({CHANGES})", "{{vpn_connection_id}} {{tunnel}}")],
            (0, 0, 24, 8),
            "Changes of LastStatusChange over the preceding day (IKE, IPsec or BGP changes).",
        ),
        timeseries(
            "Time per day with IPsec up, BGP down",
            [(f"avg_over_time({HEADLINE_STATE}[1d]) * 86400", "{{vpn_connection_id}} {{tunnel}}")],
            (0, 8, 24, 8),
            unit="s",
        ),
        table(
            "Worst offenders: most status changes in the range",
            [
                (
                    f"topk(10, sum by (account_id, region, vpn_connection_id, tunnel) "
                    f"(changes({m.TUNNEL_LAST_STATUS_CHANGE}{{{SCOPE}}}[$__range])))",
                    "changes",
                )
            ],
            (0, 16, 12, 8),
        ),
        table(
            "Worst offenders: time with IPsec up, BGP down in the range",
            [(f"topk(10, avg_over_time({HEADLINE_STATE}[$__range]) * $__range_s)", "seconds")],
            (12, 16, 12, 8),
        ),
        timeseries(
            "Fraction of tunnels up (AWS), daily average",
            [(f"avg(avg_over_time({m.TUNNEL_UP}{{{SCOPE}}}[1d]))", "all tunnels")],
            (0, 24, 24, 6),
            unit="percentunit",
        ),
        table(
            "AWS endpoint replacements in the last day (a flap then is AWS's maintenance)",
            [(f"time() - {m.TUNNEL_LAST_MAINTENANCE}{{{SCOPE}}} < 86400", "seconds ago")],
            (0, 30, 24, 6),
            description="GetVpnTunnelReplacementStatus LastMaintenanceApplied: the tunnel went down while AWS "
            "replaced its endpoint.",
        ),
    ],
)
