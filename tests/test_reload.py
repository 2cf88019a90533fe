"""SIGHUP and POST /-/reload re-read the config, as Prometheus does: a good one takes effect, a bad one is
refused with a log line and a gauge, and the old one keeps running. Before, SIGHUP killed the process."""

import os
import signal
import subprocess
import sys

import requests

from tests.conftest import add_vpn_connection, parse_exposition, series, tunnel_telemetry, value
from tests.services import free_port, stop_within, wait_until

CONFIG = "poll_interval: 1s\ntargets:\n  - regions: [{regions}]\nstate_dir: {state}\n"


def start(config, port, *flags):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "--config",
            str(config),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            *flags,
        ],
        stdout=subprocess.DEVNULL,
        stderr=(config.parent / "stderr").open("w"),
        env=dict(os.environ),
    )


def samples(port):
    return parse_exposition(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)


def regions(port):
    return {labels["region"] for labels in series(samples(port), "aws_vpn_exporter_collection_success", source="ec2")}


def test_sighup_applies_a_good_config_and_refuses_a_bad_one(aws, tmp_path):
    add_vpn_connection("eu-west-1", [tunnel_telemetry("1.1.1.1", "UP", "1 BGP ROUTES", 1)], {"StaticRoutesOnly": False})
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(regions="us-east-1", state=tmp_path / "state"))
    port = free_port()
    process = start(config, port)
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=5).ok, 60, "readiness")
        assert regions(port) == {"us-east-1"}
        config.write_text(CONFIG.format(regions="us-east-1, eu-west-1", state=tmp_path / "state"))
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: regions(port) == {"us-east-1", "eu-west-1"}, 30, "the new region to be polled")
        assert value(samples(port), "aws_vpn_exporter_config_last_reload_successful") == 1
        assert value(samples(port), "aws_vpn_tunnel_up", region="eu-west-1") == 1

        config.write_text("poll_interval: soon\n")
        process.send_signal(signal.SIGHUP)
        wait_until(
            lambda: value(samples(port), "aws_vpn_exporter_config_last_reload_successful") == 0,
            30,
            "the bad config to be refused",
        )
        assert process.poll() is None
        assert regions(port) == {"us-east-1", "eu-west-1"}  # the old config keeps running
    finally:
        code, _ = stop_within(process, 10)
    log = (tmp_path / "stderr").read_text()
    assert code == 0
    assert "config reload failed" in log and "poll_interval" in log


def test_post_reload_needs_the_lifecycle_flag(aws, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(regions="us-east-1", state=tmp_path / "state"))
    plain, enabled = free_port(), free_port()
    without = start(config, plain)
    (tmp_path / "second").mkdir()
    second = tmp_path / "second" / "config.yaml"
    second.write_text(CONFIG.format(regions="us-east-1", state=tmp_path / "second" / "state"))
    with_flag = start(second, enabled, "--web.enable-lifecycle")
    try:
        for port in (plain, enabled):
            wait_until(lambda p=port: requests.get(f"http://127.0.0.1:{p}/-/healthy", timeout=5).ok, 60, "health")
        assert requests.post(f"http://127.0.0.1:{plain}/-/reload", timeout=5).status_code == 403
        assert requests.post(f"http://127.0.0.1:{enabled}/-/reload", timeout=30).status_code == 200
        second.write_text("targets: nope\n")
        failed = requests.post(f"http://127.0.0.1:{enabled}/-/reload", timeout=30)
        assert failed.status_code == 500 and "targets" in failed.text
        assert requests.post(f"http://127.0.0.1:{enabled}/metrics", timeout=5).status_code == 405
    finally:
        stop_within(without, 10)
        stop_within(with_flag, 10)
