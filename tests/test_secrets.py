"""Pre-shared keys never leave: not in /metrics, not on the status page, not in the logs, not even at debug level."""

import io
import logging
import os
import subprocess
import sys
import time

import boto3
import pytest
import requests

from exporter import logsetup
from exporter.logsetup import redact
from exporter.sources.aws import AwsAccount
from exporter.sources.secrets import strip_secrets
from tests.conftest import parse_exposition
from tests.services import stop_within

MOTO_CGW_KEY = "Iw2IAN9XUsQeYUrkMGP3kP59ugFDkfHg"  # in every CustomerGatewayConfiguration moto returns


def test_keys_reach_neither_metrics_nor_the_status_page_nor_debug_logs(demo, make_exporter):
    stream = io.StringIO()
    logsetup.configure("debug", stream=stream)
    logging.getLogger("botocore").setLevel(logging.DEBUG)  # even with library debug forced on
    try:
        exporter = make_exporter(demo.targets())
        exporter.sources["tunnel_status"].poller.max_calls_per_second = 1000
        exporter.poll_once()
        exporter.poll("tunnel_status")  # the per-tunnel status calls too
        body = requests.get(f"{exporter.url}/metrics", timeout=5).text
        parse_exposition(body)  # no series twice
        page = requests.get(f"{exporter.url}/", timeout=5).text
    finally:
        logsetup.configure("warning")
    logs = stream.getvalue()
    assert "Response body" in logs, "botocore debug output was captured, so the test looked at real bodies"
    keys = demo.pre_shared_keys() + [MOTO_CGW_KEY]
    assert len(keys) == 19
    state = "".join(path.read_text() for path in exporter.config.state_dir.glob("*.json"))
    assert "version" in state, "the log state file was written, so the test looked at it"
    assert "branch-tokyo" in page and "need attention" in page, "the status page was served, so the test looked at it"
    for key in keys:
        assert key not in body
        assert key not in page
        assert key not in logs
        assert key not in state


def test_redaction_patterns():
    samples = [
        "<preSharedKey>abc123SECRET</preSharedKey>",
        "&lt;pre_shared_key&gt;abc123SECRET&lt;/pre_shared_key&gt;",
        "{'PreSharedKey': 'abc123SECRET', 'x': 1}",
        '{"PreSharedKey": "abc123SECRET"}',
        "PreSharedKey=abc123SECRET",
        "<customerGatewayConfiguration>&lt;vpn&gt;abc123SECRET&lt;/vpn&gt;</customerGatewayConfiguration>",
        "'CustomerGatewayConfiguration': '<vpn>abc123SECRET</vpn>', 'CustomerGatewayId': 'cgw-1'",
    ]
    for sample in samples:
        assert "abc123SECRET" not in redact(sample), sample
    assert redact("ordinary line with cgw-1") == "ordinary line with cgw-1"


@pytest.mark.slow  # runs the demo exporter: not in `scripts/test --quick`
def test_the_running_demo_leaks_no_key(tmp_path):
    """The real command, at debug level: moto's CGW key never appears in its output or its metrics."""
    # stderr goes to a file: reading a pipe line by line reads ahead, and communicate() would then miss what
    # was read ahead (the lines logged in the same instant as "listening")
    log_file = tmp_path / "stderr"
    with log_file.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "--demo", "--log.level", "debug", "--web.listen-address", "127.0.0.1:0"],
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        port = None
        deadline = time.time() + 60
        while time.time() < deadline and port is None:
            listening = [line for line in log_file.read_text().splitlines() if 'msg="listening address=' in line]
            if listening:
                port = int(listening[0].split("address=")[1].split(":")[1].split('"')[0])
            time.sleep(0.05)
        assert port, log_file.read_text()
        while requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=5).status_code != 200:
            assert time.time() < deadline
            time.sleep(0.2)
        body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        parse_exposition(body)  # no series twice
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=5).text
        assert 'name="branch-tokyo"' in body
        assert "branch-tokyo" in page and "simulated AWS" in page  # --demo reaches the page
    finally:
        code, _ = stop_within(process, 30)
    assert code == 0
    logs = log_file.read_text()
    assert "shutting down" in logs
    assert (
        f"open http://127.0.0.1:{port}/ (status page) and http://127.0.0.1:{port}/metrics, or run "
        "aws-vpn-exporter diagnose --demo" in logs
    )  # the demo says where to look
    assert all(line.startswith("ts=") for line in logs.splitlines() if line), "every line is logfmt"
    for leak in (MOTO_CGW_KEY, "demo-psk-"):
        assert leak not in body and leak not in page and leak not in logs


def test_keys_are_cut_from_the_raw_response_before_botocore_parses_it(demo):
    """Without the redactor: the parsed response and botocore's own debug dump of the body hold no key."""
    target = demo.targets()[0]
    region = target.regions[0]
    plain = boto3.client("ec2", region_name=region).describe_vpn_connections()["VpnConnections"]
    assert any(MOTO_CGW_KEY in c.get("CustomerGatewayConfiguration", "") for c in plain), "the keys are there to cut"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    botocore_log = logging.getLogger("botocore")
    botocore_log.addHandler(handler)
    botocore_log.setLevel(logging.DEBUG)
    try:
        account = AwsAccount(target, lambda *_: None)
        connections = account.client("ec2", region).describe_vpn_connections()["VpnConnections"]
    finally:
        botocore_log.removeHandler(handler)
        botocore_log.setLevel(logging.WARNING)
    assert len(connections) == len(plain)
    assert "Response body" in stream.getvalue()
    for connection in connections:
        assert "CustomerGatewayConfiguration" not in connection
        for tunnel in connection.get("Options", {}).get("TunnelOptions", []):
            assert "PreSharedKey" not in tunnel and tunnel.get("OutsideIpAddress")
    for key in demo.pre_shared_keys() + [MOTO_CGW_KEY]:
        assert key not in stream.getvalue() and key not in repr(connections)


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            b"<a><customerGatewayConfiguration>&lt;psk&gt;</customerGatewayConfiguration><b>1</b></a>",
            b"<a><b>1</b></a>",
        ),
        (
            b"<i><preSharedKey>k1</preSharedKey><preSharedKeyArn>arn</preSharedKeyArn></i><i><preSharedKey>k2\n</preSharedKey></i>",
            b"<i><preSharedKeyArn>arn</preSharedKeyArn></i><i></i>",
        ),
        (b"<a><customerGatewayConfiguration/><preSharedKey /></a>", b"<a></a>"),
        (b"<a>no secrets</a>", b"<a>no secrets</a>"),
    ],
)
def test_strip_secrets(body, expected):
    assert strip_secrets(body) == expected


def test_the_traffic_path_leaks_no_key(demo, make_exporter):
    """GetMetricData, its debug logs, the traffic series and traffic-state.json hold no key either."""
    from exporter.cli import DEMO_TRAFFIC

    stream = io.StringIO()
    logsetup.configure("debug", stream=stream)
    logging.getLogger("botocore").setLevel(logging.DEBUG)
    try:
        exporter = make_exporter(demo.targets(), traffic=DEMO_TRAFFIC)
        exporter.poll_once()
        exporter.poll("traffic")
        body = requests.get(f"{exporter.url}/metrics", timeout=5).text
        parse_exposition(body)  # no series twice
        page = requests.get(f"{exporter.url}/", timeout=5).text
    finally:
        logsetup.configure("warning")
    logs = stream.getvalue()
    state = (exporter.config.state_dir / "traffic-state.json").read_text()
    assert "GetMetricData" in logs and "aws_vpn_tunnel_received_bytes_total" in body
    for key in demo.pre_shared_keys() + [MOTO_CGW_KEY]:
        assert key not in body and key not in page and key not in logs and key not in state


@pytest.mark.parametrize("protocol_operation", ["DescribeVpnConnections", "GetMetricData"])
def test_an_aws_error_quoting_a_key_shows_it_nowhere(demo, faults, make_exporter, protocol_operation):
    """An AWS error's message is AWS's text: one quoting a key (as XML, JSON or key=value) is redacted before it
    becomes the error the status page, diagnose's report and the logs show (the logs redacted it; the others
    did not)."""
    from exporter.cli import DEMO_TRAFFIC
    from exporter.diagnosis.report import build_report
    from tests.faults import Fault

    keys = ("xml_key_0123456789abcdef", "json_key_0123456789abcdef", "kv_key_0123456789abcdef")
    message = (
        f"Value (<PreSharedKey>{keys[0]}</PreSharedKey>) is invalid; "
        f'{{"PreSharedKey": "{keys[1]}"}}; pre_shared_key={keys[2]}'
    )
    faults.faults.append(Fault(operation=protocol_operation, status=400, code="InvalidParameterValue", message=message))
    stream = io.StringIO()
    logsetup.configure("info", stream=stream)
    try:
        exporter = make_exporter(demo.targets(), traffic=DEMO_TRAFFIC)
        exporter.poll_once()
        exporter.poll("traffic")
        page = requests.get(f"{exporter.url}/", timeout=5).text
        body = requests.get(f"{exporter.url}/metrics", timeout=5).text
        report = repr(build_report(exporter.current.snapshot))
    finally:
        logsetup.configure("warning")
    errors = [r.error for r in exporter.current.snapshot.results if r.error]
    assert any("InvalidParameterValue" in error for error in errors), errors  # the fault was met and reported
    assert "<redacted>" in " ".join(errors)
    for key in keys:
        for output in (page, body, report, stream.getvalue(), *errors):
            assert key not in output
