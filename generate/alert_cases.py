"""promtool unit tests for every alert, generated into ``alerts/tests/aws-vpn.test.yml``.

``python -m generate.alert_cases`` (or ``python -m generate``, with everything else) rewrites the file from
the settings it is given; ``tests/test_alerts.py`` checks it is current
and runs ``promtool test rules`` on it. Each alert gets a case that fires (after its ``for``) and one
that must stay quiet. Every expected annotation is written out here (EXPECTED, and the ``cause`` text
from the findings catalogue), never read from the rules' templates: a change of wording, a template
that loses a label (the Name tag) or a query that finds the wrong cause fails until the expected page
is changed with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from exporter import contract as m
from exporter.diagnosis.findings import FINDINGS, ranked
from exporter.report import series as history
from generate import output
from generate.alerting import (
    GENERIC_FINDINGS,
    HEADLINE_STATE,
    ROOT,
    Alert,
    Settings,
    build_alerts,
    dump_yaml,
    load_settings,
)

TEST_FILE = ROOT / "alerts" / "tests" / "aws-vpn.test.yml"
SCRAPE = {"job": "aws-vpn-exporter", "instance": "exporter:9798"}
CONN = {"account_id": "111122223333", "region": "us-east-1", "vpn_connection_id": "vpn-0a1"}
OTHER = {"account_id": "111122223333", "region": "us-east-1", "vpn_connection_id": "vpn-0b2"}
INFO_LABELS = {
    "state": "available",
    "routing": "dynamic",
    "gateway_type": "vgw",
    "gateway_id": "vgw-1",
    "customer_gateway_id": "cgw-1",
    "accelerated": "false",
}


def _selector(name: str, labels: dict) -> str:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    return name + "{" + ",".join(f"{k}={quoted(v)}" for k, v in sorted(labels.items())) + "}"


def _scraped_series(scrape: Mapping[str, str], metric: str, values: str, labels: Mapping[str, str]) -> dict:
    return {"series": _selector(metric, {**scrape, **labels}), "values": values}


def series(metric: str, values: str, /, **labels: str) -> dict:
    return _scraped_series(SCRAPE, metric, values, labels)


REPLICA = {**SCRAPE, "instance": "exporter-2:9798"}  # a second, identical exporter (high availability)


def from_both_replicas(metric: str, values: str, /, **labels: str) -> list[dict]:
    return [_scraped_series(scrape, metric, values, labels) for scrape in (SCRAPE, REPLICA)]


def info(connection: dict, name: str) -> dict:
    return series(m.CONNECTION_INFO, "1x120", **connection, name=name, **INFO_LABELS)


def tunnel(connection: dict, ip: str) -> dict:
    return {**connection, "tunnel": ip}


def _format_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


EPOCH = "1970-01-01 00:00:00 +0000 UTC"  # humanizeTimestamp of 0

EXPECTED = {  # alert -> (summary, description): the pages' wording written out, not read from the rules
    "VpnTunnelIpsecUpBgpDown": (
        "VPN tunnel has IPsec up but BGP down.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region} shows DOWN with "
        "IPSEC IS UP: IPsec is established, BGP is not. No routes are exchanged over this tunnel.",
    ),
    "VpnConnectionDown": (
        "VPN connection has no tunnel up.",
        "VPN connection {vpn_connection_id} ({name}) in {account_id}/{region} has no tunnel up (AWS's status): "
        "the site is cut off.",
    ),
    "VpnTunnelDown": (
        "VPN tunnel has IPsec down.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region} has IPsec down "
        "(status message IPSEC IS DOWN, or empty on a static connection).",
    ),
    "VpnRedundancyLost": (
        "VPN connection runs on a single tunnel.",
        "VPN connection {vpn_connection_id} ({name}) in {account_id}/{region} has only one tunnel up: one more "
        "failure takes the site down.",
    ),
    "VpnAcceptedRoutesDropped": (
        "VPN tunnel's accepted BGP routes fell sharply.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region} accepts {value} "
        "routes, less than half its maximum over the last {routes_window}, with BGP up.",
    ),
    "VpnTunnelFlapping": (
        "VPN tunnel is flapping.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region} changed state "
        "{value} times in the last {flap_window}.",
    ),
    "VpnStaticCustomerGatewayOnDynamicConnection": (
        "The customer gateway behaves like a static (policy-based) device on a dynamic (BGP) connection.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: The customer "
        "gateway behaves like a static (policy-based) device on a dynamic (BGP) connection.",
    ),
    "VpnTrafficSelectorsMismatch": (
        "The negotiated traffic selectors do not fit the connection.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: The negotiated "
        "traffic selectors do not fit the connection.",
    ),
    "VpnAcceleratedWithoutNatT": (
        "Accelerated VPN without NAT traversal.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: Accelerated VPN"
        " without NAT traversal: IPsec comes up but no traffic flows, BGP included.",
    ),
    "VpnTunnelIpsecUpNoTraffic": (
        "IPsec is up but nothing has arrived through the tunnel for a while (CloudWatch TunnelDataIn 0), though "
        "BGP alone would send some.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: IPsec is up but "
        "nothing has arrived through the tunnel for a while (CloudWatch TunnelDataIn 0), though BGP alone would "
        "send some: packets from the customer gateway do not get through.",
    ),
    "VpnTunnelLoggingDisabled": (
        "Tunnel logs are not delivered to CloudWatch Logs, so selector, NAT-T and BGP checks cannot be made.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: Tunnel logs are"
        " not delivered to CloudWatch Logs, so selector, NAT-T and BGP checks cannot be made.",
    ),
    "VpnIkeAuthenticationFailed": (
        "IKE authentication fails.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: IKE "
        "authentication fails: the customer gateway's pre-shared key (or identity) does not match the tunnel's.",
    ),
    "VpnIkeProposalMismatch": (
        "IKE finds no common proposal.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: IKE finds no "
        "common proposal: the customer gateway offers algorithms, DH groups or an IKE version the tunnel does not"
        " allow.",
    ),
    "VpnIkePeerUnresponsive": (
        "The customer gateway stopped answering IKE.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: The customer "
        "gateway stopped answering IKE: DPD timed out, the peer was declared dead, or phase 1 never completed.",
    ),
    "VpnIkePhase2Failed": (
        "IKE phase 1 is up but phase 2 (the IPsec SA) cannot be established.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: IKE phase 1 is "
        'up but phase 2 (the IPsec SA) cannot be established: AWS logs "Phase 2 was unable to establish while '
        'keeping Phase 1".',
    ),
    "VpnBgpStuckConnecting": (
        "BGP stays in Connect/Active while IPsec is up.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: BGP stays in "
        "Connect/Active while IPsec is up: the TCP session to the peer never opens.",
    ),
    "VpnBgpHoldTimerExpired": (
        "The BGP hold timer expired recently.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: The BGP hold "
        "timer expired recently: keepalives stopped arriving.",
    ),
    "VpnBgpOpenMessageError": (
        "The BGP OPEN message was rejected (typically an ASN or peer address mismatch).",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: The BGP OPEN "
        "message was rejected (typically an ASN or peer address mismatch).",
    ),
    "VpnBgpMaxPrefixExceeded": (
        "The customer gateway advertised more routes than AWS accepts; the session was reset.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: The customer "
        "gateway advertised more routes than AWS accepts; the session was reset.",
    ),
    "VpnRouteQuotaNear": (
        "The customer gateway advertises over 80 % of the dynamic routes AWS accepts on this gateway.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: The customer "
        "gateway advertises over 80 % of the dynamic routes AWS accepts on this gateway: a few more prefixes and "
        "AWS sends a BGP maximum-prefix Cease and drops the session.",
    ),
    "VpnBgpRoutesDenied": (
        "AWS denied routes advertised by the customer gateway.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: AWS denied "
        "routes advertised by the customer gateway.",
    ),
    "VpnTunnelRestartDependsOnCustomerGateway": (
        "AWS will not bring this tunnel back by itself.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: AWS will not "
        "bring this tunnel back by itself: after an AWS tunnel endpoint replacement or a dead peer detection "
        "timeout it stays down until the customer gateway initiates IKE.",
    ),
    "VpnWeakCryptographyAllowed": (
        "The tunnel allows IKEv1, SHA1 or Diffie-Hellman groups below 14.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: The tunnel "
        "allows IKEv1, SHA1 or Diffie-Hellman groups below 14: AWS picks from the lowest allowed value the "
        "customer gateway proposes, so a weak one can be negotiated.",
    ),
    "VpnTunnelsConfiguredDifferently": (
        "The connection's tunnels allow different IKE versions, algorithms or DH groups.",
        "VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: The connection's tunnels allow "
        "different IKE versions, algorithms or DH groups: a customer gateway set up for one may fail to bring "
        "up the other when it has to fail over.",
    ),
    "VpnGatewayNotAssociated": (
        "The VPN connection is not associated with its gateway (GatewayAssociationState), so no traffic reaches "
        "the VPC or transit gateway through it.",
        "VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: The VPN connection is not "
        "associated with its gateway (GatewayAssociationState), so no traffic reaches the VPC or transit gateway "
        "through it.",
    ),
    "VpnStaticRouteNotAvailable": (
        "A static route of the connection is not available (pending or deleting), so traffic for it does not use "
        "the VPN.",
        "VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: A static route of the connection "
        "is not available (pending or deleting), so traffic for it does not use the VPN.",
    ),
    "VpnConnectionIdle": (
        "No traffic beyond BGP keepalives has crossed the connection for days (CloudWatch TunnelDataIn and "
        "TunnelDataOut, every tunnel); AWS bills it per connection-hour all the same.",
        "VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: No traffic beyond BGP keepalives "
        "has crossed the connection for days (CloudWatch TunnelDataIn and TunnelDataOut, every tunnel); AWS "
        "bills it per connection-hour all the same.",
    ),
    "VpnTunnelProvisioningFailed": (
        "AWS could not provision the tunnel (GetActiveVpnTunnelStatus ProvisioningStatus failed).",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: AWS could not "
        "provision the tunnel (GetActiveVpnTunnelStatus ProvisioningStatus failed): it stays DOWN whatever the "
        "customer gateway does.",
    ),
    "VpnTunnelProvisioningPending": (
        "The tunnel has been provisioning (ProvisioningStatus pending) for over 30 minutes.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: The tunnel has "
        "been provisioning (ProvisioningStatus pending) for over 30 minutes.",
    ),
    "VpnEndpointMaintenancePending": (
        "AWS has an endpoint replacement pending for the tunnel.",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: AWS has an "
        "endpoint replacement pending for the tunnel: it goes down while AWS replaces it, at a time AWS picks "
        "after the auto-apply date.",
    ),
    "VpnWeakCryptographyNegotiated": (
        "The tunnel negotiated IKEv1, SHA1 or a Diffie-Hellman group below 14 (GetActiveVpnTunnelStatus).",
        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: The tunnel "
        "negotiated IKEv1, SHA1 or a Diffie-Hellman group below 14 (GetActiveVpnTunnelStatus).",
    ),
    "VpnExporterCollectionFailing": (
        "VPN exporter cannot collect from a source.",
        "The {source} collection for {account_id}/{region} has failed for {collection_failing_for}; its metrics "
        "are the last values read.",
    ),
    "VpnExporterDiscoveryFailing": (
        "VPN exporter cannot discover an organization's accounts or an account's regions.",
        "Organisation discovery has failed for {account_id} for {collection_failing_for}; the accounts and regions "
        "it last found are still polled.",
    ),
    "VpnExporterSourceStale": (
        "VPN exporter data for a source is stale.",
        "The {source} data for {account_id}/{region} has not been refreshed since {humanized} (the exporter's clock).",
    ),
    "VpnExporterSnapshotStale": (
        "VPN exporter serves an old snapshot.",
        "{instance} has not completed a poll for {humanized}.",
    ),
    "VpnExporterLogIngestionLagging": (
        "VPN exporter's log reading is behind.",
        "Log group {log_group} in {account_id}/{region} is read {humanized} behind.",
    ),
    "VpnExporterShardMissing": (
        "A shard of the VPN exporter is missing.",
        "Only 1 of the configured shards report: the accounts and regions of the missing shard are not monitored.",
    ),
    "VpnExporterAbsent": (
        "VPN exporter is down or not scraped.",
        "No healthy target for {exporter_job}: VPN tunnels are not monitored.",
    ),
}


def catalogue() -> list[dict]:
    """The findings catalogue as the exporter exports it (aws_vpn_finding_info)."""
    return [
        series(
            m.FINDING_INFO,
            "1x120",
            finding=spec.code,
            severity=spec.severity,
            alert=spec.alert,
            summary=spec.summary,
            remedy=spec.remedy,
        )
        for spec in FINDINGS.values()
    ]


GATEWAY = {"customer_gateway_id": "cgw-1", "ip_address": "203.0.113.10", "bgp_asn": "65010"}


def gateway(connection: dict) -> dict:
    return series(
        m.CUSTOMER_GATEWAY_INFO,
        "1x120",
        account_id=connection["account_id"],
        region=connection["region"],
        name="branch-router",
        **GATEWAY,
    )


# What a page shows of a label value: line breaks, escapes and bidirectional overrides as U+FFFD, written here
# with Python's own pattern so promtool checks the rules' Go pattern against it.
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def shown(value: str) -> str:
    return _UNSHOWABLE.sub("\ufffd", value)


@dataclass(frozen=True)
class Pages:
    """What the pages must say under the operators' settings (the runbook links, the wording's settings)."""

    settings: Settings
    alerts: Mapping[str, Alert]

    @classmethod
    def of(cls, settings: Settings) -> Pages:
        return cls(settings, {alert.name: alert for alert in build_alerts(settings)})

    def cause(
        self,
        vpn_connection_id: str,
        findings: Sequence[tuple[str, str]] = (),
        scope: str = "tunnel",
        selectors: tuple[str, str] | None = None,
        with_gateway: bool = False,
        maintenance: tuple[str, str] | None = None,
    ) -> str:
        """What the page must say: each finding as a line, most likely first (``ranked``), naming its tunnels (connection scope;
        a cause on two tunnels once), with its fix and runbook section; else "no specific cause"; then the
        customer gateway."""
        base = self.settings["runbook_base"]
        tunnels: dict[str, list[str]] = {}
        for tunnel_ip, code in findings:
            tunnels.setdefault(code, []).append(tunnel_ip)
        lines = []
        for code in ranked(tunnels):
            spec, named = FINDINGS[code], sorted(ip for ip in tunnels[code] if ip)
            where = (
                f"Tunnel{'s' if len(named) > 1 else ''} {', '.join(map(shown, named))}: "
                if scope == "connection" and named
                else ""
            )
            negotiated = (
                f" Negotiated: AWS side {selectors[0]}, customer gateway side {selectors[1]}."
                if code == "traffic_selectors_mismatch" and selectors
                else ""
            )
            lines.append(f"{where}{spec.summary}{negotiated} Fix: {spec.remedy} Runbook: {base}#{spec.alert.lower()}")
        if not lines:
            lines.append(
                f"No specific cause diagnosed yet: run `aws-vpn-exporter diagnose --vpn-connection-id "
                f"{vpn_connection_id}` and follow the checklist: {base}#checklist"
            )
        if maintenance:
            lines.append(
                f"AWS replaced the endpoint of tunnel {shown(maintenance[0])} at {maintenance[1]} (maintenance): "
                "it comes back once AWS or the customer gateway initiates IKE."
            )
        if with_gateway:
            lines.append(
                f"Customer gateway {GATEWAY['customer_gateway_id']}: IP {GATEWAY['ip_address']}, BGP ASN "
                f"{GATEWAY['bgp_asn']}."
            )
        return "\n".join(lines)

    def expect(
        self,
        alert_name: str,
        at: str,
        firing: list[dict],
        value: float = 1,
        humanized: str = "",
        causes: str | None = None,
    ) -> dict:
        """An alert_rule_test entry: ``firing`` is the label sets expected (empty: must stay quiet). Every
        annotation is stated here: the wording from EXPECTED with the labels filled in, the runbook link, a
        cause alert's fix from the catalogue, and ``causes`` (by default that of a tunnel with no diagnosis)."""
        alert = self.alerts[alert_name]
        summary, description = EXPECTED[alert_name]
        expected = []
        for labels in firing:
            labels = {**labels, "severity": alert.severity}
            annotations = {
                "summary": summary,
                "description": description.format(
                    **{k: shown(v) for k, v in labels.items()},
                    value=_format_value(value),
                    humanized=humanized,
                    **{k: v for k, v in self.settings.items() if isinstance(v, str)},
                ),
                "runbook_url": f"{self.settings['runbook_base']}#{alert_name.lower()}",
            }
            if alert.cause_scope:
                annotations["cause"] = causes if causes is not None else self.cause(labels["vpn_connection_id"])
            elif alert.finding:
                annotations["fix"] = FINDINGS[alert.finding].remedy
            expected.append({"exp_labels": {"alertname": alert_name, **labels}, "exp_annotations": annotations})
        return {"eval_time": at, "alertname": alert_name, "exp_alerts": expected}


def _named(labels: dict, name: str) -> dict:
    return {**labels, "name": name}


def _scraped(labels: dict) -> dict:
    return {**SCRAPE, **labels}


def cases(pages: Pages) -> list[dict]:
    expect = pages.expect
    a, b, c = tunnel(CONN, "198.51.100.1"), tunnel(CONN, "198.51.100.2"), tunnel(OTHER, "198.51.100.3")
    headline = _scraped(_named(a, "branch"))
    tests = [
        {
            "name": "IPsec up, BGP down fires after 3m; a static tunnel and an IPsec-down tunnel stay quiet",
            "input_series": [
                info(CONN, "branch"),
                info(OTHER, "static-site"),
                series(m.TUNNEL_IPSEC_UP, "1x20", **a),
                series(m.TUNNEL_BGP_UP, "0x20", **a),
                series(m.TUNNEL_IPSEC_UP, "0x20", **b),
                series(m.TUNNEL_BGP_UP, "0x20", **b),
                series(m.TUNNEL_IPSEC_UP, "1x20", **c),
            ],  # static: no BGP series at all
            "alert_rule_test": [
                expect("VpnTunnelIpsecUpBgpDown", "2m", []),
                expect("VpnTunnelIpsecUpBgpDown", "4m", [headline]),
            ],
        },
        {
            "name": "IPsec up and BGP up stays quiet",
            "input_series": [
                info(CONN, "branch"),
                series(m.TUNNEL_IPSEC_UP, "1x20", **a),
                series(m.TUNNEL_BGP_UP, "1x20", **a),
            ],
            "alert_rule_test": [expect("VpnTunnelIpsecUpBgpDown", "10m", [])],
        },
        {
            "name": "Connection down when no tunnel is up; tunnel down per tunnel with IPsec down",
            "input_series": [
                info(CONN, "lab"),
                info(OTHER, "hq"),
                series(m.TUNNEL_UP, "0x20", **a),
                series(m.TUNNEL_UP, "0x20", **b),
                series(m.TUNNEL_UP, "1x20", **c),
                series(m.TUNNEL_IPSEC_UP, "0x20", **a),
                series(m.TUNNEL_IPSEC_UP, "0x20", **b),
                series(m.TUNNEL_IPSEC_UP, "1x20", **c),
            ],
            "alert_rule_test": [
                expect("VpnConnectionDown", "2m", []),
                expect("VpnConnectionDown", "4m", [_named(CONN, "lab")]),
                expect("VpnTunnelDown", "4m", []),
                expect("VpnTunnelDown", "6m", [_scraped(_named(a, "lab")), _scraped(_named(b, "lab"))]),
            ],
        },
        {
            "name": "Redundancy lost with one of two tunnels up; quiet with both up or a single-tunnel connection",
            "input_series": [
                info(CONN, "edge"),
                info(OTHER, "solo"),
                series(m.TUNNEL_UP, "1x20", **a),
                series(m.TUNNEL_UP, "0x20", **b),
                series(m.TUNNEL_UP, "1x20", **c),
            ],
            "alert_rule_test": [
                expect("VpnRedundancyLost", "9m", []),
                expect("VpnRedundancyLost", "11m", [_named(CONN, "edge")]),
            ],
        },
        {
            "name": "Redundancy intact",
            "input_series": [info(CONN, "edge"), series(m.TUNNEL_UP, "1x20", **a), series(m.TUNNEL_UP, "1x20", **b)],
            "alert_rule_test": [expect("VpnRedundancyLost", "15m", [])],
        },
        {
            "name": "Accepted routes fall by more than half with BGP up; quiet when steady or with BGP down",
            "input_series": [
                info(CONN, "hq"),
                info(OTHER, "dc"),
                series(m.TUNNEL_ACCEPTED_ROUTES, "10x30 2x30", **a),
                series(m.TUNNEL_BGP_UP, "1x60", **a),
                series(m.TUNNEL_ACCEPTED_ROUTES, "10x60", **b),
                series(m.TUNNEL_BGP_UP, "1x60", **b),
                series(m.TUNNEL_ACCEPTED_ROUTES, "10x30 0x30", **c),
                series(m.TUNNEL_BGP_UP, "1x30 0x30", **c),
            ],
            "alert_rule_test": [
                expect("VpnAcceptedRoutesDropped", "35m", []),
                expect("VpnAcceptedRoutesDropped", "45m", [_scraped(_named(a, "hq"))], value=2),
            ],
        },
        {
            "name": "A tunnel whose status changes every minute flaps (the exact counter); a steady one does not",
            "input_series": [
                info(CONN, "partner"),
                series(history.STATE_CHANGES, "0+1x60", **a),
                series(history.STATE_CHANGES, "5x60", **b),
            ],
            "alert_rule_test": [
                expect("VpnTunnelFlapping", "3m", []),
                expect("VpnTunnelFlapping", "30m", [_named(a, "partner")], value=30),
            ],
        },
        {
            "name": "Two state changes between two scrapes count twice: four changes in two scrapes flap",
            "input_series": [
                info(CONN, "partner"),
                # LastStatusChange's timestamp changed twice here; the counter says four changes
                *from_both_replicas(history.STATE_CHANGES, "0 2 4x60", **a),
            ],
            "alert_rule_test": [
                expect("VpnTunnelFlapping", "1m", []),
                expect("VpnTunnelFlapping", "5m", [_named(a, "partner")], value=4),
            ],
        },
        {
            # an account whose role cannot be assumed (or without credentials) is the sts source, in place of ec2
            "name": "Collection failing for one source only, and for an account whose role cannot be assumed",
            "input_series": [
                series(m.COLLECTION_SUCCESS, "0x20", account_id="111122223333", region="eu-west-1", source="logs"),
                series(m.COLLECTION_SUCCESS, "1x20", account_id="111122223333", region="us-east-1", source="ec2"),
                series(m.COLLECTION_SUCCESS, "0x20", account_id="444455556666", region="us-east-1", source="sts"),
            ],
            "alert_rule_test": [
                expect("VpnExporterCollectionFailing", "9m", []),
                expect(
                    "VpnExporterCollectionFailing",
                    "11m",
                    [
                        _scraped({"account_id": "111122223333", "region": "eu-west-1", "source": "logs"}),
                        _scraped({"account_id": "444455556666", "region": "us-east-1", "source": "sts"}),
                    ],
                    value=0,
                ),
            ],
        },
        {
            "name": "Discovery fails to list the accounts, or one account refuses; the rest is quiet",
            "input_series": [
                series(m.DISCOVERY_SUCCESS, "0x20", account_id="999999999999"),
                series(m.DISCOVERY_ACCOUNT_SUCCESS, "0x20", account_id="111111111111"),
                series(m.DISCOVERY_ACCOUNT_SUCCESS, "1x20", account_id="222222222222"),
            ],
            "alert_rule_test": [
                expect("VpnExporterDiscoveryFailing", "9m", []),
                expect(
                    "VpnExporterDiscoveryFailing",
                    "11m",
                    [_scraped({"account_id": "111111111111"}), _scraped({"account_id": "999999999999"})],
                    value=0,
                ),
            ],
        },
        {
            "name": "A source's data goes stale; a fresh one does not",
            "input_series": [
                series(m.COLLECTION_LAST_SUCCESS, "0x30", account_id="1", region="eu-west-1", source="ec2"),
                series(m.COLLECTION_LAST_SUCCESS, "0+60x30", account_id="1", region="us-east-1", source="ec2"),
            ],
            "alert_rule_test": [
                expect("VpnExporterSourceStale", "10m", []),
                expect(
                    "VpnExporterSourceStale",
                    "20m",
                    [_scraped({"account_id": "1", "region": "eu-west-1", "source": "ec2"})],
                    humanized=EPOCH,
                ),
            ],
        },
        *[
            {
                "name": f"The exporter's clock steps 2 h {direction}, then its polls stall",
                "input_series": [
                    series(
                        m.COLLECTION_LAST_SUCCESS,
                        f"0+60x5 {stepped}x25",
                        account_id="1",
                        region="eu-west-1",
                        source="ec2",
                    )
                ],
                "alert_rule_test": [
                    expect("VpnExporterSourceStale", "19m", []),
                    expect(
                        "VpnExporterSourceStale",
                        "22m",
                        [_scraped({"account_id": "1", "region": "eu-west-1", "source": "ec2"})],
                        humanized=since,
                    ),
                ],
            }
            for direction, stepped, since in (
                ("forward", 7500, "1970-01-01 02:05:00 +0000 UTC"),
                ("back", -6900, "1969-12-31 22:05:00 +0000 UTC"),
            )
        ],
        {
            "name": "The exporter's clock steps 2 h back and its polls go on: not stale",
            "input_series": [
                series(
                    m.COLLECTION_LAST_SUCCESS, "0+60x5 -6900+60x25", account_id="1", region="eu-west-1", source="ec2"
                )
            ],
            "alert_rule_test": [
                expect("VpnExporterSourceStale", "22m", []),
                expect("VpnExporterSourceStale", "30m", []),
            ],
        },
        {
            "name": "The served snapshot is old",
            "input_series": [series(m.SNAPSHOT_AGE, "400x20")],
            "alert_rule_test": [
                expect("VpnExporterSnapshotStale", "4m", []),
                expect("VpnExporterSnapshotStale", "6m", [_scraped({})], humanized="6m 40s"),
            ],
        },
        {
            "name": "Polls stall (the age grows on the exporter's monotonic clock, whatever its wall clock does)",
            "input_series": [series(m.SNAPSHOT_AGE, "0+60x20")],
            "alert_rule_test": [
                expect("VpnExporterSnapshotStale", "9m", []),
                expect("VpnExporterSnapshotStale", "11m", [_scraped({})], humanized="11m 0s"),
            ],
        },
        {
            "name": "A fresh snapshot is fine",
            "input_series": [series(m.SNAPSHOT_AGE, "10x20")],
            "alert_rule_test": [expect("VpnExporterSnapshotStale", "15m", [])],
        },
        {
            "name": "Log reading lags behind for one group",
            "input_series": [
                series(m.LOG_INGESTION_LAG, "1000x30", account_id="1", region="us-east-1", log_group="/vpn/ike"),
                series(m.LOG_INGESTION_LAG, "30x30", account_id="1", region="us-east-1", log_group="/vpn/bgp"),
            ],
            "alert_rule_test": [
                expect("VpnExporterLogIngestionLagging", "14m", []),
                expect(
                    "VpnExporterLogIngestionLagging",
                    "16m",
                    [_scraped({"account_id": "1", "region": "us-east-1", "log_group": "/vpn/ike"})],
                    humanized="16m 40s",
                ),
            ],
        },
        {
            "name": "One of two shards stops reporting",
            "input_series": [
                series(m.SHARDS, "2x20", job="aws-vpn-exporter", instance="a:9798", shard_index="0"),
                series(m.SHARDS, "2x3", job="aws-vpn-exporter", instance="b:9798", shard_index="1"),
            ],
            "alert_rule_test": [
                expect("VpnExporterShardMissing", "2m", []),
                expect("VpnExporterShardMissing", "15m", [{}]),
            ],
        },
        {
            "name": "Two replicas of each of two shards: a replica down leaves its shard covered",
            "input_series": [
                series(m.SHARDS, "2x20", job="aws-vpn-exporter", instance=f"{i}:9798", shard_index=str(i // 2))
                for i in range(3)
            ]
            + [series(m.SHARDS, "2x3", job="aws-vpn-exporter", instance="3:9798", shard_index="1")],
            "alert_rule_test": [expect("VpnExporterShardMissing", "15m", [])],
        },
        {
            "name": "The exporter is absent",
            "input_series": [series("up", "0x10")],
            "alert_rule_test": [expect("VpnExporterAbsent", "4m", []), expect("VpnExporterAbsent", "6m", [{}])],
        },
        {
            "name": "The exporter is up",
            "input_series": [series("up", "1x10")],
            "alert_rule_test": [expect("VpnExporterAbsent", "8m", [])],
        },
    ]
    tests += cause_cases(a, b, pages)
    tests += history_cases(a, b)
    for alert in pages.alerts.values():
        if alert.finding is None or alert.cause_scope:
            continue
        other_code = "redundancy_lost" if alert.finding != "redundancy_lost" else "connection_down"
        finding = {**a, "finding": alert.finding, "severity": alert.severity}
        tests.append(
            {
                "name": f"{alert.name} fires on its finding after its for; another finding does not trigger it",
                "input_series": [
                    info(CONN, "site"),
                    series(m.TUNNEL_FINDING, "1x20", **finding),
                    series(m.TUNNEL_FINDING, "1x20", **{**b, "finding": other_code, "severity": "warning"}),
                ],
                "alert_rule_test": [
                    expect(alert.name, "9m", []),
                    expect(alert.name, "11m", [_scraped(_named(finding, "site"))]),
                ],
            }
        )
    return tests


def cause_cases(a: dict, b: dict, pages: Pages) -> list[dict]:
    """The page names the cause: the headline alert with each specific cause, and with none; connection down
    with a cause on each tunnel; narrow selectors named."""
    expect, cause = pages.expect, pages.cause
    vpn, headline = a["vpn_connection_id"], _scraped(_named(a, "branch"))
    headline_inputs = [
        info(CONN, "branch"),
        gateway(CONN),
        *catalogue(),
        series(m.TUNNEL_IPSEC_UP, "1x20", **a),
        series(m.TUNNEL_BGP_UP, "0x20", **a),
    ]
    tests = []
    for code, spec in FINDINGS.items():
        if spec.scope != "tunnel" or code in GENERIC_FINDINGS:
            continue
        found = {**a, "finding": code, "severity": spec.severity}
        tests.append(
            {
                "name": f"The headline page names {code} with its fix and runbook, and the customer gateway",
                "input_series": [
                    *headline_inputs,
                    series(m.TUNNEL_FINDING, "1x20", **found),
                    series(m.TUNNEL_FINDING, "1x20", **{**a, "finding": "ipsec_up_bgp_down", "severity": "critical"}),
                    series(
                        m.TUNNEL_FINDING, "1x20", **{**b, "finding": "bgp_hold_timer_expired", "severity": "warning"}
                    ),
                ],  # the other tunnel's
                "alert_rule_test": [
                    expect(
                        "VpnTunnelIpsecUpBgpDown",
                        "4m",
                        [headline],
                        causes=cause(vpn, [(a["tunnel"], code)], with_gateway=True),
                    )
                ],
            }
        )
    tests += [
        {
            "name": "The headline page says when no cause is diagnosed, and links the checklist",
            "input_series": headline_inputs,
            "alert_rule_test": [
                expect("VpnTunnelIpsecUpBgpDown", "4m", [headline], causes=cause(vpn, with_gateway=True))
            ],
        },
        {
            "name": "Right after an AWS endpoint replacement the page says so (for this tunnel, not another)",
            "input_series": [
                *headline_inputs,
                series(m.TUNNEL_LAST_MAINTENANCE, "100x20", **a),
                series(m.TUNNEL_LAST_MAINTENANCE, "100x20", **{**a, "tunnel": "198.51.100.9"}),
            ],
            "alert_rule_test": [
                expect(
                    "VpnTunnelIpsecUpBgpDown",
                    "4m",
                    [headline],
                    causes=cause(vpn, with_gateway=True, maintenance=(a["tunnel"], "1970-01-01 00:01:40 +0000 UTC")),
                )
            ],
        },
        {
            "name": "Narrow traffic selectors: the page names the negotiated selectors",
            "input_series": [
                *headline_inputs,
                series(m.TUNNEL_FINDING, "1x20", **a, finding="traffic_selectors_mismatch", severity="warning"),
                series(m.TUNNEL_SELECTOR_INFO, "1x20", **a, aws_side="10.0.0.0/16", cgw_side="192.168.1.0/24"),
            ],
            "alert_rule_test": [
                expect(
                    "VpnTunnelIpsecUpBgpDown",
                    "4m",
                    [headline],
                    causes=cause(
                        vpn,
                        [(a["tunnel"], "traffic_selectors_mismatch")],
                        selectors=("10.0.0.0/16", "192.168.1.0/24"),
                        with_gateway=True,
                    ),
                )
            ],
        },
        {
            "name": "Three causes share the evidence (branch-tokyo): the page lists them most likely first, in the "
            "status page's and diagnose's order (findings.ranked), not by code",
            "input_series": [
                *headline_inputs,
                *(
                    series(m.TUNNEL_FINDING, "1x20", **a, finding=code, severity="warning")
                    for code in (
                        "bgp_stuck_connecting",
                        "traffic_selectors_mismatch",
                        "static_cgw_on_dynamic_connection",
                    )
                ),
                series(m.TUNNEL_SELECTOR_INFO, "1x20", **a, aws_side="10.0.0.0/16", cgw_side="192.168.1.0/24"),
            ],
            "alert_rule_test": [
                expect(
                    "VpnTunnelIpsecUpBgpDown",
                    "4m",
                    [headline],
                    causes=cause(
                        vpn,
                        [
                            (a["tunnel"], code)
                            for code in (
                                "bgp_stuck_connecting",
                                "traffic_selectors_mismatch",
                                "static_cgw_on_dynamic_connection",
                            )
                        ],
                        selectors=("10.0.0.0/16", "192.168.1.0/24"),
                        with_gateway=True,
                    ),
                )
            ],
        },
        {
            "name": "Connection down: one page naming each tunnel's cause (a wrong key, a silent peer)",
            "input_series": [
                info(CONN, "branch"),
                gateway(CONN),
                *catalogue(),
                series(m.TUNNEL_UP, "0x20", **a),
                series(m.TUNNEL_UP, "0x20", **b),
                series(m.TUNNEL_FINDING, "1x20", **a, finding="ike_authentication_failed", severity="warning"),
                series(m.TUNNEL_FINDING, "1x20", **b, finding="ike_peer_unresponsive", severity="warning"),
                series(m.TUNNEL_FINDING, "1x20", **CONN, tunnel="", finding="connection_down", severity="critical"),
            ],
            "alert_rule_test": [
                expect(
                    "VpnConnectionDown",
                    "4m",
                    [_named(CONN, "branch")],
                    causes=cause(
                        vpn,
                        [(a["tunnel"], "ike_authentication_failed"), (b["tunnel"], "ike_peer_unresponsive")],
                        scope="connection",
                        with_gateway=True,
                    ),
                )
            ],
        },
        {
            "name": "Connection down with one cause on both tunnels: said once, naming both, with the selectors",
            "input_series": [
                info(CONN, "branch"),
                gateway(CONN),
                *catalogue(),
                series(m.TUNNEL_UP, "0x20", **a),
                series(m.TUNNEL_UP, "0x20", **b),
                *(
                    series(m.TUNNEL_FINDING, "1x20", **t, finding="traffic_selectors_mismatch", severity="warning")
                    for t in (a, b)
                ),
                *(
                    series(m.TUNNEL_SELECTOR_INFO, "1x20", **t, aws_side="172.31.0.0/16", cgw_side="10.0.0.0/16")
                    for t in (a, b)
                ),
            ],
            "alert_rule_test": [
                expect(
                    "VpnConnectionDown",
                    "4m",
                    [_named(CONN, "branch")],
                    causes=cause(
                        vpn,
                        [(a["tunnel"], "traffic_selectors_mismatch"), (b["tunnel"], "traffic_selectors_mismatch")],
                        scope="connection",
                        selectors=("172.31.0.0/16", "10.0.0.0/16"),
                        with_gateway=True,
                    ),
                )
            ],
        },
        *(hostile_cause_case(ip, pages) for ip in HOSTILE_IPS),
        {
            "name": "Two identical replicas (high availability): every join still evaluates, each replica's page "
            "fires (one notification: Alertmanager groups them), each tunnel counts once for redundancy",
            "input_series": [
                *from_both_replicas(m.CONNECTION_INFO, "1x20", **CONN, name="branch", **INFO_LABELS),
                *from_both_replicas(m.TUNNEL_IPSEC_UP, "1x20", **a),
                *from_both_replicas(m.TUNNEL_BGP_UP, "0x20", **a),
                *from_both_replicas(m.TUNNEL_UP, "0x20", **a),
                *from_both_replicas(m.TUNNEL_UP, "1x20", **b),
            ],
            "alert_rule_test": [
                expect("VpnTunnelIpsecUpBgpDown", "4m", [headline, {**headline, **REPLICA}]),
                expect("VpnRedundancyLost", "11m", [_named(CONN, "branch")]),
            ],
            "promql_expr_test": [
                {
                    "expr": HEADLINE_STATE,
                    "eval_time": "1m",
                    "exp_samples": [
                        {"labels": _selector(HEADLINE_STATE, {**scrape, **a}), "value": 1}
                        for scrape in (SCRAPE, REPLICA)
                    ],
                }
            ],
        },
    ]
    return tests


def _sample(name: str, labels: dict, value: float) -> dict:
    return {"labels": _selector(name, labels), "value": value}


def history_cases(a: dict, b: dict) -> list[dict]:
    """The recording rules against hand-counted figures: exact increases (a step right after a window's first
    sample, a young series, a reset, two replicas), by cause, per connection, the daily availability and the SLA
    month to date. promtool's clock starts at 1970-01-01 00:00 UTC, so 1440m and 2880m are midnights."""
    maintenance, other = {"cause": "maintenance"}, {"cause": "other"}
    flaps_1h, down_1h = history.recorded(history.STATE_CHANGES, "1h"), history.recorded(history.DOWN_SECONDS, "1h")
    unavailable_1d = history.recorded(history.UNAVAILABLE_SECONDS, "1d")
    observed_1d = history.recorded(history.OBSERVED_SECONDS, "1d")
    return [
        {
            "name": "Hourly increases are exact: per tunnel, by cause, per connection; young and reset series count",
            "input_series": [
                # 2 changes at 30m, 3 more at 90m: 3 in the hour before 100m (increase() would extrapolate)
                *from_both_replicas(history.STATE_CHANGES, "0x29 2x59 5x20", **a),
                series(history.STATE_CHANGES, "_x69 0 1 2 3x30", **b),  # appears at 70m: 3 changes since
                # down 10 minutes (maintenance) from 45m, and 2 minutes for another cause from 95m
                series(history.DOWN_SECONDS, "0x45 60+60x9 600x55", **a, **maintenance),
                series(history.DOWN_SECONDS, "0x95 60 120x15", **a, **other),
                # a restarted exporter that lost its counter: 4 before the reset, 2 after (above the value an hour ago)
                series(history.STATE_CHANGES, "1x50 5x20 0x20 2x20", **tunnel(OTHER, "198.51.100.3")),
            ],
            "promql_expr_test": [
                {
                    "expr": flaps_1h,
                    "eval_time": "100m",
                    "exp_samples": [
                        _sample(flaps_1h, a, 3),
                        _sample(flaps_1h, b, 3),
                        _sample(flaps_1h, tunnel(OTHER, "198.51.100.3"), 6),
                    ],
                },
                {
                    "expr": down_1h,
                    "eval_time": "100m",
                    "exp_samples": [_sample(down_1h, {**a, **maintenance}, 600), _sample(down_1h, {**a, **other}, 120)],
                },
                {
                    "expr": history.CONNECTION_FLAPS["1h"],
                    "eval_time": "100m",
                    "exp_samples": [
                        _sample(history.CONNECTION_FLAPS["1h"], CONN, 6),
                        _sample(history.CONNECTION_FLAPS["1h"], OTHER, 6),
                    ],
                },
            ],
        },
        {
            "name": "Daily availability and the SLA month to date: 90 minutes unavailable on the second day",
            "input_series": [
                series(history.OBSERVED_SECONDS, "0+60x2900", **CONN),
                series(history.UNAVAILABLE_SECONDS, "0x1499 60+60x89 5400x1310", **CONN, **other),
                series(history.UNAVAILABLE_SECONDS, "0x2900", **CONN, **maintenance),
            ],
            "promql_expr_test": [
                {
                    "expr": unavailable_1d,
                    "eval_time": "2880m",
                    "exp_samples": [
                        _sample(unavailable_1d, {**CONN, **maintenance}, 0),
                        _sample(unavailable_1d, {**CONN, **other}, 5400),
                    ],
                },
                {
                    "expr": observed_1d,
                    "eval_time": "2880m",
                    "exp_samples": [_sample(observed_1d, CONN, 86400)],
                },
                {
                    "expr": history.AVAILABILITY_1D,
                    "eval_time": "1440m",
                    "exp_samples": [_sample(history.AVAILABILITY_1D, CONN, 1)],
                },
                {
                    "expr": history.AVAILABILITY_1D,
                    "eval_time": "2880m",
                    "exp_samples": [_sample(history.AVAILABILITY_1D, CONN, 1 - 5400 / 86400)],
                },
                # on 3 January: the 1st and the 2nd (172,800 s observed, 5,400 unavailable); the ratio is a group
                # after the sums, so it reads them one evaluation later
                {
                    "expr": history.SLA_UPTIME_MONTH_TO_DATE,
                    "eval_time": "2881m",
                    "exp_samples": [_sample(history.SLA_UPTIME_MONTH_TO_DATE, CONN, 1 - 5400 / 172800)],
                },
                {
                    "expr": history.UNAVAILABLE_MONTH_TO_DATE,
                    "eval_time": "2890m",
                    "exp_samples": [_sample(history.UNAVAILABLE_MONTH_TO_DATE, CONN, 5400)],
                },
                # on 2 January: the 1st only
                {
                    "expr": history.SLA_UPTIME_MONTH_TO_DATE,
                    "eval_time": "2000m",
                    "exp_samples": [_sample(history.SLA_UPTIME_MONTH_TO_DATE, CONN, 1)],
                },
            ],
        },
    ]


# An outside IP is AWS's text: one that closes the matcher's string and adds "or vector(1)" (it forged a
# maintenance line) must match itself only, never become PromQL; nor may a backslash unescape a quote.
HOSTILE_IPS = ('"} or vector(1) or x{a="', '198.51.100.1\\"} or vector(1) or x{a="\n')
HOSTILE_NAME = "branch\nRESOLVED: all tunnels up\u202e"  # a Name tag forging a line and reversing the rest


def hostile_cause_case(ip: str, pages: Pages) -> dict:
    """The cause annotation's queries take the tunnel's label as a string literal, whatever it holds."""
    expect, cause = pages.expect, pages.cause
    hostile = tunnel(CONN, ip)
    page = _scraped(_named(hostile, HOSTILE_NAME))
    return {
        "name": "A hostile outside IP is matched as itself: the page names its own causes, none injected, and a "
        "Name tag's or IP's line break or escape is shown as U+FFFD, never a line of its own",
        "input_series": [
            info(CONN, HOSTILE_NAME),
            gateway(CONN),
            *catalogue(),
            series(m.TUNNEL_IPSEC_UP, "1x20", **hostile),
            series(m.TUNNEL_BGP_UP, "0x20", **hostile),
            series(m.TUNNEL_FINDING, "1x20", **hostile, finding="traffic_selectors_mismatch", severity="warning"),
            series(m.TUNNEL_SELECTOR_INFO, "1x20", **hostile, aws_side="10.0.0.0/16", cgw_side="192.168.1.0/24"),
            series(m.TUNNEL_LAST_MAINTENANCE, "100x20", **hostile),
            # what an injected "or" would have brought in: another tunnel's cause and maintenance
            series(
                m.TUNNEL_FINDING,
                "1x20",
                **tunnel(CONN, "198.51.100.2"),
                finding="ike_authentication_failed",
                severity="warning",
            ),
            series(m.TUNNEL_LAST_MAINTENANCE, "200x20", **tunnel(CONN, "198.51.100.2")),
        ],
        "alert_rule_test": [
            expect(
                "VpnTunnelIpsecUpBgpDown",
                "4m",
                [page],
                causes=cause(
                    CONN["vpn_connection_id"],
                    [(ip, "traffic_selectors_mismatch")],
                    selectors=("10.0.0.0/16", "192.168.1.0/24"),
                    with_gateway=True,
                    maintenance=(ip, "1970-01-01 00:01:40 +0000 UTC"),
                ),
            )
        ],
    }


def render_tests(settings: Settings) -> str:
    document = {
        "rule_files": ["../aws-vpn.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", **case} for case in cases(Pages.of(settings))],
    }
    return dump_yaml(document, "python -m generate.alert_cases", "generate/alert_cases.py")


def render(settings: Settings) -> dict[str, str]:
    """The promtool test file, by path in the repository."""
    return {str(TEST_FILE.relative_to(ROOT)): render_tests(settings)}


if __name__ == "__main__":
    output.report(output.write(ROOT, render(load_settings())))
