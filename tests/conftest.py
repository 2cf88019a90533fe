"""Shared fixtures: one moto server for the session (its backends are process-wide), reset per test,
and helpers that read the exporter's real HTTP output."""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from prometheus_client.parser import text_string_to_metric_families

from exporter.demo import strict_aws
from exporter.demo.environment import DemoEnvironment, simulated_aws_environment
from tests.faults import FaultProxy


@pytest.fixture(scope="session")
def moto_url():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    strict_aws.install()  # CloudWatch Logs as strict as AWS: a named missing stream fails the request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url, monkeypatch):
    """An empty simulated AWS that boto3 in this process reaches through AWS_ENDPOINT_URL."""
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    for key, value in simulated_aws_environment(moto_url).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_url


@pytest.fixture
def demo(aws):
    """The built-in demo scenarios, seeded into the test's simulated AWS."""
    return DemoEnvironment(endpoint_url=aws).start()


@pytest.fixture
def faults(aws, monkeypatch):
    """A fault-injecting proxy in front of moto; the exporter talks to the proxy."""
    proxy = FaultProxy(aws)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield proxy
    proxy.stop()


def scrape(url: str, **headers) -> dict[tuple[str, frozenset], float]:
    """GET /metrics and index every sample by (name, labels)."""
    response = requests.get(f"{url}/metrics", headers=headers, timeout=10)
    response.raise_for_status()
    return parse_exposition(response.text)


def parse_exposition(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample by (name, labels). A series exposed twice fails the test: Prometheus rejects the whole
    scrape's samples for it, and promtool check metrics does not notice (so every test that scrapes checks it)."""
    samples, duplicates = {}, []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            if key in samples:
                duplicates.append(f"{sample.name}{dict(sorted(sample.labels.items()))}")
            samples[key] = sample.value
    assert not duplicates, f"{len(duplicates)} duplicate series, e.g. {duplicates[:3]}"
    return samples


def value(samples: dict, name: str, /, **labels) -> float | None:
    """The one sample of ``name`` whose labels include ``labels``; None when absent."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else None


def series(samples: dict, name: str, /, **labels) -> list[dict]:
    return [dict(ls) for (n, ls) in samples if n == name and set(labels.items()) <= ls]


def add_vpn_connection(
    region: str,
    telemetry: list | None = None,
    options: dict | None = None,
    name: str = "test",
    account: str = "123456789012",
) -> str:
    """Create a VPN connection in the simulated AWS and set the telemetry/options AWS would report."""
    from moto.ec2.models import ec2_backends

    ec2 = boto3.client("ec2", region_name=region)
    cgw = ec2.create_customer_gateway(Type="ipsec.1", PublicIp="203.0.113.1", BgpAsn=65001)["CustomerGateway"]
    vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]
    vpn_id = ec2.create_vpn_connection(
        Type="ipsec.1",
        CustomerGatewayId=cgw["CustomerGatewayId"],
        VpnGatewayId=vgw["VpnGatewayId"],
        TagSpecifications=[{"ResourceType": "vpn-connection", "Tags": [{"Key": "Name", "Value": name}]}],
    )["VpnConnection"]["VpnConnectionId"]
    backend = ec2_backends[account][region].vpn_connections[vpn_id]
    backend.vgw_telemetry = telemetry
    backend.options = options
    return vpn_id


def tunnel_telemetry(ip: str, status: str, message: str, routes: int = 0, changed: int = 1_700_000_000) -> dict:
    return {
        "OutsideIpAddress": ip,
        "Status": status,
        "StatusMessage": message,
        "AcceptedRouteCount": routes,
        "LastStatusChange": datetime.fromtimestamp(changed, tz=timezone.utc),
    }


@pytest.fixture
def make_exporter(tmp_path):
    """Build an Exporter serving on 127.0.0.1:<free port>; tests call ``poll_once()`` themselves."""
    from exporter.app import Exporter
    from exporter.config import Config

    created = []

    def make(targets, **settings):
        settings.setdefault("poll_timeout", 20.0)
        settings.setdefault("state_dir", tmp_path / "state")
        exporter = Exporter(Config(targets=tuple(targets), **settings), ("127.0.0.1", 0))
        exporter.start_server()
        exporter.url = f"http://127.0.0.1:{exporter.address[1]}"
        created.append(exporter)
        return exporter

    yield make
    for exporter in created:
        exporter.stop()


class _Figures(list):
    """Measurements tests report (e.g. time to detect), printed after the run. Under pytest-xdist each worker
    appends to a file the controller names, so the figures reach the one terminal summary."""

    def append(self, line: str) -> None:
        super().append(line)
        path = os.environ.get(_FIGURES_FILE)
        if path and os.environ.get("PYTEST_XDIST_WORKER"):
            with open(path, "a", encoding="utf-8") as out:
                out.write(line.replace("\n", " ") + "\n")


FIGURES = _Figures()
_FIGURES_FILE = "AWS_VPN_TEST_FIGURES"


def pytest_collection_modifyitems(items):
    """Files marked ``long`` (minutes of real waiting, e.g. an alert's ``for``) run first: under pytest-xdist
    their worker starts them at once while the others share the rest, instead of starting them last.

    Every test on the simulated AWS is ``slow`` (seeding it, and the exporter's real polls against it, take a
    second or more), so ``scripts/test --quick`` runs the unit tests without anyone marking each one."""
    for item in items:
        if "moto_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def pytest_configure(config):
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # the controller, before it starts any worker
        handle, path = tempfile.mkstemp(prefix="aws-vpn-figures-")
        os.close(handle)
        os.environ[_FIGURES_FILE] = path


def pytest_terminal_summary(terminalreporter):
    path = os.environ.get(_FIGURES_FILE)
    lines = list(FIGURES)
    if path and os.path.exists(path):
        lines += Path(path).read_text(encoding="utf-8").splitlines()
        os.unlink(path)
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)
