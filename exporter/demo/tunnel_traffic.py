"""What CloudWatch's AWS/VPN TunnelDataIn and TunnelDataOut say of each demo tunnel, period by period, and
when the simulated AWS publishes them.

As AWS does: a data point per tunnel (TunnelIpAddress) and period, in Bytes, zeros included while a tunnel is
down (the metrics "report even while the tunnel is down"); a period is published some minutes after it ends,
and part of it later still, so an exporter that trusts the first answer for a period undercounts.
"""

from __future__ import annotations

import zlib

from exporter.demo.scenario import ConnectionScenario, TunnelScenario

PERIOD = 300
PUBLISHED_AFTER = 180  # seconds after a period ends that its first data point appears
LATE_SHARE = 0.2  # the share of a period's bytes that appears one period later still
HISTORY_SECONDS = 9 * 86400  # the demo's CloudWatch history before it starts
SETTLED_FOR = 7200  # the steady demo states held this long before the demo started (LastStatusChange)
HEALTHY_BYTES = (42e6, 65e6)  # in, out per period: about 1.1 and 1.7 Mbit/s
SELECTED_APP_BYTES = 5e6  # a policy-based gateway's traffic within its narrow selectors, in
BGP_ONLY_BYTES = 1500  # BGP's own OPEN and keepalive attempts per period, each way


def bytes_in_period(
    connection: ConnectionScenario, tunnel: TunnelScenario, state: str, period_start: float
) -> tuple[float, float]:
    """(TunnelDataIn, TunnelDataOut) of one tunnel in one period: in is what AWS received from the customer
    gateway, out what it sent."""
    if connection.traffic == "idle" or state == "down":
        return 0.0, 0.0
    wobble = 0.75 + zlib.crc32(f"{tunnel.outside_ip}@{int(period_start)}".encode()) % 1000 / 2000
    if state == "healthy":
        return HEALTHY_BYTES[0] * wobble, HEALTHY_BYTES[1] * wobble
    if connection.accelerated and not tunnel.nat_t:  # nothing gets through; AWS's own BGP attempts go out
        return 0.0, BGP_ONLY_BYTES
    if tunnel.cgw_selector != "0.0.0.0/0":  # app traffic within the selectors arrives; no BGP, no route back
        return SELECTED_APP_BYTES * wobble, 0.0
    return BGP_ONLY_BYTES, BGP_ONLY_BYTES


def datum(name: str, outside_ip: str, timestamp: float, value: float) -> dict:
    """One PutMetricData entry, as AWS publishes the metric."""
    from datetime import datetime, timezone

    return {
        "MetricName": name,
        "Dimensions": [{"Name": "TunnelIpAddress", "Value": outside_ip}],
        "Timestamp": datetime.fromtimestamp(timestamp, tz=timezone.utc),
        "Value": value,
        "Unit": "Bytes",
    }
