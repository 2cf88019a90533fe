"""The HTTP endpoint: readiness, the status page at /, gzip, and the exposition's validity."""

import gzip
import shutil
import subprocess

import pytest
import requests

from exporter.config import Target
from exporter.web.server import parse_listen_address
from tests.conftest import add_vpn_connection, parse_exposition, tunnel_telemetry


@pytest.fixture
def exporter(aws, make_exporter):
    add_vpn_connection("us-east-1", [tunnel_telemetry("1.1.1.1", "DOWN", "IPSEC IS UP")], {"StaticRoutesOnly": False})
    return make_exporter([Target(regions=("us-east-1",))])


def test_ready_only_after_the_first_poll(exporter):
    assert requests.get(f"{exporter.url}/-/healthy", timeout=5).status_code == 200
    assert requests.get(f"{exporter.url}/-/ready", timeout=5).status_code == 503
    before = requests.get(f"{exporter.url}/metrics", timeout=5)
    assert before.status_code == 200 and "aws_vpn_tunnel_up" not in before.text
    assert "aws_vpn_exporter_snapshot_age_seconds NaN" in before.text
    exporter.poll_once()
    assert requests.get(f"{exporter.url}/-/ready", timeout=5).status_code == 200


def test_status_page_and_unknown_paths(exporter):
    waiting = requests.get(exporter.url + "/", timeout=5)
    assert waiting.status_code == 200 and "Waiting for the first poll" in waiting.text
    exporter.poll_once()
    page = requests.get(exporter.url + "/", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert 'href="/metrics"' in page.text and "1 of 1 VPN connections need attention." in page.text
    for odd in ("?page=0", "?page=x", "?page=99999999999", "?page=%C2%B2", "?page=2&page=3"):
        assert requests.get(exporter.url + "/" + odd, timeout=5).status_code == 200, odd
    assert requests.get(f"{exporter.url}/nope", timeout=5).status_code == 404


def test_gzip_body_decodes_to_the_plain_body(exporter):
    exporter.poll_once()
    plain = requests.get(f"{exporter.url}/metrics", headers={"Accept-Encoding": "identity"}, timeout=5)
    raw = requests.get(f"{exporter.url}/metrics", headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
    assert raw.headers["Content-Encoding"] == "gzip"
    unzipped = gzip.decompress(raw.raw.read()).decode()

    def strip(text):
        return {
            k: v
            for k, v in parse_exposition(text).items()
            if not k[0].startswith(("process_", "python_gc", "aws_vpn_exporter_snapshot_age"))
        }

    assert strip(unzipped) == strip(plain.text)
    assert "aws_vpn_tunnel_ipsec_up" in unzipped


def test_promtool_accepts_the_exposition(exporter):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by scripts/test (Debian package prometheus)"
    exporter.poll_once()
    body = requests.get(f"{exporter.url}/metrics", timeout=5).content
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "text,expected", [("127.0.0.1:9798", ("127.0.0.1", 9798)), (":9798", ("0.0.0.0", 9798)), ("[::1]:80", ("::1", 80))]
)
def test_listen_address(text, expected):
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize("text", ["9798", "host:", "host:http", "h:70000"])
def test_bad_listen_address(text):
    with pytest.raises(ValueError):
        parse_listen_address(text)


def test_a_forked_render_gives_the_same_exposition(demo, make_exporter):
    from exporter.exposition.render import RenderedSnapshot

    exporter = make_exporter(demo.targets())
    snapshot = exporter.poll_once().snapshot
    forked = RenderedSnapshot.of(snapshot, isolate=True)
    local = RenderedSnapshot.of(snapshot, isolate=False)
    assert forked.body == local.body and b"aws_vpn_tunnel_ipsec_up" in forked.body


def test_the_healthcheck_on_a_plain_exporter(exporter):
    from exporter.healthcheck import probe

    assert probe(exporter.url.removeprefix("http://"), None) == (True, "HTTP 200")


def test_an_exception_is_one_logfmt_line_with_its_kind_message_and_place():
    import io
    import logging

    from exporter import logsetup

    stream = io.StringIO()
    logsetup.configure("info", stream)
    try:
        raise ConnectionResetError("peer reset\nsecond line PreSharedKey=abc123")
    except ConnectionResetError:
        logging.getLogger("exporter.test").exception("job failed job=poll-ec2")
    line = stream.getvalue()
    assert line.count("\n") == 1 and "Traceback" not in line
    assert 'error="ConnectionResetError: peer reset second line PreSharedKey=<redacted>"' in line
    assert "where=test_web.py:" in line and "abc123" not in line
