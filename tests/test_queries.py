"""Every PromQL expression of the dashboards and the rules, run by a real Prometheus (Debian's) that
scraped the demo exporter: each must parse and run, and return data wherever the demo has data.

An expression may be empty only if it is on the list below (with the reason), and then every metric
it reads must still exist, so a typo in a name can never pass as "no data".
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from exporter.diagnosis.findings import FINDINGS
from exporter.report import series as history
from generate import alerting
from tests import services

pytestmark = pytest.mark.slow  # a real Prometheus scraping the demo: not in `scripts/test --quick`

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
# Alert expressions whose condition the demo does not meet within a test run, and why.
EMPTY_IN_THE_DEMO = {
    **{
        name: "sums the daily values at the month's midnights: the demo's series are seconds old"
        for name in (
            history.UNAVAILABLE_MONTH_TO_DATE,
            history.OBSERVED_MONTH_TO_DATE,
            history.SLA_UPTIME_MONTH_TO_DATE,
        )
    },
    "VpnAcceptedRoutesDropped": "no demo tunnel loses routes while BGP stays up",
    "VpnTunnelFlapping": "needs 4 status changes within an hour; the test runs for seconds",
    "VpnExporterCollectionFailing": "the demo's collection succeeds",
    "VpnExporterSourceStale": "the demo's data is fresh",
    "VpnExporterDiscoveryFailing": "the demo's organization is discovered",
    "VpnExporterSnapshotStale": "the demo's snapshot is fresh",
    "VpnExporterLogIngestionLagging": "the demo's logs are read within seconds",
    "VpnExporterAbsent": "the exporter is up",
    "VpnExporterShardMissing": "the demo runs one shard",
} | {spec.alert: spec.demo.removeprefix("no: ") for spec in FINDINGS.values() if spec.demo.startswith("no: ")}
# Dashboard panels that sum the history recording rules' daily values at midnights (over the range, or the month to
# date): the demo's series, seconds old, have none. Each must still parse and run; tests/test_history_engines.py
# checks their figures on 90 days of known history.
EMPTY_PANELS_IN_THE_DEMO = {
    "SLA month to date (AWS: 99.95 % per connection and billing month)": "the month's days: a midnight",
    "Downtime by cause in the range (connection unavailable, whole days)": "whole days in the range: a midnight",
    "Worst offenders: most flaps in the range": "whole days in the range: a midnight",
    "Worst offenders: lowest uptime in the range": "whole days in the range: a midnight",
}
METRIC = re.compile(
    r"\b((?:(?:vpn_(?:tunnel|connection):)?aws_vpn_[a-z_]*(?::[a-z0-9_]+)?)|up|process_resident_memory_bytes)\b(?!\s*\()"
)


@pytest.fixture(scope="module")
def prometheus(moto_url, tmp_path_factory):
    """The demo exporter, scraped every second by a real Prometheus that evaluates the rule file."""
    workdir = tmp_path_factory.mktemp("prometheus")
    with services.demo_exporter(moto_url, workdir / "state", poll_interval=2, apply_interval=2) as (exporter, demo):
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(alerting.RULES_FILE)],
            "scrape_configs": [
                {"job_name": "aws-vpn-exporter", "static_configs": [{"targets": [f"127.0.0.1:{exporter.address[1]}"]}]}
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        with services.prometheus(workdir / "prometheus.yml", workdir / "data") as url:
            services.wait_until(
                lambda: (
                    query(url, "aws_vpn_tunnel_log_events_total") and query(url, "aws_vpn_tunnel:ipsec_up_bgp_down")
                ),
                60,
                "the demo's data",
            )
            time.sleep(8)  # enough samples for rate() and increase() over 30s windows
            yield url, demo


query = services.query


def substitute(expr: str, connection_id: str) -> str:
    """Grafana's variables as Grafana would fill them for this demo."""
    for variable, value in (
        ("$__rate_interval", "30s"),
        ("$__range_s", "3600"),
        ("$__range", "1h"),
        ("$account_id", ".*"),
        ("$region", ".*"),
        ("$vpn_connection_id", connection_id),
    ):
        expr = expr.replace(variable, value)
    return expr


def dashboard_queries() -> list[tuple[str, str, str]]:
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                found.append((f"{path.stem}: {panel['title']}", target["expr"], panel["title"]))
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                match = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["query"])
                assert match, variable["query"]
                found.append((f"{path.stem}: variable {variable['name']}", match.group(1), variable["name"]))
    return found


def test_there_are_dashboards_and_queries():
    assert {p.stem for p in DASHBOARDS} == {"overview", "connection", "flaps", "exporter", "configuration"}
    assert len(dashboard_queries()) > 40


def test_every_dashboard_query_returns_data(prometheus):
    """With $vpn_connection_id set to some demo connection (each shows a different case)."""
    url, demo = prometheus
    connections = [demo.connection_id(name) for name in ("branch-tokyo", "partner-asn", "hq-core")]
    failures = []
    for where, expr, title in dashboard_queries():
        if not any(query(url, substitute(expr, connection)) for connection in connections):
            if title not in EMPTY_PANELS_IN_THE_DEMO:  # query() has checked that it runs
                failures.append(f"{where}: {expr}")
    assert not failures, "queries returning nothing:\n" + "\n".join(failures)


def test_every_rule_expression_runs_and_returns_data_where_the_demo_has_it(prometheus):
    url, _ = prometheus
    failures = []
    for group in alerting.rules_document(alerting.load_settings())["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            result = query(url, rule["expr"])
            if name in EMPTY_IN_THE_DEMO:
                for metric in set(METRIC.findall(rule["expr"])) - set(EMPTY_IN_THE_DEMO):  # those: checked themselves
                    if not query(url, metric):
                        failures.append(f"{name}: reads {metric}, which has no series")
            elif not result:
                failures.append(f"{name}: {rule['expr']}")
    assert not failures, "\n".join(failures)


def test_the_headline_alert_is_pending_or_firing_for_the_demo(prometheus):
    url, demo = prometheus
    alerts = query(url, 'ALERTS{alertname="VpnTunnelIpsecUpBgpDown"}')
    names = {a["metric"]["name"] for a in alerts}
    assert {"branch-tokyo", "dc-accelerated", "partner-asn"} <= names
    assert "hq-core" not in names and "legacy-static" not in names


def test_the_pages_name_the_diagnosed_cause(prometheus):
    """Prometheus itself renders the ``cause`` annotation from the exporter's findings and catalogue."""
    url, demo = prometheus
    partner, tokyo = demo.connection_id("partner-asn"), demo.connection_id("branch-tokyo")
    alerts = services.wait_until(lambda: _alerts(url, partner, tokyo), 60, "the demo's alerts with their causes")
    refused = FINDINGS["bgp_open_message_error"]
    connection_down = alerts[("VpnConnectionDown", partner, "")]
    # one page for the connection; the cause both tunnels share, said once
    assert f"Tunnels 198.51.100.81, 198.51.100.82: {refused.summary} Fix: {refused.remedy}" in connection_down
    assert connection_down.count(refused.summary) == 1
    assert re.search(r"\nCustomer gateway cgw-[0-9a-f]+: IP 203\.0\.113\.80, BGP ASN 65100\.$", connection_down)
    headline = alerts[("VpnTunnelIpsecUpBgpDown", tokyo, "198.51.100.21")]
    assert "Negotiated: AWS side 172.31.0.0/16, customer gateway side 10.0.0.0/16." in headline
    assert "#vpntrafficselectorsmismatch" in headline
    assert "No specific cause" not in headline


def _alerts(url: str, *connections: str) -> dict | None:
    """(alert name, connection, tunnel) -> cause annotation, once every connection has one."""
    with urllib.request.urlopen(f"{url}/api/v1/alerts", timeout=10) as response:
        active = json.load(response)["data"]["alerts"]
    causes = {
        (a["labels"]["alertname"], a["labels"].get("vpn_connection_id"), a["labels"].get("tunnel", "")): a[
            "annotations"
        ]["cause"]
        for a in active
        if "cause" in a["annotations"]
    }
    return causes if {key[1] for key in causes} >= set(connections) else None
