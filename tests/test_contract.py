"""The metric contract (``exporter/contract.py``) is the one definition of every metric: the exposition,
the live registry, docs/metrics.md's table, the alert rules and the dashboards all agree with it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.contract import METRIC_DOCS, METRICS
from exporter.exposition.instrumentation import ExporterMetrics
from generate import metrics_doc
from tests.docs import doc

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"\baws_vpn_[a-z_:]+")


def exposed() -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """name -> (type, help, label names) of every aws_vpn family the golden snapshot and the registry expose."""
    text = (ROOT / "tests" / "golden" / "full.txt").read_text() + ExporterMetrics(lambda: 1.0).render().decode()
    families = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("aws_vpn"):
            continue
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {tuple(sample.labels) for sample in family.samples}
        families[name] = (family.type, family.documentation, labels.pop() if len(labels) == 1 else ())
    return families


def test_every_exposed_family_is_defined_by_the_contract_and_the_other_way_round():
    families = exposed()
    assert set(families) == set(METRICS)
    for name, (kind, documentation, labels) in families.items():
        metric = METRICS[name]
        assert (kind, documentation) == (metric.kind, metric.help_text), name
        if labels:
            assert set(labels) == set(metric.labels), name


@pytest.mark.parametrize("name", METRICS)
def test_names_follow_prometheus_conventions(name):
    metric = METRICS[name]
    assert name.startswith(
        ("aws_vpn_tunnel_", "aws_vpn_connection_", "aws_vpn_customer_gateway_", "aws_vpn_finding_", "aws_vpn_exporter_")
    )
    assert (metric.kind == "counter") == name.endswith("_total")
    assert not name.endswith("_info") or metric.kind == "gauge"
    if "timestamp" in name:
        assert name.endswith("_timestamp_seconds")
    assert metric.unit in ("", "seconds", "bytes")
    assert metric.help.endswith(".") and "\n" not in metric.help
    assert len(set(metric.labels)) == len(metric.labels)


def test_the_metric_table_lists_each_metric_with_its_type():
    rows = dict(re.findall(r"^\| `(aws_vpn_[a-z_]+)` \| (\w+) \|", doc("metrics.md"), re.M))
    assert rows == {name: metric.kind for name, metric in METRICS.items()}


def test_every_metric_has_a_meaning_for_the_generated_page():
    assert list(METRIC_DOCS) == [name for name in METRIC_DOCS if name in METRICS]
    assert set(METRIC_DOCS) == set(METRICS)


def test_the_page_is_not_built_with_a_metric_missing_or_left_over(monkeypatch):
    meanings = dict(METRIC_DOCS)
    gone = meanings.pop("aws_vpn_tunnel_up")
    monkeypatch.setattr(metrics_doc, "METRIC_DOCS", {**meanings, "aws_vpn_tunnel_gone": gone})
    with pytest.raises(ValueError, match="aws_vpn_tunnel_up: defined in METRICS, no meaning") as refused:
        metrics_doc.render()
    assert "aws_vpn_tunnel_gone: in METRIC_DOCS, not defined in METRICS" in str(refused.value)


def test_the_rules_and_dashboards_name_only_defined_metrics():
    rules = (ROOT / "alerts" / "aws-vpn.rules.yml").read_text()
    recorded = set(re.findall(r"record: (\S+)", rules))
    used = set(NAME.findall(rules))
    for path in (ROOT / "dashboards").glob("*.json"):
        used |= {
            name
            for panel in json.loads(path.read_text()).get("panels", [])
            for target in panel.get("targets", [])
            for name in NAME.findall(target.get("expr", ""))
        }
    families = {name.removesuffix(suffix) for name in METRICS for suffix in ("_total", "")}
    # a recorded name level:metric:operations holds its metric's name (without _total), then ':' and the operations
    unknown = {name for name in used - recorded if not any(f":{name}" in record for record in recorded)}
    assert used and unknown <= set(METRICS) | families, unknown - set(METRICS) - families
    named = {record.split(":")[1] for record in recorded if record.count(":") == 2}
    assert named <= families | {"aws_vpn_connection_availability", "aws_vpn_connection_sla_uptime"}, named - families
