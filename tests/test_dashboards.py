"""Every dashboard builds from its grafanalib source, matches its committed JSON, and imports
anywhere (its datasource is a variable)."""

import json
from pathlib import Path

import pytest

from generate import dashboards as generate
from generate.alerting import load_settings

ROOT = Path(__file__).resolve().parent.parent
SOURCES = generate.sources()
SETTINGS = load_settings()  # the committed alerts/settings.yml


def test_the_five_dashboards_exist():
    assert [s.name for s in SOURCES] == [
        "configuration.dashboard.py",
        "connection.dashboard.py",
        "exporter.dashboard.py",
        "flaps.dashboard.py",
        "overview.dashboard.py",
    ]


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_committed_json_is_current(source):
    assert generate.output_of(source).read_text() == generate.render(source, SETTINGS), "stale: run scripts/generate"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_datasource_is_a_variable_everywhere(source):
    dashboard = generate.build(source, SETTINGS)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == "${datasource}"
    for panel in dashboard["panels"]:
        assert panel["datasource"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"] == "${datasource}" for t in panel["targets"]), panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_uids_are_unique_and_stable():
    uids = [json.loads(generate.output_of(s).read_text())["uid"] for s in SOURCES]
    assert sorted(uids) == [
        "aws-vpn-configuration",
        "aws-vpn-connection",
        "aws-vpn-exporter",
        "aws-vpn-flaps",
        "aws-vpn-overview",
    ]


def test_the_connection_dashboard_trends_route_headroom_with_the_findings_line():
    """Accepted routes and the share of AWS's route quota over time, with route_quota_near's threshold drawn."""
    from exporter.contract import TUNNEL_ACCEPTED_ROUTES, TUNNEL_ACCEPTED_ROUTES_QUOTA_RATIO
    from exporter.sources.ec2.telemetry import ROUTE_QUOTA_NEAR

    source = next(s for s in SOURCES if s.name == "connection.dashboard.py")
    panels = {panel["title"]: panel for panel in generate.build(source, SETTINGS)["panels"]}
    assert any(TUNNEL_ACCEPTED_ROUTES + "{" in t["expr"] for t in panels["Accepted routes"]["targets"])
    headroom = panels["Route quota used"]
    assert headroom["type"] == "timeseries"
    assert all(TUNNEL_ACCEPTED_ROUTES_QUOTA_RATIO in t["expr"] for t in headroom["targets"])
    defaults = headroom["fieldConfig"]["defaults"]
    assert defaults["unit"] == "percentunit" and defaults["custom"]["thresholdsStyle"]["mode"] == "line"
    assert {"color": "red", "value": ROUTE_QUOTA_NEAR} in defaults["thresholds"]["steps"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_every_panel_has_a_size_and_a_place_of_its_own_on_the_grid(source):
    """Grafana's grid is 24 columns wide; a panel 0 high, off the grid or over another is drawn wrong (grafanalib's
    GridPos takes (h, w, x, y) by position: every committed panel was once 0 high or 0 wide)."""
    taken: set[tuple[int, int]] = set()
    for panel in generate.build(source, SETTINGS)["panels"]:
        place = panel["gridPos"]
        x, y, w, h = place["x"], place["y"], place["w"], place["h"]
        assert w > 0 and h > 0 and 0 <= x and x + w <= 24 and y >= 0, (panel["title"], place)
        cells = {(column, row) for column in range(x, x + w) for row in range(y, y + h)}
        assert not cells & taken, f"{panel['title']} overlaps another panel at {place}"
        taken |= cells
