"""SIGTERM on the real command saves the log state; the restarted exporter loses and duplicates nothing."""

import os
import signal
import subprocess
import sys
import time

import requests

from tests.conftest import parse_exposition, value
from tests.services import free_port, wait_until
from tests.test_logs import dpd, logged_vpn, put


def start(config, port):
    return subprocess.Popen([sys.executable, "-m", "exporter", "--config", str(config), "--web.listen-address",
                             f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))


def events(port, vpn):
    try:
        samples = parse_exposition(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    except requests.ConnectionError:
        return None
    return value(samples, "aws_vpn_tunnel_log_events_total", vpn_connection_id=vpn, event="dpd")


def test_sigterm_saves_state_and_a_restart_counts_exactly_once(aws, tmp_path):
    vpn = logged_vpn()
    put(vpn, dpd(4))
    config = tmp_path / "config.yaml"
    config.write_text(f"poll_interval: 2s\ntargets:\n  - regions: [us-east-1]\nlogs:\n  poll_interval: 1s\n"
                      f"state_dir: {tmp_path / 'state'}\n")
    port = free_port()
    first = start(config, port)
    try:
        wait_until(lambda: events(port, vpn) == 4, 60, "the first exporter to count 4 events")
    finally:
        first.send_signal(signal.SIGTERM)
        _, errors = first.communicate(timeout=30)
    assert first.returncode == 0, errors
    assert "shutting down" in errors
    assert (tmp_path / "state" / "logs-state.json").exists()

    put(vpn, dpd(2))
    second = start(config, port)
    try:
        wait_until(lambda: events(port, vpn) == 6, 60, "the restarted exporter to count 6 events")
        time.sleep(3)  # several more log polls re-read the overlap window
        assert events(port, vpn) == 6
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=30)
    assert second.returncode == 0
