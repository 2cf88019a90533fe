"""The ``report`` command's logic on canned API answers: credit tiers, worst first, hostile label values in every
format, the fallback to raw counters, and its exit statuses (unreachable, no data, missing rules, usage).
tests/test_history_engines.py checks its figures on real engines."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exporter.report import command, series, sla
from tests.services import free_port

NOW = datetime(2026, 12, 4, tzinfo=timezone.utc)
HOSTILE = 'vpn-0d4\u202e|*x*\n=HYPERLINK("http://evil")'


def _vector(labels: dict, value: float) -> dict:
    return {"metric": labels, "value": [0, str(value)]}


class CannedAPI(sla.PrometheusAPI):
    """Answers by the series a query reads; records the queries."""

    def __init__(self, answers: dict[str, list[dict]]):
        super().__init__("http://canned")
        self.answers, self.asked = answers, []

    def query(self, expr: str, at: float) -> list[dict]:
        self.asked.append(expr)
        for needle, answer in self.answers.items():
            if needle in expr:
                return answer
        return []


def conn(vpn: str) -> dict:
    return {"account_id": "111122223333", "region": "eu-west-1", "vpn_connection_id": vpn}


MONTH = 30 * 86400


def canned(rules: bool = True) -> dict[str, list[dict]]:
    observed = [_vector(conn(v), MONTH) for v in ("vpn-a", "vpn-b", HOSTILE)]
    unavailable = [
        _vector({**conn("vpn-b"), "cause": "other"}, 1800),
        _vector({**conn(HOSTILE), "cause": "maintenance"}, MONTH * 0.06),
    ]
    flaps = [
        _vector({**conn("vpn-b"), "tunnel": "198.51.100.1"}, 4.0),
        _vector({**conn(HOSTILE), "tunnel": "t\x1b[2J"}, 2),
    ]
    down = [_vector({**conn("vpn-b"), "tunnel": "198.51.100.1"}, 1800)]

    def prefix(counter: str, window: str) -> str:
        return series.recorded(counter, window) if rules else counter

    answers = {
        ":1h]": [],  # the hourly runs (longest outage): tested below
        "count(last_over_time": [_vector({}, 3)] if rules else [],
        prefix(series.OBSERVED_SECONDS, "1d"): observed,
        prefix(series.UNAVAILABLE_SECONDS, "1d"): unavailable,
        prefix(series.STATE_CHANGES, "1d"): flaps,
        prefix(series.DOWN_SECONDS, "1d"): down,
    }
    return answers


def test_credit_tiers_at_their_boundaries():
    assert [sla.credit(p) for p in (100, 99.95, 99.949, 99.0, 98.99, 95.0, 94.99, 0)] == [
        0,
        0,
        10,
        10,
        25,
        25,
        100,
        100,
    ]


def test_worst_first_with_tiers_flaps_causes_and_the_worst_tunnel():
    api = CannedAPI(canned())
    report = sla.build_report(api, sla.Span.month("2026-11"), now=NOW)
    assert report.source == "rules"
    assert [c.vpn_connection_id for c in report.connections] == [HOSTILE, "vpn-b", "vpn-a"]
    hostile, b, a = report.connections
    assert hostile.credit_percent == 100 and hostile.unavailable_by_cause == {"maintenance": MONTH * 0.06}
    assert b.uptime_percent == pytest.approx(100 * (1 - 1800 / MONTH)) and b.credit_percent == 10 and b.flaps == 4
    assert b.worst_tunnel.tunnel == "198.51.100.1" and a.credit_percent == 0 and a.worst_tunnel is None
    # whole days: the daily series summed at the month's 30 midnights
    assert any(f"{series.recorded(series.OBSERVED_SECONDS, '1d')}[2591999s:1d]" in q for q in api.asked)


def test_without_recording_rules_the_raw_counters_answer_and_a_note_says_so():
    api = CannedAPI(canned(rules=False))
    report = sla.build_report(api, sla.Span.month("2026-11"), now=NOW)
    assert report.source == "raw" and "raw counters" in report.notes[0]
    assert any(f"{series.OBSERVED_SECONDS} offset 2592000s" in q for q in api.asked)
    with pytest.raises(sla.ReportError) as refused:
        sla.build_report(CannedAPI(canned(rules=False)), sla.Span.month("2026-11"), "rules", now=NOW)
    assert refused.value.status == sla.EXIT_NO_RULES


@pytest.mark.parametrize("output", sorted(sla.RENDERERS))
def test_label_values_are_escaped_in_every_format(output):
    text = sla.RENDERERS[output](sla.build_report(CannedAPI(canned()), sla.Span.month("2026-11"), now=NOW))
    assert "\u202e" not in text and "\x1b" not in text
    if output == "csv":
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
        assert len(list(csv.reader(io.StringIO(text)))) == 4  # a header and three connections: no forged row
    if output == "markdown":
        rows = [line for line in text.splitlines() if line.startswith("| ")]
        assert all(line.count(" | ") == 8 for line in rows)  # a value's bar cannot add a column
    if output == "text":
        assert "\\u202e" in text and len([line for line in text.splitlines() if line.startswith("vpn-")]) == 3
    if output == "json":
        assert json.loads(text)["connections"][0]["vpn_connection_id"].startswith("vpn-0d4\\u202e")


def test_longest_outage_is_the_longest_run_of_outage_hours():
    hours = [(h * 3600.0, v) for h, v in enumerate([0, 600, 0, 1200, 3600, 3600, 300, 0, 3600])]
    assert sla.longest_run(hours) == 8700
    assert sla.longest_run([]) == 0


class _Canned(BaseHTTPRequestHandler):
    result: list = []

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": self.result}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_exit_statuses(capsys):
    closed = f"http://127.0.0.1:{free_port()}"
    assert command.main(["--prometheus", closed, "--month", "2026-11"]) == sla.EXIT_UNREACHABLE
    assert "cannot query" in capsys.readouterr().err
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert command.main(["--prometheus", url, "--month", "2026-11"]) == sla.EXIT_NO_DATA
        assert "no history in 2026-11-01" in capsys.readouterr().err
        assert command.main(["--prometheus", url, "--month", "2026-11", "--source", "rules"]) == sla.EXIT_NO_RULES
        assert "recording rules" in capsys.readouterr().err
    finally:
        server.shutdown()
    with pytest.raises(SystemExit) as usage:
        command.main(["--prometheus", url, "--from", "2026-11-01"])
    assert usage.value.code == 2
