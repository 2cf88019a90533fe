"""The status page at ``/``: the served snapshot as server-rendered HTML, for when Grafana is not at hand.

No JavaScript, no build: semantic headings and tables that read without CSS (a small inline style
colours them), refreshed by ``<meta http-equiv="refresh">``. Built per request from the snapshot the
exporter already serves, so it never calls AWS. Every value that came from AWS (Name tags, errors) is
HTML-escaped; the model holds no secret to leak (pre-shared keys are dropped at the boundary).

It reads as an on-call tool: each connection that needs attention opens with one line saying what to do
now (its most likely cause in words and the fix, and where several causes share the evidence, which to
check first and what tells them apart: ``findings.next_step``, the ranking ``diagnose`` and the alerts use);
findings are named in words, critical first; the connections that need no attention are folded to one line
each, after the problems. A GET form filters by account, region, severity and a name search, applied here
when rendering (``Filters``: every value bounded, an unknown one ignored), so it works without JavaScript.
When no AWS call has succeeded the headline says so and what to do first, never that all is well.

The work is bounded at any scale: the connections are sorted worst first and shown PAGE_SIZE at a
time (``/?page=N``); findings are summarised per code, a table bounded by the catalogue. Each connection's
last 30 days (``snapshot.history``) are a strip of day cells, each with its day in a tooltip; a ``<details>``
under it says the same as text (a screen reader's and a page without CSS's), collapsed, runs of alike days
merged, so the page stays small.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from exporter import __version__
from exporter.diagnosis import strip
from exporter.diagnosis.findings import (
    CRITICAL,
    FINDINGS,
    RUNBOOK_BASE,
    SEVERITIES,
    SEVERITY_RANK,
    WARNING,
    next_step,
    runbook_url,
    severity_order,
)
from exporter.diagnosis.report import up_down
from exporter.diagnosis.rules import STATUS_MESSAGES
from exporter.model import Connection, Finding, HistoryDay, RegionTelemetry, Snapshot, SourceResult, Tunnel
from exporter.timefmt import ago
from exporter.untrusted import html_text

REFRESH_SECONDS = 30  # the page reloads itself this often
WAITING_REFRESH_SECONDS = 5  # before the first poll, sooner
PAGE_SIZE = 100  # connections shown in full per page
SOURCES_SHOWN = 200  # successful sources listed in full up to this many (failures always are)
ATTENTION = (CRITICAL, WARNING)  # a connection with a finding of these severities needs attention
FINE = "fine"  # a connection without findings, as the severity filter names it
QUERY_MAX = 2048  # characters of a query string read; the rest is ignored
SEARCH_MAX = 64  # characters of the name search kept

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1b1f24;background:#fff;max-width:90rem}
h1{font-size:1.5rem;margin:0 0 .5rem}h2{font-size:1.2rem;margin:1.8rem 0 .5rem}
h3{font-size:1rem;margin:1.2rem 0 .3rem}table{border-collapse:collapse;margin:.3rem 0}
th,td{border:1px solid #c8ccd1;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f2f4}td.n{text-align:right}.meta{color:#555}
.headline{font-size:1.3rem;font-weight:600;padding:.6rem .8rem;border-radius:4px}
.ok{color:#116329}.bad{color:#b42318}.warn{color:#9a6700}
.headline.ok{background:#dafbe1}.headline.bad{background:#ffebe9}
.banner h2{margin-top:0}.banner{padding:.6rem .8rem;border:2px solid #b42318;background:#ffebe9;border-radius:4px}
.demo{padding:.4rem .8rem;background:#ddf4ff;border:1px solid #54aeff;border-radius:4px}
.critical{color:#b42318;font-weight:600}.warning{color:#9a6700;font-weight:600}.info{color:#0969da}
.name{overflow-wrap:anywhere}nav a{margin-right:1rem}td.summary{width:28%}td.where{width:18%}
.days{margin:.3rem 0}.days summary{cursor:pointer}.days ul{margin:.2rem 0;font-size:.9rem}
.strip{display:inline-flex;align-items:flex-end;gap:1px;height:1.1rem;vertical-align:middle;margin-right:.4rem}
.strip i{width:.55rem;height:35%;background:#2da44e}.strip .g{height:70%;background:#d4a72c}
.strip .d{height:100%;background:#cf222e}.strip .n{height:100%;background:none;box-shadow:inset 0 0 0 1px #afb8c1}
div.action{margin:.3rem 0;padding:.4rem .6rem;border-left:4px solid #b42318;background:#fff8f7;color:#1b1f24;
font-weight:400}.action ol{margin:.2rem 0;padding-left:1.5rem}
.action.warning{border-color:#d4a72c;background:#fffbea}.action.info{border-color:#54aeff;background:#f6fbff}
.code{font-size:.8rem;color:#555}ul.found{margin:.2rem 0}ul.folded{list-style:none;padding:0;font-size:.9rem}
ul.folded li{padding:.1rem 0;border-bottom:1px solid #eee}ul.folded details,ul.folded summary{display:inline;margin:0}form.filters{margin:.5rem 0}
form.filters label{margin-right:.6rem}table.glance td:nth-child(2),table.glance td:nth-child(3){white-space:nowrap}section.conn{border-top:1px solid #c8ccd1;margin-top:1rem}
"""


_e = html_text  # every value shown: AWS's text, escaped for HTML and written printable
# a strip cell's class attribute: none for an up day (most days; the page stays small), else one letter
_CELL = {strip.UP: "", strip.DEGRADED: ' class="g"', strip.DOWN: ' class="d"', strip.NO_DATA: ' class="n"'}


@dataclass(frozen=True)
class Filters:
    """The page's filters, from the query string the form sends (``?account=&region=&severity=&q=``). Each is
    bounded here (an account is 12 digits, a region a short region-like name, a severity one of the page's, the
    search plain text cut to SEARCH_MAX characters); an account or region the snapshot does not hold is ignored
    when rendering. Empty means "all"."""

    account: str = ""
    region: str = ""
    severity: str = ""
    q: str = ""

    @classmethod
    def from_query(cls, query: str) -> Filters:
        values: dict[str, str] = {}
        for key, value in parse_qsl(query[:QUERY_MAX]):
            values.setdefault(key, value)
        account = values.get("account", "")
        region = values.get("region", "")
        severity = values.get("severity", "")
        search = "".join(ch for ch in values.get("q", "") if ch.isprintable()).strip()[:SEARCH_MAX]
        return cls(
            account if re.fullmatch(r"[0-9]{12}", account) else "",
            region if re.fullmatch(r"[a-z]{2}(-[a-z0-9]{1,20}){1,4}", region) else "",
            severity if severity in (*SEVERITIES, FINE) else "",
            search,
        )

    def known(self, accounts: set[str], regions: set[str]) -> Filters:
        """These filters with an account or region the snapshot does not hold dropped."""
        return Filters(
            self.account if self.account in accounts else "",
            self.region if self.region in regions else "",
            self.severity,
            self.q,
        )

    def __bool__(self) -> bool:
        return bool(self.account or self.region or self.severity or self.q)

    def keeps(self, row: _Row) -> bool:
        needle = self.q.casefold()
        return (
            (not self.account or row.region.account_id == self.account)
            and (not self.region or row.region.region == self.region)
            and (not self.severity or row.severity == self.severity)
            and (
                not needle
                or needle in (row.connection.name or "").casefold()
                or needle in row.connection.vpn_connection_id.casefold()
            )
        )

    def query(self, page: int = 1) -> str:
        """``/?...``: these filters (and the page, past the first) as a link's URL, HTML-escaped."""
        pairs = [(k, v) for k, v in (("account", self.account), ("region", self.region)) if v]
        pairs += [(k, v) for k, v in (("severity", self.severity), ("q", self.q)) if v]
        if page > 1:
            pairs.append(("page", str(page)))
        return _e("/?" + urlencode(pairs))


def _age(now: float, then: float | None) -> str:
    return "never" if then is None else ago(now - then)


def _utc(timestamp: float | None) -> str:
    return "-" if timestamp is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _when(now: float, timestamp: float | None) -> str:
    """An age, with the exact time as a tooltip and in a <time> element."""
    if timestamp is None:
        return "-"
    return f'<time datetime="{_utc(timestamp)}" title="{_utc(timestamp)}">{_e(ago(now - timestamp))}</time>'


def _state_cell(text: str) -> str:
    css = {"UP": "ok", "up": "ok", "DOWN": "bad", "down": "bad"}.get(text, "")
    return f'<td class="{css}">{_e(text)}</td>' if css else f"<td>{_e(text)}</td>"


@dataclass
class _Row:
    """One connection, with what it takes to sort it worst first."""

    region: RegionTelemetry
    connection: Connection
    findings: list[Finding] = field(default_factory=list)
    history: tuple[HistoryDay, ...] = ()  # the connection's days as the history holds them; none without one

    @property
    def worst(self) -> int:
        return min((SEVERITY_RANK[f.severity] for f in self.findings), default=len(SEVERITIES))

    @property
    def needs_attention(self) -> bool:
        return any(f.severity in ATTENTION for f in self.findings)

    @property
    def severity(self) -> str:
        """The worst finding's severity, or FINE."""
        return SEVERITIES[self.worst] if self.findings else FINE

    def sort_key(self) -> tuple:
        down = sum(1 for t in self.connection.tunnels if t.status != "UP")
        return (self.worst, -down, self.connection.name, self.connection.vpn_connection_id, self.region.account_id)


def render(
    snapshot: Snapshot | None,
    now: float | None = None,
    demo: bool = False,
    page: int = 1,
    discovery: tuple = (),
    filters: Filters | None = None,
    runbook_base: str = RUNBOOK_BASE,
) -> str:
    """The whole page, as text; ``page`` (from 1) selects which PAGE_SIZE connections are shown;
    ``discovery`` holds each organization target's latest discovery (``sources.discovery.OrganizationView``);
    ``filters`` (``Filters.from_query``) narrows the connections listed; ``runbook_base`` is where the runbook
    links point (the config's ``runbook_base``)."""
    now = time.time() if now is None else now
    parts = [_head(snapshot), "<body>\n<h1>AWS Site-to-Site VPN status</h1>\n"]
    if demo:
        parts.append(
            '<p class="demo"><strong>Demo.</strong> This exporter watches the built-in simulated AWS '
            "(<code>--demo</code>), not a real account.</p>\n"
        )
    if snapshot is None:
        parts.append(
            '<p class="headline warn" role="status">Waiting for the first poll: no data has been '
            f"collected yet. This page reloads every {WAITING_REFRESH_SECONDS} s.</p>\n"
        )
    else:
        parts.extend(_body(snapshot, _snapshot_now(snapshot, now), page, filters or Filters(), runbook_base))
    parts.append(_discovery(discovery, now))
    parts.append(_footer(WAITING_REFRESH_SECONDS if snapshot is None else REFRESH_SECONDS))
    parts.append("</body></html>\n")
    return "".join(parts)


def _snapshot_now(snapshot: Snapshot, now: float) -> float:
    """The wall-clock time the snapshot's own times are compared with: its completion plus the monotonic time
    since, so a step of the wall clock after the poll neither ages its data by hours nor shows it as new."""
    if snapshot.completed_monotonic is None:
        return now
    return snapshot.completed_at + max(0.0, time.monotonic() - snapshot.completed_monotonic)


def _head(snapshot: Snapshot | None) -> str:
    refresh = WAITING_REFRESH_SECONDS if snapshot is None else REFRESH_SECONDS
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="refresh" content="{refresh}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>AWS VPN status</title>\n<style>{_STYLE}</style></head>\n"
    )


def _discovery(views: tuple, now: float) -> str:
    """What each organization target found: the accounts by state, the failing ones, and when it last listed."""
    if not views:
        return ""
    out = ['<h2 id="discovery">Organization discovery</h2>\n<ul>\n']
    for view in views:
        states = ", ".join(f"{count:,} {state}" for state, count in sorted(view.accounts.items())) or "no account"
        failing = sorted(account for account, ok in view.account_success.items() if not ok)
        listed = ("listed " + _when(now, view.last_success)) if view.last_success is not None else "never listed"
        line = (
            f"Accounts listed from {_e(view.discovery_account)}: {_e(states)}; this replica polls "
            f"{view.owned_pairs:,} account and region pairs; {listed}."
        )
        if not view.success:
            line += f' <span class="bad">The latest listing failed: {_e(view.error)}; the last good set is kept.</span>'
        if failing:
            which = (
                "1 account could not be read (its"
                if len(failing) == 1
                else f"{len(failing):,} accounts could not be read (their"
            )
            line += (
                f' <span class="bad">{which} role or DescribeRegions): {_e(", ".join(failing[:10]))}'
                f"{' and more' if len(failing) > 10 else ''}.</span>"
            )
        out.append(f"<li>{line}</li>\n")
    out.append("</ul>\n")
    return "".join(out)


def _footer(refresh: int) -> str:
    return (
        '<h2 id="links">Links</h2>\n<nav><a href="/metrics">Metrics (/metrics)</a> '
        '<a href="/-/healthy">Health (/-/healthy)</a> <a href="/-/ready">Readiness (/-/ready)</a></nav>\n'
        f'<p class="meta">aws-vpn-exporter {_e(__version__)}. Values are cached from the latest poll; '
        f"this page never calls AWS. It reloads every {refresh} s.</p>\n"
    )


def _body(snapshot: Snapshot, now: float, page: int, filters: Filters, runbook_base: str) -> list[str]:
    by_connection: dict[tuple[str, str, str], list[Finding]] = {}
    for finding in snapshot.findings:
        by_connection.setdefault((finding.account_id, finding.region, finding.vpn_connection_id), []).append(finding)
    rows = []
    for region, connection in snapshot.connections():
        ref = (region.account_id, region.region, connection.vpn_connection_id)
        rows.append(_Row(region, connection, by_connection.get(ref, []), snapshot.history.get(ref, ())))
    rows.sort(key=_Row.sort_key)
    attention = sum(1 for row in rows if row.needs_attention)
    tunnels = [t for row in rows for t in row.connection.tunnels]
    up = sum(1 for t in tunnels if t.status == "UP")

    failed = [r for r in snapshot.results if not r.success]
    nothing_read = bool(failed) and len(failed) == len(snapshot.results)
    parts = [_failures(snapshot, now)]
    if nothing_read and not rows:
        headline, css = _nothing_read(failed), "bad"
    elif not rows:
        headline, css = "No VPN connections found in the watched accounts and regions.", "warn"
        if failed:
            headline = "No VPN connections found in the accounts and regions that could be read; some could not."
    elif attention:
        headline, css = f"{attention:,} of {len(rows):,} VPN connections need attention.", "bad"
    else:
        headline, css = f"All {len(rows):,} VPN connections are fine.", "ok"
    if rows and nothing_read:
        headline, css = f"Stale data: {headline[0].lower()}{headline[1:]}", "bad"
    parts.append(f'<p class="headline {css}" role="status">{_e(headline)}</p>\n')
    if 0 < len(failed) < len(snapshot.results):
        parts.append(
            f'<p class="warn" role="alert"><strong>{len(failed):,} of {len(snapshot.results):,} sources '
            f"failed on the latest poll</strong>: {_e(_stale(failed, now))} (see "
            '<a href="#sources">Collection</a>).</p>\n'
        )
    if rows:
        parts.append(
            f"<p>{up:,} of {len(tunnels):,} tunnels UP (AWS status). Snapshot taken "
            f"{_when(now, snapshot.completed_at)} ({_e(_utc(snapshot.completed_at))}).</p>\n"
        )
        filters = filters.known({r.region.account_id for r in rows}, {r.region.region for r in rows})
        parts.append(_filter_form(rows, filters))
        parts.append(_connections(rows, [row for row in rows if filters.keeps(row)], filters, now, page, snapshot))
    read = "all" if not failed else "none" if nothing_read and not rows else "some"
    parts.append(_findings_summary(snapshot.findings, rows, read, runbook_base))
    busy = {(region.account_id, region.region) for region in snapshot.regions if region.connections}
    parts.append(_sources(snapshot.results, now, busy))
    return parts


# What to do first for an error, by what its text says (the first that matches); AWS's codes and botocore's
# messages as the sources report them.
_FIRST_FIXES = (
    (
        ("nocredentials", "no credentials", "unable to locate credentials", "credentials not found"),
        "set AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an instance or pod "
        "role) for the exporter",
    ),
    (
        ("expired", "invalidclienttokenid", "security token", "signaturedoesnotmatch", "authfailure"),
        "renew the exporter's AWS credentials (they are expired or invalid)",
    ),
    (
        ("accessdenied", "access denied", "unauthorizedoperation", "not authorized"),
        "check the IAM policy of the exporter's role: it needs the read-only actions the policy in docs/configuration.md lists",
    ),
    (
        ("throttl", "requestlimitexceeded", "rate exceeded"),
        "wait, or poll less often: AWS is throttling the exporter's calls",
    ),
    (
        ("connect", "endpoint", "timed out", "timeout", "resolve", "unreachable"),
        "check the exporter can reach AWS's endpoints (network, proxy, DNS)",
    ),
)


def _nothing_read(failed: list[SourceResult]) -> str:
    """The headline when every source failed and there is no connection to show: what failed, what to do."""
    error = next((r.error for r in reversed(failed) if r.error), "") or "no error was given"
    reason, said, fix = error.partition("; to fix: ")
    if said:  # the error says what to do itself (sources/failures.py): said once, first
        return f"No AWS call has succeeded ({len(failed):,} sources failed): {fix}. Last error: {reason}"
    folded = error.casefold()
    fix = next(
        (fix for words, fix in _FIRST_FIXES if any(word in folded for word in words)),
        "read the errors below and the exporter's log",
    )
    return f"No AWS call has succeeded ({len(failed):,} sources failed): {fix}. Last error: {error}"


def _failures(snapshot: Snapshot, now: float) -> str:
    """A banner when every source failed on the latest poll: the errors, and how old the data shown is."""
    results = snapshot.results
    if not results or any(r.success for r in results):
        return ""
    last = max((r.last_success_timestamp for r in results if r.last_success_timestamp is not None), default=None)
    stale = (
        "No source has ever succeeded: there is no data to show."
        if last is None
        else f"The data below is stale: it is from the last successful collection, {_e(ago(now - last))} "
        f"({_e(_utc(last))})."
    )
    errors = "".join(
        f"<li>{_e(r.account_id)} {_e(r.region)} {_e(r.source)}: {_e(r.error or 'failed')}</li>"
        for r in results[:SOURCES_SHOWN]
    )
    more = f"<li>and {len(results) - SOURCES_SHOWN:,} more</li>" if len(results) > SOURCES_SHOWN else ""
    return (
        f'<section class="banner" role="alert"><h2>Collection is failing: every source '
        f"({len(results):,}) failed on the latest poll</h2>\n<p>{stale}</p>\n<ul>{errors}{more}</ul></section>\n"
    )


def _stale(failed: list[SourceResult], now: float) -> str:
    """What the failing sources' data is worth: each keeps showing what it last collected."""
    times = [r.last_success_timestamp for r in failed if r.last_success_timestamp is not None]
    if len(times) < len(failed):
        return "some of them have never succeeded, so their accounts and regions are missing"
    return f"what they last collected is still shown, the oldest from {ago(now - min(times))}"


def _findings_summary(findings: tuple[Finding, ...], rows: list[_Row], read: str, runbook_base: str) -> str:
    """Every active finding once, critical first: in words, where, the fix and the runbook. With no finding,
    "none" is said in green only when every source succeeded (``read`` "all"; "some", "none": nothing vouches
    for it)."""
    if not findings:
        if read == "all":
            return '<h2 id="findings">Active findings</h2>\n<p class="ok">No active findings.</p>\n'
        if read == "none":
            return (
                '<h2 id="findings">Active findings</h2>\n<p class="bad">Nothing could be read, so nothing could be '
                "diagnosed.</p>\n"
            )
        return (
            '<h2 id="findings">Active findings</h2>\n<p class="warn">None in what could be read: the sources that '
            'failed (see <a href="#sources">Collection</a>) may hide some.</p>\n'
        )
    names = {
        (r.region.account_id, r.region.region, r.connection.vpn_connection_id): r.connection.name
        or r.connection.vpn_connection_id
        for r in rows
    }
    tunnels: dict[str, int] = {}
    connections: dict[str, set] = {}
    for f in findings:
        tunnels[f.code] = tunnels.get(f.code, 0) + (1 if f.tunnel else 0)
        connections.setdefault(f.code, set()).add((f.account_id, f.region, f.vpn_connection_id))
    count = f"{len(connections):,} finding{'s' if len(connections) != 1 else ''}"
    out = [
        '<h2 id="findings">Active findings, critical first</h2>\n<details class="all-findings"><summary>'
        f"{count} with their fixes and runbooks (each connection above says its own)</summary>"
        "<table><thead><tr><th>Severity</th><th>Finding</th><th>Where</th><th>Fix</th></tr></thead><tbody>\n"
    ]
    for code in sorted(connections, key=severity_order):
        spec = FINDINGS[code]
        affected = sorted(names.get(key, key[2]) for key in connections[code])
        shown = ", ".join(_e(name) for name in affected[:5])
        if len(affected) > 5:
            shown += f" and {len(affected) - 5:,} more"
        where = f"{len(affected):,} connection{'s' if len(affected) != 1 else ''}"
        if tunnels[code]:
            where += f", {tunnels[code]:,} tunnel{'s' if tunnels[code] != 1 else ''}"
        out.append(
            f'<tr id="finding-{_e(code)}"><td class="{spec.severity}">{_e(spec.severity)}</td>'
            f'<td class="summary"><strong>{_e(spec.summary)}</strong><br><code class="code">{_e(code)}</code></td>'
            f'<td class="where">{where}: {shown}</td><td>{_e(spec.remedy)}<br>'
            f'Runbook: <a class="name" href="{_e(runbook_url(code, runbook_base))}">{_e(spec.alert)}</a></td></tr>\n'
        )
    out.append("</tbody></table></details>\n")
    return "".join(out)


def _filter_form(rows: list[_Row], filters: Filters) -> str:
    """The filters as a plain GET form (no JavaScript): the server applies them when it renders the page."""

    def select(name: str, label: str, values: list[str], chosen: str) -> str:
        options = "".join(
            f'<option value="{_e(v)}"{" selected" if v == chosen else ""}>{_e(v)}</option>' for v in values
        )
        return f'<label>{label} <select name="{name}"><option value="">all</option>{options}</select></label>'

    return (
        '<form class="filters" method="get" action="/#connections" role="search">'
        + select("account", "Account", sorted({r.region.account_id for r in rows}), filters.account)
        + select("region", "Region", sorted({r.region.region for r in rows}), filters.region)
        + select("severity", "Severity", [*SEVERITIES, FINE], filters.severity)
        + f'<label>Name or id <input type="search" name="q" value="{_e(filters.q)}" maxlength="{SEARCH_MAX}" '
        'size="20"></label> <button type="submit">Filter</button>'
        + (' <a href="/#connections">clear</a>' if filters else "")
        + "</form>\n"
    )


def _connections(
    rows: list[_Row], kept: list[_Row], filters: Filters, now: float, page: int, snapshot: Snapshot
) -> str:
    """The kept connections, PAGE_SIZE a page, worst first: those that need attention in full, each opening with
    its next step; the others folded to one line each, after them."""
    pages = max(1, -(-len(kept) // PAGE_SIZE))
    page = min(max(1, page), pages)
    start = (page - 1) * PAGE_SIZE
    shown = kept[start : start + PAGE_SIZE]
    attention = sum(1 for row in kept if row.needs_attention)
    out = ['<h2 id="connections">VPN connections, worst first</h2>\n']
    if filters:
        out.append(
            f"<p>{len(kept):,} of {len(rows):,} connections match the filters "
            f'(<a href="/#connections">show all</a>).</p>\n'
        )
    if pages > 1:
        out.append(
            f"<p>{attention:,} need attention, {len(kept) - attention:,} are fine. Showing "
            f"{start + 1:,}–{start + len(shown):,} of {len(kept):,} (page {page} of {pages}).</p>\n"
        )
        out.append(_pager(page, pages, filters))
    out.append(_at_a_glance(shown, start))
    for number, row in enumerate(shown, start + 1):
        if row.needs_attention:
            out.append(_connection(row, now, snapshot.completed_at, number))
    folded = [row for row in shown if not row.needs_attention]
    if folded:
        out.append(
            f'<h3 id="fine">{len(folded):,} connection{"s" if len(folded) != 1 else ""} needing no attention '
            '(one line each)</h3>\n<ul class="folded">\n'
        )
        out.extend(_folded(row, snapshot.completed_at) for row in folded)
        out.append("</ul>\n")
    if pages > 1:
        out.append(_pager(page, pages, filters))
    return "".join(out)


def _pager(page: int, pages: int, filters: Filters) -> str:
    links = []
    if page > 1:
        links.append(f'<a href="{filters.query(1)}#connections">first</a>')
        links.append(f'<a href="{filters.query(page - 1)}#connections">previous</a>')
    if page < pages:
        links.append(f'<a href="{filters.query(page + 1)}#connections">next</a>')
        links.append(f'<a href="{filters.query(pages)}#connections">last</a>')
    return f'<nav aria-label="pages">{" ".join(links)}</nav>\n'


def _folded(row: _Row, taken: float) -> str:
    """A connection that needs no attention, on one line: its state, name, where, tunnels, days, info findings."""
    c = row.connection
    title = _e(c.name) if c.name else "<em>(no Name tag)</em>"
    up = sum(1 for t in c.tunnels if t.status == "UP")
    days = _days(strip.window(row.history, taken)).rstrip("\n") if row.history else ""
    info = "; ".join(_e(FINDINGS[code].title) for code in sorted({f.code for f in row.findings}, key=severity_order))
    return (
        f'<li><span class="{"info" if row.findings else "ok"}">{"info" if row.findings else FINE}</span> '
        f'<strong class="name">{title}</strong> <code class="code">{_e(c.vpn_connection_id)}</code> '
        f"{_e(row.region.account_id)} {_e(row.region.region)} · {up}/{len(c.tunnels)} tunnels UP"
        + (f" · {days}" if days else "")
        + (f'; <span class="info">{info}</span>' if info else "")
        + "</li>\n"
    )


def _next_step(row: _Row) -> str:
    """What to do now, first: the most likely finding in words, where, and its fix; with competing causes, the
    order to check them and what tells each apart; then the other tunnels' causes."""
    step = next_step((f.code, f.tunnel) for f in row.findings)
    if step is None:
        return ""
    spec = FINDINGS[step.first]
    line = [
        f"<strong>Do now: {_e(spec.title)}{_on(row, step.first)}.</strong> Fix: {_e(spec.remedy)} "
        f'<a class="code" href="#finding-{_e(step.first)}">{_e(step.first)}</a>'
    ]
    if step.competing:
        checks = "".join(
            f"<li><strong>{_e(FINDINGS[code].title)}</strong>"
            + (f": {_e(FINDINGS[code].tell_apart)}" if FINDINGS[code].tell_apart else "")
            + "</li>"
            for code in step.competing
        )
        line.append(f"<br>{len(step.competing)} causes fit the same evidence; check in this order:<ol>{checks}</ol>")
    for code in step.also:
        line.append(f"<br>Then: {_e(FINDINGS[code].title)}{_on(row, code)}.")
    return f'<div class="action {_e(spec.severity)}" role="note">{"".join(line)}</div>\n'


def _on(row: _Row, code: str) -> str:
    tunnels = sorted({f.tunnel for f in row.findings if f.code == code and f.tunnel})
    return f" (tunnel{'s' if len(tunnels) > 1 else ''} {_e(', '.join(tunnels))})" if tunnels else ""


def _at_a_glance(shown: list[_Row], start: int) -> str:
    """One row per connection that needs attention on this page: what to do first, linked to its section."""
    rows = []
    for number, row in enumerate(shown, start + 1):
        step = next_step((f.code, f.tunnel) for f in row.findings) if row.needs_attention else None
        if step is None:
            continue
        c = row.connection
        rows.append(
            f'<tr><td class="{row.severity}">{_e(row.severity)}</td><td class="name"><a href="#conn-{number}">'
            f"{_e(c.name) if c.name else _e(c.vpn_connection_id)}</a></td><td>{_e(row.region.account_id)} / "
            f"{_e(row.region.region)}</td><td>{_e(FINDINGS[step.first].title)}{_on(row, step.first)}"
            + (f" <em>(or {len(step.then)} other cause{'s' if len(step.then) > 1 else ''})</em>" if step.then else "")
            + "</td></tr>\n"
        )
    if not rows:
        return ""
    return (
        '<table class="glance"><thead><tr><th>Severity</th><th>Connection</th><th>Where</th><th>Do first</th></tr>'
        f"</thead><tbody>\n{''.join(rows)}</tbody></table>\n"
    )


def _connection(row: _Row, now: float, taken: float, number: int) -> str:
    c, region = row.connection, row.region
    title = _e(c.name) if c.name else "<em>(no Name tag)</em>"
    status = f'<span class="{row.severity}">{_e(row.severity)}</span>'
    out = [
        f'<section class="conn" id="conn-{number}"><h3 class="name">{title} <code class="code">{_e(c.vpn_connection_id)}</code>: '
        f"{status}</h3>\n",
        _next_step(row),
        f'<p class="meta">{_e(region.account_id)} / {_e(region.region)}; {_e(c.routing)} routing; '
        f"{_e(c.gateway_type)} {_e(c.gateway_id)}; {'accelerated; ' if c.accelerated else ''}"
        f"state {_e(c.state)}</p>\n",
        _days(strip.window(row.history, taken) if row.history else ()),
    ]
    out.append(
        "<table><thead><tr><th>Tunnel</th><th>AWS status</th><th>IPsec</th><th>BGP</th><th>Accepted routes</th>"
        "<th>Status message</th><th>Since</th></tr></thead><tbody>\n"
    )
    for tunnel in c.tunnels:
        out.append(_tunnel_row(tunnel, now))
    out.append("</tbody></table>\n")
    out.append(_found(row))
    out.append("</section>\n")
    return "".join(out)


def _found(row: _Row) -> str:
    """The connection's findings, critical first, each once with the tunnels it is on, in words (the code
    a link to its row in the findings table)."""
    where: dict[str, list[str]] = {}
    for f in row.findings:
        where.setdefault(f.code, [])
        if f.tunnel:
            where[f.code].append(f.tunnel)
    items = []
    for code in sorted(where, key=severity_order):
        spec = FINDINGS[code]
        tunnels = sorted(set(where[code]))
        on = f" on {_e(', '.join(tunnels))}" if tunnels else ""
        items.append(
            f'<li><span class="{spec.severity}">{_e(spec.severity)}</span> {_e(spec.title)}{on} '
            f'<a class="code" href="#finding-{_e(code)}">{_e(code)}</a></li>'
        )
    return f'<ul class="found">{"".join(items)}</ul>\n'


def _days(days: tuple[HistoryDay, ...]) -> str:
    """The strip of day cells (each day in its tooltip), then, collapsed, the same days as text."""
    if not days:
        return ""
    cells = "".join(
        f'<i{_CELL[strip.state(day)]} title="{_e(day.day)}: {_e(strip.describe(day))}"></i>' for day in days
    )
    listed = "".join(f"<li>{_e(line)}</li>" for line in strip.runs(days))
    return (
        f'<details class="days"><summary><span class="strip" aria-hidden="true">{cells}</span>'
        f"Last {len(days)} days: {_e(strip.summarise(days).text())}</summary><ul>{listed}</ul></details>\n"
    )


def _tunnel_row(tunnel: Tunnel, now: float) -> str:
    routes = "-" if tunnel.accepted_routes is None else f"{tunnel.accepted_routes:,}"
    return (
        f"<tr><td>{_e(tunnel.outside_ip)}</td>{_state_cell(tunnel.status)}{_state_cell(up_down(tunnel.ipsec_up))}"
        f'{_state_cell(up_down(tunnel.bgp_up))}<td class="n">{routes}</td>'
        f"<td>{_e(_status_message(tunnel))}</td>"
        f"<td>{_when(now, tunnel.last_status_change)}</td></tr>\n"
    )


def _status_message(tunnel: Tunnel) -> str:
    """The StatusMessage as AWS wrote it, as far as its class tells (the route count is the tunnel's own)."""
    if tunnel.status_message == "bgp_routes" and tunnel.accepted_routes is not None:
        return f"{tunnel.accepted_routes} BGP ROUTES"
    return STATUS_MESSAGES.get(tunnel.status_message, tunnel.status_message)


def _sources(results: tuple[SourceResult, ...], now: float, busy: set[tuple[str, str]]) -> str:
    """Failures always; successes of the regions with VPN connections (up to SOURCES_SHOWN); the regions with
    none (an organization's ``regions: all`` makes most of them) only counted, unless they fail."""
    failed = [r for r in results if not r.success]
    good = [r for r in results if r.success and (r.account_id, r.region) in busy]
    empty = sum(1 for r in results if r.success and (r.account_id, r.region) not in busy)
    out = [f'<h2 id="sources">Collection: {len(results) - len(failed):,} of {len(results):,} sources succeeded</h2>\n']
    listed = failed + (good if len(good) <= SOURCES_SHOWN else [])
    if listed:
        out.append(
            "<table><thead><tr><th>Account</th><th>Region</th><th>Source</th><th>Latest collection</th>"
            "<th>Error</th><th>Last success (data age)</th><th>Duration</th></tr></thead><tbody>\n"
        )
        for r in listed:
            result = '<td class="ok">ok</td>' if r.success else '<td class="bad">FAILED</td>'
            out.append(
                f"<tr><td>{_e(r.account_id)}</td><td>{_e(r.region)}</td><td>{_e(r.source)}</td>{result}"
                f"<td>{_e(r.error) or '-'}</td><td>{_e(_age(now, r.last_success_timestamp))}</td>"
                f'<td class="n">{r.duration_seconds:.2f} s</td></tr>\n'
            )
        out.append("</tbody></table>\n")
    if len(good) > SOURCES_SHOWN:
        oldest = min((r.last_success_timestamp for r in good if r.last_success_timestamp is not None), default=None)
        out.append(
            f"<p>{len(good):,} sources succeeded (not listed); the oldest data among them is "
            f"{_e(_age(now, oldest))}.</p>\n"
        )
    if empty:
        out.append(
            f"<p>{empty:,} sources of account and region pairs with no VPN connection succeeded (not listed).</p>\n"
        )
    return "".join(out)
