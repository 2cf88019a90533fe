"""The checklist of AWS's knowledge-center article (DOWN with IPSEC UP), run on every snapshot: which cause applies, with its evidence.

Each rule reads EC2 telemetry, connection options and log-derived state, and yields findings from
the catalogue in ``findings.py``. Rules fire only on evidence present in the snapshot; where logs
are missing they say so (``tunnel_logging_disabled``) rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from exporter.diagnosis import configuration
from exporter.diagnosis.findings import FINDINGS
from exporter.diagnosis.selectors import ANY, check_snapshot, check_tunnel_selectors
from exporter.model import (
    Connection,
    CustomerGateway,
    Finding,
    Observation,
    RegionTelemetry,
    SelectorCheck,
    Snapshot,
    Tunnel,
    TunnelKey,
    TunnelLogView,
)
from exporter.sources.ec2.telemetry import ROUTE_QUOTA_NEAR, ROUTE_QUOTAS, route_quota_ratio
from exporter.sources.logs.parse import BGP_ERRORS
from exporter.sources.logs.state import CLOCK_SKEW_SECONDS
from exporter.sources.registry import SOURCES
from exporter.timefmt import duration, utc

RECENT_SECONDS = 3600.0  # a BGP or IKE error older than this no longer counts as a current finding
_EVENT_OF_ERROR = {error: event for event, error in BGP_ERRORS.items()}
STATUS_MESSAGES = {
    "ipsec_up": "IPSEC IS UP",
    "ipsec_down": "IPSEC IS DOWN",
    "bgp_routes": "N BGP ROUTES",
    "empty": "(empty)",
    "missing": "(missing)",
    "other": "(unrecognised)",
}
_IKE_ERROR_FINDINGS = {
    "psk_mismatch": "ike_authentication_failed",
    "authentication_failed": "ike_authentication_failed",
    "no_proposal_chosen": "ike_proposal_mismatch",
    "dpd_timeout": "ike_peer_unresponsive",
    "peer_dead": "ike_peer_unresponsive",
    "phase1_timeout": "ike_peer_unresponsive",
    "traffic_selector_unacceptable": "traffic_selectors_mismatch",
    "phase2_failed": "ike_phase2_failed",
}
# Findings whose fix turns on the customer gateway as AWS knows it: the ASN a refused OPEN is checked
# against, the IP address the device must use as its IKE identity and answer IKE from.
_CUSTOMER_GATEWAY_FINDINGS = frozenset({"bgp_open_message_error", "ike_authentication_failed", "ike_peer_unresponsive"})
_BGP_ERROR_FINDINGS = {
    "hold_timer_expired": "bgp_hold_timer_expired",
    "open_message_error": "bgp_open_message_error",
    "max_prefix_exceeded": "bgp_max_prefix_exceeded",
    "route_denied": "bgp_routes_denied",
}


def _ipsec_up_bgp_down(connection: Connection, tunnel: Tunnel, now: float) -> list[str] | None:
    if connection.routing != "dynamic" or not tunnel.ipsec_up or tunnel.bgp_up is not False:
        return None
    evidence = [
        f"AWS status {tunnel.status}, status message {STATUS_MESSAGES[tunnel.status_message]}",
        f"accepted routes {tunnel.accepted_routes if tunnel.accepted_routes is not None else 'unknown'}",
    ]
    if tunnel.last_status_change is not None:
        evidence.append(
            f"for {duration(now - tunnel.last_status_change)}, since "
            f"{utc(tunnel.last_status_change, now)} (last status change)"
        )
    return evidence


def _route_quota_near(connection: Connection, tunnel: Tunnel) -> tuple[str, ...] | None:
    """Predictive: past ROUTE_QUOTA_NEAR of the gateway's route quota, the customer gateway's next prefixes reset
    the session (AWS answers the one past the quota with a maximum-prefix Cease). More routes than the quota means
    AWS applies another one than the page's: nothing is said rather than a guess."""
    ratio = route_quota_ratio(connection, tunnel)
    if ratio is None or not ROUTE_QUOTA_NEAR < ratio <= 1:
        return None
    quota = ROUTE_QUOTAS[connection.gateway_type]
    gateway = {"vgw": "virtual private gateway", "tgw": "transit gateway"}[connection.gateway_type]
    room = quota - (tunnel.accepted_routes or 0)
    return (
        f"accepted routes {tunnel.accepted_routes} of the {gateway}'s quota of {quota} ({ratio:.0%})",
        f"{room} more prefixes reach the quota; the one after resets the BGP session"
        if room
        else "at the quota: the next prefix resets the BGP session",
    )


def _tunnel_rules(
    connection: Connection, tunnel: Tunnel, logs: TunnelLogView | None, now: float, check: SelectorCheck | None = None
) -> Iterator[tuple]:
    headline = _ipsec_up_bgp_down(connection, tunnel, now)
    if headline:
        yield "ipsec_up_bgp_down", headline

    missing = [
        kind
        for kind, destination in (("ike", tunnel.ike_log), ("bgp", tunnel.bgp_log))
        if not destination.enabled and (kind == "ike" or connection.routing == "dynamic")
    ]
    if missing:
        yield "tunnel_logging_disabled", tuple(f"{kind} log delivery is off" for kind in missing)
    if near := _route_quota_near(connection, tunnel):
        yield "route_quota_near", near
    if logs is None:
        return

    selectors = logs.fact("selectors")
    if selectors is not None:
        aws_side, cgw_side = selectors
        check = check or check_tunnel_selectors(connection, tunnel, selectors)
        if check.mismatch:
            yield (
                "traffic_selectors_mismatch",
                (
                    f"negotiated (AWS-side) {aws_side} <=> (CGW-side) {cgw_side}",
                    f"expected (connection options) (AWS-side) {connection.remote_ipv4_network_cidr or ANY} <=> "
                    f"(CGW-side) {connection.local_ipv4_network_cidr or ANY}, covering tunnel inside {tunnel.inside_cidr}",
                    "problems: " + ", ".join(check.reasons),
                ),
            )

    counts = dict(logs.counts)
    if headline:
        bgp_seen = counts.get("bgp_established", 0) + counts.get("bgp_open_received", 0)
        narrow = selectors is not None and (selectors[0] != ANY or selectors[1] != ANY)
        if narrow and not bgp_seen:
            evidence = [
                f"policy-style selectors {selectors[0]} <=> {selectors[1]}",
                "no BGP OPEN received and BGP never established in the BGP log"
                if tunnel.bgp_log.enabled
                else "BGP log off: BGP activity unknown",
                "AWS reports 0 accepted routes" if not tunnel.accepted_routes else "",
            ]
            yield "static_cgw_on_dynamic_connection", tuple(e for e in evidence if e)
        state = logs.fact("bgp_state")
        if state in ("connect", "active"):
            yield (
                "bgp_stuck_connecting",
                (
                    f"BGP session state {state} (BGP log)",
                    f"no session established in {sum(counts.values())} log events read"
                    if not counts.get("bgp_established")
                    else "",
                ),
            )

    if connection.accelerated and logs.fact("nat_t") is False and tunnel.ipsec_up:
        yield (
            "accelerated_without_nat_t",
            ("connection has acceleration enabled", "latest IKE log event: nat_t_detected false"),
        )

    if recent := _recent_error(logs, "bgp_error", _BGP_ERROR_FINDINGS, now):
        code, error, age = recent
        detail = logs.fact("bgp_error_detail")
        yield (
            code,
            (
                f"BGP log: {error.replace('_', ' ')} {duration(age)} ago" + (f": {detail}" if detail else ""),
                f"{counts.get(_EVENT_OF_ERROR[error], 0)} such events counted, the latest at {utc(now - age, now)}",
            ),
        )

    # An IKE failure explains a tunnel only while its IPsec is down; once up again, it is history.
    if tunnel.ipsec_up is False and (recent := _recent_error(logs, "ike_error", _IKE_ERROR_FINDINGS, now)):
        code, error, age = recent
        yield (
            code,
            (
                f"IKE log: {error.replace('_', ' ')} {duration(age)} ago",
                f"{counts.get(error, 0)} such events counted, the latest at {utc(now - age, now)}",
                f"AWS status {tunnel.status}, status message {STATUS_MESSAGES[tunnel.status_message]}",
                configuration.allowed(tunnel.config) if code == "ike_proposal_mismatch" else "",
            ),
        )


def _recent_error(logs: TunnelLogView, fact: str, findings: dict[str, str], now: float) -> tuple | None:
    """(finding code, error, age in seconds) for a tunnel's latest logged error, if it has a finding
    and is under RECENT_SECONDS old; an older error no longer explains the tunnel's state."""
    error, error_at = logs.fact(fact), logs.fact_time(fact)
    code = findings.get(error or "")
    if code and error_at is not None and 0 <= now - error_at + CLOCK_SKEW_SECONDS and now - error_at <= RECENT_SECONDS:
        return code, error, max(0.0, now - error_at)
    return None


def _connection_rules(connection: Connection) -> Iterator[tuple]:
    known = [t for t in connection.tunnels if t.status in ("UP", "DOWN")]
    up = [t for t in known if t.status == "UP"]
    if not known:
        return
    if not up:
        yield (
            "connection_down",
            tuple(f"tunnel {t.outside_ip}: DOWN, {STATUS_MESSAGES[t.status_message]}" for t in known),
        )
    elif len(known) >= 2 and len(up) == 1:
        down = next(t for t in known if t.status == "DOWN")
        yield (
            "redundancy_lost",
            (f"tunnel {up[0].outside_ip} UP", f"tunnel {down.outside_ip} DOWN, {STATUS_MESSAGES[down.status_message]}"),
        )


def _customer_gateway_evidence(connection: Connection, gateway: CustomerGateway | None) -> str:
    if gateway is None:
        return f"customer gateway {connection.customer_gateway_id or '(none)'}: not described by EC2"
    return f"customer gateway {gateway.customer_gateway_id}: IP {gateway.ip_address}, BGP ASN {gateway.bgp_asn}"


def diagnose_connection(
    observation: Observation,
    region: RegionTelemetry,
    connection: Connection,
    now: float,
    gateway: CustomerGateway | None = None,
    checks: Mapping[TunnelKey, SelectorCheck] | None = None,
) -> list[Finding]:
    """A connection's findings and its tunnels': the checklist's rules, then each registered source's."""
    base = (region.account_id, region.region, connection.vpn_connection_id)
    checks = checks or {}
    findings = [
        Finding(*base, "", code, tuple(e for e in evidence if e), FINDINGS[code].severity)
        for rules in (
            _connection_rules(connection),
            configuration.connection_rules(connection),
            *(source.connection_rules(observation, region, connection, now) for source in SOURCES),
        )
        for code, evidence in rules
    ]
    for tunnel in connection.tunnels:
        key = TunnelKey.of(region, connection, tunnel)
        found: dict[str, list[str]] = {}  # one finding per code: two rules may reach the same cause
        logs = observation.tunnel_logs.get(key)
        for code, evidence in _tunnel_rules(connection, tunnel, logs, now, checks.get(key)):
            found.setdefault(code, []).extend(e for e in evidence if e)
        for rules in (
            configuration.tunnel_rules(tunnel),
            *(source.tunnel_rules(observation, connection, tunnel, key, now) for source in SOURCES),
        ):
            for code, evidence in rules:
                found.setdefault(code, []).extend(evidence)
        for code in found.keys() & _CUSTOMER_GATEWAY_FINDINGS:
            found[code].append(_customer_gateway_evidence(connection, gateway))
        findings.extend(
            Finding(*base, tunnel.outside_ip, code, tuple(evidence), FINDINGS[code].severity)
            for code, evidence in found.items()
        )
    return findings


def diagnose(
    observation: Observation,
    now: float | None = None,
    on_error: Callable[[str, Exception], None] | None = None,
    checks: Mapping[TunnelKey, SelectorCheck] | None = None,
) -> tuple[Finding, ...]:
    """Every active finding of an observation, in a stable order. A connection whose rules fail (a value no
    rule expected) loses its findings for this snapshot, reported to ``on_error``; the others keep theirs."""
    now = observation.completed_at if now is None else now
    checks = check_snapshot(observation) if checks is None else checks
    found: list[Finding] = []
    for region in observation.regions:
        gateways = region.customer_gateways_by_id()
        for connection in region.connections:
            try:
                found.extend(
                    diagnose_connection(
                        observation, region, connection, now, gateways.get(connection.customer_gateway_id), checks
                    )
                )
            except Exception as err:  # isolation: one odd connection never freezes the snapshot
                if on_error is None:
                    raise
                on_error(connection.vpn_connection_id, err)
    return tuple(sorted(found, key=lambda f: (f.account_id, f.region, f.vpn_connection_id, f.tunnel, f.code)))


def diagnosed(observation: Observation, on_error: Callable[[str, Exception], None] | None = None) -> Snapshot:
    """The observation with its diagnosis: the selector checks made once (the rules and the exposition both read
    them), then the findings. The one way a ``Snapshot`` is made."""
    checks = check_snapshot(observation)
    findings = diagnose(observation, on_error=on_error, checks=checks)
    return Snapshot.of(observation, checks, findings)
