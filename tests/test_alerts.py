"""Alert rules, their unit tests, runbooks and the Alertmanager example: current, valid, and tested
with the real promtool and Alertmanager."""

import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from exporter import alerting
from exporter.findings import FINDINGS
from tests import alert_cases, services
from tests.services import tool

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path,render", [
    (alerting.RULES_FILE, alerting.render_rules), (alerting.RUNBOOKS_FILE, alerting.render_runbooks),
    (alerting.ALERTMANAGER_FILE, alerting.render_alertmanager), (alert_cases.TEST_FILE, alert_cases.render_tests),
], ids=lambda value: getattr(value, "name", ""))
def test_generated_files_are_current(path, render):
    assert path.read_text() == render(), f"{path.name} is stale: run scripts/generate"


def test_promtool_checks_the_rules():
    result = subprocess.run([tool("promtool"), "check", "rules", str(alerting.RULES_FILE)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerting.build_alerts()) + len(alerting.RECORDING_RULES)} rules found" in result.stdout


def test_promtool_unit_tests_pass():
    result = subprocess.run([tool("promtool"), "test", "rules", alert_cases.TEST_FILE.name], capture_output=True,
                            text=True, timeout=120, cwd=alert_cases.TEST_FILE.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case():
    tests = yaml.safe_load(alert_cases.TEST_FILE.read_text())["tests"]
    checks = [check for case in tests for check in case["alert_rule_test"]]
    for alert in alerting.build_alerts():
        mine = [check for check in checks if check["alertname"] == alert.name]
        assert any(check["exp_alerts"] for check in mine), f"{alert.name} never shown firing"
        assert any(not check["exp_alerts"] for check in mine), f"{alert.name} never shown quiet"


def test_alert_conventions_and_runbooks():
    runbooks = alerting.RUNBOOKS_FILE.read_text()
    names = [alert.name for alert in alerting.build_alerts()]
    assert len(names) == len(set(names))
    for alert in alerting.build_alerts():
        rule = alert.rule()
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
    alerts = {alert.name: alert for alert in alerting.build_alerts()}
    for code, spec in FINDINGS.items():
        assert spec.alert in alerts, f"{code} names alert {spec.alert}, which does not exist"
        assert alerts[spec.alert].finding in (code, None)
    covered = {alert.finding for alert in alerts.values()}
    # connection-level states are alerted on their primary metrics (VpnConnectionDown, VpnRedundancyLost)
    assert set(FINDINGS) - covered == {"connection_down", "redundancy_lost"}


def test_amtool_checks_the_alertmanager_example():
    result = subprocess.run([tool("amtool"), "check-config", str(alerting.ALERTMANAGER_FILE)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def alertmanager(tmp_path):
    """The example config, run by the real Alertmanager on 127.0.0.1 (receivers point nowhere)."""
    config = alerting.alertmanager_document()
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
    return {(a["labels"]["alertname"], a["labels"].get("vpn_connection_id"), a["labels"].get("tunnel")):
            a["status"]["state"] for a in alerts}


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
