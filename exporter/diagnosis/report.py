"""The ``diagnose`` command's output, triage first: a summary line, then connections worst first, each
with its cause before its symptoms and with the evidence that decides the fix; healthy ones last, one
line each; then each connection's last 30 days on one line (diagnosis/strip.py). Aligned (and coloured on a
terminal) text, or JSON for scripts."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterable
from itertools import groupby
from typing import Any

from exporter.diagnosis import strip
from exporter.diagnosis.findings import (
    CRITICAL,
    FINDINGS,
    INFO,
    RUNBOOK_BASE,
    WARNING,
    next_step,
    runbook_url,
    triage_order,
)
from exporter.model import Connection, CustomerGateway, Finding, HistoryDay, Snapshot, Tunnel
from exporter.timefmt import duration, utc
from exporter.untrusted import printable_tree

HEALTHY = "healthy"  # a connection without findings
RANKS = (CRITICAL, WARNING, INFO, HEALTHY)  # worst first
_RANK = {severity: index for index, severity in enumerate(RANKS)}
_COLOURS = {
    CRITICAL: "31",
    WARNING: "33",
    INFO: "36",
    HEALTHY: "32",
    "good": "32",
    "bad": "31",
    "dim": "2",
    "bold": "1",
}
# A strip's day cells: low to high as the day was worse (ASCII for a terminal that cannot show the blocks).
GLYPHS = {strip.UP: "\u2581", strip.DEGRADED: "\u2585", strip.DOWN: "\u2588", strip.NO_DATA: "\u00b7"}
ASCII_GLYPHS = {strip.UP: "_", strip.DEGRADED: "=", strip.DOWN: "#", strip.NO_DATA: "."}
_DAY_STYLES = {strip.UP: "good", strip.DEGRADED: WARNING, strip.DOWN: "bad", strip.NO_DATA: "dim"}
NAME_COLUMN = 30  # the strips line up under names up to this long (a longer one is kept whole)
# A tunnel's own addresses in its evidence: set aside so that the same finding on two tunnels is seen
# as one. Bounded so that 198.51.100.1 never matches inside 198.51.100.12.
_OUTSIDE, _INSIDE = "\0outside\0", "\0inside\0"


def up_down(value: bool | None, true: str = "up", false: str = "down") -> str:
    return "-" if value is None else (true if value else false)


def _finding_order(finding: Finding) -> tuple:
    """The cause before the symptom it explains; a tunnel's symptom before the connection's; then the
    worst first, in the checklist's order."""
    return triage_order(finding.code) + (finding.tunnel,)


def _matches(connection: Connection, wanted: str) -> bool:
    return wanted in (connection.vpn_connection_id, connection.name)


def build_report(snapshot: Snapshot, wanted: Iterable[str] = (), runbook_base: str = RUNBOOK_BASE) -> dict[str, Any]:
    """A plain-data report of the snapshot, worst connection first; limited to the connections whose id
    or Name tag is in ``wanted`` when given (a Name may match several: all are kept)."""
    wanted = list(dict.fromkeys(wanted))
    by_connection: dict[str, list[Finding]] = {}
    for finding in snapshot.findings:
        by_connection.setdefault(finding.vpn_connection_id, []).append(finding)
    connections, matched = [], set()
    for region in snapshot.regions:
        gateways = region.customer_gateways_by_id()
        for connection in region.connections:
            hits = {w for w in wanted if _matches(connection, w)}
            if wanted and not hits:
                continue
            matched |= hits
            connections.append(
                _connection(
                    region.account_id,
                    region.region,
                    connection,
                    gateways.get(connection.customer_gateway_id),
                    by_connection.get(connection.vpn_connection_id, ()),
                    _history(
                        snapshot.history.get((region.account_id, region.region, connection.vpn_connection_id), ()),
                        snapshot.completed_at,
                    ),
                )
            )
    connections.sort(
        key=lambda c: (_RANK[c["severity"]], c["account_id"], c["region"], c["name"], c["vpn_connection_id"])
    )
    sources = [
        {"account_id": r.account_id, "region": r.region, "source": r.source, "success": r.success, "error": r.error}
        for r in snapshot.results
    ]
    failed = [s for s in sources if not s["success"]]
    return {
        "generated_at": snapshot.completed_at,
        # A one-shot run has no earlier data to fall back on: nothing collected is "no data", with why.
        "no_data": "; ".join(_source_name(s) + f": {s['error']}" for s in failed)
        if failed and not snapshot.regions
        else None,
        "summary": {
            "connections": len(connections),
            **{rank: sum(c["severity"] == rank for c in connections) for rank in RANKS},
        },
        "sources": sources,
        "not_found": [w for w in wanted if w not in matched],
        "connections": _with_runbooks(connections, runbook_base),
    }


def _with_runbooks(connections: list[dict[str, Any]], runbook_base: str) -> list[dict[str, Any]]:
    """Each finding with the link to its runbook section, at the config's ``runbook_base`` (as the alerts')."""
    for connection in connections:
        for finding in connection.get("findings", ()):
            finding["runbook"] = runbook_url(finding["code"], runbook_base)
        step = connection.get("next_step")
        if step:
            step["runbook"] = runbook_url(step["code"], runbook_base)
    return connections


def _connection(
    account_id: str,
    region: str,
    connection: Connection,
    gateway: CustomerGateway | None,
    found: Iterable[Finding],
    history: dict[str, Any] | None = None,
) -> dict[str, Any]:
    findings = sorted(found, key=_finding_order)
    return {
        "vpn_connection_id": connection.vpn_connection_id,
        "name": connection.name,
        "account_id": account_id,
        "region": region,
        "state": connection.state,
        "severity": min((f.severity for f in findings), key=_RANK.__getitem__, default=HEALTHY),
        "routing": connection.routing,
        "gateway_type": connection.gateway_type,
        "gateway_id": connection.gateway_id,
        "accelerated": connection.accelerated,
        "customer_gateway": _customer_gateway(connection, gateway),
        "tunnels": [_tunnel(t) for t in connection.tunnels],
        "findings": [{"tunnel": f.tunnel, **_described(f.code), "evidence": list(f.evidence)} for f in findings],
        "grouped_findings": _grouped(connection, findings),
        "next_step": _next_step(findings),
        "history": history,
    }


def _next_step(findings: list[Finding]) -> dict[str, Any] | None:
    """What to do now (``findings.next_step``, as the status page says it): the most likely cause, where, its
    fix; with competing causes, the order to check them and what tells each apart."""
    step = next_step((f.code, f.tunnel) for f in findings)
    if step is None:
        return None
    spec = FINDINGS[step.first]
    return {
        "code": step.first,
        "title": spec.title,
        "tunnels": _tunnels_of(findings, step.first),
        "remedy": spec.remedy,
        "check_in_order": list(step.competing),
        "tell_apart": {code: FINDINGS[code].tell_apart for code in step.competing if FINDINGS[code].tell_apart},
        "then_fix": [
            {"code": code, "title": FINDINGS[code].title, "tunnels": _tunnels_of(findings, code)} for code in step.also
        ],
    }


def _tunnels_of(findings: list[Finding], code: str) -> list[str]:
    return sorted({f.tunnel for f in findings if f.code == code and f.tunnel})


def _history(days: tuple[HistoryDay, ...], completed_at: float) -> dict[str, Any] | None:
    """The connection's last 30 days (strip.window), oldest first, with their counts; None without a history."""
    if not days:
        return None
    shown = strip.window(days, completed_at)
    summary = strip.summarise(shown)
    return {
        "summary": summary.text(),
        **{f"{state}_days": summary.counts[state] for state in strip.STATES},
        "unavailable_seconds": summary.unavailable_seconds,
        "flaps": summary.flaps,
        "days": [
            {
                "day": day.day,
                "state": strip.state(day),
                "observed_seconds": day.observed_seconds,
                "unavailable_seconds": day.unavailable_seconds,
                "unredundant_seconds": day.unredundant_seconds,
                "flaps": day.flaps,
            }
            for day in shown
        ],
    }


def _described(code: str) -> dict[str, str]:
    spec = FINDINGS[code]
    return {"code": code, "severity": spec.severity, "summary": spec.summary, "remedy": spec.remedy}


def _customer_gateway(connection: Connection, gateway: CustomerGateway | None) -> dict[str, Any]:
    return {
        "customer_gateway_id": connection.customer_gateway_id,
        "ip_address": gateway.ip_address if gateway else None,
        "bgp_asn": gateway.bgp_asn if gateway else None,
    }


def _tunnel(tunnel: Tunnel) -> dict[str, Any]:
    return {
        "outside_ip": tunnel.outside_ip,
        "status": tunnel.status,
        "status_message": tunnel.status_message,
        "ipsec_up": tunnel.ipsec_up,
        "bgp_up": tunnel.bgp_up,
        "accepted_routes": tunnel.accepted_routes,
        "last_status_change": tunnel.last_status_change,
    }


def _address(value: str) -> re.Pattern:
    return re.compile(rf"(?<![\w.]){re.escape(value)}(?![\w/]|\.\w)")


def _generalised(evidence: tuple[str, ...], tunnel: Tunnel | None) -> tuple[str, ...]:
    """The evidence with the tunnel's own addresses replaced by placeholders."""
    if tunnel is None:
        return evidence
    swaps = [
        (_address(value), token)
        for value, token in ((tunnel.inside_cidr, _INSIDE), (tunnel.outside_ip, _OUTSIDE))
        if value
    ]
    generalised = []
    for line in evidence:
        for pattern, token in swaps:
            line = pattern.sub(token, line)
        generalised.append(line)
    return tuple(generalised)


def _grouped(connection: Connection, findings: list[Finding]) -> list[dict[str, Any]]:
    """The findings with those identical on several tunnels (but for the tunnels' addresses) merged,
    in the order of their first member."""
    tunnels = {t.outside_ip: t for t in connection.tunnels}
    groups: dict[tuple, list[Finding]] = {}
    for finding in findings:
        key = (finding.code, _generalised(finding.evidence, tunnels.get(finding.tunnel)))
        groups.setdefault(key, []).append(finding)
    result = []
    for (code, template), members in groups.items():
        ips = [m.tunnel for m in members if m.tunnel]
        own = [tunnels[ip] for ip in ips if ip in tunnels]
        fill = {
            _OUTSIDE: " / ".join(dict.fromkeys(t.outside_ip for t in own)),
            _INSIDE: " / ".join(dict.fromkeys(t.inside_cidr for t in own)),
        }
        evidence = [re.sub("|".join(map(re.escape, fill)), _replacing(fill), line) for line in template]
        result.append({**_described(code), "tunnels": ips, "where": _where(ips, connection), "evidence": evidence})
    return result


def _replacing(fill: dict[str, str]) -> Callable[[re.Match[str]], str]:
    """``re.sub``'s replacement of each token by its value."""
    return lambda match: fill[match.group(0)]


def _where(ips: list[str], connection: Connection) -> str:
    if not ips:
        return "connection"
    if len(ips) == 1:
        return f"tunnel {ips[0]}"
    if len(ips) == len(connection.tunnels):
        return ("both tunnels" if len(ips) == 2 else f"all {len(ips)} tunnels") + f" ({', '.join(ips)})"
    return "tunnels " + ", ".join(ips)


def _source_name(source: dict[str, Any]) -> str:
    return f"{source['source']} {source['account_id']}/{source['region']}"


# diagnose's exit statuses (1 a configuration error and 2 a usage error are argparse's and cli.py's)
EXIT_OK, EXIT_CRITICAL, EXIT_PARTLY_READ, EXIT_NOTHING_READ = 0, 3, 4, 5


def exit_code(report: dict[str, Any]) -> int:
    """5: nothing could be read (every source of every account and region failed); 3: a critical finding is active;
    4: no critical finding, but some source failed or an id or Name matched nothing (partly read); 0 otherwise."""
    if report["no_data"]:
        return EXIT_NOTHING_READ
    if report["summary"][CRITICAL]:
        return EXIT_CRITICAL
    if report["not_found"] or not all(s["success"] for s in report["sources"]):
        return EXIT_PARTLY_READ
    return EXIT_OK


def summary_line(report: dict[str, Any]) -> str:
    """``8 connections: 4 critical, 1 warning, 1 info, 2 healthy`` (counts of 0 left out)."""
    summary = report["summary"]
    total = summary["connections"]
    counts = ", ".join(f"{summary[rank]} {rank}" for rank in RANKS if summary[rank])
    return f"{total} connection{'' if total == 1 else 's'}" + (f": {counts}" if counts else "")


def render_text(report: dict[str, Any], colour: bool = False, width: int = 100, encoding: str = "utf-8") -> str:
    """The report for a terminal. Every string in it is escaped first (Name tags, log details and errors
    come from AWS): none can move the cursor, ring a bell, forge a line or fail to encode. The 30-day strips are
    drawn in ASCII when the terminal's ``encoding`` lacks the block characters."""
    report = printable_tree(report)

    def paint(text: str, style: str) -> str:
        return f"\033[{_COLOURS[style]}m{text}\033[0m" if colour else text

    if report["no_data"]:
        return paint(f"no data: every source failed: {report['no_data']}", CRITICAL) + "\n"
    lines = [paint(summary_line(report), "bold")]
    for source in report["sources"]:
        if not source["success"]:
            lines.append(
                paint(
                    f"! {_source_name(source)} collection failed: {source['error']}; "
                    f"no {source['source']} data from it in this run",
                    WARNING,
                )
            )
    for missing in report["not_found"]:
        lines.append(
            paint(f"! {missing}: no connection has this id or Name tag in any watched account or region", WARNING)
        )
    now = report["generated_at"]
    for connection in report["connections"]:
        if connection["severity"] != HEALTHY:
            lines.append("")
            lines.extend(_connection_block(connection, now, paint, width))
    healthy = [c for c in report["connections"] if c["severity"] == HEALTHY]
    if healthy:
        lines.append("")
        lines.extend(_healthy_line(connection, paint) for connection in healthy)
    lines.extend(_history_lines(report["connections"], paint, GLYPHS if _encodes(GLYPHS, encoding) else ASCII_GLYPHS))
    return "\n".join(lines) + "\n"


def _encodes(glyphs: dict[str, str], encoding: str) -> bool:
    try:
        "".join(glyphs.values()).encode(encoding)
    except (UnicodeError, LookupError):
        return False
    return True


def _history_lines(connections: list[dict[str, Any]], paint, glyphs: dict[str, str]) -> list[str]:
    """One line per connection with a history, in the report's order: its name and id, the strip, what it adds
    up to."""
    kept = [c for c in connections if c["history"]]
    if not kept:
        return []
    legend = ", ".join(f"{glyphs[state]} {state.replace('_', ' ')}" for state in strip.STATES)
    size = min(NAME_COLUMN, max(len(c["name"] or "(no Name tag)") for c in kept))
    ids = max(len(c["vpn_connection_id"]) for c in kept)
    lines = ["", paint(f"Last {strip.DAYS} days, oldest first ({legend}):", "bold")]
    for connection in kept:
        states = [day["state"] for day in connection["history"]["days"]]
        cells = "".join(paint(glyphs[state] * len(list(run)), _DAY_STYLES[state]) for state, run in groupby(states))
        lines.append(
            f"  {(connection['name'] or '(no Name tag)').ljust(size)}  {connection['vpn_connection_id'].ljust(ids)}"
            f"  {cells}  {connection['history']['summary']}"
        )
    return lines


def _heading(connection: dict[str, Any], paint) -> str:
    severity = connection["severity"]
    return (
        paint(severity.upper().ljust(8), severity)
        + " "
        + paint(connection["name"] or "(no Name tag)", "bold")
        + f"  {connection['vpn_connection_id']}  {connection['account_id']}/{connection['region']}"
    )


def _healthy_line(connection: dict[str, Any], paint) -> str:
    tunnels = ", ".join(
        f"{t['outside_ip']} {t['status']}"
        + (f" ({t['accepted_routes']} routes)" if t["bgp_up"] and t["accepted_routes"] is not None else "")
        for t in connection["tunnels"]
    )
    return f"{_heading(connection, paint)}  {connection['routing']}: {tunnels}"


def _connection_block(connection: dict[str, Any], now: float, paint, width: int) -> list[str]:
    gateway = connection["customer_gateway"]
    accelerated = ", accelerated" if connection["accelerated"] else ""
    lines = [
        _heading(connection, paint),
        f"  {connection['routing']}, {connection['gateway_type']} {connection['gateway_id']}{accelerated}, "
        f"{connection['state']}; customer gateway {gateway['customer_gateway_id'] or '-'}"
        + (f" {gateway['ip_address']}, BGP ASN {gateway['bgp_asn']}" if gateway["ip_address"] else ""),
    ]
    lines.extend(_next_step_lines(connection["next_step"], paint, width))
    rows = [("tunnel", "AWS", "IPsec", "BGP", "routes", "status since")]
    for tunnel in connection["tunnels"]:
        changed = tunnel["last_status_change"]
        since = "-" if changed is None else f"{duration(now - changed)} ago, {utc(changed, now)}"
        rows.append(
            (
                tunnel["outside_ip"],
                tunnel["status"],
                up_down(tunnel["ipsec_up"]),
                up_down(tunnel["bgp_up"]),
                "-" if tunnel["accepted_routes"] is None else str(tunnel["accepted_routes"]),
                since,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        cells = []
        for column, (cell, size) in enumerate(zip(row, widths, strict=True)):
            text = cell.ljust(size)
            if index and column in (1, 2, 3) and cell in ("UP", "up", "DOWN", "down"):
                text = paint(text, "good" if cell.lower() == "up" else "bad")
            cells.append(text)
        lines.append("  " + "  ".join(cells).rstrip())
    explained = any(not FINDINGS[f["code"]].symptom for f in connection["grouped_findings"])
    for finding in connection["grouped_findings"]:
        where = "" if finding["where"] == "connection" else f" on {finding['where']}"
        lines.append(f"  {paint(finding['severity'].upper().ljust(8), finding['severity'])} {finding['code']}{where}")
        parts = [("", finding["summary"]), ("evidence: ", "; ".join(finding["evidence"]))]
        if not (explained and FINDINGS[finding["code"]].symptom):  # a found cause's next step is the one to take
            parts.append(("next step: ", finding["remedy"]))
        for label, text in parts:
            lines.extend(
                textwrap.wrap(
                    label + text,
                    width=width,
                    initial_indent="      ",
                    subsequent_indent="        ",
                    break_on_hyphens=False,
                )
            )
    return lines


def _next_step_lines(step: dict[str, Any] | None, paint, width: int) -> list[str]:
    """``DO NOW`` and, with competing causes, the order to check them and what tells each apart, then the
    other tunnels' causes; wrapped."""
    if step is None:
        return []
    texts = [(f"{paint('DO NOW:', 'bold')} {step['title']}{_on(step['tunnels'])}. Fix: {step['remedy']}", "  ")]
    if step["check_in_order"]:
        texts.append((f"{len(step['check_in_order'])} causes fit the same evidence; check in this order:", "  "))
        texts.extend(
            (f"{n}. {FINDINGS[code].title}: {step['tell_apart'].get(code, '')}".rstrip(": "), "    ")
            for n, code in enumerate(step["check_in_order"], 1)
        )
    texts.extend((f"then: {also['title']}{_on(also['tunnels'])}", "  ") for also in step["then_fix"])
    if step.get("runbook"):
        texts.append((f"runbook: {step['runbook']}", "  "))
    wrapped = []
    for text, indent in texts:
        wrapped.extend(
            textwrap.wrap(
                text, width=width, initial_indent=indent, subsequent_indent=indent + "    ", break_on_hyphens=False
            )
        )
    return wrapped


def _on(tunnels: list[str]) -> str:
    return f" (tunnel{'s' if len(tunnels) > 1 else ''} {', '.join(tunnels)})" if tunnels else ""
