"""Do a tunnel's negotiated traffic selectors fit its connection? (The second check of AWS's
knowledge-center article on DOWN with IPSEC UP.)

AWS side selectors must equal the connection's RemoteIpv4NetworkCidr, CGW side ones its
LocalIpv4NetworkCidr (both default to 0.0.0.0/0). A dynamic connection also needs both sides to
cover the tunnel inside CIDR, or the BGP peers' link-local addresses never cross the tunnel.
"""

from __future__ import annotations

import ipaddress

from exporter.model import Observation, SelectorCheck, TunnelKey

ANY = "0.0.0.0/0"


def _networks(text: str) -> list | None:
    try:
        # typeshed wants networks of one IP version; a mix raises TypeError, caught below
        return list(
            ipaddress.collapse_addresses(  # type: ignore[type-var]
                ipaddress.ip_network(part, strict=False) for part in text.split(",") if part
            )
        )
    except (ValueError, TypeError):
        return None


def _covers(networks: list, cidr: str) -> bool:
    try:
        inside = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return True  # nothing to check against
    return any(inside.version == net.version and inside.subnet_of(net) for net in networks)


def check_selectors(
    aws_side: str, cgw_side: str, routing: str, remote_cidr: str, local_cidr: str, inside_cidr: str
) -> SelectorCheck:
    """Compare negotiated selectors with what the connection needs."""
    aws, cgw = _networks(aws_side), _networks(cgw_side)
    expected_aws, expected_cgw = _networks(remote_cidr or ANY), _networks(local_cidr or ANY)
    if not aws or not cgw:
        return SelectorCheck(True, ("unreadable",))
    reasons = []
    if expected_aws is not None and aws != expected_aws:
        reasons.append("aws_side_differs")
    if expected_cgw is not None and cgw != expected_cgw:
        reasons.append("cgw_side_differs")
    if routing == "dynamic" and inside_cidr and not (_covers(aws, inside_cidr) and _covers(cgw, inside_cidr)):
        reasons.append("inside_cidr_not_covered")
    return SelectorCheck(bool(reasons), tuple(reasons))


def check_tunnel_selectors(connection, tunnel, negotiated: tuple[str, str]) -> SelectorCheck:
    """``check_selectors`` for a model Connection and Tunnel and the (AWS, CGW) selectors negotiated."""
    aws_side, cgw_side = negotiated
    return check_selectors(
        aws_side,
        cgw_side,
        connection.routing,
        connection.remote_ipv4_network_cidr,
        connection.local_ipv4_network_cidr,
        tunnel.inside_cidr,
    )


def check_snapshot(observation: Observation) -> dict[TunnelKey, SelectorCheck]:
    """TunnelKey -> SelectorCheck for every tunnel whose logs have shown its negotiated selectors."""
    checks = {}
    for _, connection, tunnel, key in observation.tunnels():
        view = observation.tunnel_logs.get(key)
        negotiated = view.fact("selectors") if view is not None else None
        if negotiated is not None:
            checks[key] = check_tunnel_selectors(connection, tunnel, negotiated)
    return checks
