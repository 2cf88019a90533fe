"""SIGTERM on the real command saves the log state; the restarted exporter loses and duplicates nothing."""

import os
import signal
import subprocess
import sys
import time

import requests

from tests.conftest import parse_exposition, value
from tests.faults import Fault
from tests.services import free_port, stop_within, wait_until
from tests.test_logs import dpd, logged_vpn, put


def start(config, port):
    return subprocess.Popen(
        [sys.executable, "-m", "exporter", "--config", str(config), "--web.listen-address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def events(port, vpn):
    try:
        samples = parse_exposition(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    except requests.ConnectionError:
        return None
    return value(samples, "aws_vpn_tunnel_log_events_total", vpn_connection_id=vpn, event="dpd")


def logged_exporter(tmp_path, dpd_events):
    """A logged VPN with ``dpd_events`` in its log, and the real command watching it: (vpn, config, port, process)."""
    vpn = logged_vpn()
    put(vpn, dpd(dpd_events))
    config = tmp_path / "config.yaml"
    config.write_text(
        f"poll_interval: 2s\ntargets:\n  - regions: [us-east-1]\nlogs:\n  poll_interval: 1s\n"
        f"state_dir: {tmp_path / 'state'}\n"
    )
    port = free_port()
    return vpn, config, port, start(config, port)


def test_sigterm_saves_state_and_a_restart_counts_exactly_once(aws, tmp_path):
    vpn, config, port, first = logged_exporter(tmp_path, 4)
    try:
        wait_until(lambda: events(port, vpn) == 4, 60, "the first exporter to count 4 events")
    finally:
        code, errors = stop_within(first, 30)
    assert code == 0, errors
    assert "shutting down" in errors
    assert (tmp_path / "state" / "logs-state.json").exists()

    put(vpn, dpd(2))
    second = start(config, port)
    try:
        wait_until(lambda: events(port, vpn) == 6, 60, "the restarted exporter to count 6 events")
        time.sleep(3)  # several more log polls re-read the overlap window
        assert events(port, vpn) == 6
    finally:
        code, _ = stop_within(second, 30)
    assert code == 0


def test_sigterm_exits_promptly_with_state_saved_while_an_aws_call_hangs(aws, faults, tmp_path):
    """A poll stuck on a hung endpoint (15 s read timeout x 4 attempts) must not hold up the exit."""
    vpn, _, port, process = logged_exporter(tmp_path, 3)
    try:
        wait_until(lambda: events(port, vpn) == 3, 60, "the exporter to count 3 events")
        faults.faults.append(Fault(operation="DescribeVpnConnections", delay=120))
        wait_until(lambda: faults.faults[0].hits > 0, 30, "a poll to hang on DescribeVpnConnections")
        started = time.monotonic()
        code, errors = stop_within(process, 10)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, errors
    assert "shutting down signal=SIGTERM" in errors and "state saved; exiting" in errors
    assert time.monotonic() - started < 10
    assert (tmp_path / "state" / "logs-state.json").exists()


def test_sigquit_dumps_every_thread_and_keeps_running(aws, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"targets:\n  - regions: [us-east-1]\nstate_dir: {tmp_path / 'state'}\n")
    port = free_port()
    process = start(config, port)
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=5).ok, 60, "readiness")
        process.send_signal(signal.SIGQUIT)
        time.sleep(1)
        assert requests.get(f"http://127.0.0.1:{port}/-/healthy", timeout=5).ok
        code, errors = stop_within(process, 10)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0
    assert "Thread 0x" in errors and 'File "' in errors and "serve_forever" in errors
