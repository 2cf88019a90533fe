"""Exporter health: is the data fresh, are AWS calls succeeding, are logs keeping up."""

from grafanalib.core import Dashboard

from dashboards.common import m, stat, timeline, timeseries, value_map, vpn_dashboard
from generate.alerting import Settings

SUCCESS_MAP = value_map(("failing", "red"), ("ok", "green"))


def dashboard(settings: Settings) -> Dashboard:
    """Its process panel selects the exporter by the alerts' job selector (``exporter_job``)."""
    return vpn_dashboard(
        title="AWS VPN / Exporter health",
        uid="aws-vpn-exporter",
        description="The exporter itself: collection per account, region and source, AWS API calls, log ingestion, "
        "and what tunnel traffic collection costs.",
        tags=("exporter",),
        panels=[
            timeline(
                "Collection success",
                [
                    (
                        f'{m.COLLECTION_SUCCESS}{{account_id=~"$account_id", region=~"$region"}}',
                        "{{account_id}} {{region}} {{source}}",
                    )
                ],
                (0, 0, 24, 7),
                mappings=SUCCESS_MAP,
            ),
            timeseries(
                "Collection duration",
                [
                    (
                        f'{m.COLLECTION_DURATION}{{account_id=~"$account_id", region=~"$region"}}',
                        "{{account_id}} {{region}} {{source}}",
                    )
                ],
                (0, 7, 12, 8),
                unit="s",
            ),
            timeseries(
                "Data age",
                [
                    (m.SNAPSHOT_AGE, "snapshot {{instance}}"),
                    (
                        f'time() - {m.COLLECTION_LAST_SUCCESS}{{account_id=~"$account_id", region=~"$region"}}',
                        "{{account_id}} {{region}} {{source}}",
                    ),
                ],
                (12, 7, 12, 8),
                unit="s",
            ),
            timeseries(
                "AWS API calls",
                [(f"sum by (operation, outcome) (rate({m.API_CALLS}[$__rate_interval]))", "{{operation}} {{outcome}}")],
                (0, 15, 12, 8),
                unit="reqps",
                stacking=True,
            ),
            timeseries(
                "Log ingestion lag",
                [
                    (
                        f'{m.LOG_INGESTION_LAG}{{account_id=~"$account_id", region=~"$region"}}',
                        "{{region}} {{log_group}}",
                    )
                ],
                (12, 15, 12, 8),
                unit="s",
            ),
            timeseries(
                "Log events",
                [
                    (f"sum by (log) (rate({m.LOG_EVENTS_INGESTED}[$__rate_interval]))", "ingested {{log}}"),
                    (f"sum(rate({m.LOG_EVENTS_DUPLICATE}[$__rate_interval]))", "duplicates dropped"),
                    (
                        f"sum by (reason) (rate({m.LOG_PARSE_ERRORS}[$__rate_interval])) or vector(0)",
                        "parse errors {{reason}}",
                    ),
                ],
                (0, 23, 12, 8),
                unit="ops",
            ),
            timeseries(
                "Exporter process",
                [
                    (f"process_resident_memory_bytes{{{settings['exporter_job']}}}", "RSS {{instance}}"),
                ],
                (12, 23, 12, 8),
                unit="bytes",
            ),
            timeseries(
                "Unrecognised values from AWS",
                [(f"sum by (field) (increase({m.UNRECOGNIZED_VALUES}[$__rate_interval])) or vector(0)", "{{field}}")],
                (0, 31, 24, 6),
            ),
            stat(
                "Tunnel traffic: estimated CloudWatch cost a month",
                f'sum({m.TRAFFIC_MONTHLY_COST}{{account_id=~"$account_id", region=~"$region"}}) or vector(0)',
                (0, 37, 8, 5),
                "GetMetricData for TunnelDataIn/Out at the configured traffic.interval (0 while traffic "
                "collection is off).",
                unit="currencyUSD",
            ),
            timeseries(
                "CloudWatch metrics requested (billed per 1,000)",
                [
                    (
                        f"sum by (account_id, region) (increase({m.TRAFFIC_METRICS_REQUESTED}"
                        f'{{account_id=~"$account_id", region=~"$region"}}[1h])) or vector(0)',
                        "{{account_id}} {{region}}",
                    )
                ],
                (8, 37, 16, 5),
            ),
        ],
    )
