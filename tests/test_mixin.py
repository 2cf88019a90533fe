"""mixin/: evaluated with the real jsonnet, it holds exactly the rule groups of alerts/aws-vpn.rules.yml and the
dashboards of dashboards/*.json; its _config holds every setting of alerts/settings.yml the rules use, and an
override of any of them changes the rules as the generator does with that setting."""

from __future__ import annotations

import json
from pathlib import Path

import _jsonnet
import pytest
import yaml

from generate import alerting
from generate import mixin as generate
from tests import docs

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = alerting.load_settings()  # the committed alerts/settings.yml


def evaluate(overrides: dict | None = None, fields: str = "alerts, rules, dashboards, config") -> dict:
    """The mixin's hidden fields, as a jsonnet user gets them, with ``_config`` overridden."""
    names = {"alerts": "prometheusAlerts", "rules": "prometheusRules", "dashboards": "grafanaDashboards"}
    wanted = [field.strip() for field in fields.split(",")]
    snippet = (
        f"local mixin = (import 'mixin.libsonnet') + {{ _config+:: {json.dumps(overrides or {})} }};\n"
        + "{ "
        + ", ".join(f"{field}: mixin.{names.get(field, '_' + field)}" for field in wanted)
        + " }"
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
    rendered = generate.render(SETTINGS)
    for name, text in rendered.items():
        assert (generate.GENERATED_DIR / name).read_text() == text, (
            f"mixin/generated/{name} is stale: run scripts/generate"
        )
    assert sorted(p.name for p in generate.GENERATED_DIR.iterdir()) == sorted(rendered)


def test_alerts_and_recording_rules_are_the_rules_file(default):
    committed = yaml.safe_load(alerting.RULES_FILE.read_text())["groups"]
    assert default["rules"]["groups"] + default["alerts"]["groups"] == committed
    assert all("record" in rule for group in default["rules"]["groups"] for rule in group["rules"])
    assert all("alert" in rule for group in default["alerts"]["groups"] for rule in group["rules"])
    assert default["config"] == {key: SETTINGS[setting] for key, setting in generate.config_keys().items()}


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
    job, base = SETTINGS["exporter_job"], SETTINGS["runbook_base"]
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


# A value for every setting, each unlike any default (a float that jsonnet's own toString writes as
# 0.29999999999999999): the mixin must give the rules the generator writes with these settings.
EVERY_SETTING = {
    "exporter_job": 'job="vpn",cluster="eu"',
    "runbook_base": "https://wiki.example.com/vpn",
    "bgp_down_for": "4m",
    "tunnel_down_for": "6m",
    "connection_down_for": "2m",
    "redundancy_for": "11m",
    "finding_for": "12m",
    "routes_window": "12h",
    "routes_drop_ratio": 0.3,
    "routes_for": "13m",
    "flap_window": "2h",
    "flap_changes": 6,
    "collection_failing_for": "14m",
    "snapshot_stale_seconds": 600,
    "source_stale_seconds": 1200,
    "log_lag_seconds": 1800,
    "log_lag_for": "16m",
}


def test_the_config_holds_every_setting_of_the_rules():
    """Every setting of alerts/settings.yml but the Alertmanager receivers, under its camelCase name."""
    assert set(generate.config_keys().values()) == set(alerting.DEFAULTS) - {"receivers"} == set(EVERY_SETTING)
    assert generate.config_keys()["bgpDownFor"] == "bgp_down_for"
    assert generate.config_keys()["jobSelector"] == "exporter_job"


@pytest.mark.parametrize("setting", sorted(EVERY_SETTING))
def test_each_setting_shows_in_the_rules(setting):
    """So that the comparison below would catch a setting the mixin drops."""
    changed = alerting.rules_document({**SETTINGS, setting: EVERY_SETTING[setting]})
    assert changed != alerting.rules_document(SETTINGS)


def test_overriding_every_setting_gives_the_rules_the_generator_writes_with_them():
    keys = {setting: key for key, setting in generate.config_keys().items()}
    overridden = evaluate({keys[setting]: value for setting, value in EVERY_SETTING.items()}, "alerts, rules")
    expected = alerting.rules_document({**SETTINGS, **EVERY_SETTING})["groups"]
    assert overridden["rules"]["groups"] + overridden["alerts"]["groups"] == expected
    rules = {rule["alert"]: rule for group in overridden["alerts"]["groups"] for rule in group["rules"]}
    assert rules["VpnTunnelIpsecUpBgpDown"]["for"] == "4m"  # a hold
    assert rules["VpnTunnelFlapping"]["expr"].startswith(
        "(max by (account_id, region, vpn_connection_id, tunnel) (increase(aws_vpn_tunnel_state_changes_total[2h])) >= 6)"
    )
    assert (
        "aws_vpn_tunnel_accepted_routes < 0.3 * max_over_time(aws_vpn_tunnel_accepted_routes[12h])"
        in (rules["VpnAcceptedRoutesDropped"]["expr"])
    )  # a ratio, a window
    assert rules["VpnExporterSnapshotStale"]["expr"].endswith("> 600")  # a threshold in seconds
    assert rules["VpnExporterSourceStale"]["expr"].count("[1200s]") == 1


def test_one_setting_overridden_changes_only_its_rules():
    overridden = evaluate({"findingFor": "1h"}, "alerts")
    expected = alerting.rules_document({**SETTINGS, "finding_for": "1h"})["groups"][len(alerting.RECORDING_GROUPS) :]
    assert overridden["alerts"]["groups"] == expected


def test_a_setting_of_the_wrong_type_is_refused_naming_it():
    with pytest.raises(RuntimeError, match=r"_config.flapChanges: expected a number, got \"many\""):
        evaluate({"flapChanges": "many"}, "alerts")


def test_the_docs_list_every_config_key():
    section = docs.section(docs.doc("deployment.md"), "### Monitoring mixin")
    for key, setting in generate.config_keys().items():
        assert f"`{key}`" in section and f"`{setting}`" in section, key
