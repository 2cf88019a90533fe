"""Each connection's AWS Site-to-Site VPN SLA figures over a month or a range, read from any Prometheus-compatible
HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics) with instant queries only (``/api/v1/query``, ``time=`` the
range's end). It reads the recording rules of ``series`` (what long-term storage keeps) and, where they are
missing, the same expressions over the raw counters. Every label value from the API is untrusted text.

SLA (issue 24's interface): uptime % = 100 x (1 - unavailable / observed) over the range; AWS's service credit is
10 % below 99.95 %, 25 % below 99.0 %, 100 % below 95.0 %.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from exporter.report import series
from exporter.untrusted import printable, printable_tree

CONNECTION = ", ".join(series.CONNECTION)
TUNNEL = ", ".join(series.TUNNEL)
HOUR = 3600

# Exit statuses (docs/report.md): 0 the report was printed; 2 a usage error; 5 the API is unreachable or refused a
# query; 6 no history at all in the range; 7 the recording rules are missing (with --source rules).
EXIT_UNREACHABLE, EXIT_NO_DATA, EXIT_NO_RULES = 5, 6, 7
CREDIT_TIERS = ((95.0, 100), (99.0, 25), (99.95, 10))  # uptime below the first value: the second, a % credit


class ReportError(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def credit(uptime_percent: float) -> int:
    """AWS's service credit (% of the connection's monthly charge) for a month's uptime; 0: the SLA is met."""
    for below, percent in CREDIT_TIERS:
        if uptime_percent < below:
            return percent
    return 0


class PrometheusAPI:
    """Instant queries against /api/v1/query: the one endpoint every Prometheus-compatible store answers."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, expr: str, at: float) -> list[dict]:
        body = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"}).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/query", data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as err:
            detail = err.read(2000).decode("utf-8", "replace")
            raise ReportError(
                f"{self.url} refused a query (HTTP {err.code}): {printable(detail)}", EXIT_UNREACHABLE
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise ReportError(f"cannot query {self.url}: {printable(str(err))}", EXIT_UNREACHABLE) from None
        if not isinstance(answer, dict) or answer.get("status") != "success":
            raise ReportError(f"{self.url} answered an error: {printable(str(answer)[:500])}", EXIT_UNREACHABLE)
        return answer["data"]["result"]


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime

    @classmethod
    def month(cls, text: str) -> Span:
        start = datetime.strptime(text, "%Y-%m").replace(tzinfo=timezone.utc)
        end = (start + timedelta(days=32)).replace(day=1)
        return cls(start, end)

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())


@dataclass
class Tunnel:
    tunnel: str
    flaps: int = 0
    down_seconds: float = 0.0


@dataclass
class Connection:
    account_id: str
    region: str
    vpn_connection_id: str
    observed_seconds: float = 0.0
    unavailable_by_cause: dict[str, float] = field(default_factory=dict)
    flaps: int = 0
    longest_outage_seconds: float | None = None
    tunnels: list[Tunnel] = field(default_factory=list)

    @property
    def unavailable_seconds(self) -> float:
        return sum(self.unavailable_by_cause.values())

    @property
    def uptime_percent(self) -> float:
        return 100.0 * (1 - self.unavailable_seconds / self.observed_seconds) if self.observed_seconds else 0.0

    @property
    def credit_percent(self) -> int:
        return credit(self.uptime_percent)

    @property
    def worst_tunnel(self) -> Tunnel | None:
        return max(self.tunnels, key=lambda t: (t.down_seconds, t.flaps, t.tunnel), default=None)


@dataclass
class Report:
    span: Span
    source: str  # rules | raw
    connections: list[Connection]
    notes: list[str] = field(default_factory=list)


class Queries:
    """The totals over a span, from the recording rules (summed at their step) or from the raw counters."""

    def __init__(self, source: str, span: Span):
        self.source, self.span = source, span
        aligned_days = span.start.timestamp() % series.DAY == 0 and span.seconds % series.DAY == 0
        self.window = "1d" if aligned_days else "1h"

    def total(self, counter: str) -> str:
        if self.source == "raw":
            return series.BY_NAME[counter].increase(f"{self.span.seconds}s")
        return f"sum_over_time({series.recorded(counter, self.window)}[{self.span.seconds - 1}s:{self.window}])"

    def hourly_unavailable(self) -> str:
        """Unavailable seconds per hour of the span, as a range vector (the runs of outage hours)."""
        hourly = (
            series.BY_NAME[series.UNAVAILABLE_SECONDS].increase("1h")
            if self.source == "raw"
            else series.recorded(series.UNAVAILABLE_SECONDS, "1h")
        )
        return f"(sum by ({CONNECTION}) ({hourly}))[{self.span.seconds - 1}s:1h]"


def _key(metric: dict, labels: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(metric.get(label, "")) for label in labels)


def longest_run(values: list[tuple[float, float]]) -> float:
    """The largest sum over consecutive hours that each had unavailable time (an outage longer than an hour shows
    as a run of such hours; two outages within one hour count as one)."""
    best = run = 0.0
    previous = None
    for at, value in values:
        if value > 0 and previous is not None and at - previous == HOUR:
            run += value
        else:
            run = value if value > 0 else 0.0
        previous = at if value > 0 else None
        best = max(best, run)
    return best


def has_rules(api: PrometheusAPI, span: Span) -> bool:
    probe = f"count(last_over_time({series.recorded(series.OBSERVED_SECONDS, '1h')}[{span.seconds}s]))"
    return bool(api.query(probe, span.end.timestamp()))


def build_report(api: PrometheusAPI, span: Span, source: str = "auto", now: datetime | None = None) -> Report:
    now = now or datetime.now(timezone.utc)
    notes = []
    if span.end > now:  # a month in progress: up to the last whole hour
        span = Span(span.start, now.replace(minute=0, second=0, microsecond=0))
        notes.append(f"the range ends in the future: reported up to {span.end:%Y-%m-%d %H:%M} UTC")
    if span.seconds <= 0:
        raise ReportError("the range is empty (its end is not after its start)", EXIT_NO_DATA)
    if source in ("auto", "rules"):
        if has_rules(api, span):
            source = "rules"
        elif source == "rules":
            raise ReportError(
                "the recording rules (vpn_connection:aws_vpn_connection_observed_seconds:increase1h and the rest of "
                "alerts/aws-vpn.rules.yml) have no data in the range: load the rule file, or use --source raw",
                EXIT_NO_RULES,
            )
        else:
            source = "raw"
            notes.append("no recording rules in the range: computed from the raw counters")
    if source == "rules" and span.start.timestamp() % HOUR:
        raise ReportError("the recording rules are hourly: start the range on a whole hour (or --source raw)", 2)
    queries = Queries(source, span)
    at = span.end.timestamp()
    connections: dict[tuple[str, ...], Connection] = {}
    for sample in api.query(queries.total(series.OBSERVED_SECONDS), at):
        key = _key(sample["metric"], series.CONNECTION)
        connections[key] = Connection(key[0], key[1], key[2], observed_seconds=float(sample["value"][1]))
    if not connections:
        raise ReportError(
            f"no history in {span.start:%Y-%m-%d %H:%M} .. {span.end:%Y-%m-%d %H:%M} UTC "
            f"({series.OBSERVED_SECONDS} or its recording rules)",
            EXIT_NO_DATA,
        )
    for sample in api.query(queries.total(series.UNAVAILABLE_SECONDS), at):
        found = connections.get(_key(sample["metric"], series.CONNECTION))
        if found is not None:
            cause = str(sample["metric"].get("cause", ""))
            found.unavailable_by_cause[cause] = found.unavailable_by_cause.get(cause, 0.0) + float(sample["value"][1])
    tunnels: dict[tuple[str, ...], Tunnel] = {}
    for counter, attribute in ((series.STATE_CHANGES, "flaps"), (series.DOWN_SECONDS, "down_seconds")):
        for sample in api.query(f"sum by ({TUNNEL}) ({queries.total(counter)})", at):
            key = _key(sample["metric"], series.TUNNEL)
            if key[:3] not in connections:
                continue
            if key not in tunnels:
                tunnels[key] = Tunnel(key[3])
                connections[key[:3]].tunnels.append(tunnels[key])
            value = float(sample["value"][1])
            setattr(tunnels[key], attribute, round(value) if attribute == "flaps" else value)
    for connection in connections.values():
        connection.flaps = sum(t.flaps for t in connection.tunnels)
        connection.tunnels.sort(key=lambda t: t.tunnel)
    try:
        for sample in api.query(queries.hourly_unavailable(), at):
            found = connections.get(_key(sample["metric"], series.CONNECTION))
            if found is not None:
                found.longest_outage_seconds = longest_run([(float(t), float(v)) for t, v in sample["values"]])
    except ReportError as err:  # a store without subqueries: the rest of the report stands
        notes.append(f"longest outage not derived: {err}")
    ordered = sorted(connections.values(), key=lambda c: (c.uptime_percent, -c.flaps, c.vpn_connection_id))
    return Report(span, source, ordered, notes)


# --- output -----------------------------------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _sla(connection: Connection) -> str:
    return "met" if connection.credit_percent == 0 else f"missed: {connection.credit_percent} % credit"


def _causes(connection: Connection) -> str:
    return ", ".join(
        f"{printable(cause)} {_duration(seconds)}" for cause, seconds in sorted(connection.unavailable_by_cause.items())
    )


def _worst(connection: Connection) -> str:
    worst = connection.worst_tunnel
    if worst is None:
        return "n/a"
    return f"{printable(worst.tunnel)} ({worst.flaps} flaps, down {_duration(worst.down_seconds)})"


def rows(report: Report) -> list[dict]:
    """One flat record per connection (json, csv and markdown), label values as printable text."""
    found = []
    for c in report.connections:
        worst = c.worst_tunnel
        found.append(
            {
                "account_id": printable(c.account_id),
                "region": printable(c.region),
                "vpn_connection_id": printable(c.vpn_connection_id),
                "uptime_percent": round(c.uptime_percent, 6),
                "sla": "met" if c.credit_percent == 0 else "missed",
                "credit_percent": c.credit_percent,
                "flaps": c.flaps,
                "longest_outage_seconds": None if c.longest_outage_seconds is None else round(c.longest_outage_seconds),
                "unavailable_seconds": round(c.unavailable_seconds, 3),
                **{
                    f"unavailable_{printable(k)}_seconds": round(v, 3)
                    for k, v in sorted(c.unavailable_by_cause.items())
                },
                "observed_seconds": round(c.observed_seconds, 3),
                "worst_tunnel": printable(worst.tunnel) if worst else "",
            }
        )
    return found


def render_json(report: Report) -> str:
    document = {
        "from": report.span.start.isoformat(),
        "to": report.span.end.isoformat(),
        "source": report.source,
        "notes": report.notes,
        "connections": [
            {**row, "tunnels": printable_tree([asdict(t) for t in c.tunnels])}
            for row, c in zip(rows(report), report.connections, strict=True)
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a leading = + - @ would start a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def render_csv(report: Report) -> str:
    records = rows(report)
    columns = list(dict.fromkeys(key for record in records for key in record))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(column)) for column in columns])
    return out.getvalue()


MARKDOWN_SPECIAL = str.maketrans({char: "\\" + char for char in "\\`*_{}[]()<>#+-.!|~"})


def _md(value: object) -> str:
    return printable(str(value)).translate(MARKDOWN_SPECIAL)


def render_markdown(report: Report) -> str:
    lines = [
        f"### AWS VPN availability, {report.span.start:%Y-%m-%d %H:%M} to {report.span.end:%Y-%m-%d %H:%M} UTC",
        "",
        "| Connection | Account | Region | Uptime % | SLA | Flaps | Longest outage | Downtime by cause | Worst tunnel |",
        "|---|---|---|---:|---|---:|---|---|---|",
    ]
    for c in report.connections:
        lines.append(
            "| "
            + " | ".join(
                [
                    _md(c.vpn_connection_id),
                    _md(c.account_id),
                    _md(c.region),
                    f"{c.uptime_percent:.3f}",
                    _sla(c),
                    str(c.flaps),
                    _duration(c.longest_outage_seconds),
                    _md(_causes(c)) or "none",
                    _md(_worst(c)),
                ]
            )
            + " |"
        )
    lines += ["", *(f"_Note: {_md(note)}_" for note in report.notes)]
    return "\n".join(lines).rstrip() + "\n"


def render_text(report: Report) -> str:
    lines = [
        f"AWS VPN availability {report.span.start:%Y-%m-%d %H:%M} .. {report.span.end:%Y-%m-%d %H:%M} UTC "
        f"(from the {'recording rules' if report.source == 'rules' else 'raw counters'}), worst first",
        "",
    ]
    for c in report.connections:
        lines += [
            f"{printable(c.vpn_connection_id)}  {printable(c.account_id)}/{printable(c.region)}",
            f"  uptime {c.uptime_percent:.3f} %  SLA {_sla(c)}  flaps {c.flaps}  "
            f"longest outage {_duration(c.longest_outage_seconds)} (hourly resolution)",
            f"  downtime by cause: {_causes(c) or 'none'}",
            f"  worst tunnel: {_worst(c)}",
        ]
    lines += [f"note: {printable(note)}" for note in report.notes]
    return "\n".join(lines) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "csv": render_csv, "markdown": render_markdown}
