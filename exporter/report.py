"""The ``diagnose`` command's output: per connection and tunnel, the state, the findings, their
evidence and the next step; aligned (and coloured on a terminal) text, or JSON for scripts."""

from __future__ import annotations

import textwrap
from typing import Any, Iterable

from exporter.diagnosis import Finding
from exporter.findings import CRITICAL, FINDINGS, INFO, SEVERITY_RANK, WARNING
from exporter.model import Snapshot, Tunnel

_COLOURS = {CRITICAL: "31", WARNING: "33", INFO: "36", "good": "32", "bad": "31", "dim": "2", "bold": "1"}


def up_down(value: bool | None, true: str = "up", false: str = "down") -> str:
    return "-" if value is None else (true if value else false)


def build_report(snapshot: Snapshot, connection_ids: Iterable[str] = ()) -> dict[str, Any]:
    """A plain-data report of the snapshot, limited to ``connection_ids`` when given."""
    wanted = set(connection_ids)
    by_connection: dict[str, list[Finding]] = {}
    for finding in snapshot.findings:
        by_connection.setdefault(finding.vpn_connection_id, []).append(finding)
    connections = []
    for region, connection in snapshot.connections():
        if wanted and connection.vpn_connection_id not in wanted:
            continue
        findings = sorted(by_connection.get(connection.vpn_connection_id, ()),
                          key=lambda f: (SEVERITY_RANK[f.severity], f.tunnel, f.code))
        connections.append({
            "vpn_connection_id": connection.vpn_connection_id, "name": connection.name,
            "account_id": region.account_id, "region": region.region, "state": connection.state,
            "routing": connection.routing, "gateway_type": connection.gateway_type,
            "gateway_id": connection.gateway_id, "accelerated": connection.accelerated,
            "tunnels": [_tunnel(t) for t in connection.tunnels],
            "findings": [{"tunnel": f.tunnel, "code": f.code, "severity": f.severity,
                          "summary": FINDINGS[f.code].summary, "evidence": list(f.evidence),
                          "remedy": FINDINGS[f.code].remedy} for f in findings],
        })
    found = {c["vpn_connection_id"] for c in connections}
    return {
        "generated_at": snapshot.completed_at,
        "sources": [{"account_id": r.account_id, "region": r.region, "source": r.source, "success": r.success,
                     "error": r.error} for r in snapshot.results],
        "not_found": sorted(wanted - found),
        "connections": connections,
    }


def _tunnel(tunnel: Tunnel) -> dict[str, Any]:
    return {"outside_ip": tunnel.outside_ip, "status": tunnel.status, "status_message": tunnel.status_message,
            "ipsec_up": tunnel.ipsec_up, "bgp_up": tunnel.bgp_up, "accepted_routes": tunnel.accepted_routes,
            "last_status_change": tunnel.last_status_change}


def exit_code(report: dict[str, Any]) -> int:
    """3: a critical finding is active; 4: no critical finding, but a source failed or an id was not found."""
    if any(f["severity"] == CRITICAL for c in report["connections"] for f in c["findings"]):
        return 3
    if report["not_found"] or not all(s["success"] for s in report["sources"]):
        return 4
    return 0


def render_text(report: dict[str, Any], colour: bool = False, width: int = 100) -> str:
    def paint(text: str, style: str) -> str:
        return f"\033[{_COLOURS[style]}m{text}\033[0m" if colour else text

    lines: list[str] = []
    for source in report["sources"]:
        if not source["success"]:
            lines.append(paint(f"! {source['source']} collection failed for {source['account_id']}/"
                               f"{source['region']}: {source['error']} (data may be stale)", WARNING))
    for missing in report["not_found"]:
        lines.append(paint(f"! {missing}: not found in any watched account or region", WARNING))
    now = report["generated_at"]
    for connection in report["connections"]:
        accelerated = ", accelerated" if connection["accelerated"] else ""
        lines.append("")
        lines.append(paint(f"{connection['vpn_connection_id']}  {connection['name'] or '(no Name tag)'}", "bold")
                     + f"  {connection['account_id']}/{connection['region']}  {connection['routing']}, "
                       f"{connection['gateway_type']} {connection['gateway_id']}{accelerated}, {connection['state']}")
        rows = [("tunnel", "AWS", "IPsec", "BGP", "routes", "since")]
        for tunnel in connection["tunnels"]:
            since = ("-" if tunnel["last_status_change"] is None
                     else ago(now - tunnel["last_status_change"]))
            rows.append((tunnel["outside_ip"], tunnel["status"], up_down(tunnel["ipsec_up"]), up_down(tunnel["bgp_up"]),
                         "-" if tunnel["accepted_routes"] is None else str(tunnel["accepted_routes"]), since))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for index, row in enumerate(rows):
            cells = []
            for column, (cell, size) in enumerate(zip(row, widths, strict=True)):
                text = cell.ljust(size)
                if index and column in (1, 2, 3) and cell in ("UP", "up", "DOWN", "down"):
                    text = paint(text, "good" if cell.lower() == "up" else "bad")
                cells.append(text)
            lines.append("  " + "  ".join(cells).rstrip())
        if not connection["findings"]:
            lines.append("  " + paint("no findings", "good"))
        for finding in connection["findings"]:
            where = f" on tunnel {finding['tunnel']}" if finding["tunnel"] else ""
            lines.append(f"  {paint(finding['severity'].upper().ljust(8), finding['severity'])} "
                         f"{finding['code']}{where}")
            for label, text in (("", finding["summary"]), ("evidence: ", "; ".join(finding["evidence"])),
                                ("next step: ", finding["remedy"])):
                lines.extend(textwrap.wrap(label + text, width=width, initial_indent="      ",
                                           subsequent_indent="        "))
    return "\n".join(lines).lstrip("\n") + "\n"


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"
