"""Hostile and careless HTTP clients: slow headers by the thousand, clients that never read, encodings
refused, resets mid-response, and guessed user names. None of them starves a scrape or the AWS calls."""

import contextlib
import gzip
import logging
import os
import resource
import socket
import subprocess
import sys
import time

import bcrypt
import pytest
import requests
import yaml

from exporter.config import Target
from exporter.web.config import load_web_config
from exporter.web.server import MAX_CONNECTIONS, accepts_gzip
from tests.conftest import add_vpn_connection, parse_exposition, tunnel_telemetry, value
from tests.services import alert_sink, free_port, stop_within, wait_until


@pytest.fixture
def exporter(aws, make_exporter):
    add_vpn_connection("us-east-1", [tunnel_telemetry("1.1.1.1", "DOWN", "IPSEC IS UP")], {"StaticRoutesOnly": False})
    running = make_exporter([Target(regions=("us-east-1",))])
    running.poll_once()
    return running


@pytest.mark.parametrize(
    "header,gzip_ok",
    [
        ("gzip", True),
        ("gzip, deflate", True),
        ("deflate, gzip;q=0.5", True),
        ("*", True),
        ("identity", False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, identity", False),
        ("*;q=0", False),
        ("*, gzip;q=0", False),
        ("", False),
        ("GZIP", True),
        ("gzip;q=bad", False),
    ],
)
def test_accept_encoding_q_values_are_honoured(header, gzip_ok):
    assert accepts_gzip(header) is gzip_ok


def test_a_refused_gzip_gets_the_plain_text_streamed_and_complete(exporter):
    zipped = requests.get(f"{exporter.url}/metrics", headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
    assert zipped.headers["Content-Encoding"] == "gzip"
    raw = gzip.decompress(zipped.raw.read())
    plain = requests.get(f"{exporter.url}/metrics", headers={"Accept-Encoding": "gzip;q=0"}, timeout=5)
    assert "Content-Encoding" not in plain.headers and plain.headers["Transfer-Encoding"] == "chunked"
    snapshot_lines = [line for line in raw.decode().splitlines() if line.startswith("aws_vpn_tunnel")]
    assert snapshot_lines and all(line in plain.text for line in snapshot_lines)
    assert parse_exposition(plain.text)
    assert plain.headers["Server"] == "aws-vpn-exporter"  # no Python version


def test_an_http_1_0_client_gets_the_body_until_close(exporter):
    port = int(exporter.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := client.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"chunked" not in head and b"aws_vpn_tunnel_up" in body


def test_slow_header_clients_cannot_starve_scrapes(exporter, caplog):
    port = int(exporter.url.rsplit(":", 1)[1])
    slow = []
    try:
        for _ in range(MAX_CONNECTIONS + 200):  # more than the server will hold
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
            slow.append(client)
        started = time.monotonic()
        response = requests.get(f"{exporter.url}/metrics", timeout=5)
        assert response.ok and "aws_vpn_tunnel_up" in response.text
        assert time.monotonic() - started < 3
        assert len(exporter.server._open) <= MAX_CONNECTIONS
    finally:
        for client in slow:
            client.close()


def test_posts_whose_body_never_comes_cannot_starve_scrapes(exporter):
    """Unauthenticated POSTs announcing a body they never send: each is read for its body (so that it is not
    taken for the next request), and while it waits it is as evictable as one waiting for headers."""
    port = int(exporter.url.rsplit(":", 1)[1])
    slow = []
    try:
        for _ in range(MAX_CONNECTIONS + 5):
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            client.sendall(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")  # no body
            slow.append(client)
        started = time.monotonic()
        response = requests.get(f"{exporter.url}/metrics", timeout=5)
        assert response.ok and "aws_vpn_tunnel_up" in response.text
        assert time.monotonic() - started < 3
    finally:
        for client in slow:
            client.close()


def test_headers_that_trickle_in_forever_hit_one_deadline(exporter, monkeypatch):
    monkeypatch.setattr("exporter.web.server.HEADER_DEADLINE", 1.0)
    port = int(exporter.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"GET /metrics HTTP/1.1\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 5:
            try:
                client.sendall(b"X-Slow: 1\r\n")  # a byte now and then: no single read ever times out
                if client.recv(65536, socket.MSG_DONTWAIT) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
            time.sleep(0.2)
    assert closed and time.monotonic() - started < 3


def test_a_client_reset_mid_response_is_one_log_line(exporter, caplog, capfd):
    port = int(exporter.url.rsplit(":", 1)[1])
    caplog.set_level(logging.INFO, logger="exporter.web.server")
    for _ in range(5):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        client.close()  # RST, before the response is read
    time.sleep(0.5)
    assert requests.get(f"{exporter.url}/-/healthy", timeout=5).ok
    assert "Traceback" not in capfd.readouterr().err


def _answer(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(request)
        return client.recv(65536)


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1e3", b"\xef\xbc\x91"])  # the last: a fullwidth 1
def test_a_post_whose_length_is_not_a_number_gets_400(exporter, length):
    """Its body's end is unknown: answered 400 (the connection closed, as the next request cannot be found),
    not closed without a word; the server serves the next client."""
    port = int(exporter.url.rsplit(":", 1)[1])
    answer = _answer(port, b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\nxyz")
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"Connection: close" in answer
    assert requests.get(f"{exporter.url}/-/healthy", timeout=5).ok


@pytest.mark.parametrize(
    "request_head",
    [
        b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 33\r\n\r\n",  # two lengths
        b"POST /-/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n21\r\n",  # a chunked body
        b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 33\r\n\r\n",  # a body on a GET
        b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n21\r\n",
    ],
    ids=["two Content-Length", "chunked POST", "GET with a body", "chunked GET"],
)
def test_a_request_body_is_never_read_as_the_next_request(exporter, request_head):
    """Behind a proxy that keeps connections open, a body the server leaves unread would be taken for the next
    request (a smuggled one): it is read and dropped, the connection closed after the answer, or refused with
    400 and the connection closed."""
    smuggled = b"GET /smuggled HTTP/1.1\r\nX: yz\r\n\r\n"  # 33 bytes
    port = int(exporter.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(request_head + smuggled)
        client.settimeout(2)  # a kept connection is read until quiet: a smuggled answer would come by then
        answers = b""
        with contextlib.suppress(TimeoutError):
            while chunk := client.recv(65536):
                answers += chunk
    # one answer only: not the smuggled request's 404, nor an error page for a chunk read as a request line
    assert answers.count(b"HTTP/1.1 ") == 1 and b"Not found" not in answers and b"Error response" not in answers, (
        answers
    )
    assert requests.get(f"{exporter.url}/-/healthy", timeout=5).ok


def test_the_alert_sink_answers_a_length_that_is_not_a_number_with_400():
    with alert_sink() as url:
        answer = _answer(int(url.rsplit(":", 1)[1]), b"POST /page HTTP/1.1\r\nContent-Length: abc\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.0 400 "), answer


def test_unknown_users_cost_what_known_ones_do(tmp_path):
    """Before, an unknown user was refused in 1.3 ms and a wrong password in 72 ms: user enumeration."""
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=10)).decode()
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
    web = load_web_config(path)
    import base64

    def seconds(user, password):
        started = time.perf_counter()
        assert not web.authorized("Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        return time.perf_counter() - started

    web.authorized("Basic " + base64.b64encode(b"warm:up").decode())  # the dummy hash is made once
    unknown, known = seconds("nobody", "guess1"), seconds("prometheus", "guess2")
    assert unknown > known / 3, (unknown, known)
    assert web.authorized("Basic " + base64.b64encode(b"prometheus:right").decode())


def _limit_files():
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))


def test_thousands_of_slow_clients_under_a_low_file_limit_starve_nothing(aws, tmp_path):
    """The real command with `ulimit -n 512`; 2,000 slow-header connections; scrapes and AWS calls go on."""
    add_vpn_connection("us-east-1", [tunnel_telemetry("1.1.1.1", "UP", "1 BGP ROUTES", 1)], {"StaticRoutesOnly": False})
    config = tmp_path / "config.yaml"
    config.write_text(f"poll_interval: 2s\ntargets:\n  - regions: [us-east-1]\nstate_dir: {tmp_path / 'state'}\n")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--config", str(config), "--web.listen-address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "stderr").open("w"),
        env=dict(os.environ),
        preexec_fn=_limit_files,
    )
    slow = []
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=5).ok, 60, "readiness")
        for _ in range(2000):
            try:
                client = socket.create_connection(("127.0.0.1", port), timeout=2)
                client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                slow.append(client)
            except OSError:
                pass  # refused or reset by the server: fine, that is the point
        polls_before = value(
            parse_exposition(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text),
            "aws_vpn_exporter_poll_timestamp_seconds",
        )
        time.sleep(4)  # two more EC2 polls: they need file descriptors for their HTTPS connections
        samples = parse_exposition(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
        assert value(samples, "aws_vpn_exporter_poll_timestamp_seconds") > polls_before
        assert value(samples, "aws_vpn_exporter_collection_success", source="ec2") == 1
    finally:
        for client in slow:
            client.close()
        stop_within(process, 10)
    errors = (tmp_path / "stderr").read_text()
    assert "Too many open files" not in errors and "Traceback" not in errors
    assert errors.count("client connection") < 20  # rate-limited: an attack does not flood the log
