"""The log lines a demo tunnel writes: what AWS's IKE and BGP logs say on each state change,
plus a heartbeat: dead peer detection while IPsec is up, failed IKE attempts while it is down.

JSON lines follow AWS's documented shapes. AWS does not document the text format's layout, so the
demo's text lines put the same fields as ``key=value`` before the message (the parser reads fields
by name, not position).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from exporter.demo.scenario import TunnelScenario


@dataclass(frozen=True)
class LogLine:
    log: str  # ike | bgp
    timestamp_ms: int
    message: str


def stream_name(vpn_connection_id: str, outside_ip: str, log_kind: str) -> str:
    """The demo's stream names: ``<vpn-id>-<tunnel-outside-ip>-IKE.log`` (BGP likewise), the pattern AWS's article shows.

    AWS documents only that the names "use VpnConnectionID and TunnelOutsideIPAddress"; the exporter never
    builds a name, it attributes each event by what its stream name and content hold.
    """
    return f"{vpn_connection_id}-{outside_ip}-{log_kind.upper()}.log"


def _ike(tunnel: TunnelScenario, vpn_id: str, at: float, details: str, phase1: str, phase2: str) -> LogLine:
    fields = {
        "event_timestamp": int(at),
        "details": details,
        "dpd_enabled": True,
        "nat_t_detected": tunnel.nat_t,
        "ike_phase1_state": phase1,
        "ike_phase2_state": phase2,
    }
    if tunnel.ike_log == "text":
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))
        message = (
            f"{stamp}.000Z {vpn_id} {tunnel.outside_ip} dpd_enabled=true "
            f"nat_t_detected={str(tunnel.nat_t).lower()} ike_phase1_state={phase1} "
            f"ike_phase2_state={phase2} {details}"
        )
    else:
        message = json.dumps(fields)
    return LogLine("ike", int(at * 1000), message)


def _bgp(
    tunnel: TunnelScenario, vpn_id: str, at: float, kind: str, status: str, details: str, route: dict | None = None
) -> LogLine:
    """A BGP log line; a route event carries its route fields, and ``details`` only on an error (as AWS's)."""
    milliseconds = int(at * 1000)
    if tunnel.bgp_log == "text":
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))
        fields = "".join(f" {key}={value}" for key, value in (route or {}).items())
        message = f"{stamp}.000Z {vpn_id}_{tunnel.outside_ip} type={kind} status={status}{fields} {details}".rstrip()
    else:
        body = dict(route or {}, **({"details": details} if details else {}))
        message = json.dumps(
            {
                "resource_id": f"{vpn_id}_{tunnel.outside_ip}",
                "event_timestamp": milliseconds,
                "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + "Z",
                "type": kind,
                "status": status,
                "message": body,
            }
        )
    return LogLine("bgp", milliseconds, message)


def _neighbor(tunnel: TunnelScenario) -> str:
    """The customer gateway's inside address: the second host of the /30."""
    base, _ = tunnel.inside_cidr.split("/")
    octets = base.split(".")
    return ".".join(octets[:3] + [str(int(octets[3]) + 2)])


def _phase2(tunnel: TunnelScenario, vpn_id: str, at: float) -> LogLine:
    details = (
        f"AWS tunnel Phase 2 SA is established with inbound SPI: 0xcbf7f2e3: outbound SPI: 0xc9be76cd: "
        f"traffic selectors: (AWS-side) {tunnel.aws_selector} <=> (CGW-side) {tunnel.cgw_selector}"
    )
    return _ike(tunnel, vpn_id, at, details, "established", "established")


def _bgp_attempt(tunnel: TunnelScenario, vpn_id: str, at: float) -> list[LogLine]:
    """One failed attempt to bring BGP up: TCP never connects, or the OPEN is refused for its AS number."""
    neighbor = _neighbor(tunnel)
    connect = [
        _bgp(
            tunnel,
            vpn_id,
            at,
            "BGPStatus",
            "DOWN",
            f"AWS-side peer is initiating a connection (via Connect) to neighbor {neighbor}",
        )
    ]
    if tunnel.bgp_cause == "asn_mismatch":
        steps = (("Idle", "Connect"), ("Connect", "OpenSent"))
        refusal = [
            _bgp(
                tunnel,
                vpn_id,
                at,
                "BGPStatus",
                "DOWN",
                f"AWS-side peer detected a bad OPEN message from "
                f"neighbor {neighbor} - remote AS is 65001, expected 65100",
            )
        ]
    else:
        steps, refusal = (("Idle", "Connect"), ("Connect", "Active")), []
    return (
        connect
        + [
            _bgp(
                tunnel,
                vpn_id,
                at,
                "BGPStatus",
                "DOWN",
                f"AWS-side peer BGP session state has changed from {old} to {new} with neighbor {neighbor}",
            )
            for old, new in steps
        ]
        + refusal
    )


def transition(tunnel: TunnelScenario, vpn_id: str, before: str, after: str, at: float) -> list[LogLine]:
    """What the logs record when a tunnel goes from ``before`` to ``after`` (``before`` "" at start)."""
    neighbor = _neighbor(tunnel)
    lines: list[LogLine] = []
    if after in ("healthy", "ipsec_up_bgp_down") and before not in ("healthy", "ipsec_up_bgp_down"):
        lines.append(
            _ike(tunnel, vpn_id, at, "AWS tunnel Phase 1 SA is established with cgw", "established", "negotiating")
        )
        lines.append(_phase2(tunnel, vpn_id, at))
    if after == "healthy":
        for old, new in (
            ("Idle", "Connect"),
            ("Connect", "OpenSent"),
            ("OpenSent", "OpenConfirm"),
            ("OpenConfirm", "Established"),
        ):
            lines.append(
                _bgp(
                    tunnel,
                    vpn_id,
                    at,
                    "BGPStatus",
                    "UP" if new == "Established" else "DOWN",
                    f"AWS-side peer BGP session state has changed from {old} to {new} with neighbor {neighbor}",
                )
            )
        lines.append(
            _bgp(
                tunnel,
                vpn_id,
                at,
                "BGPStatus",
                "UP",
                f"AWS-side peer sent an End-of-RIB message to neighbor {neighbor}",
            )
        )
        for index in range(min(tunnel.routes, 5)):
            lines.append(
                _bgp(
                    tunnel,
                    vpn_id,
                    at,
                    "RouteStatus",
                    "ADVERTISED",
                    "",
                    {"prefix": f"10.{index}.0.0/16", "asPath": "65000", "nextHopIp": neighbor},
                )
            )
    elif after == "ipsec_up_bgp_down":
        if before == "healthy":
            lines.append(
                _bgp(
                    tunnel,
                    vpn_id,
                    at,
                    "BGPStatus",
                    "DOWN",
                    f"AWS-side peer sent a Hold Timer Expired notification to neighbor {neighbor}",
                )
            )
            lines.append(
                _bgp(
                    tunnel,
                    vpn_id,
                    at,
                    "BGPStatus",
                    "DOWN",
                    f"AWS-side peer BGP session state has changed from Established to Idle with neighbor {neighbor}",
                )
            )
        lines.extend(_bgp_attempt(tunnel, vpn_id, at))
    elif after == "down":
        if tunnel.ike_cause:
            lines.extend(_ike_failure(tunnel, vpn_id, at))
        else:
            lines.append(
                _ike(tunnel, vpn_id, at, "AWS tunnel DPD timed out after 3 retransmits", "established", "established")
            )
            lines.append(_ike(tunnel, vpn_id, at, "Peer is not responsive - Declaring peer dead", "down", "down"))
        if before == "healthy":
            lines.append(
                _bgp(
                    tunnel,
                    vpn_id,
                    at,
                    "BGPStatus",
                    "DOWN",
                    f"AWS-side peer sent a Hold Timer Expired notification to neighbor {neighbor}",
                )
            )
            lines.append(
                _bgp(
                    tunnel,
                    vpn_id,
                    at,
                    "BGPStatus",
                    "DOWN",
                    f"AWS-side peer BGP session state has changed from Established to Idle with neighbor {neighbor}",
                )
            )
    return _logged(tunnel, lines)


def _ike_failure(tunnel: TunnelScenario, vpn_id: str, at: float) -> list[LogLine]:
    """One failed attempt to bring IPsec up: a wrong pre-shared key, no common proposal, or no answer."""
    details: tuple[str, ...]
    if tunnel.ike_cause == "psk_mismatch":
        details = (
            "AWS tunnel detected a pre-shared key mismatch with cgw",
            "AWS tunnel is sending AUTHENTICATION_FAILED as the response",
        )
    elif tunnel.ike_cause == "no_proposal":
        details = ("No Proposal Match Found by AWS",)
    else:
        details = ("AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw",)
    return [_ike(tunnel, vpn_id, at, text, "negotiating", "down") for text in details]


def heartbeat(tunnel: TunnelScenario, vpn_id: str, state: str, at: float) -> list[LogLine]:
    """The periodic lines of a steady tunnel: DPD while IPsec is up; BGP retrying while it cannot connect;
    IKE failing while IPsec is down."""
    lines = []
    if state in ("healthy", "ipsec_up_bgp_down"):
        lines.append(_ike(tunnel, vpn_id, at, "AWS tunnel is sending DPD R-U-THERE", "established", "established"))
    if state == "down":
        lines.extend(_ike_failure(tunnel, vpn_id, at))
    if state == "ipsec_up_bgp_down":
        lines.extend(_bgp_attempt(tunnel, vpn_id, at))
    return _logged(tunnel, lines)


def _logged(tunnel: TunnelScenario, lines: list[LogLine]) -> list[LogLine]:
    """What reaches CloudWatch: nothing of a log that is off, nothing at all from a quiet tunnel."""
    return [line for line in lines if not tunnel.quiet and getattr(tunnel, f"{line.log}_log") != "off"]
