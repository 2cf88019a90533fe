"""The package as an operator installs it, without a clone: a wheel built from this tree, installed in a
fresh venv that sees nothing else, run from a directory outside the repository.

An editable install hides what this catches: a data file the wheel leaves out, a module that needs
generate/ or tests/, a dependency missing from pyproject.toml, and --demo without the demo extra. One
release version: the wheel's, exporter.__version__ and the top of CHANGELOG.md.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import requests
import yaml

import exporter
from exporter.cli import DEMO_EXTRA_INSTALL
from exporter.demo.environment import simulated_aws_environment
from exporter.demo.scenario import load_scenarios
from tests.conftest import parse_exposition, series, value
from tests.docs import doc, section
from tests.services import free_port, stop_within, wait_until

pytestmark = pytest.mark.slow  # builds the wheel and installs it in a fresh venv: not in `scripts/test --quick`

ROOT = Path(__file__).resolve().parents[1]
DIST = "aws_vpn_exporter"
# Not part of the source: setuptools' build/ would be reused by the next build (a deleted module would ship).
NOT_SOURCE = (
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".hypothesis",
    "state",
)
RELEASE = re.compile(r"^## \[(?P<version>\d+\.\d+\.\d+)\] - (?P<date>\d{4}-\d{2}-\d{2})$", re.M)
COMMAND_SECONDS = 120


def _run(command: list, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(word) for word in command], capture_output=True, text=True, timeout=COMMAND_SECONDS, **options
    )


def _checked(command: list, **options) -> subprocess.CompletedProcess:
    result = _run(command, **options)
    assert result.returncode == 0, f"{command[:4]} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result


def _environment(**extra: str) -> dict[str, str]:
    """This environment without what would let the venv see this tree (PYTHONPATH), another venv, or a
    real AWS account (AWS_*); pip's own settings (PIP_*) are kept."""
    kept = {
        key: text
        for key, text in os.environ.items()
        if not key.startswith(("PYTHON", "AWS_", "VIRTUAL_ENV", "__PYVENV"))
    }
    return {**kept, **extra}


class Venv:
    """A fresh venv (no system site-packages) with the wheel installed by the test's own pip: ensurepip
    would add ~4 s and the venv's bundled pip resolves ~6 s slower; what is under test is the wheel."""

    def __init__(self, path: Path, wheel: Path, extras: str = ""):
        self.path = path
        self.bin = path / "bin"
        _checked([sys.executable, "-m", "venv", "--without-pip", path])
        assert "include-system-site-packages = false" in (path / "pyvenv.cfg").read_text()
        _checked(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                self.bin / "python",
                "install",
                "--quiet",
                "--no-compile",
                "--disable-pip-version-check",
                f"{wheel}{extras}",
            ],
            env=_environment(),
        )
        self.cwd = path.parent / f"{path.name}-cwd"  # outside the repository: its tree cannot be imported
        self.cwd.mkdir()
        assert ROOT not in self.cwd.resolve().parents

    def run(self, *arguments: str, **extra_environment: str) -> subprocess.CompletedProcess:
        return _run([self.bin / "aws-vpn-exporter", *arguments], cwd=self.cwd, env=_environment(**extra_environment))

    def python(self, code: str) -> str:
        return _checked([self.bin / "python", "-c", code], cwd=self.cwd, env=_environment()).stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the tree as it is (uncommitted changes included), never in the tree itself."""
    work = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, work / "source", ignore=shutil.ignore_patterns(*NOT_SOURCE))
    _checked(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "--wheel-dir",
            work / "dist",
            work / "source",
        ],
        env=_environment(),
    )
    (built,) = (work / "dist").glob("*.whl")
    return built


@pytest.fixture(scope="module")
def base_install(wheel, tmp_path_factory) -> Venv:
    return Venv(tmp_path_factory.mktemp("base") / "venv", wheel)


@pytest.fixture(scope="module")
def demo_install(wheel, tmp_path_factory) -> Venv:
    return Venv(tmp_path_factory.mktemp("demo") / "venv", wheel, "[demo]")


def test_the_wheel_holds_the_package_and_what_it_reads_and_nothing_else(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        top = {name.split("/")[0] for name in names}
        assert top == {"exporter", f"{DIST}-{exporter.__version__}.dist-info"}, "only the package, at its version"
        metadata = Parser().parsestr(archive.read(f"{DIST}-{exporter.__version__}.dist-info/METADATA").decode())
        sources = {name: archive.read(name).decode() for name in names if name.endswith(".py")}
    in_tree = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "exporter").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert in_tree - names == set(), "files of the package the wheel leaves out (pyproject.toml package-data)"
    assert "exporter/demo/scenarios.yaml" in names
    assert metadata["Version"] == exporter.__version__
    assert "demo" in metadata.get_all("Provides-Extra")
    assert not [line for line in metadata.get_all("Requires-Dist") if "moto" in line and "extra ==" not in line]
    # Nothing at run time may need the repository's build-time or test code.
    for name, text in sources.items():
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            (node.module or "").split(".")[0]
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.ImportFrom) and not node.level
        }
        assert not imported & {"generate", "tests", "benchmarks"}, name


def test_the_base_install_watches_an_aws_api_without_the_demo_extra(base_install, demo, moto_url, tmp_path):
    """No moto in the venv; AWS here is the session's simulated one, reached over HTTP as a real one is."""
    assert (
        "ModuleNotFoundError"
        in _run([base_install.bin / "python", "-c", "import moto"], cwd=base_install.cwd, env=_environment()).stderr
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "tunnel_status": {"max_calls_per_second": 20},  # the simulated AWS shares no request bucket
                "targets": [
                    {"regions": list(target.regions), **({"role_arn": target.role_arn} if target.role_arn else {})}
                    for target in demo.targets()
                ],
            }
        )
    )
    assert base_install.run("--config", str(config), "--config.check").returncode == 0
    result = base_install.run(
        "diagnose", "--config", str(config), "--output", "json", **simulated_aws_environment(moto_url)
    )
    assert result.returncode == 3, result.stderr[-3000:]  # the demo's scenarios hold critical findings
    report = json.loads(result.stdout)
    assert report["summary"]["connections"] == len(demo.connections)
    assert {source["source"] for source in report["sources"]} == {"ec2", "logs", "tunnel_status"}
    assert [source for source in report["sources"] if not source["success"]] == []


@pytest.mark.parametrize(
    "command", [["--demo", "--web.listen-address", "127.0.0.1:0"], ["diagnose", "--demo"]], ids=["serve", "diagnose"]
)
def test_without_the_demo_extra_the_demo_says_how_to_install_it(base_install, command):
    result = base_install.run(*command)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: --demo needs the simulated AWS, which is not installed (no module 'moto'): {DEMO_EXTRA_INSTALL}"
    ]
    assert DEMO_EXTRA_INSTALL == "pip install 'aws-vpn-exporter[demo]'"


def test_the_installed_package_is_the_one_that_runs(demo_install):
    where, version = demo_install.python(
        "import exporter, importlib.metadata as m; print(exporter.__file__); print(m.version('aws-vpn-exporter'))"
    ).split()
    assert Path(where).is_relative_to(demo_install.path) and not Path(where).is_relative_to(ROOT)
    assert version == exporter.__version__
    shebang = (demo_install.bin / "aws-vpn-exporter").read_text().splitlines()[0]
    assert shebang == f"#!{demo_install.bin / 'python'}"


def test_the_installed_demo_serves_the_scenarios_and_stops_cleanly_on_sigterm(demo_install):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [demo_install.bin / "aws-vpn-exporter", "--demo", "--web.listen-address", f"127.0.0.1:{port}"],
        cwd=demo_install.cwd,
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: (
                process.poll() is None
                and requests.get(f"{url}/-/ready", timeout=2).ok
                or process.poll() is not None
                and pytest.fail(f"exited {process.returncode}")
            ),
            60,
            "the installed demo to be ready",
        )
        samples = parse_exposition(requests.get(f"{url}/metrics", timeout=10).text)
    finally:
        code, errors = stop_within(process, 20)
    assert code == 0, errors[-3000:]
    assert "Traceback" not in errors and 'msg="state saved; exiting"' in errors
    assert [labels["version"] for labels in series(samples, "aws_vpn_exporter_build_info")] == [exporter.__version__]
    tunnels = {
        tunnel.outside_ip: tunnel for connection in load_scenarios().connections for tunnel in connection.tunnels
    }
    assert {labels["tunnel"] for labels in series(samples, "aws_vpn_tunnel_up")} == set(tunnels)
    for address, tunnel in tunnels.items():
        if len(tunnel.cycle) == 1:  # a steady tunnel: AWS reports UP exactly when it is healthy
            expected = 1.0 if tunnel.cycle[0][0] == "healthy" else 0.0
            assert value(samples, "aws_vpn_tunnel_up", tunnel=address) == expected, address
    assert (
        value(
            samples, "aws_vpn_exporter_collection_success", source="ec2", region="us-east-1", account_id="123456789012"
        )
        == 1.0
    )


def test_the_installed_diagnose_demo_prints_its_summary_first(demo_install):
    result = demo_install.run("diagnose", "--demo", "--no-color")
    assert result.returncode == 3, result.stderr[-3000:]  # the demo holds critical findings
    summary = re.fullmatch(r"(\d+) connections: (.+)", result.stdout.splitlines()[0])
    assert summary, result.stdout[:500]
    counts = {rank: int(count) for count, rank in (part.split() for part in summary[2].split(", "))}
    assert int(summary[1]) == len(load_scenarios().connections) == sum(counts.values())
    assert counts["critical"] > 0 and "Traceback" not in result.stderr


def test_the_changelog_top_release_is_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = [match["version"] for match in RELEASE.finditer(changelog)]
    assert releases and releases[0] == exporter.__version__, "CHANGELOG.md's top release is not exporter.__version__"
    as_numbers = [tuple(map(int, release.split("."))) for release in releases]
    assert as_numbers == sorted(as_numbers, reverse=True) and len(set(as_numbers)) == len(as_numbers)
    heading = changelog.index("## [")
    assert changelog.find("## [Unreleased]") in (-1, heading), "Unreleased, if there, comes first"


def test_every_iam_action_the_docs_grant_has_an_upgrade_note():
    """An operator must grant a new action before upgrading: the CHANGELOG has to say which."""
    policy = section(doc("configuration.md"), "### Least-privilege IAM policy")
    actions = set(re.findall(r'"((?:ec2|logs|sts):[A-Za-z]+)"', policy))
    assert len(actions) >= 4
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert {action for action in actions if f"`{action}`" not in changelog} == set()
