"""What the tunnels' bytes (CloudWatch TunnelDataIn/Out) say. They report even while a tunnel is down, so
they never say that a tunnel is up; they say whether anything gets through one that is."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from exporter.model import Connection, Tunnel, TunnelTraffic
from exporter.sources.traffic.poller import KEEPALIVE_BYTES
from exporter.timefmt import duration, utc

CONNECTION_HOUR_USD = 0.05  # AWS Site-to-Site VPN's price per connection-hour in most regions (AWS VPN pricing)


def tunnel_rules(
    connection: Connection, tunnel: Tunnel, traffic: TunnelTraffic | None, silent_after: float, now: float
) -> Iterator[tuple[str, tuple[str, ...]]]:
    """``ipsec_up_no_traffic``: on a dynamic connection BGP alone sends packets every few seconds, so IPsec up
    with not one byte received since IPsec last changed (or as far back as we looked) means they do not get
    through. A static connection may be idle and healthy, so it is not judged."""
    if traffic is None or connection.routing != "dynamic" or not tunnel.ipsec_up or tunnel.bgp_up:
        return  # BGP established means keepalives arrive: zero bytes then is a gap in CloudWatch's data
    if traffic.received_data_until is None:
        return  # no data point at all: nothing is known, not "no bytes"
    since = max(traffic.last_received or traffic.observed_since, tunnel.last_status_change or 0.0)
    silent = traffic.received_data_until - since
    if silent < silent_after:
        return
    evidence = [
        f"CloudWatch TunnelDataIn: no bytes from the customer gateway for {duration(silent)}, from "
        f"{utc(since, now)} to {utc(traffic.received_data_until, now)}",
        f"sent to it meanwhile: {'some' if (traffic.last_sent or 0) > since else 'none'} (TunnelDataOut)",
        f"AWS status {tunnel.status} with IPsec up",
    ]
    if connection.accelerated:
        evidence.append("accelerated connection: what NAT-T off on the customer gateway looks like")
    yield "ipsec_up_no_traffic", tuple(evidence)


def connection_rules(
    connection: Connection, traffic: Sequence[TunnelTraffic | None], idle_after: float, now: float
) -> Iterator[tuple[str, tuple[str, ...]]]:
    """``connection_idle``: nothing beyond keepalives (``KEEPALIVE_BYTES`` a period) either way on any tunnel for
    ``idle_after``, judged only when every tunnel's traffic is known: BGP's keepalives alone never make a
    connection used."""
    known = [t for t in traffic if t is not None]
    if not known or len(known) < len(traffic):
        return
    until = min(t.counted_until for t in known)
    last = max((t.last_traffic for t in known if t.last_traffic is not None), default=None)
    since = last if last is not None else min(t.observed_since for t in known)
    idle = until - since
    if idle < idle_after:
        return
    days = idle / 86400
    yield (
        "connection_idle",
        (
            (
                f"nothing beyond keepalives either way on its {len(traffic)} tunnels since {utc(last, now)} "
                f"({days:.0f} days)"
                if last is not None
                else f"nothing beyond keepalives either way on its {len(traffic)} tunnels in the {days:.0f} days looked back"
            ),
            f"keepalives: at most {KEEPALIVE_BYTES // 1000} kB per 5 minutes each way (CloudWatch TunnelDataIn/Out)",
            f"billed all the same: about ${CONNECTION_HOUR_USD * 24 * 30:.0f} a month at "
            f"${CONNECTION_HOUR_USD:.2f} per connection-hour",
        ),
    )
