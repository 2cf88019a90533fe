"""The stack's own config files, run for real: Debian's Prometheus and Alertmanager with the files
compose.yaml mounts (only hostnames and ports rewritten), the demo exporter, and the alert sink.

The end-to-end test drives a demo tunnel from healthy to IPsec-up-BGP-down and back, and measures
the time from the change in the simulated AWS to the page, and to its resolution.
"""

from __future__ import annotations

import html
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from exporter.alert_sink import AlertSink
from generate.alerting import ALERTMANAGER_FILE, RULES_FILE, load_settings
from tests import services
from tests.conftest import FIGURES

pytestmark = pytest.mark.slow  # the stack on real Prometheus and Alertmanager: not in `scripts/test --quick`

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = load_settings()  # the committed alerts/settings.yml
PROMETHEUS_FILE = ROOT / "stack" / "prometheus" / "prometheus.yml"
COMPOSE_FILE = ROOT / "compose.yaml"


def test_promtool_and_amtool_accept_the_stack_configs():
    checked = subprocess.run(
        [services.tool("promtool"), "check", "config", str(PROMETHEUS_FILE)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout + checked.stderr
    checked = subprocess.run(
        [services.tool("amtool"), "check-config", str(ALERTMANAGER_FILE)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_is_coherent_with_the_files_it_mounts():
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    services_ = compose["services"]
    assert set(services_) == {"exporter", "prometheus", "alertmanager", "alert-sink", "grafana"}
    built = services_["exporter"]["image"]  # the image compose builds from the Dockerfile
    for name, service in services_.items():
        image = service.get("image", "")
        assert image == built or re.search(r":v?\d+\.\d+\.\d+$", image), f"{name}: image not pinned: {image}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
    assert "./stack/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in services_["prometheus"]["volumes"]
    assert "./alerts:/etc/prometheus/rules:ro" in services_["prometheus"]["volumes"]
    assert "./alerts/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in services_["alertmanager"]["volumes"]
    # the names the configs use are services of the stack, on the ports they publish
    prometheus = yaml.safe_load(PROMETHEUS_FILE.read_text())
    targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert "exporter:9798" in targets and any(port.endswith(":9798:9798") for port in services_["exporter"]["ports"])
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert (PROMETHEUS_FILE.parent / prometheus["rule_files"][0]).resolve() == RULES_FILE.resolve()
    alertmanager = yaml.safe_load(ALERTMANAGER_FILE.read_text())
    for receiver in alertmanager["receivers"]:
        assert receiver["webhook_configs"][0]["url"].startswith("http://alert-sink:9099/")
    assert any(port.endswith(":9099:9099") for port in services_["alert-sink"]["ports"])


def test_the_image_is_small_non_root_and_healthchecked():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 10001$", dockerfile, re.M)
    assert re.search(r'^HEALTHCHECK .*\n\s*CMD \["aws-vpn-exporter", "healthcheck"\]', dockerfile, re.M)
    assert dockerfile.count("FROM python:3.11-slim") == 2  # build stage and runtime stage
    assert not re.search(r"AWS_(SECRET|ACCESS|SESSION)\w*\s*=", dockerfile)


def _rewrite(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in text, f"{old} not in the config: the rewrite would be a no-op"
        text = text.replace(old, new)
    return text


def _notification(sink: AlertSink, status: str, labels: dict, since: float):
    """The first notification at or after ``since`` carrying an alert with ``status`` and ``labels``."""
    for received_at, receiver, payload in sink.received():
        if received_at < since:
            continue
        for alert in payload.get("alerts", []):
            if alert["status"] == status and labels.items() <= alert["labels"].items():
                return received_at, receiver, alert
    return None


@pytest.mark.long
def test_from_tunnel_failure_to_page_and_back(moto_url, tmp_path):
    sink = AlertSink(("127.0.0.1", 0))
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_address = f"127.0.0.1:{sink.server_address[1]}"
    try:
        with services.demo_exporter(moto_url, tmp_path / "state") as (exporter, demo):
            am_config = tmp_path / "alertmanager.yml"
            am_config.write_text(_rewrite(ALERTMANAGER_FILE.read_text(), {"alert-sink:9099": sink_address}))
            with services.alertmanager(am_config, tmp_path / "am-data") as am_url:
                prom_dir = tmp_path / "prometheus"
                prom_dir.mkdir()
                (prom_dir / "rules").symlink_to(RULES_FILE.parent)  # the same rules, as compose mounts them
                prom_port = services.free_port()
                (prom_dir / "prometheus.yml").write_text(
                    _rewrite(
                        PROMETHEUS_FILE.read_text(),
                        {
                            "alertmanager:9093": am_url.removeprefix("http://"),
                            "exporter:9798": f"127.0.0.1:{exporter.address[1]}",
                            "localhost:9090": f"127.0.0.1:{prom_port}",
                        },
                    )
                )
                with services.running(
                    [
                        services.tool("prometheus"),
                        f"--config.file={prom_dir / 'prometheus.yml'}",
                        f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                    ],
                    f"http://127.0.0.1:{prom_port}",
                    "prometheus",
                ) as prom_url:
                    _drive(sink, demo, prom_url)
    finally:
        sink.shutdown()


def _drive(sink: AlertSink, demo, prom_url: str) -> None:
    vpn = demo.connection_id("hq-core")
    healthy = f'aws_vpn_tunnel_bgp_up{{vpn_connection_id="{vpn}", tunnel="198.51.100.11"}} == 1'
    services.wait_until(lambda: services.query(prom_url, healthy), 90, "Prometheus to see hq-core healthy")
    labels = {
        "alertname": "VpnTunnelIpsecUpBgpDown",
        "vpn_connection_id": vpn,
        "tunnel": "198.51.100.11",
        "name": "hq-core",
        "severity": "critical",
        "account_id": "123456789012",
        "region": "us-east-1",
    }

    failed_at = time.time()
    demo.set_state("hq-core", 0, "ipsec_up_bgp_down")
    paged_at, receiver, alert = services.wait_until(
        lambda: _notification(sink, "firing", labels, failed_at), 480, "the page", step=1
    )
    assert receiver == "/pager"
    assert alert["annotations"]["summary"] == "VPN tunnel has IPsec up but BGP down."
    assert "(hq-core)" in alert["annotations"]["description"]
    assert alert["annotations"]["runbook_url"].endswith("#vpntunnelipsecupbgpdown")
    cause = alert["annotations"]["cause"]  # rendered by Prometheus from the exporter's diagnosis
    assert cause.endswith(": IP 203.0.113.10, BGP ASN 65010.") and ("Fix: " in cause or "No specific cause" in cause)
    page = urllib.request.urlopen(f"http://127.0.0.1:{sink.server_address[1]}/", timeout=10).read().decode()
    assert html.escape(cause) in page and '<td class="critical">critical</td>' in page
    assert "http-equiv=refresh" in page and f'href="{html.escape(alert["annotations"]["runbook_url"])}"' in page

    recovered_at = time.time()
    demo.set_state("hq-core", 0, None)
    resolved_at, _, _ = services.wait_until(
        lambda: _notification(sink, "resolved", labels, recovered_at), 300, "the resolution", step=1
    )
    detect, resolve = paged_at - failed_at, resolved_at - recovered_at
    FIGURES.append(
        f"end to end: tunnel IPsec-up-BGP-down to page {detect:.0f} s "
        f"(rule for {SETTINGS['bgp_down_for']}); BGP back to resolved notification {resolve:.0f} s"
    )
    hold = int(SETTINGS["bgp_down_for"].removesuffix("m")) * 60
    assert hold <= detect <= hold + 120, detect
    assert resolve <= 150, resolve
