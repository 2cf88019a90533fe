"""Shared pieces of the dashboards: the datasource variable, label filters, and panel helpers.

Metric names come from ``exporter.contract`` (one source of truth with the exporter and the alerts).
Every dashboard's datasource is the ``$datasource`` variable, so the JSON imports into any Grafana.
"""

from __future__ import annotations

from grafanalib.core import (
    Dashboard,
    GridPos,
    Stat,
    StateTimeline,
    Table,
    Target,
    Template,
    Templating,
    Time,
    TimeSeries,
)

from exporter import contract as m  # noqa: F401  (re-exported for the dashboard files)

DATASOURCE = "${datasource}"
SCOPE = 'account_id=~"$account_id", region=~"$region"'
CONNECTION_SCOPE = SCOPE + ', vpn_connection_id=~"$vpn_connection_id"'
TUNNEL = "account_id, region, vpn_connection_id, tunnel"
CONNECTION = "account_id, region, vpn_connection_id"


def datasource_variable() -> Template:
    return Template(
        name="datasource", label="Data source", query="prometheus", type="datasource", default="", includeAll=False
    )


def label_variable(name: str, label: str, metric: str, scope: str = "", include_all: bool = True) -> Template:
    query = f"label_values({metric}{{{scope}}}, {name})" if scope else f"label_values({metric}, {name})"
    return Template(
        name=name,
        label=label,
        query=query,
        dataSource=DATASOURCE,
        includeAll=include_all,
        multi=include_all,
        allValue=".*" if include_all else None,
        default="",
        refresh=2,
    )


def scope_variables(connection: bool = False) -> Templating:
    variables = [
        datasource_variable(),
        label_variable("account_id", "Account", m.CONNECTION_INFO),
        label_variable("region", "Region", m.CONNECTION_INFO, 'account_id=~"$account_id"'),
    ]
    if connection:
        variables.append(
            label_variable("vpn_connection_id", "VPN connection", m.CONNECTION_INFO, SCOPE, include_all=False)
        )
    return Templating(list=variables)


def target(expr: str, legend: str = "", instant: bool = False, ref: str = "A") -> Target:
    return Target(
        expr=expr,
        legendFormat=legend,
        instant=instant,
        refId=ref,
        datasource=DATASOURCE,
        format="table" if instant else "time_series",
    )


def _targets(queries, interval: str = "") -> list[Target]:
    refs = "ABCDEFGH"
    found = [target(expr, legend, ref=refs[i]) for i, (expr, legend) in enumerate(queries)]
    for each in found:
        each.interval = interval  # a minimum step: a daily series is shown once a day
    return found


def grid_pos(grid: tuple[int, int, int, int]) -> GridPos:
    """A panel's place, given as (x, y, width, height) in Grafana's 24-column grid. grafanalib's GridPos takes
    (h, w, x, y) positionally: passed by name, so a panel is never 0 high or off the grid."""
    x, y, w, h = grid
    return GridPos(h=h, w=w, x=x, y=y)


def timeseries(
    title: str,
    queries,
    grid: tuple[int, int, int, int],
    unit: str = "short",
    description: str = "",
    stacking: bool = False,
    line_at: float | None = None,
    interval: str = "",
) -> TimeSeries:
    """``line_at``: a red threshold line across the panel (a finding's threshold, say)."""
    red_line = (
        {}
        if line_at is None
        else {
            "thresholdsStyleMode": "line",
            "thresholds": [{"color": "green", "value": None}, {"color": "red", "value": line_at}],
        }
    )
    return TimeSeries(
        title=title,
        dataSource=DATASOURCE,
        targets=_targets(queries, interval),
        gridPos=grid_pos(grid),
        unit=unit,
        description=description,
        stacking={"mode": "normal"} if stacking else {},
        legendDisplayMode="table",
        legendPlacement="right",
        **red_line,
    )


def stat(
    title: str,
    expr: str,
    grid: tuple[int, int, int, int],
    description: str = "",
    red_above: float | None = None,
    unit: str = "none",
) -> Stat:
    thresholds = [{"color": "green", "value": None}]
    if red_above is not None:
        thresholds.append({"color": "red", "value": red_above})
    return Stat(
        title=title,
        dataSource=DATASOURCE,
        targets=[target(expr)],
        gridPos=grid_pos(grid),
        description=description,
        thresholds=thresholds,
        format=unit,
        reduceCalc="lastNotNull",
        graphMode="none",
    )


def table(
    title: str,
    queries,
    grid: tuple[int, int, int, int],
    description: str = "",
    hidden: tuple[str, ...] = ("Time", "__name__", "job", "instance"),
) -> Table:
    """An instant-query table; several queries are merged on their shared labels."""
    refs = "ABCDEFGH"
    transformations = [{"id": "merge", "options": {}}] if len(queries) > 1 else []
    transformations.append({"id": "organize", "options": {"excludeByName": {name: True for name in hidden}}})
    return Table(
        title=title,
        dataSource=DATASOURCE,
        gridPos=grid_pos(grid),
        description=description,
        targets=[target(expr, legend, instant=True, ref=refs[i]) for i, (expr, legend) in enumerate(queries)],
        transformations=transformations,
        filterable=True,
    )


def value_map(zero: tuple[str, str], one: tuple[str, str]) -> list[dict]:
    """Grafana value mappings for a 0/1 series: (text, colour) for each value."""
    return [
        {"type": "value", "options": {"0": {"text": zero[0], "color": zero[1]}, "1": {"text": one[0], "color": one[1]}}}
    ]


UP_DOWN = value_map(("DOWN", "red"), ("UP", "green"))


def timeline(
    title: str, queries, grid: tuple[int, int, int, int], description: str = "", mappings=UP_DOWN
) -> StateTimeline:
    return StateTimeline(
        title=title,
        dataSource=DATASOURCE,
        targets=_targets(queries),
        gridPos=grid_pos(grid),
        description=description,
        mappings=mappings,
        showValue="never",
        mergeValues=True,
    )


def vpn_dashboard(
    title: str,
    uid: str,
    description: str,
    panels: list,
    since: str = "now-6h",
    connection: bool = False,
    refresh: str | None = "30s",
    tags: tuple[str, ...] = (),
) -> Dashboard:
    """A dashboard of this product: shared tags, UTC, the scope variables, numbered panels."""
    return Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=["aws", "vpn", *tags],
        timezone="utc",
        refresh=refresh,
        time=Time(since, "now"),
        templating=scope_variables(connection=connection),
        panels=panels,
    ).auto_panel_ids()
