"""Flaps and trends over 30, 90 or 395 days, read from the history recording rules only (alerts/aws-vpn.rules.yml,
exporter/report/series.py): a 13-month view reads the daily series a long-term store keeps, never raw samples.
Sums over the range add the daily values at each midnight inside it (subqueries with a 1d step), which are exact
(see docs/report.md); the SLA table is AWS's, month to date."""

from grafanalib.core import TimePicker

from dashboards.common import CONNECTION, SCOPE, TUNNEL, m, table, timeseries, vpn_dashboard
from exporter.report import series as history


def daily(counter: str) -> str:
    return f"{history.recorded(counter, '1d')}{{{SCOPE}}}"


def over_range(expr: str) -> str:
    """The daily series summed over the whole days of the dashboard's range."""
    return f"sum_over_time({expr}[$__range:1d])"


FLAPS = daily(history.STATE_CHANGES)
DOWN = daily(history.DOWN_SECONDS)
BGP_DOWN = daily(history.BGP_DOWN_SECONDS)
UNAVAILABLE = daily(history.UNAVAILABLE_SECONDS)
OBSERVED = daily(history.OBSERVED_SECONDS)
SLA = f"{history.SLA_UPTIME_MONTH_TO_DATE}{{{SCOPE}}}"
# AWS's service credit: 10 % below 99.95 %, 25 % below 99 %, 100 % below 95 %
CREDIT = f"10 * ({SLA} < bool 0.9995) + 15 * ({SLA} < bool 0.99) + 75 * ({SLA} < bool 0.95)"
DAILY = "1d"  # one point a day, at midnight UTC: the daily series' own resolution

dashboard = vpn_dashboard(
    title="AWS VPN / Flaps and trends",
    uid="aws-vpn-flaps",
    description="Long-range behaviour from the history recording rules (keep them 13 months): flaps and downtime "
    "per day by cause, daily availability, AWS's SLA month to date with the credit tier, worst offenders. "
    "Pick 30, 90 or 395 days.",
    since="now-30d",
    refresh=None,
    panels=[
        table(
            "SLA month to date (AWS: 99.95 % per connection and billing month)",
            [
                (f"100 * {SLA}", "uptime %"),
                (CREDIT, "service credit %"),
                (f"sum by ({CONNECTION}) ({history.UNAVAILABLE_MONTH_TO_DATE}{{{SCOPE}}})", "unavailable s"),
            ],
            (0, 0, 12, 8),
            description="Through the last midnight UTC; on the 1st, the whole month just ended. Credit: 10 % below "
            "99.95 %, 25 % below 99 %, 100 % below 95 %. `aws-vpn-exporter report` prints the same per month.",
        ),
        table(
            "Downtime by cause in the range (connection unavailable, whole days)",
            [(f"sum by ({CONNECTION}, cause) ({over_range(UNAVAILABLE)})", "unavailable s")],
            (12, 0, 12, 8),
            description="cause maintenance: the time fell within an AWS endpoint replacement (LastMaintenanceApplied).",
        ),
        timeseries(
            "Flaps per day",
            [(f"sum by (vpn_connection_id, tunnel) ({FLAPS})", "{{vpn_connection_id}} {{tunnel}}")],
            (0, 8, 24, 8),
            "State changes of each tunnel per day (exact counter: two changes between polls count twice).",
            interval=DAILY,
        ),
        timeseries(
            "Downtime per day by cause",
            [
                (f"sum by (vpn_connection_id, cause) ({UNAVAILABLE})", "{{vpn_connection_id}} unavailable ({{cause}})"),
                (f"sum by (vpn_connection_id, tunnel, cause) ({DOWN})", "{{vpn_connection_id}} {{tunnel}} ({{cause}})"),
            ],
            (0, 16, 12, 8),
            unit="s",
            interval=DAILY,
        ),
        timeseries(
            "Time per day with IPsec up, BGP down",
            [(f"sum by (vpn_connection_id, tunnel) ({BGP_DOWN})", "{{vpn_connection_id}} {{tunnel}}")],
            (12, 16, 12, 8),
            unit="s",
            interval=DAILY,
        ),
        timeseries(
            "Daily availability per connection",
            [(f"{history.AVAILABILITY_1D}{{{SCOPE}}}", "{{vpn_connection_id}}")],
            (0, 24, 24, 8),
            unit="percentunit",
            interval=DAILY,
        ),
        table(
            "Worst offenders: most flaps in the range",
            [(f"topk(10, sum by ({TUNNEL}) ({over_range(FLAPS)}))", "flaps")],
            (0, 32, 12, 8),
        ),
        table(
            "Worst offenders: lowest uptime in the range",
            [
                (
                    f"bottomk(10, 100 * (1 - sum by ({CONNECTION}) ({over_range(UNAVAILABLE)})\n"
                    f"  / on({CONNECTION}) ({over_range(OBSERVED)} > 0)))",
                    "uptime %",
                )
            ],
            (12, 32, 12, 8),
        ),
        table(
            "AWS endpoint replacements in the last day (a flap then is AWS's maintenance)",
            [(f"time() - {m.TUNNEL_LAST_MAINTENANCE}{{{SCOPE}}} < 86400", "seconds ago")],
            (0, 40, 24, 6),
            description="GetVpnTunnelReplacementStatus LastMaintenanceApplied: the tunnel went down while AWS "
            "replaced its endpoint.",
        ),
    ],
)
dashboard.timePicker = TimePicker(
    refreshIntervals=["1h", "1d"], timeOptions=["30d", "90d", "395d"]
)  # 30 days, a quarter, 13 months
