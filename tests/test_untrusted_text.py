"""Text from AWS (Name tags, log lines, errors) and from clients (request lines) reaches the terminal, the
log, the status page and the alert pages escaped: the hostile corpus (tests/hostile_strings.py) never
crashes an output, never moves the cursor, rings a bell or forges a line, and an honest value reads as it is."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time

import boto3
import pytest
import requests

from exporter import logsetup
from exporter.config import Target
from exporter.diagnosis.report import build_report, render_text
from exporter.sources.logs.parse import LogEvent
from exporter.untrusted import printable
from exporter.web import statuspage
from tests.hostile_strings import CORPUS, RAW, ec2_tag_safe, joined
from tests.services import alert_sink
from tests.test_diagnosis import NOW, log_state
from tests.test_report import BGP_DOWN, named, snapshot_of


def _named(name: str):
    return named(name, "vpn-9", *BGP_DOWN)


def _denied(detail: str) -> LogEvent:
    return LogEvent("bgp_route_denied", NOW - 60, bgp_error="route_denied", bgp_error_detail=detail)


def _one_line_each(text: str, lines: int) -> None:
    """``text`` holds ``lines`` lines and nothing raw besides their ends."""
    assert text.count("\n") == lines, text
    assert not RAW.search(text.replace("\n", "")), repr(RAW.search(text.replace("\n", "")))


@pytest.mark.parametrize("key", CORPUS)
def test_diagnose_text_shows_a_hostile_name_and_log_detail_escaped_on_their_own_lines(key):
    hostile = CORPUS[key]
    honest = snapshot_of(_named("site"), logs={"198.51.100.1": log_state(_denied("prefix 10.0.0.0/8"))})
    attacked = snapshot_of(_named(hostile), logs={"198.51.100.1": log_state(_denied(hostile))})
    for colour in (False, True):
        expected = render_text(build_report(honest, []), colour=colour, width=100_000)
        text = render_text(build_report(attacked, []), colour=colour, width=100_000)
        text.encode("utf-8")  # a lone surrogate made diagnose crash here, printing nothing
        assert not RAW.search(text.replace("\n", "").replace("\x1b", "")), key
        assert text.count("\x1b") == expected.count("\x1b"), key  # only our own colours
        assert text.count("\n") == expected.count("\n"), (key, text)
        assert printable(hostile) in text


def _tag_and_log(name: str, detail: str) -> str:
    """A connection named ``name`` whose tunnel logged a denied route whose prefix and reason are ``detail``."""
    from tests.test_logs import REGION, logged_vpn, put

    vpn = logged_vpn()
    boto3.client("ec2", region_name=REGION).create_tags(Resources=[vpn], Tags=[{"Key": "Name", "Value": name}])
    put(
        vpn,
        [
            json.dumps(
                {
                    "type": "RouteStatus",
                    "status": "UPDATED",
                    "event_timestamp": int(time.time() * 1000),
                    "message": {"details": f"Route denied due to: {detail}", "prefix": detail},
                }
            )
        ],
        kind="bgp",
    )
    return vpn


def test_the_diagnose_command_survives_hostile_tags_and_log_lines(aws, tmp_path):
    """The issue's case, end to end: a lone surrogate in a logged prefix crashed ``diagnose`` (exit 1, the
    configuration-error code, nothing printed), escape sequences reached the terminal, a newline in a Name
    tag forged a line. JSON keeps every string exact."""
    name = " | ".join(ec2_tag_safe())  # what EC2's XML can carry in a tag
    detail = "\ud800" + joined()
    vpn = _tag_and_log(name, detail)
    config = tmp_path / "config.yaml"
    config.write_text(f"targets:\n  - regions: [us-east-1]\nstate_dir: {tmp_path / 'state'}\n")
    command = [sys.executable, "-m", "exporter", "diagnose", "--config", str(config), "--no-color"]
    text = subprocess.run(command, capture_output=True, timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert text.returncode == 3, text.stderr.decode(errors="replace")[-2000:]
    out = text.stdout.decode("utf-8")
    assert not RAW.search(out.replace("\n", "")), repr(RAW.search(out.replace("\n", "")))
    assert not any(line.startswith("CRITICAL forged-line") for line in out.splitlines())
    assert printable(name) in out and "\\ud800" in out and "\\x1b[2J" in out
    assert vpn in out
    ascii_terminal = subprocess.run(
        command, capture_output=True, timeout=120, env={**os.environ, "PYTHONIOENCODING": "ascii"}
    )
    assert ascii_terminal.returncode == 3, ascii_terminal.stderr.decode(errors="replace")[-2000:]
    assert "caf\\xe9" in ascii_terminal.stdout.decode("ascii")
    raw_json = subprocess.run([*command, "--output", "json"], capture_output=True, timeout=120)
    assert raw_json.returncode == 3, raw_json.stderr.decode(errors="replace")[-2000:]
    report = json.loads(raw_json.stdout)
    (connection,) = report["connections"]
    assert connection["name"] == name
    assert any(detail[:100] in line for f in connection["findings"] for line in f["evidence"])


@pytest.mark.parametrize("key", CORPUS)
def test_the_log_formatter_escapes_every_field_from_outside(key):
    hostile = CORPUS[key]
    stream = io.StringIO()
    logsetup.configure("debug", stream)
    try:
        logging.getLogger("exporter.test").info("poll failed name=%s", hostile)
        try:
            raise RuntimeError(hostile)
        except RuntimeError:
            logging.getLogger("exporter.test").exception("job failed detail=%s", hostile)
    finally:
        logsetup.configure("warning")
    text = stream.getvalue()
    text.encode("utf-8")  # a log file's encoder must never meet a lone surrogate
    _one_line_each(text, 2)
    assert printable(hostile.replace("\\", "\\\\").replace('"', '\\"'))[:100] in text  # logfmt's quoting, then escapes


def test_an_unauthenticated_request_line_is_logged_escaped(aws, make_exporter):
    """With --log.level debug every request line is logged: ESC, BEL and CR from a client must not reach
    the log raw (a terminal tailing it would obey them)."""
    stream = io.StringIO()
    logsetup.configure("debug", stream)
    try:
        exporter = make_exporter([Target(regions=("us-east-1",))])
        port = int(exporter.url.rsplit(":", 1)[1])
        for line in (
            b"GET /\x1b[2J\x1b]0;owned\x07x HTTP/1.1\r\n\r\n",
            b"GET /a\rb\x1b[31m HTTP/1.1\r\n\r\n",
            b"GET /\xed\xa0\x80\xff HTTP/1.1\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                client.sendall(line)
                assert client.recv(65536).startswith(b"HTTP/1.")
        time.sleep(0.2)  # the handler logs after its response
    finally:
        logsetup.configure("warning")
    logged = [line for line in stream.getvalue().splitlines(keepends=True) if "logger=exporter.web" in line]
    assert len(logged) >= 3, stream.getvalue()
    _one_line_each("".join(logged), len(logged))
    assert "\\x1b[2J" in "".join(logged)


def test_the_status_page_shows_every_hostile_string_escaped():
    """Escaped for HTML already; a lone surrogate made the page fail (500) for everyone, and controls and
    bidi overrides reached the browser raw."""
    hostile = joined() + CORPUS["long"]
    attacked = snapshot_of(_named(hostile), logs={"198.51.100.1": log_state(_denied(hostile))})
    body = statuspage.render(attacked, now=NOW).encode("utf-8").decode("utf-8")
    assert not RAW.search(body.replace("\n", "")), repr(RAW.search(body.replace("\n", "")))
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)" in body
    assert "\\u202e" in body and "\\ud800" in body


def test_the_alert_sink_page_shows_hostile_labels_and_annotations_escaped():
    """Alertmanager passes on what the rules rendered from AWS's labels: the pager's page stays up (a lone
    surrogate failed it for every notification) and shows a multi-line cause as lines, each escaped."""
    hostile = joined()
    alert = {
        "status": "firing",
        "labels": {"alertname": hostile, "severity": hostile},
        "annotations": {
            "description": hostile,
            "cause": f"first {hostile}\nsecond line",
            "runbook_url": "https://example.com/" + hostile,
        },
    }
    with alert_sink() as url:
        posted = requests.post(f"{url}/page", data=json.dumps({"alerts": [alert]}), timeout=5)
        page = requests.get(f"{url}/", timeout=5)
    assert posted.status_code == 200 and page.status_code == 200
    body = page.content.decode("utf-8")
    assert not RAW.search(body.replace("\n", "")), repr(RAW.search(body.replace("\n", "")))
    assert "&lt;script&gt;alert(1)" in body and "<script>alert(1)" not in body
    assert "\\x1b[2J" in body and "\\ud800" in body
    assert "\nsecond line</pre>" in body  # the cause's own lines kept
