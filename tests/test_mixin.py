"""mixin/: evaluated with the real jsonnet, it holds exactly the rule groups of alerts/aws-vpn.rules.yml and the
dashboards of dashboards/*.json, and an override of its _config reaches every rule and dashboard."""

from __future__ import annotations

import json
from pathlib import Path

import _jsonnet
import pytest
import yaml

from generate import alerting
from generate import mixin as generate

ROOT = Path(__file__).resolve().parent.parent


def evaluate(overrides: dict | None = None) -> dict:
    """The mixin's hidden fields, as a jsonnet user gets them, with ``_config`` overridden."""
    snippet = (
        f"local mixin = (import 'mixin.libsonnet') + {{ _config+:: {json.dumps(overrides or {})} }};\n"
        "{ alerts: mixin.prometheusAlerts, rules: mixin.prometheusRules, dashboards: mixin.grafanaDashboards,"
        " config: mixin._config }"
    )
    return json.loads(_jsonnet.evaluate_snippet(str(generate.MIXIN_DIR / "evaluate.jsonnet"), snippet))


@pytest.fixture(scope="session")
def default() -> dict:
    return evaluate()


OVERRIDE = {"jobSelector": 'job="vpn",cluster="eu"', "runbookBase": "https://wiki.example.com/vpn"}


@pytest.fixture(scope="session")
def overridden() -> dict:
    return evaluate(OVERRIDE)


def test_the_generated_data_is_current():
    for name, text in generate.render().items():
        assert (generate.GENERATED_DIR / name).read_text() == text, (
            f"mixin/generated/{name} is stale: run scripts/generate"
        )
    assert sorted(p.name for p in generate.GENERATED_DIR.iterdir()) == sorted(generate.render())


def test_alerts_and_recording_rules_are_the_rules_file(default):
    committed = yaml.safe_load(alerting.RULES_FILE.read_text())["groups"]
    assert default["rules"]["groups"] + default["alerts"]["groups"] == committed
    assert all("record" in rule for group in default["rules"]["groups"] for rule in group["rules"])
    assert all("alert" in rule for group in default["alerts"]["groups"] for rule in group["rules"])
    assert default["config"] == {
        "jobSelector": alerting.SETTINGS["exporter_job"],
        "runbookBase": alerting.SETTINGS["runbook_base"],
    }


def test_dashboards_are_the_dashboards_json(default):
    committed = {
        json.loads(path.read_text())["uid"] + ".json": json.loads(path.read_text())
        for path in sorted((ROOT / "dashboards").glob("*.json"))
    }
    assert default["dashboards"] == committed


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def test_an_override_of_the_config_reaches_every_rule_and_dashboard(default, overridden):
    job, base = alerting.SETTINGS["exporter_job"], alerting.SETTINGS["runbook_base"]
    # the overridden mixin is the default one with each setting replaced, everywhere, and nowhere else
    expected = json.loads(
        json.dumps(default["alerts"])
        .replace(json.dumps(job)[1:-1], json.dumps(OVERRIDE["jobSelector"])[1:-1])
        .replace(base, OVERRIDE["runbookBase"])
    )
    assert overridden["alerts"] == expected
    rules = {rule["alert"]: rule for group in overridden["alerts"]["groups"] for rule in group["rules"]}
    assert rules["VpnExporterAbsent"]["expr"] == 'absent(up{job="vpn",cluster="eu"} == 1)'
    assert (
        rules["VpnTunnelIpsecUpBgpDown"]["annotations"]["runbook_url"]
        == "https://wiki.example.com/vpn#vpntunnelipsecupbgpdown"
    )
    everything = list(_strings([overridden["alerts"], overridden["rules"], overridden["dashboards"]]))
    assert not any(job in text or base in text for text in everything), "a setting left unreplaced"
    assert not any("@@" in text for text in everything), "a placeholder left"
    exprs = [
        target["expr"]
        for dashboard in overridden["dashboards"].values()
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    assert 'process_resident_memory_bytes{job="vpn",cluster="eu"}' in exprs
    assert overridden["rules"] == default["rules"]  # the recording rules name no job
