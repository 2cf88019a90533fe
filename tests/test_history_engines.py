"""Ground truth on real engines: 90 days of known history, backfilled into a Prometheus TSDB (promtool
create-blocks-from openmetrics, then create-blocks-from rules for the recording rules, in three passes as the
derived rules read the pass before), served by Debian's Prometheus; and imported into Debian's VictoriaMetrics
(no recording rules there: the report falls back to the raw counters). The report's figures must equal the
ground truth: SLA % to 0.001 %, flaps exactly, downtime by cause to the second."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
import yaml

from exporter.report import series, sla
from generate import alerting
from tests import history_ground_truth as truth
from tests import services
from tests.services import tool

pytestmark = pytest.mark.slow
MONTHS = ("2026-10", "2026-11")
# promtool (a hidden flag of 2.42) reads its input once per block: 2-hour blocks over 91 days took minutes, and as
# many blocks again per rule
MAX_BLOCK = "--max-block-duration=720h"  # 30 days of 5-minute steps: within a range query's 11,000 points
RULES_FROM = truth.at("2026-09-30T00:00:00")  # the rules from the day before October: all the checks need


def _backfill_rules(url: str, groups: list[str], workdir: Path, data: Path) -> None:
    rules = workdir / f"{groups[0]}.yml"
    document = alerting.rules_document(alerting.load_settings())
    rules.write_text(yaml.safe_dump({"groups": [g for g in document["groups"] if g["name"] in groups]}))
    out = workdir / f"blocks-{groups[0]}"
    subprocess.run(
        [
            tool("promtool"),
            "tsdb",
            "create-blocks-from",
            "rules",
            f"--start={RULES_FROM}",
            f"--end={truth.END + 1}",
            f"--url={url}",
            "--eval-interval=5m",
            MAX_BLOCK,
            f"--output-dir={out}",
            str(rules),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    for block in out.iterdir():
        shutil.move(str(block), data / block.name)


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("backfill")
    data = workdir / "data"
    (workdir / "history.om").write_text(truth.exposition(openmetrics=True))
    subprocess.run(
        [
            tool("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            MAX_BLOCK,
            str(workdir / "history.om"),
            str(data),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (workdir / "prometheus.yml").write_text("global: {}\n")
    flags = ("--storage.tsdb.retention.time=100y",)
    for groups in (["aws-vpn-history"], ["aws-vpn-history-derived"], ["aws-vpn-history-sla"]):
        with services.prometheus(workdir / "prometheus.yml", data, *flags) as url:
            _backfill_rules(url, groups, workdir, data)
    with services.prometheus(workdir / "prometheus.yml", data, *flags) as url:
        yield url


@pytest.fixture(scope="module")
def victoria(tmp_path_factory):
    port = services.free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        tool("victoria-metrics"),
        f"-storageDataPath={tmp_path_factory.mktemp('vm')}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-retentionPeriod=100y",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        services.wait_until(lambda: _healthy(url), 60, "victoria-metrics")
        response = requests.post(
            f"{url}/api/v1/import/prometheus", data=truth.exposition(openmetrics=False).encode(), timeout=300
        )
        assert response.status_code in (200, 204), response.text
        expected = sum(len(family) for family in truth._series().values()) * len(truth.TIMES)

        def every_sample_searchable() -> bool:  # an import is searchable only once VictoriaMetrics has flushed it
            requests.get(f"{url}/internal/force_flush", timeout=60)
            found = sla.PrometheusAPI(url).query('sum(count_over_time({__name__=~"aws_vpn_.+"}[100d]))', truth.END)
            return bool(found) and int(float(found[0]["value"][1])) == expected

        services.wait_until(every_sample_searchable, 60, "every imported sample to be searchable", step=1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _check(report: sla.Report, start: int, end: int) -> None:
    found = {c.vpn_connection_id: c for c in report.connections}
    assert set(found) == {c.vpn_connection_id for c in truth.CONNECTIONS}
    for connection in truth.CONNECTIONS:
        expected, got = truth.truth(connection, start, end), found[connection.vpn_connection_id]
        assert got.uptime_percent == pytest.approx(expected["uptime_percent"], abs=0.001), connection
        assert got.flaps == expected["flaps"], connection
        assert got.observed_seconds == pytest.approx(expected["observed_seconds"], abs=1)
        for cause, seconds in expected["unavailable_by_cause"].items():
            assert got.unavailable_by_cause.get(cause, 0) == pytest.approx(seconds, abs=1), (connection, cause)
    uptimes = [c.uptime_percent for c in report.connections]
    assert uptimes == sorted(uptimes)  # worst first


def _month(month: str) -> tuple[sla.Span, int, int]:
    span = sla.Span.month(month)
    return span, int(span.start.timestamp()), int(span.end.timestamp())


NOW = datetime(2026, 12, 4, tzinfo=timezone.utc)


def rules_boundary(url: str, midnight: int) -> int:
    """Where the recording rules' day ends: Prometheus evaluates a group at a fixed offset within its interval (a
    hash of the group), so the daily value read at midnight is the one evaluated up to an interval before, over the
    counters' last samples then. The ground truth of the rules' figures is taken over the same instants."""
    (sample,) = sla.PrometheusAPI(url).query(
        f'timestamp({series.recorded(series.OBSERVED_SECONDS, "1d")}{{vpn_connection_id="vpn-0a1"}})', midnight
    )
    evaluated = float(sample["value"][1])
    assert midnight - 300 < evaluated <= midnight  # within one evaluation interval (5m here; 1m by default)
    return int(evaluated) // truth.STEP * truth.STEP


@pytest.mark.parametrize("month", MONTHS)
def test_the_report_from_the_recording_rules_equals_the_ground_truth(backfilled, month):
    span, start, end = _month(month)
    report = sla.build_report(sla.PrometheusAPI(backfilled), span, "rules", now=NOW)
    assert report.source == "rules"
    _check(report, rules_boundary(backfilled, start), rules_boundary(backfilled, end))


@pytest.mark.parametrize("month", MONTHS)
def test_the_report_from_the_raw_counters_equals_the_ground_truth(backfilled, month):
    span, start, end = _month(month)
    _check(sla.build_report(sla.PrometheusAPI(backfilled), span, "raw", now=NOW), start, end)


def test_the_credit_tiers_and_longest_outages_of_november(backfilled):
    report = sla.build_report(sla.PrometheusAPI(backfilled), sla.Span.month("2026-11"), "rules", now=NOW)
    found = {c.vpn_connection_id: c for c in report.connections}
    assert found[truth.HOSTILE_ID].credit_percent == 100  # 50 h of 720: 93.06 %
    assert found["vpn-0c3"].credit_percent == 25  # 10 h: 98.61 %
    assert found["vpn-0b2"].credit_percent == 0  # 10 min: 99.977 %
    assert found["vpn-0c3"].longest_outage_seconds == 8 * 3600  # across midnight, in whole hours
    assert found[truth.HOSTILE_ID].longest_outage_seconds == 48 * 3600
    assert found["vpn-0c3"].worst_tunnel.tunnel == truth.CONNECTIONS[2].tunnel(0)


def test_the_month_to_date_rule_and_the_daily_ratio_equal_the_ground_truth(backfilled):
    """Read ten minutes after midnight: the month-to-date rule's first evaluation of the day has run (it sums the
    month's days through that midnight; on the 1st, the month just ended)."""
    api = sla.PrometheusAPI(backfilled)
    for connection in truth.CONNECTIONS:
        labels = ",".join(f'{k}="{truth._escaped(v)}"' for k, v in connection.labels.items())
        for midnight, month_start in (
            ("2026-11-11", "2026-11-01"),
            ("2026-11-30", "2026-11-01"),
            ("2026-12-01", "2026-11-01"),
            ("2026-11-01", "2026-10-01"),
        ):
            at = truth.at(f"{midnight}T00:00:00")
            start = rules_boundary(backfilled, truth.at(f"{month_start}T00:00:00"))
            expected = truth.truth(connection, start, rules_boundary(backfilled, at))["uptime_percent"] / 100
            got = api.query(f"{series.SLA_UPTIME_MONTH_TO_DATE}{{{labels}}}", at + 600)
            assert float(got[0]["value"][1]) == pytest.approx(expected, abs=1e-5), (connection, midnight)
        # days no outage spans the start or end of (where the rules' day ends does not matter)
        for midnight in ("2026-10-13", "2026-11-04", "2026-11-21"):
            at = truth.at(f"{midnight}T00:00:00")
            expected = truth.truth(connection, at - 86400, at)["uptime_percent"] / 100
            got = api.query(f"{series.AVAILABILITY_1D}{{{labels}}}", at)
            assert float(got[0]["value"][1]) == pytest.approx(expected, abs=1e-9), (connection, midnight)


@pytest.mark.parametrize("month", MONTHS)
def test_victoria_metrics_gives_the_same_numbers_from_the_raw_counters(victoria, month):
    span, start, end = _month(month)
    report = sla.build_report(sla.PrometheusAPI(victoria), span, "auto", now=NOW)
    assert report.source == "raw" and any("no recording rules" in note for note in report.notes)
    _check(report, start, end)


def _flaps_dashboard() -> dict[str, list[str]]:
    dashboard = json.loads((Path(__file__).resolve().parent.parent / "dashboards" / "flaps.json").read_text())
    return {panel["title"]: [target["expr"] for target in panel["targets"]] for panel in dashboard["panels"]}


def _dashboard_query(url: str, expr: str, at: int) -> list[dict]:
    for variable, value in (("$__range", "30d"), ("$account_id", ".*"), ("$region", ".*")):
        expr = expr.replace(variable, value)
    return sla.PrometheusAPI(url).query(expr, at)


def test_the_trends_dashboard_shows_the_ground_truth(backfilled):
    """November, as the dashboard shows it on 1 December with a 30-day range (and on 11 November for a day)."""
    # ten minutes after midnight: the month-to-date rule has run for the 1st (the month just ended), and the 30-day
    # range holds 30 midnights (one ending exactly at a midnight holds 31 in Prometheus 2's closed ranges)
    panels, at = _flaps_dashboard(), truth.at("2026-12-01T00:00:00") + 600
    start, end = rules_boundary(backfilled, at - 600 - 30 * 86400), rules_boundary(backfilled, at - 600)
    by_id = {c.vpn_connection_id: c for c in truth.CONNECTIONS}
    for title, exprs in panels.items():
        if "endpoint replacements" not in title:  # the raw maintenance timestamp: not in the history
            for expr in exprs:
                assert _dashboard_query(backfilled, expr, at), (title, expr)
    uptime, credit, unavailable = panels["SLA month to date (AWS: 99.95 % per connection and billing month)"]
    for sample in _dashboard_query(backfilled, uptime, at):
        expected = truth.truth(by_id[sample["metric"]["vpn_connection_id"]], start, end)
        assert float(sample["value"][1]) == pytest.approx(expected["uptime_percent"], abs=0.001)
    for sample in _dashboard_query(backfilled, credit, at):
        expected = truth.truth(by_id[sample["metric"]["vpn_connection_id"]], start, end)
        assert float(sample["value"][1]) == sla.credit(expected["uptime_percent"])
    for sample in _dashboard_query(backfilled, unavailable, at):
        expected = truth.truth(by_id[sample["metric"]["vpn_connection_id"]], start, end)
        assert float(sample["value"][1]) == pytest.approx(sum(expected["unavailable_by_cause"].values()), abs=1)
    (by_cause,) = panels["Downtime by cause in the range (connection unavailable, whole days)"]
    for sample in _dashboard_query(backfilled, by_cause, at):
        expected = truth.truth(by_id[sample["metric"]["vpn_connection_id"]], start, end)["unavailable_by_cause"]
        assert float(sample["value"][1]) == pytest.approx(expected[sample["metric"]["cause"]], abs=1)
    (lowest,) = panels["Worst offenders: lowest uptime in the range"]
    for sample in _dashboard_query(backfilled, lowest, at):
        expected = truth.truth(by_id[sample["metric"]["vpn_connection_id"]], start, end)
        assert float(sample["value"][1]) == pytest.approx(expected["uptime_percent"], abs=0.001)
    (most,) = panels["Worst offenders: most flaps in the range"]
    assert sum(float(s["value"][1]) for s in _dashboard_query(backfilled, most, at)) == sum(
        truth.truth(c, start, end)["flaps"] for c in truth.CONNECTIONS
    )
    day = truth.at("2026-11-11T00:00:00")
    day_start, day_end = rules_boundary(backfilled, day - 86400), rules_boundary(backfilled, day)
    (flaps,) = panels["Flaps per day"]
    assert sum(float(s["value"][1]) for s in _dashboard_query(backfilled, flaps, day)) == sum(
        truth.truth(c, day_start, day_end)["flaps"] for c in truth.CONNECTIONS
    )  # vpn-0c3 went down at 20:00
    (bgp,) = panels["Time per day with IPsec up, BGP down"]
    sixth = truth.at("2026-11-06T00:00:00")
    (bgp_down,) = [s for s in _dashboard_query(backfilled, bgp, sixth) if float(s["value"][1])]
    assert bgp_down["metric"]["vpn_connection_id"] == "vpn-0c3" and float(bgp_down["value"][1]) == 15 * 60 + 30
    (availability,) = panels["Daily availability per connection"]
    quiet_edges = truth.at("2026-11-21T00:00:00")  # a day no outage spans the start or end of
    for sample in _dashboard_query(backfilled, availability, quiet_edges):
        expected = truth.truth(by_id[sample["metric"]["vpn_connection_id"]], quiet_edges - 86400, quiet_edges)
        assert float(sample["value"][1]) == pytest.approx(expected["uptime_percent"] / 100, abs=1e-9)
