"""Prometheus alert rules and their runbooks, generated from the exporter's own metric names and
findings catalogue (one source of truth). ``python -m generate.alerting`` rewrites
``alerts/aws-vpn.rules.yml``, ``docs/runbooks.md`` and ``alerts/alertmanager.yml`` (``python -m generate``
rewrites them with everything else); a test fails when the committed copies are stale. Every function takes the
operators' settings (``load_settings()``) as an argument: nothing here holds or changes settings of its own.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from exporter import contract as m
from exporter.config import RUNBOOK_BASE
from exporter.diagnosis.findings import FINDINGS, ranked
from exporter.report import series as history
from exporter.untrusted import UNSAFE_RANGES
from generate import output, settings

ROOT = output.ROOT
RULES_FILE = ROOT / "alerts" / "aws-vpn.rules.yml"
RUNBOOKS_FILE = ROOT / "docs" / "runbooks.md"
ALERTMANAGER_FILE = ROOT / "alerts" / "alertmanager.yml"

SETTINGS_FILE = ROOT / "alerts" / "settings.yml"

# What operators set in alerts/settings.yml, read-only: every generator is handed one of these.
Settings = Mapping[str, Any]

# Defaults of what operators set in alerts/settings.yml (thresholds, selectors, receivers).
DEFAULTS: Settings = MappingProxyType(
    {
        "exporter_job": 'job="aws-vpn-exporter"',
        "runbook_base": RUNBOOK_BASE,
        # BGP's ConnectRetry (about 120 s) can keep a freshly re-keyed tunnel in IPsec-up/BGP-down for ~2
        # minutes; 3 minutes is the shortest hold that does not page on normal convergence.
        "bgp_down_for": "3m",
        "tunnel_down_for": "5m",
        "connection_down_for": "3m",
        "redundancy_for": "10m",
        "finding_for": "10m",
        "routes_window": "6h",
        "routes_drop_ratio": 0.5,
        "routes_for": "10m",
        "flap_window": "1h",
        "flap_changes": 4,
        "collection_failing_for": "10m",
        "snapshot_stale_seconds": 300,
        "source_stale_seconds": 900,
        "log_lag_seconds": 900,
        "log_lag_for": "15m",
        "receivers": {
            "pager": {"webhook_configs": [{"url": "http://alert-sink:9099/pager", "send_resolved": True}]},
            "ticket": {"webhook_configs": [{"url": "http://alert-sink:9099/ticket", "send_resolved": True}]},
        },
    }
)
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")  # Prometheus' duration syntax


def _refusal(key: str, value: Any) -> str | None:
    if key.endswith("_for") and not DURATION.match(value):
        return f"{value!r} is not a Prometheus duration (e.g. 5m)"
    if key == "receivers" and set(value) != {"pager", "ticket"}:
        return f"expected exactly 'pager' and 'ticket', got {sorted(value)}"
    return None


def load_settings(path: Path = SETTINGS_FILE) -> Settings:
    """The defaults, overridden by the operator's settings file; a clear error naming the file and key."""
    types = {key: type(value) for key, value in DEFAULTS.items()}
    return MappingProxyType(settings.load(path, types, _refusal, dict(DEFAULTS)))


CONNECTION = "account_id, region, vpn_connection_id"
TUNNEL = CONNECTION + ", tunnel"
# A page is read as text (Slack, e-mail, a pager): a label value from AWS (a Name tag, an outside IP, a log's
# traffic selector) holding a line break, an escape sequence or a bidirectional override could forge a line or
# hide the rest. Every label value a page shows goes through shown(), which writes those as U+FFFD.
# The status page's and the log's list (exporter/untrusted.py), without the surrogates a Go string cannot hold.
UNSHOWABLE = (
    "["
    + "".join(f"\\x{{{low:x}}}-\\x{{{high:x}}}" for low, high in UNSAFE_RANGES if low < 0xD800 or low > 0xDFFF)
    + "]"
)


def shown(ref: str) -> str:
    """A template action printing ``ref`` (a label value) with its unshowable characters replaced."""
    return "{{ " + ref + " | reReplaceAll `" + UNSHOWABLE + '` "\\ufffd" }}'


WHERE = shown("$labels.account_id") + "/" + shown("$labels.region")
CONNECTION_TEXT = f"VPN connection {shown('$labels.vpn_connection_id')} ({shown('$labels.name')}) in " + WHERE
TUNNEL_TEXT = (
    f"Tunnel {shown('$labels.tunnel')} of VPN connection {shown('$labels.vpn_connection_id')} "
    f"({shown('$labels.name')}) in " + WHERE
)


def with_name(expr: str) -> str:
    """Attach the connection's Name tag, so descriptions can say which site it is. One info series per
    connection is joined (topk), as two replicas of a shard (high availability) each export one."""
    return f"({expr})\n* on({CONNECTION}) group_left(name) topk by ({CONNECTION}) (1, {m.CONNECTION_INFO})"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: str
    summary: str
    description: str
    meaning: str
    confirm: str
    fix: str
    duration: str = "0m"
    finding: str | None = None  # the diagnosis finding this alert stands for, if any
    cause_scope: str | None = None  # tunnel | connection: the page carries that one's diagnosed causes
    extra_labels: dict = field(default_factory=dict)

    @property
    def anchor(self) -> str:
        return self.name.lower()

    def rule(self, runbook_base: str) -> dict:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.duration != "0m":
            rule["for"] = self.duration
        rule["labels"] = {"severity": self.severity, **self.extra_labels}
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": f"{runbook_base}#{self.anchor}",
        }
        if self.cause_scope:
            rule["annotations"]["cause"] = causes_template(self.cause_scope, runbook_base)
        elif self.finding:
            rule["annotations"]["fix"] = self.fix
        return rule


DIAGNOSE_HINT = "aws-vpn-exporter diagnose --vpn-connection-id <id>"

# Findings that say *that* a tunnel or connection is down, not *why*, and configuration risks: never
# offered as a page's cause.
GENERIC_FINDINGS = tuple(code for code, spec in FINDINGS.items() if spec.symptom or spec.risk)
# The causes in the order to rule them out (the catalogue's: the AWS article's checklist): the runbooks' checklist.
CHECKLIST = tuple(code for code in FINDINGS if code not in GENERIC_FINDINGS)
# Label values (AWS's text: an outside IP, a connection id) enter the cause's queries through printf's %q, a
# Go string literal, which PromQL reads as the same string: a quote or backslash in one can never end it.
CONNECTION_MATCHERS = "account_id=%q,region=%q,vpn_connection_id=%q"
CONNECTION_ARGS = "$labels.account_id $labels.region $labels.vpn_connection_id"


def causes_template(scope: str, runbook_base: str) -> str:
    """The ``cause`` annotation: the diagnosed causes of the alert's tunnel (or connection), most likely first
    (``findings.ranked``, the status page's and ``diagnose``'s order), one line each
    with its fix and runbook section (a cause found on several tunnels once, naming them), an AWS endpoint
    replacement in the last hour if there was one, then the customer gateway's IP and ASN; "no specific cause" and the checklist when there is none. Prometheus runs these
    queries when the alert fires, so the page carries the cause at once, even while the cause's own alert
    waits for its ``for`` or is inhibited. The wording comes from ``aws_vpn_finding_info`` (the catalogue,
    as exported), so it is the diagnosing exporter's."""
    generic = "|".join(GENERIC_FINDINGS)
    own = m.TUNNEL_FINDING + "{" + CONNECTION_MATCHERS + ',finding!~"' + generic + '"'
    if scope == "tunnel":  # the tunnel's findings and the connection's own
        findings = "(" + own + ",tunnel=%q} or " + own + ',tunnel=""})'
        args = f"{CONNECTION_ARGS} $labels.tunnel {CONNECTION_ARGS}"
        selectors = (
            "max by (aws_side, cgw_side) (" + m.TUNNEL_SELECTOR_INFO + "{" + CONNECTION_MATCHERS + ",tunnel=%q})",
            f"{CONNECTION_ARGS} $labels.tunnel",
        )
        where = ""
    else:
        findings, args = own + "}", CONNECTION_ARGS
        selectors = (
            "max by (aws_side, cgw_side) (" + m.TUNNEL_SELECTOR_INFO + "{" + CONNECTION_MATCHERS + "})",
            CONNECTION_ARGS,
        )
        tunnels = "max by (tunnel) (" + m.TUNNEL_FINDING + "{" + CONNECTION_MATCHERS + ',finding=%q,tunnel!=""})'
        where = "".join(
            [
                "{{ $tunnels := query (printf `",
                tunnels,
                "` ",
                CONNECTION_ARGS,
                ' .Labels.finding) | sortByLabel "tunnel" }}',
                "{{ if $tunnels }}Tunnel{{ if gt (len $tunnels) 1 }}s{{ end }} ",
                "{{ range $j, $t := $tunnels }}{{ if $j }}, {{ end }}",
                shown("$t.Labels.tunnel"),
                "{{ end }}: {{ end }}",
            ]
        )
    query = (
        f"max by (finding) ({findings}) * on(finding) group_left(alert, summary, remedy) "
        f"topk by (finding) (1, {m.FINDING_INFO})"
    )
    # each cause labelled with its rank (findings.ranked: the status page's and diagnose's order), sorted on it
    for rank, code in enumerate(ranked(CHECKLIST)):
        query = f'label_replace({query}, "rank", "{rank:02d}", "finding", "{code}")'
    recent = (
        f"max by (tunnel) ({m.TUNNEL_LAST_MAINTENANCE}{{{CONNECTION_MATCHERS}"
        + (",tunnel=%q}" if scope == "tunnel" else "}")
        + ") > time() - 3600"
    )
    recent_args = f"{CONNECTION_ARGS} $labels.tunnel" if scope == "tunnel" else CONNECTION_ARGS
    gateway_query = (
        "max by (customer_gateway_id, ip_address, bgp_asn) ("
        + m.CUSTOMER_GATEWAY_INFO
        + "{account_id=%q,region=%q}) * on(customer_gateway_id) group_left() "
        "max by (customer_gateway_id) (" + m.CONNECTION_INFO + "{" + CONNECTION_MATCHERS + "})"
    )
    base = runbook_base
    return "".join(
        [
            "{{ range $i, $cause := query (printf `",
            query,
            "` ",
            args,
            ') | sortByLabel "rank" }}',
            "{{ if $i }}\n{{ end }}",
            where,
            "{{ .Labels.summary }}",
            '{{ if eq .Labels.finding "traffic_selectors_mismatch" }}',
            "{{ range query (printf `",
            selectors[0],
            "` ",
            selectors[1],
            ') | sortByLabel "aws_side" }}',
            " Negotiated: AWS side ",
            shown(".Labels.aws_side"),
            ", customer gateway side ",
            shown(".Labels.cgw_side"),
            ".",
            "{{ end }}{{ end }}",
            " Fix: {{ .Labels.remedy }} Runbook: ",
            base,
            "#{{ toLower .Labels.alert }}",
            "{{ else }}",
            "No specific cause diagnosed yet: run `aws-vpn-exporter diagnose --vpn-connection-id ",
            shown("$labels.vpn_connection_id"),
            "` and follow the checklist: ",
            base,
            "#checklist",
            "{{ end }}",
            "{{ range query (printf `",
            recent,
            "` ",
            recent_args,
            ') | sortByLabel "tunnel" }}',
            "\nAWS replaced the endpoint of tunnel ",
            shown(".Labels.tunnel"),
            " at {{ .Value | humanizeTimestamp }} (maintenance): "
            "it comes back once AWS or the customer gateway initiates IKE.{{ end }}",
            "{{ range query (printf `",
            gateway_query,
            "` $labels.account_id $labels.region ",
            CONNECTION_ARGS,
            ") }}",
            "\nCustomer gateway ",
            shown(".Labels.customer_gateway_id"),
            ": IP ",
            shown(".Labels.ip_address"),
            ", BGP ASN ",
            shown(".Labels.bgp_asn"),
            ".{{ end }}",
        ]
    )


def _finding_alert(code: str, s: Settings) -> Alert:
    spec = FINDINGS[code]
    name = spec.alert
    subject = TUNNEL_TEXT if spec.scope == "tunnel" else CONNECTION_TEXT
    return Alert(
        name=name,
        finding=code,
        severity=spec.severity,
        duration=s["finding_for"],
        expr=with_name(f'{m.TUNNEL_FINDING}{{finding="{code}"}} == 1'),
        summary=spec.summary.split(":")[0].rstrip(".") + ".",
        description=f"{subject}: {spec.summary}",
        meaning=spec.summary,
        confirm=(
            f'`{m.TUNNEL_FINDING}{{finding="{code}"}}` is 1 for the tunnel; run `{DIAGNOSE_HINT}` for the evidence.'
        ),
        fix=spec.remedy,
    )


def build_alerts(s: Settings) -> list[Alert]:
    headline = FINDINGS["ipsec_up_bgp_down"]
    stale = f"{s['source_stale_seconds']}s"  # VpnExporterSourceStale's window
    return [
        Alert(
            name="VpnTunnelIpsecUpBgpDown",
            severity="critical",
            duration=s["bgp_down_for"],
            finding="ipsec_up_bgp_down",
            cause_scope="tunnel",
            expr=with_name(f"{m.TUNNEL_IPSEC_UP} == 1 and on({TUNNEL}) {m.TUNNEL_BGP_UP} == 0"),
            summary="VPN tunnel has IPsec up but BGP down.",
            description=TUNNEL_TEXT + " shows DOWN with IPSEC IS UP: IPsec is established, BGP is not. No routes "
            "are exchanged over this tunnel.",
            meaning=headline.summary + " On a dynamic connection AWS reports a tunnel UP only when both are up. "
            "Static connections never fire this alert; nor does a tunnel whose IPsec is down.",
            confirm=f"`{m.TUNNEL_IPSEC_UP}` is 1 and `{m.TUNNEL_BGP_UP}` is 0 for the tunnel; `{DIAGNOSE_HINT}` "
            "names the likely cause with its evidence (the `aws_vpn_tunnel_finding` series say the same).",
            fix=headline.remedy + " The cause-specific alerts below carry each fix.",
        ),
        Alert(
            name="VpnConnectionDown",
            severity="critical",
            duration=s["connection_down_for"],
            finding="connection_down",
            cause_scope="connection",
            expr=with_name(f"max by ({CONNECTION}) ({m.TUNNEL_UP}) == 0"),
            summary="VPN connection has no tunnel up.",
            description=CONNECTION_TEXT + " has no tunnel up (AWS's status): the site is cut off.",
            meaning=FINDINGS["connection_down"].summary + " The same rule as the `connection_down` finding: every "
            "tunnel AWS reports is DOWN, whether IPsec is down or only BGP. It pages once for the connection, "
            "names each tunnel's diagnosed cause, and silences the tunnels' own alerts.",
            confirm=f"`max by (vpn_connection_id) ({m.TUNNEL_UP})` is 0; `{DIAGNOSE_HINT}` shows each "
            "tunnel's status message.",
            fix=FINDINGS["connection_down"].remedy,
        ),
        Alert(
            name="VpnTunnelDown",
            severity="warning",
            duration=s["tunnel_down_for"],
            cause_scope="tunnel",
            expr=with_name(f"{m.TUNNEL_IPSEC_UP} == 0"),
            summary="VPN tunnel has IPsec down.",
            description=TUNNEL_TEXT
            + " has IPsec down (status message IPSEC IS DOWN, or empty on a static connection).",
            meaning="The tunnel's IKE/IPsec security associations are not established; traffic uses the other "
            "tunnel if it is up.",
            confirm=f"`{m.TUNNEL_IPSEC_UP}` is 0; the IKE log events (`{m.TUNNEL_LOG_EVENTS}`: peer_dead, "
            "psk_mismatch, no_proposal_chosen, ...) and `diagnose` tell why.",
            fix="Check the customer gateway's reachability and IKE configuration for this tunnel's outside IP "
            "address: pre-shared key, proposals (encryption, integrity, DH group), and dead peer detection.",
        ),
        Alert(
            name="VpnRedundancyLost",
            severity="warning",
            duration=s["redundancy_for"],
            finding="redundancy_lost",
            cause_scope="connection",
            # Each tunnel once, however many replicas report it (high availability).
            expr=with_name(
                f"sum by ({CONNECTION}) (max by ({TUNNEL}) ({m.TUNNEL_UP})) == 1\n"
                f"and on({CONNECTION}) count by ({CONNECTION}) (max by ({TUNNEL}) ({m.TUNNEL_UP})) > 1"
            ),
            summary="VPN connection runs on a single tunnel.",
            description=CONNECTION_TEXT + " has only one tunnel up: one more failure takes the site down.",
            meaning=FINDINGS["redundancy_lost"].summary,
            confirm=f"`sum by (vpn_connection_id) ({m.TUNNEL_UP})` is 1; the down tunnel's own alert or "
            f"`{DIAGNOSE_HINT}` says why.",
            fix=FINDINGS["redundancy_lost"].remedy,
        ),
        Alert(
            name="VpnAcceptedRoutesDropped",
            severity="warning",
            duration=s["routes_for"],
            cause_scope="tunnel",
            expr=with_name(
                f"{m.TUNNEL_ACCEPTED_ROUTES} < {s['routes_drop_ratio']} * max_over_time({m.TUNNEL_ACCEPTED_ROUTES}"
                f"[{s['routes_window']}])\nand on({TUNNEL}) {m.TUNNEL_BGP_UP} == 1"
            ),
            summary="VPN tunnel's accepted BGP routes fell sharply.",
            description=TUNNEL_TEXT + " accepts {{ $value }} routes, less than half its maximum over the last "
            f"{s['routes_window']}, with BGP up.",
            meaning="BGP is established but the customer gateway advertises (or AWS accepts) far fewer prefixes than "
            "before, down to zero: part of the on-premises network is unreachable.",
            confirm=f"Graph `{m.TUNNEL_ACCEPTED_ROUTES}`; BGP log events `bgp_route_withdrawn`, `bgp_route_denied`.",
            fix="Check the customer gateway's advertised prefixes and filters, and any route denials in the BGP log "
            "(AS path loops, non-connected next hops); keep under the route quota.",
        ),
        Alert(
            name="VpnTunnelFlapping",
            severity="warning",
            cause_scope="tunnel",
            # The exact counter: changes of LastStatusChange's timestamp miss two changes between two scrapes and
            # every change while the exporter is stopped; the counter has them (exporter/sources/history).
            expr=with_name(
                f"max by ({TUNNEL}) (increase({history.STATE_CHANGES}[{s['flap_window']}])) >= {s['flap_changes']}"
            ),
            summary="VPN tunnel is flapping.",
            description=TUNNEL_TEXT
            + ' changed state {{ $value | printf "%.0f" }} times in the last '
            + s["flap_window"]
            + ".",
            meaning="AWS recorded repeated IKE, IPsec or BGP state changes on the tunnel: it keeps going down and up.",
            confirm=f"`increase({history.STATE_CHANGES}[1h])`; the Flaps and trends dashboard; IKE log events "
            "`dpd_timeout`, `peer_dead`, `rekey_collision` and BGP `bgp_hold_timer_expired`.",
            fix="Look for DPD timeouts (packet loss or an overloaded customer gateway), rekey collisions (mismatched "
            "lifetimes) and hold-timer expiries; tune timeouts to AWS's values and fix the transport.",
        ),
        *(_finding_alert(code, s) for code, spec in FINDINGS.items() if not spec.symptom),  # one per cause
        Alert(
            name="VpnExporterCollectionFailing",
            severity="warning",
            duration=s["collection_failing_for"],
            expr=f"{m.COLLECTION_SUCCESS} == 0",
            summary="VPN exporter cannot collect from a source.",
            description="The "
            + shown("$labels.source")
            + " collection for "
            + WHERE
            + " has failed for "
            + s["collection_failing_for"]
            + "; its metrics are the last values read.",
            meaning="An AWS error (access denied, throttling, timeouts, a deleted log group) stops one account, "
            "region and source; the others are unaffected.",
            confirm="The exporter's log (`collection failed ... error=`) and "
            f'`{m.API_CALLS}{{outcome!="ok"}}` by operation.',
            fix="Fix the credentials or IAM policy (see the least-privilege policy in docs/configuration.md), or wait "
            "out the AWS incident; the exporter retries every poll and recovers by itself.",
        ),
        Alert(
            name="VpnExporterDiscoveryFailing",
            severity="warning",
            duration=s["collection_failing_for"],
            expr=f"{m.DISCOVERY_SUCCESS} == 0 or {m.DISCOVERY_ACCOUNT_SUCCESS} == 0",
            summary="VPN exporter cannot discover an organization's accounts or an account's regions.",
            description="Organisation discovery has failed for "
            + shown("$labels.account_id")
            + " for "
            + s["collection_failing_for"]
            + "; the accounts and regions it last found are still polled.",
            meaning="ListAccounts fails where it is called (aws_vpn_exporter_discovery_success), or a member account "
            "refuses its role or DescribeRegions (aws_vpn_exporter_discovery_account_success): accounts added "
            "since are not watched, and an account whose regions were never read is not watched at all.",
            confirm="The exporter's log (`organization discovery failed` or `could not read N of M accounts`), "
            f'`{m.DISCOVERED_ACCOUNTS}` by state, and `{m.API_CALLS}{{operation=~"ListAccounts|AssumeRole|'
            'DescribeRegions",outcome!="ok"}`.',
            fix="ListAccounts answers only the management account or a delegated administrator: point "
            "organization.role_arn at one, with organizations:ListAccounts. A member account needs the role "
            "(deploy it with the StackSet; service-managed StackSets skip the management account, see "
            "management_account), trusting the exporter's identity, with ec2:DescribeRegions. A failing "
            "account is read again after 1, 2, 4, 8 and 16 minutes, then every discovery_interval, or at once on a "
            "config reload. An account counted as `pending` had not answered when the run's budget (a quarter of "
            "discovery_interval) ran out: it keeps its last regions, is read again a minute later, and does not "
            "fire this alert.",
        ),
        Alert(
            # Not `time() - timestamp`: Prometheus's clock against the exporter's, it goes negative (silent) when
            # the exporter's clock is fast or was stepped back, and fires on a slow one. A timestamp that stops
            # changing is a stall whatever either clock says; `offset` keeps a series younger than the window quiet.
            name="VpnExporterSourceStale",
            severity="warning",
            expr=f"{m.COLLECTION_LAST_SUCCESS} unless changes({m.COLLECTION_LAST_SUCCESS}[{stale}]) > 0 "
            f"and {m.COLLECTION_LAST_SUCCESS} offset {stale}",
            summary="VPN exporter data for a source is stale.",
            description="The " + shown("$labels.source") + " data for " + WHERE + " has not been refreshed since "
            "{{ $value | humanizeTimestamp }} (the exporter's clock).",
            meaning="Alerts for these tunnels are judged on old data. The source's last-success timestamp has not "
            f"changed for {s['source_stale_seconds']} s, whatever the exporter's clock says (a step of it "
            "neither hides nor fakes a stall).",
            confirm=f"`changes({m.COLLECTION_LAST_SUCCESS}[{stale}])` (0: no success within "
            f"it) and `time() - {m.COLLECTION_LAST_SUCCESS}` (the age, if both clocks agree); see "
            "VpnExporterCollectionFailing.",
            fix="As for VpnExporterCollectionFailing.",
        ),
        Alert(
            name="VpnExporterSnapshotStale",
            severity="critical",
            duration="5m",
            expr=f"{m.SNAPSHOT_AGE} > {s['snapshot_stale_seconds']}",
            summary="VPN exporter serves an old snapshot.",
            description=shown("$labels.instance") + " has not completed a poll for {{ $value | humanizeDuration }}.",
            meaning="The poll loop is stuck or every poll fails to finish; every VPN alert is judged on old data. "
            "The age is measured on the exporter's monotonic clock: a step of its wall clock changes nothing.",
            confirm=f"`{m.SNAPSHOT_AGE}`, `{m.POLL_TIMESTAMP}`, and the exporter's log.",
            fix="Restart the exporter; if it recurs, raise poll_timeout or look for an AWS endpoint that hangs.",
        ),
        Alert(
            name="VpnExporterLogIngestionLagging",
            severity="warning",
            duration=s["log_lag_for"],
            expr=f"{m.LOG_INGESTION_LAG} > {s['log_lag_seconds']}",
            summary="VPN exporter's log reading is behind.",
            description="Log group "
            + shown("$labels.log_group")
            + " in "
            + WHERE
            + " is read {{ $value | humanizeDuration }} "
            "behind.",
            meaning="Findings from logs (selectors, NAT-T, BGP errors) are late.",
            confirm=f'`{m.LOG_INGESTION_LAG}`; `{m.API_CALLS}{{operation="FilterLogEvents"}}` by outcome.',
            fix="A backlog catches up by itself (200 pages a poll); persistent lag means throttling "
            "(FilterLogEvents allows 10 requests/s per account and region) or failing reads.",
        ),
        Alert(
            name="VpnExporterShardMissing",
            severity="critical",
            duration="5m",
            expr=f"count(count by (shard_index) ({m.SHARDS}{{{s['exporter_job']}}})) < max({m.SHARDS}"
            f"{{{s['exporter_job']}}})",
            summary="A shard of the VPN exporter is missing.",
            description="Only {{ $value }} of the configured shards report: the accounts and regions of the "
            "missing shard are not monitored.",
            meaning="Each replica reports its shard.index and shard.count; fewer distinct indexes than shards "
            "means a replica (or the Prometheus agent scraping it) is down, and VpnExporterAbsent stays "
            "quiet while any replica is up.",
            confirm=f"`count by (shard_index) ({m.SHARDS})` shows which indexes report; the missing replica's "
            "`/-/healthy`, and its agent's targets page.",
            fix="Start or fix the missing replica (or its agent). Every replica must have the same shard.count.",
        ),
        Alert(
            name="VpnExporterAbsent",
            severity="critical",
            duration="5m",
            expr=f"absent(up{{{s['exporter_job']}}} == 1)",
            summary="VPN exporter is down or not scraped.",
            description="No healthy target for " + s["exporter_job"] + ": VPN tunnels are not monitored.",
            meaning="Prometheus has no data from the exporter, so no VPN alert can fire.",
            confirm="Prometheus' targets page; the exporter's `/-/healthy` and `/-/ready`.",
            fix="Start or fix the exporter (its log names any configuration error at start-up).",
        ),
    ]


# Recorded series that dashboards read over long ranges (cheaper than subqueries over 30-90 days).
HEADLINE_STATE = "aws_vpn_tunnel:ipsec_up_bgp_down"
HEADLINE_RULES = [
    {
        "record": HEADLINE_STATE,
        # 1 in the headline state, else 0; matched on every label, so each replica's series with its own
        "expr": f"{m.TUNNEL_IPSEC_UP} - {m.TUNNEL_BGP_UP}",
    },
]
# The series to keep for 13 months (docs/history.md): hourly and daily increases of every history counter, from the
# raw counters only (so `promtool tsdb create-blocks-from rules` backfills them in one pass) ...
HISTORY_RULES = [
    {"record": counter.record(window), "expr": counter.increase(window)}
    for counter in history.COUNTERS
    for window in history.WINDOWS
]
_UNAVAILABLE_1D = f"sum without (cause) ({history.recorded(history.UNAVAILABLE_SECONDS, '1d')})"
_OBSERVED_1D = history.recorded(history.OBSERVED_SECONDS, "1d")
# ... and what is derived from those (a second backfill pass): a connection's flaps, its daily availability,
# and AWS's SLA month to date (through the last midnight UTC; see history.month_to_date).
DERIVED_RULES = [
    *(
        {
            "record": history.CONNECTION_FLAPS[window],
            "expr": f"sum by ({CONNECTION}) ({history.recorded(history.STATE_CHANGES, window)})",
        }
        for window in history.WINDOWS
    ),
    {
        "record": history.AVAILABILITY_1D,
        "expr": f"1 - {_UNAVAILABLE_1D}\n  / on({CONNECTION}) ({_OBSERVED_1D} > 0)",
    },
    {"record": history.UNAVAILABLE_MONTH_TO_DATE, "expr": history.month_to_date(_UNAVAILABLE_1D)},
    {"record": history.OBSERVED_MONTH_TO_DATE, "expr": history.month_to_date(_OBSERVED_1D)},
]
# ... and the SLA month to date from those sums (a third pass).
SLA_RULES = [
    {
        "record": history.SLA_UPTIME_MONTH_TO_DATE,
        "expr": f"1 - {history.UNAVAILABLE_MONTH_TO_DATE}\n  / on({CONNECTION}) ({history.OBSERVED_MONTH_TO_DATE} > 0)",
    },
]
RECORDING_RULES = HEADLINE_RULES + HISTORY_RULES + DERIVED_RULES + SLA_RULES
RECORDING_GROUPS = {
    "aws-vpn-recording": HEADLINE_RULES,
    "aws-vpn-history": HISTORY_RULES,
    "aws-vpn-history-derived": DERIVED_RULES,
    "aws-vpn-history-sla": SLA_RULES,
}


def rules_document(s: Settings) -> dict:
    return {
        "groups": [
            *({"name": name, "rules": rules} for name, rules in RECORDING_GROUPS.items()),
            {"name": "aws-vpn", "rules": [alert.rule(s["runbook_base"]) for alert in build_alerts(s)]},
        ]
    }


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as literal blocks, so the YAML reads like the Python."""


_BlockDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


class _ManifestDumper(_BlockDumper):
    """For manifests read by people: a value used twice (a label selector) is written out twice, not aliased."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


GENERATED = "# Generated by `{command}` from {source}; do not edit by hand.\n"


def dump_yaml(document: dict, command: str, source: str) -> str:
    return GENERATED.format(command=command, source=source) + yaml.dump(
        document, Dumper=_BlockDumper, sort_keys=False, width=10_000, allow_unicode=True
    )


def dump_yaml_documents(documents: list[dict], command: str, source: str) -> str:
    """Several documents in one file, each after a ``---``."""
    return GENERATED.format(command=command, source=source) + yaml.dump_all(
        documents, Dumper=_ManifestDumper, sort_keys=False, width=10_000, allow_unicode=True, explicit_start=True
    )


def render_rules(rules: dict) -> str:
    """The rules file of ``rules_document()``."""
    return dump_yaml(rules, "python -m generate.alerting", "generate/alerting.py")


def _silenced_by_connection_down(alerts: list[Alert]) -> str:
    """Every alert about a tunnel or connection, other than connection-down itself, as a regex."""
    return "|".join(a.name for a in alerts if not a.name.startswith("VpnExporter") and a.name != "VpnConnectionDown")


def alertmanager_document(s: Settings) -> dict:
    """An example Alertmanager config: critical pages, the rest is a ticket; one cause pages once."""
    alerts = build_alerts(s)
    tunnel_alerts = [
        a.name
        for a in alerts
        if a.name in ("VpnTunnelIpsecUpBgpDown", "VpnAcceptedRoutesDropped", "VpnTunnelFlapping")
        or (a.finding and FINDINGS[a.finding].needs_ipsec)
    ]  # the catalogue says which need IPsec
    return {
        "route": {
            "receiver": "ticket",
            "group_by": ["alertname", "account_id", "region", "vpn_connection_id"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "12h",
            # Pages: first notification after group_wait, updates and resolutions within a minute.
            "routes": [
                {
                    "matchers": ['severity="critical"'],
                    "receiver": "pager",
                    "group_interval": "1m",
                    "repeat_interval": "1h",
                },
                {"matchers": ['severity="info"'], "receiver": "ticket", "repeat_interval": "7d"},
            ],
        },
        # From alerts/settings.yml: PagerDuty, Opsgenie, Slack, webhooks... (copies: a caller may edit the document)
        "receivers": [{"name": name, **copy.deepcopy(s["receivers"][name])} for name in ("pager", "ticket")],
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="VpnConnectionDown"'],
                "target_matchers": [f'alertname=~"{_silenced_by_connection_down(alerts)}"'],
                "equal": ["account_id", "region", "vpn_connection_id"],
            },
            {
                "source_matchers": ['alertname="VpnTunnelDown"'],
                "target_matchers": [f'alertname=~"{"|".join(tunnel_alerts)}"'],
                "equal": ["account_id", "region", "vpn_connection_id", "tunnel"],
            },
            {
                "source_matchers": ['alertname="VpnExporterSnapshotStale"'],
                "target_matchers": ['alertname=~"VpnExporterCollectionFailing|VpnExporterSourceStale"'],
            },
        ],
    }


def render_alertmanager(s: Settings) -> str:
    return dump_yaml(alertmanager_document(s), "python -m generate.alerting", "generate/alerting.py")


def render_runbooks(s: Settings) -> str:
    lines = [
        "# Runbooks",
        "",
        "Generated by `python -m generate.alerting` from `generate/alerting.py` and the findings catalogue "
        "(`exporter/diagnosis/findings.py`); do not edit by hand.",
        "",
        "Every alert's first step: `aws-vpn-exporter diagnose --config <your config> --vpn-connection-id <id>` "
        "prints the connection's state, the active findings, their evidence and the next step.",
        "",
        "## Checklist",
        "",
        "When a page says no specific cause is diagnosed yet (tunnel logs off, or nothing logged yet), work "
        "through the causes in the order they are most often found:",
        "",
    ]
    lines += [
        f"{number}. {FINDINGS[code].summary} See [{FINDINGS[code].alert}](#{FINDINGS[code].runbook_anchor})."
        for number, code in enumerate(CHECKLIST, 1)
    ]
    lines += [
        "",
        "Then the transport: UDP 500 and 4500 and TCP 179 (inside the tunnel) allowed on every firewall "
        "and NAT on the path, and the device up.",
        "",
    ]
    for alert in build_alerts(s):
        lines += [
            f"## {alert.name}",
            "",
            f"Severity: **{alert.severity}**"
            + (f" · for {alert.duration}" if alert.duration != "0m" else "")
            + (f" · finding `{alert.finding}`" if alert.finding else ""),
            "",
            f"**Meaning.** {alert.meaning}",
            "",
            f"**Confirm.** {alert.confirm}",
            "",
            f"**Fix.** {alert.fix}",
            "",
            "```promql",
            alert.expr,
            "```",
            "",
        ]
    return "\n".join(lines)


def render(s: Settings, rules: dict) -> dict[str, str]:
    """The rules file (of ``rules_document(s)``), the runbooks and the Alertmanager example, by path in the
    repository."""
    return {
        str(RULES_FILE.relative_to(ROOT)): render_rules(rules),
        str(RUNBOOKS_FILE.relative_to(ROOT)): render_runbooks(s),
        str(ALERTMANAGER_FILE.relative_to(ROOT)): render_alertmanager(s),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m generate.alerting", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--settings", type=Path, default=SETTINGS_FILE, help="default: alerts/settings.yml")
    parser.add_argument("--output-dir", type=Path, default=ROOT, help="default: the repository")
    args = parser.parse_args(argv)
    s = load_settings(args.settings)
    output.report(output.write(args.output_dir, render(s, rules_document(s))), args.output_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
