"""The catalogue of diagnosis findings: stable codes, severities, remedies and the alert of each, in the
terms of AWS's knowledge-center article "Why is my Site-to-Site VPN connection DOWN with IPSEC UP?".

The one place this text lives: the diagnose command, the status page, the exported catalogue
(``aws_vpn_finding_info``, which the pages' cause annotation reads), docs/diagnosis.md's table, the alert rules,
runbooks and their tests all read it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from exporter.config import RUNBOOK_BASE

CRITICAL, WARNING, INFO = "critical", "warning", "info"


@dataclass(frozen=True)
class FindingSpec:
    code: str
    severity: str
    scope: str  # tunnel | connection
    summary: str
    remedy: str
    alert: str  # the alert that pages (or tickets) for it; its runbook section is the alert's name in lower case
    symptom: bool = False  # says what is broken, not why: printed after the cause that explains it
    demo: str = ""  # the demo connection that shows it, or "no: <why the demo cannot>"
    needs_ipsec: bool = False  # a BGP-layer cause: while the tunnel's IPsec is down its alert is silenced
    risk: bool = False  # what may go wrong (a configuration), not why something is down: never a page's cause
    # For a cause that shares its evidence with others (the same "IPSEC IS UP, BGP down"): what tells it apart,
    # said where the competing causes are listed in the order to check them (triage_order).
    tell_apart: str = ""

    @property
    def runbook_anchor(self) -> str:
        return self.alert.lower()

    @property
    def title(self) -> str:
        """The finding in a few words: its summary up to the first colon (the alert's summary says the same)."""
        return self.summary.split(":")[0].rstrip(".")


_SPECS = (
    FindingSpec(
        "ipsec_up_bgp_down",
        CRITICAL,
        "tunnel",
        "IPsec is established but the BGP session is not (AWS shows DOWN, IPSEC IS UP).",
        "Work through the causes below in order: does the customer gateway speak BGP (static or "
        "policy-based devices do not), are the traffic selectors 0.0.0.0/0 <=> 0.0.0.0/0, is NAT-T on for an "
        "accelerated connection; then general BGP checks (ASNs, peer addresses, hold timers, TCP 179).",
        alert="VpnTunnelIpsecUpBgpDown",
        symptom=True,
        demo="partner-asn",
    ),
    FindingSpec(
        "static_cgw_on_dynamic_connection",
        WARNING,
        "tunnel",
        "The customer gateway behaves like a static (policy-based) device on a dynamic (BGP) connection.",
        "The routing option of an existing connection cannot be changed: create a new VPN connection with "
        "static routing, then reconfigure the customer gateway with the new tunnel outside IP addresses "
        "(AWS assigns a new pair). The old tunnel inside CIDRs and pre-shared keys may be reused on the new "
        "connection.",
        alert="VpnStaticCustomerGatewayOnDynamicConnection",
        demo="branch-tokyo",
        tell_apart="Look at the device's configuration first: with no BGP neighbor configured at all, it is this "
        "(only a new static connection helps); a device that has a BGP neighbor is not a static one.",
    ),
    FindingSpec(
        "traffic_selectors_mismatch",
        WARNING,
        "tunnel",
        "The negotiated traffic selectors do not fit the connection.",
        "Set the encryption domain / proxy IDs on the customer gateway to 0.0.0.0/0 (AWS) <=> 0.0.0.0/0 "
        "(on-premises), and set both the Local and Remote IPv4 network CIDR options of the VPN connection to "
        "0.0.0.0/0. A dynamic connection needs selectors wide enough for the link-local tunnel inside "
        "addresses BGP uses.",
        alert="VpnTrafficSelectorsMismatch",
        demo="branch-tokyo",
        tell_apart="The device runs BGP but proposes selectors narrower than 0.0.0.0/0 (see the negotiated "
        "selectors in the evidence): widening them on the device fixes it, no new connection needed.",
    ),
    FindingSpec(
        "accelerated_without_nat_t",
        CRITICAL,
        "tunnel",
        "Accelerated VPN without NAT traversal: IPsec comes up but no traffic flows, BGP included.",
        "Enable NAT-T (NAT traversal) on the customer gateway device; accelerated Site-to-Site VPN requires it.",
        alert="VpnAcceleratedWithoutNatT",
        demo="dc-accelerated",
    ),
    FindingSpec(
        "ipsec_up_no_traffic",
        WARNING,
        "tunnel",
        "IPsec is up but nothing has arrived through the tunnel for a while (CloudWatch TunnelDataIn 0), "
        "though BGP alone would send some: packets from the customer gateway do not get through.",
        "On an accelerated connection, enable NAT-T on the customer gateway (accelerated_without_nat_t). "
        "Otherwise check that the customer gateway routes traffic, BGP included, into this tunnel, and that "
        "its traffic selectors cover the tunnel inside addresses.",
        alert="VpnTunnelIpsecUpNoTraffic",
        demo="dc-accelerated",
    ),
    FindingSpec(
        "tunnel_logging_disabled",
        INFO,
        "tunnel",
        "Tunnel logs are not delivered to CloudWatch Logs, so selector, NAT-T and BGP checks cannot be made.",
        "Enable Site-to-Site VPN tunnel activity logs (and BGP logs) to CloudWatch Logs in the tunnel options "
        "(ModifyVpnTunnelOptions, LogOptions.CloudWatchLogOptions).",
        alert="VpnTunnelLoggingDisabled",
        demo="legacy-static",
    ),
    FindingSpec(
        "redundancy_lost",
        WARNING,
        "connection",
        "Only one tunnel of the connection is up: one more failure takes the connection down.",
        "Bring the down tunnel back: check its status message and findings, and the customer gateway's "
        "configuration for that tunnel's outside IP address.",
        alert="VpnRedundancyLost",
        symptom=True,
        demo="subsidiary-edge",
    ),
    FindingSpec(
        "connection_down",
        CRITICAL,
        "connection",
        "No tunnel of the connection is up.",
        "Check each tunnel's findings. IPSEC IS DOWN: the customer gateway's reachability, IKE settings and "
        "pre-shared key. IPSEC IS UP: the BGP causes.",
        alert="VpnConnectionDown",
        symptom=True,
        demo="lab-down",
    ),
    FindingSpec(
        "tunnel_restart_depends_on_customer_gateway",
        INFO,
        "tunnel",
        "AWS will not bring this tunnel back by itself: after an AWS tunnel endpoint replacement or a dead "
        "peer detection timeout it stays down until the customer gateway initiates IKE.",
        "Make sure the customer gateway initiates IKE (sends traffic or keeps the tunnel up), or let AWS do "
        "it: allow IKEv2 and set the tunnel's startup action to start (ModifyVpnTunnelOptions "
        "StartupAction=start, which needs IKEv2 and the gateway's IP address), and its DPD timeout action "
        "to restart.",
        alert="VpnTunnelRestartDependsOnCustomerGateway",
        risk=True,
        demo="subsidiary-edge",
    ),
    FindingSpec(
        "weak_cryptography_allowed",
        INFO,
        "tunnel",
        "The tunnel allows IKEv1, SHA1 or Diffie-Hellman groups below 14: AWS picks from the lowest allowed "
        "value the customer gateway proposes, so a weak one can be negotiated.",
        "Restrict the tunnel options to what AWS recommends (IKEv2, SHA2-256 or stronger, DH groups 14 and "
        "above) with ModifyVpnTunnelOptions, after checking the customer gateway supports them; the tunnel "
        "is briefly unavailable while AWS applies the change.",
        alert="VpnWeakCryptographyAllowed",
        risk=True,
        demo="legacy-static",
    ),
    FindingSpec(
        "tunnels_configured_differently",
        WARNING,
        "connection",
        "The connection's tunnels allow different IKE versions, algorithms or DH groups: a customer gateway "
        "set up for one may fail to bring up the other when it has to fail over.",
        "Give both tunnels the same IKE versions, phase 1 and phase 2 algorithms and DH groups "
        "(ModifyVpnTunnelOptions), matching the customer gateway's one policy.",
        alert="VpnTunnelsConfiguredDifferently",
        risk=True,
        demo="lab-down",
    ),
    FindingSpec(
        "gateway_not_associated",
        WARNING,
        "connection",
        "The VPN connection is not associated with its gateway (GatewayAssociationState), so no traffic "
        "reaches the VPC or transit gateway through it.",
        "Check the connection's virtual private gateway or transit gateway attachment "
        "(ModifyVpnConnection, or the transit gateway's VPN attachment) and wait for 'associated'.",
        alert="VpnGatewayNotAssociated",
        demo="no: every demo connection is attached to its gateway",
    ),
    FindingSpec(
        "static_route_not_available",
        WARNING,
        "connection",
        "A static route of the connection is not available (pending or deleting), so traffic for it does not "
        "use the VPN.",
        "Check the route in the VPN connection's static routes; re-create one stuck in pending "
        "(DeleteVpnConnectionRoute, CreateVpnConnectionRoute) and check the route tables propagate it.",
        alert="VpnStaticRouteNotAvailable",
        demo="legacy-static",
    ),
    FindingSpec(
        "tunnel_provisioning_failed",
        WARNING,
        "tunnel",
        "AWS could not provision the tunnel (GetActiveVpnTunnelStatus ProvisioningStatus failed): it stays "
        "DOWN whatever the customer gateway does.",
        "Read the provisioning reason; change the tunnel options it names (ModifyVpnTunnelOptions), or "
        "replace the tunnel (ReplaceVpnTunnel); open an AWS support case when the reason is AWS's own.",
        alert="VpnTunnelProvisioningFailed",
        demo="new-branch",
    ),
    FindingSpec(
        "tunnel_provisioning_pending",
        WARNING,
        "tunnel",
        "The tunnel has been provisioning (ProvisioningStatus pending) for over 30 minutes.",
        "Wait for a change of tunnel options to finish; if it does not within the hour, check the reason "
        "and open an AWS support case.",
        alert="VpnTunnelProvisioningPending",
        demo="no: new-branch's tunnel 2 is pending, but for 30 minutes only in a long-running demo",
    ),
    FindingSpec(
        "endpoint_maintenance_pending",
        WARNING,
        "tunnel",
        "AWS has an endpoint replacement pending for the tunnel: it goes down while AWS replaces it, at a "
        "time AWS picks after the auto-apply date.",
        "Apply it yourself at a quiet time with the other tunnel up (ReplaceVpnTunnel with "
        "ApplyPendingMaintenance, or the console), and make sure the customer gateway re-initiates IKE "
        "afterwards (see tunnel_restart_depends_on_customer_gateway).",
        alert="VpnEndpointMaintenancePending",
        risk=True,
        demo="partner-flapping",
    ),
    FindingSpec(
        "weak_cryptography_negotiated",
        WARNING,
        "tunnel",
        "The tunnel negotiated IKEv1, SHA1 or a Diffie-Hellman group below 14 (GetActiveVpnTunnelStatus).",
        "Configure the customer gateway to propose IKEv2, SHA2-256 or stronger and DH groups 14 and above, "
        "then restrict the tunnel options to them (ModifyVpnTunnelOptions).",
        alert="VpnWeakCryptographyNegotiated",
        risk=True,
        demo="legacy-static",
    ),
    FindingSpec(
        "ike_authentication_failed",
        WARNING,
        "tunnel",
        "IKE authentication fails: the customer gateway's pre-shared key (or identity) does not match the tunnel's.",
        "Set the pre-shared key on the customer gateway to this tunnel's key (from the downloaded "
        "configuration, or Secrets Manager when PreSharedKeyArn is set), or give the tunnel a new key with "
        "ModifyVpnTunnelOptions and the device the same. The device's IKE identity must be its public IP "
        "address, the customer gateway's IP.",
        alert="VpnIkeAuthenticationFailed",
        demo="lab-down",
    ),
    FindingSpec(
        "ike_proposal_mismatch",
        WARNING,
        "tunnel",
        "IKE finds no common proposal: the customer gateway offers algorithms, DH groups or an IKE version "
        "the tunnel does not allow.",
        "Compare the device's phase 1 and phase 2 encryption, integrity, DH groups and IKE version with the "
        "tunnel options (Phase1/Phase2EncryptionAlgorithms, IntegrityAlgorithms, DHGroupNumbers, IKEVersions) "
        "and make them overlap, on the device or with ModifyVpnTunnelOptions.",
        alert="VpnIkeProposalMismatch",
        demo="lab-down",
    ),
    FindingSpec(
        "ike_peer_unresponsive",
        WARNING,
        "tunnel",
        "The customer gateway stopped answering IKE: DPD timed out, the peer was declared dead, or phase 1 "
        "never completed.",
        "Check that the device is up and that its public IP is the customer gateway's IP; allow UDP 500 and "
        "UDP 4500 (NAT-T) to and from both tunnel outside IPs on every firewall and NAT on the path. For a "
        "tunnel that drops when idle, have the device initiate, or set the tunnel's DPD timeout action to "
        "restart (ModifyVpnTunnelOptions).",
        alert="VpnIkePeerUnresponsive",
        demo="subsidiary-edge",
    ),
    FindingSpec(
        "ike_phase2_failed",
        WARNING,
        "tunnel",
        'IKE phase 1 is up but phase 2 (the IPsec SA) cannot be established: AWS logs "Phase 2 was unable to '
        'establish while keeping Phase 1".',
        "Compare the device's phase 2 (IPsec) settings with the tunnel options: encryption and integrity "
        "algorithms, the PFS DH group (Phase2DHGroupNumbers) and the lifetime; and its traffic selectors "
        "(0.0.0.0/0 <=> 0.0.0.0/0 for a route-based tunnel). Fix the device or use ModifyVpnTunnelOptions.",
        alert="VpnIkePhase2Failed",
        demo="no: no demo scenario fails phase 2 while keeping phase 1",
    ),
    FindingSpec(
        "bgp_stuck_connecting",
        WARNING,
        "tunnel",
        "BGP stays in Connect/Active while IPsec is up: the TCP session to the peer never opens.",
        "Check that the customer gateway allows TCP 179 over the tunnel, that its BGP neighbor is the AWS "
        "inside address of this tunnel, and that BGP is configured on the device at all.",
        alert="VpnBgpStuckConnecting",
        demo="branch-tokyo",
        needs_ipsec=True,
        tell_apart="BGP is configured and trying (Connect/Active) with 0.0.0.0/0 selectors, yet TCP 179 never "
        "opens: a firewall on the path or a wrong neighbor address.",
    ),
    FindingSpec(
        "bgp_hold_timer_expired",
        WARNING,
        "tunnel",
        "The BGP hold timer expired recently: keepalives stopped arriving.",
        "Check the tunnel's stability (DPD, packet loss), the customer gateway's load, and that the hold "
        "timers match (AWS uses 30 s).",
        alert="VpnBgpHoldTimerExpired",
        needs_ipsec=True,
        demo="no: only after partner-flapping's first healthy-to-down transition (150 s)",
    ),
    FindingSpec(
        "bgp_open_message_error",
        CRITICAL,
        "tunnel",
        "The BGP OPEN message was rejected (typically an ASN or peer address mismatch).",
        "Compare the AS numbers on both sides: the customer gateway's ASN must match the one the VPN "
        "connection was created with, and its neighbor must be AWS's ASN and inside address.",
        alert="VpnBgpOpenMessageError",
        demo="partner-asn",
        needs_ipsec=True,
    ),
    FindingSpec(
        "bgp_max_prefix_exceeded",
        CRITICAL,
        "tunnel",
        "The customer gateway advertised more routes than AWS accepts; the session was reset.",
        "Summarise the advertised prefixes below the quota (100 routes per BGP session for a virtual private "
        "gateway) or advertise a default route.",
        alert="VpnBgpMaxPrefixExceeded",
        demo="no: no demo scenario exceeds the route quota",
        needs_ipsec=True,
    ),
    FindingSpec(
        "route_quota_near",
        WARNING,
        "tunnel",
        "The customer gateway advertises over 80 % of the dynamic routes AWS accepts on this gateway: a few more "
        "prefixes and AWS sends a BGP maximum-prefix Cease and drops the session.",
        "Summarise the prefixes the customer gateway advertises (aggregate them, or advertise a default route) "
        "before adding any; AWS's quota cannot be raised (100 routes on a virtual private gateway, 1,000 on a "
        "transit gateway: move a connection that needs more to a transit gateway).",
        alert="VpnRouteQuotaNear",
        demo="partner-flapping",
        needs_ipsec=True,
        risk=True,
    ),
    FindingSpec(
        "bgp_routes_denied",
        WARNING,
        "tunnel",
        "AWS denied routes advertised by the customer gateway.",
        "Read the denial reason in the BGP log (for example an AS path containing AWS's own AS, or a "
        "non-connected next hop) and fix the advertisement on the customer gateway.",
        alert="VpnBgpRoutesDenied",
        demo="no: no demo scenario has routes denied",
        needs_ipsec=True,
    ),
    FindingSpec(
        "connection_idle",
        INFO,
        "connection",
        "No traffic beyond BGP keepalives has crossed the connection for days (CloudWatch TunnelDataIn and "
        "TunnelDataOut, every tunnel); AWS bills it per connection-hour all the same.",
        "Find its owner (its tags, the customer gateway) and ask whether it is still needed; delete it "
        "(DeleteVpnConnection) if not. A standby connection that only carries traffic in a failover is "
        "fine: say so in a tag.",
        alert="VpnConnectionIdle",
        demo="legacy-static",
        risk=True,
    ),
)

FINDINGS: dict[str, FindingSpec] = {spec.code: spec for spec in _SPECS}
SEVERITIES = (CRITICAL, WARNING, INFO)
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}  # worst first
_CHECKLIST_RANK = {code: rank for rank, code in enumerate(FINDINGS)}  # the catalogue's order: the article's checklist


def triage_order(code: str) -> tuple:
    """Sort key: the causes before the symptoms they explain, and configuration risks last; a tunnel's
    before the connection's, the worst first, then in the checklist's order. ``diagnose`` and the status
    page list findings so."""
    spec = FINDINGS[code]
    return spec.risk, spec.symptom, spec.scope == "connection", SEVERITY_RANK[spec.severity], _CHECKLIST_RANK[code]


def ranked(codes: Iterable[str]) -> list[str]:
    """The codes, each once, the most likely cause first (``triage_order``: the one ranking of causes, used by
    the status page's action line, ``diagnose`` and the alerts' ``cause`` annotation)."""
    return sorted(set(codes), key=triage_order)


def severity_order(code: str) -> tuple:
    """Sort key for a list of findings read by severity: critical, warning, info; within one, ``triage_order``."""
    return (SEVERITY_RANK[FINDINGS[code].severity], *triage_order(code))


def is_cause(code: str) -> bool:
    """A finding that says why something is down (neither a symptom nor a configuration risk)."""
    spec = FINDINGS[code]
    return not (spec.symptom or spec.risk)


@dataclass(frozen=True)
class NextStep:
    """What to do now about one connection: its most likely cause; the other causes found on the same tunnels
    (they share its evidence: the same tunnel down with IPsec up, say), in the order to check them; and the
    causes found elsewhere on the connection (another tunnel's), to fix after it."""

    first: str
    then: tuple[str, ...] = ()
    also: tuple[str, ...] = ()

    @property
    def competing(self) -> tuple[str, ...]:
        """The causes to tell apart, in the order to check them; empty when there is one."""
        return (self.first, *self.then) if self.then else ()


def next_step(found: Iterable[tuple[str, str]]) -> NextStep | None:
    """The connection's next step from its findings as (code, tunnel) pairs (tunnel "" for the connection's
    own), None without one: the causes that need attention (critical or warning, neither symptom nor risk)
    in ``ranked`` order; without such a cause, the worst finding alone (a symptom's remedy says where to look).
    """
    where: dict[str, set[str]] = {}
    for code, tunnel in found:
        where.setdefault(code, set()).add(tunnel)
    order = ranked(where)
    if not order:
        return None
    causes = [code for code in order if is_cause(code) and FINDINGS[code].severity != INFO]
    if not causes:
        return NextStep(min(order, key=severity_order))
    first = causes[0]

    def shares(code: str) -> bool:  # the same tunnel, or one of them the connection's own
        return bool(where[code] & where[first]) or "" in where[code] | where[first]

    return NextStep(first, tuple(c for c in causes[1:] if shares(c)), tuple(c for c in causes[1:] if not shares(c)))


def runbook_url(code: str, base: str = RUNBOOK_BASE) -> str:
    """The runbook section for a finding: that of the alert standing for it."""
    return f"{base}#{FINDINGS[code].runbook_anchor}"
