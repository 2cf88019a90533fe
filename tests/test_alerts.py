"""Alert rules, their unit tests, runbooks and the Alertmanager example: current, valid, and tested
with the real promtool and Alertmanager."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from exporter.diagnosis.findings import FINDINGS
from exporter.report import series as history
from generate import alert_cases, alerting
from tests import services
from tests.services import tool

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = alerting.load_settings()  # the committed alerts/settings.yml
GENERATED = {**alerting.render(SETTINGS, alerting.rules_document(SETTINGS)), **alert_cases.render(SETTINGS)}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_files_are_current(name):
    assert (ROOT / name).read_text() == GENERATED[name], f"{name} is stale: run scripts/generate"


def test_promtool_checks_the_rules():
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(alerting.RULES_FILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"SUCCESS: {len(alerting.build_alerts(SETTINGS)) + len(alerting.RECORDING_RULES)} rules found" in result.stdout
    )


@pytest.mark.slow  # promtool runs every rule test: not in `scripts/test --quick`
def test_promtool_unit_tests_pass():
    result = subprocess.run(
        [tool("promtool"), "test", "rules", alert_cases.TEST_FILE.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=alert_cases.TEST_FILE.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case():
    tests = yaml.safe_load(alert_cases.TEST_FILE.read_text())["tests"]
    checks = [check for case in tests for check in case.get("alert_rule_test", [])]
    for alert in alerting.build_alerts(SETTINGS):
        mine = [check for check in checks if check["alertname"] == alert.name]
        assert any(check["exp_alerts"] for check in mine), f"{alert.name} never shown firing"
        assert any(not check["exp_alerts"] for check in mine), f"{alert.name} never shown quiet"


def test_every_history_rule_has_a_promtool_case_and_follows_the_naming_practice():
    """level:metric:operations (prometheus.io "Recording rules"), and each kind is checked against hand-counted
    figures (every counter's increases are one expression, exporter/report/series.py)."""
    tests = yaml.safe_load(alert_cases.TEST_FILE.read_text())["tests"]
    checked = {check["expr"] for case in tests for check in case.get("promql_expr_test", [])}
    for rule in alerting.HISTORY_RULES + alerting.DERIVED_RULES + alerting.SLA_RULES:
        level, metric, operations = rule["record"].split(":")
        assert level in ("vpn_tunnel", "vpn_connection") and metric.startswith("aws_vpn_") and operations, rule
        assert not metric.endswith("_total"), rule
    records = {rule["record"] for rule in alerting.HISTORY_RULES + alerting.DERIVED_RULES + alerting.SLA_RULES}

    def operations(names: set) -> set:
        return {name.split(":")[2] for name in names}

    assert operations(records & checked) == operations(records)  # the counters' rules share one expression each
    assert {history.AVAILABILITY_1D, history.SLA_UPTIME_MONTH_TO_DATE, history.UNAVAILABLE_MONTH_TO_DATE} <= checked


def test_alert_conventions_and_runbooks():
    runbooks = alerting.RUNBOOKS_FILE.read_text()
    names = [alert.name for alert in alerting.build_alerts(SETTINGS)]
    assert len(names) == len(set(names))
    for alert in alerting.build_alerts(SETTINGS):
        rule = alert.rule(SETTINGS["runbook_base"])
        assert alert.name.startswith("Vpn") and alert.name[0].isupper()
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"].endswith(".") and "{{" not in rule["annotations"]["summary"]
        if not rule["expr"].startswith("absent("):  # absent() yields no labels to template
            assert "{{" in rule["annotations"]["description"]
        assert rule["annotations"]["runbook_url"].endswith(f"#{alert.name.lower()}")
        assert f"## {alert.name}\n" in runbooks
        if alert.finding:
            assert FINDINGS[alert.finding].remedy in runbooks


def test_every_finding_has_an_alert():
    alerts = {alert.name: alert for alert in alerting.build_alerts(SETTINGS)}
    for code, spec in FINDINGS.items():
        assert spec.alert in alerts, f"{code} names alert {spec.alert}, which does not exist"
        assert alerts[spec.alert].finding in (code, None)
    assert set(FINDINGS) <= {alert.finding for alert in alerts.values()}


def test_amtool_checks_the_alertmanager_example():
    result = subprocess.run(
        [tool("amtool"), "check-config", str(alerting.ALERTMANAGER_FILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def alertmanager(tmp_path):
    """The example config, run by the real Alertmanager on 127.0.0.1 (receivers point nowhere)."""
    config = alerting.alertmanager_document(SETTINGS)
    for receiver in config["receivers"]:
        receiver["webhook_configs"][0]["url"] = f"http://127.0.0.1:{services.free_port()}/"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    with services.alertmanager(path, tmp_path / "data") as url:
        yield url


def post(url: str, name: str, severity: str, **labels) -> None:
    alert = {"labels": {"alertname": name, "severity": severity, "account_id": "1", "region": "us-east-1", **labels}}
    requests.post(f"{url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()


def states(url: str) -> dict:
    alerts = requests.get(f"{url}/api/v2/alerts", timeout=5).json()
    return {
        (a["labels"]["alertname"], a["labels"].get("vpn_connection_id"), a["labels"].get("tunnel")): a["status"][
            "state"
        ]
        for a in alerts
    }


def test_one_cause_pages_once(alertmanager):
    post(alertmanager, "VpnConnectionDown", "critical", vpn_connection_id="vpn-a")
    post(alertmanager, "VpnTunnelDown", "warning", vpn_connection_id="vpn-a", tunnel="1.1.1.1")
    post(alertmanager, "VpnTunnelDown", "warning", vpn_connection_id="vpn-b", tunnel="2.2.2.2")
    post(alertmanager, "VpnTunnelIpsecUpBgpDown", "critical", vpn_connection_id="vpn-b", tunnel="2.2.2.2")
    post(alertmanager, "VpnTunnelIpsecUpBgpDown", "critical", vpn_connection_id="vpn-b", tunnel="2.2.2.3")
    deadline = time.time() + 20
    while True:
        seen = states(alertmanager)
        if len(seen) == 5 and seen[("VpnTunnelDown", "vpn-a", "1.1.1.1")] == "suppressed":
            break
        assert time.time() < deadline, seen
        time.sleep(0.3)
    assert seen[("VpnConnectionDown", "vpn-a", None)] == "active"
    assert seen[("VpnTunnelDown", "vpn-b", "2.2.2.2")] == "active"  # another connection: not silenced
    assert seen[("VpnTunnelIpsecUpBgpDown", "vpn-b", "2.2.2.2")] == "suppressed"  # tunnel down silences it
    assert seen[("VpnTunnelIpsecUpBgpDown", "vpn-b", "2.2.2.3")] == "active"  # other tunnel: still pages


def generate(tmp_path: Path, settings: str) -> subprocess.CompletedProcess:
    (tmp_path / "settings.yml").write_text(settings)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "generate.alerting",
            "--settings",
            str(tmp_path / "settings.yml"),
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_operators_set_receivers_runbooks_job_and_durations_in_one_file(tmp_path):
    result = generate(
        tmp_path,
        """
runbook_base: https://wiki.example.com/vpn-runbooks
exporter_job: job="vpn"
bgp_down_for: 4m
receivers:
  pager:
    pagerduty_configs: [{routing_key: 0123456789abcdef0123456789abcdef, severity: critical,
                         details: {cause: '{{ .CommonAnnotations.cause }}'}}]
  ticket:
    slack_configs: [{api_url: 'https://hooks.slack.com/services/T/B/X', channel: '#vpn'}]
""",
    )
    assert result.returncode == 0, result.stderr
    rules = yaml.safe_load((tmp_path / "out" / "alerts" / "aws-vpn.rules.yml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    assert alerts["VpnTunnelIpsecUpBgpDown"]["for"] == "4m"
    assert (
        alerts["VpnTunnelIpsecUpBgpDown"]["annotations"]["runbook_url"]
        == "https://wiki.example.com/vpn-runbooks#vpntunnelipsecupbgpdown"
    )
    assert "https://wiki.example.com/vpn-runbooks#checklist" in alerts["VpnConnectionDown"]["annotations"]["cause"]
    assert alerts["VpnExporterAbsent"]["expr"] == 'absent(up{job="vpn"} == 1)'
    manager = tmp_path / "out" / "alerts" / "alertmanager.yml"
    receivers = {r["name"]: r for r in yaml.safe_load(manager.read_text())["receivers"]}
    assert receivers["pager"]["pagerduty_configs"][0]["severity"] == "critical"
    checked = subprocess.run([tool("amtool"), "check-config", str(manager)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    "settings,error",
    [
        ("bgp_down_fr: 3m", "bgp_down_fr: unknown key, did you mean bgp_down_for?"),
        ("bgp_down_for: soon", "bgp_down_for: 'soon' is not a Prometheus duration"),
        ("receivers: {pager: {}}", "receivers: expected exactly 'pager' and 'ticket'"),
        ("[1, 2", "invalid YAML"),
        ("bgp_down_for: 3m\nbgp_down_for: 4m", "duplicate key 'bgp_down_for'"),
    ],
)
def test_a_bad_settings_file_fails_naming_the_file_and_key(tmp_path, settings, error):
    result = generate(tmp_path, settings)
    assert result.returncode != 0 and str(tmp_path / "settings.yml") in result.stderr and error in result.stderr
    assert not (tmp_path / "out").exists()


def test_every_settings_mistake_is_reported_at_once(tmp_path):
    """Three mistakes in alerts/settings.yml, three ``FILE: KEY: REASON`` lines in the file's order."""
    path = tmp_path / "settings.yml"
    path.write_text("bgp_down_for: soon\nflap_changes: many\nrunbok_base: https://wiki.example.com/\n")
    with pytest.raises(SystemExit) as failure:
        alerting.load_settings(path)
    lines = str(failure.value).splitlines()
    assert [line.partition(" (known keys")[0] for line in lines] == [
        f"{path}: bgp_down_for: 'soon' is not a Prometheus duration (e.g. 5m)",
        f"{path}: flap_changes: expected int, got 'many'",
        f"{path}: runbok_base: unknown key, did you mean runbook_base?",
    ]
