"""One place for links: the config's ``runbook_base`` points the status page's and diagnose's runbook links at the
operator's own wiki, as ``alerts/settings.yml``'s does for the alerts."""

from __future__ import annotations

import pytest

from exporter.config import RUNBOOK_BASE, ConfigError, load_config
from exporter.diagnosis.report import build_report, render_text
from exporter.web import statuspage
from tests.test_statuspage import NOW, connection, snapshot, tunnel

WIKI = "https://wiki.example.com/network/vpn-runbooks"


def _config(tmp_path, extra: str):
    path = tmp_path / "config.yaml"
    path.write_text(f"targets:\n  - regions: [us-east-1]\n{extra}")
    return load_config(path)


def test_the_default_is_the_projects_runbooks_and_the_config_can_point_elsewhere(tmp_path):
    assert _config(tmp_path, "").runbook_base == RUNBOOK_BASE
    assert _config(tmp_path, f"runbook_base: {WIKI}\n").runbook_base == WIKI


@pytest.mark.parametrize(
    "value", ["ftp://wiki/x", "javascript:alert(1)", '"https://wiki/a b"', '"https://wiki/\\"><script>"', "[1]"]
)
def test_a_runbook_base_that_is_not_a_plain_http_url_is_refused_naming_the_key(tmp_path, value):
    with pytest.raises(ConfigError, match="runbook_base"):
        _config(tmp_path, f"runbook_base: {value}\n")


def _down():
    from dataclasses import replace

    return snapshot(
        [connection("vpn-0d", "delta", replace(tunnel("192.0.2.1", up=False), status_message="ipsec_down"))]
    )


def test_the_status_page_links_each_finding_to_the_configured_runbooks():
    taken = _down()
    assert taken.findings
    page = statuspage.render(taken, now=NOW, runbook_base=WIKI)
    assert f'href="{WIKI}#' in page
    assert RUNBOOK_BASE not in page
    assert f'href="{RUNBOOK_BASE}#' in statuspage.render(taken, now=NOW)  # the default


def test_diagnose_gives_each_finding_and_the_next_step_its_runbook_at_the_configured_base():
    report = build_report(_down(), runbook_base=WIKI)
    findings = [f for c in report["connections"] for f in c["findings"]]
    assert findings and all(f["runbook"].startswith(f"{WIKI}#") for f in findings)
    steps = [c["next_step"] for c in report["connections"] if c.get("next_step")]
    assert steps and all(step["runbook"].startswith(f"{WIKI}#") for step in steps)
    assert f"runbook: {WIKI}#" in render_text(report)


def test_the_running_exporters_page_uses_the_configs_runbook_base(aws, make_exporter):
    import requests

    from exporter.config import Target
    from tests.conftest import add_vpn_connection, tunnel_telemetry

    add_vpn_connection("us-east-1", [tunnel_telemetry("198.51.100.1", "DOWN", "IPSEC IS UP")])
    exporter = make_exporter([Target(regions=("us-east-1",))], runbook_base=WIKI)
    exporter.poll_once()
    page = requests.get(exporter.url + "/", timeout=10).text
    assert f"{WIKI}#" in page and f"{RUNBOOK_BASE}#" not in page
