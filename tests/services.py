"""Real services for the tests, on 127.0.0.1: Debian's Prometheus and Alertmanager, and the demo
exporter (in this process, on the session's moto server)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from exporter.app import Exporter
from exporter.cli import DEMO_TRAFFIC, DEMO_TUNNEL_STATUS
from exporter.config import Config, LogsConfig, Target
from exporter.demo.environment import DemoEnvironment, simulated_aws_environment
from exporter.demo.scenario import Scenarios


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is installed by scripts/test (Debian packages prometheus, prometheus-alertmanager)"
    return path


def wait_until(condition: Callable[[], object], timeout: float, what: str, step: float = 0.5):
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.time() + timeout
    while True:
        try:
            result = condition()
        except requests.ConnectionError:
            result = None
        if result:
            return result
        assert time.time() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(step)


def stop_within(process, seconds):
    """SIGTERM, then the exit code and stderr; on a hang, SIGQUIT's thread dump is in the failure."""
    process.send_signal(signal.SIGTERM)
    try:
        _, errors = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGQUIT)
        time.sleep(1)
        process.kill()
        _, errors = process.communicate(timeout=10)
        raise AssertionError(f"no exit {seconds} s after SIGTERM; its threads:\n{(errors or '')[-6000:]}") from None
    return process.returncode, errors


def _ready(url: str) -> bool:
    return requests.get(f"{url}/-/ready", timeout=2).status_code == 200


@contextlib.contextmanager
def running(command: list[str], url: str, what: str) -> Iterator[str]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(
            lambda: (
                process.poll() is None and _ready(url) or (process.poll() is not None and pytest.fail(f"{what} exited"))
            ),
            60,
            f"{what} to be ready",
        )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def prometheus(config: Path, data: Path, *flags: str) -> contextlib.AbstractContextManager[str]:
    port = free_port()
    return running(
        [
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            *flags,
        ],
        f"http://127.0.0.1:{port}",
        "prometheus",
    )


def prometheus_agent(config: Path, data: Path) -> contextlib.AbstractContextManager[str]:
    """Prometheus in agent mode (2.42's flags): it scrapes and remote-writes, and keeps only a WAL."""
    port = free_port()
    return running(
        [
            tool("prometheus"),
            "--enable-feature=agent",
            f"--config.file={config}",
            f"--storage.agent.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        f"http://127.0.0.1:{port}",
        "prometheus agent",
    )


def alertmanager(config: Path, data: Path) -> contextlib.AbstractContextManager[str]:
    port, cluster = free_port(), free_port()
    return running(
        [
            tool("prometheus-alertmanager"),
            f"--config.file={config}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--cluster.listen-address=127.0.0.1:{cluster}",
        ],
        f"http://127.0.0.1:{port}",
        "alertmanager",
    )


def query(url: str, expr: str) -> list:
    body = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body.get("status") == "success", f"{expr!r}: {body.get('error')}"
    return body["data"]["result"]


@contextlib.contextmanager
def simulated_aws(moto_url: str, scenarios: Scenarios | None = None) -> Iterator[DemoEnvironment]:
    """The session's moto server, reset and seeded with ``scenarios`` (the demo's by default); boto3 in
    this process reaches it."""
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in simulated_aws_environment(moto_url).items():
            patch.setenv(key, value)
        yield DemoEnvironment(scenarios, endpoint_url=moto_url).start()


def demo_config(targets: tuple[Target, ...], state_dir: Path, poll_interval: float, **settings) -> Config:
    """The config ``--demo`` runs, with these targets and intervals."""
    return Config(
        targets=targets,
        poll_interval=poll_interval,
        poll_timeout=max(1.0, poll_interval - 1),
        logs=LogsConfig(poll_interval=poll_interval),
        tunnel_status=DEMO_TUNNEL_STATUS,
        traffic=DEMO_TRAFFIC,
        state_dir=state_dir,
        **settings,
    )


@contextlib.contextmanager
def demo_exporter(
    moto_url: str, state_dir: Path, poll_interval: float = 10.0, apply_interval: float = 5.0
) -> Iterator[tuple[Exporter, DemoEnvironment]]:
    """The demo, as ``--demo`` runs it (intervals as given), on the session's simulated AWS."""
    with simulated_aws(moto_url) as demo:
        exporter = Exporter(
            demo_config((), state_dir, poll_interval, organizations=(demo.organization(),)), ("127.0.0.1", 0)
        )
        exporter.add_job(demo.apply, apply_interval, "demo-apply")
        exporter.start()
        try:
            yield exporter, demo
        finally:
            exporter.stop()


@contextlib.contextmanager
def alert_sink() -> Iterator[str]:
    """The stack's alert sink (the pager) in this process; yields its URL."""
    import threading

    from exporter.alert_sink import AlertSink

    sink = AlertSink(("127.0.0.1", 0))
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{sink.server_address[1]}"
    finally:
        sink.shutdown()
        sink.server_close()
