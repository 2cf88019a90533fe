"""scripts/test runs ruff (lint, format) and mypy before pytest and stops at the first that fails, saying
which; ``--quick`` then runs only the tests not marked ``slow`` or ``long``.

Run on a small copy of the project (its own exporter/ and tests/, this pyproject.toml and scripts/, and this
venv), so each case takes seconds and a mistake planted in it never touches the tree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("demo", "test", "dashboards")  # what scripts/test bootstraps

pytestmark = pytest.mark.slow  # runs scripts/test (ruff, mypy, pytest) in a copy: not in `scripts/test --quick`

CLEAN_MODULE = '''"""A module the checks accept."""

from __future__ import annotations

import json


def encoded(value: int) -> str:
    return json.dumps(value)
'''
TESTS = """import pytest


def test_unit():
    assert True


@pytest.mark.slow
def test_end_to_end():
    assert True
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    # The venv is this tree's, current for this pyproject.toml: the copy's bootstrap then installs nothing.
    subprocess.run([ROOT / "scripts" / "bootstrap", *EXTRAS], check=True, timeout=600)
    copy = tmp_path / "project"
    (copy / "scripts").mkdir(parents=True)
    for script in ("test", "bootstrap"):
        shutil.copy2(ROOT / "scripts" / script, copy / "scripts" / script)
    shutil.copy2(ROOT / "pyproject.toml", copy / "pyproject.toml")
    (copy / ".venv").symlink_to(ROOT / ".venv")
    for package in ("exporter", "generate", "tests"):
        (copy / package).mkdir()
        (copy / package / "__init__.py").write_text("")
    (copy / "exporter" / "module.py").write_text(CLEAN_MODULE)
    (copy / "tests" / "test_tiny.py").write_text(TESTS)
    return copy


def run(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["scripts/test", *args, "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_clean_tree_passes_the_checks_and_quick_runs_only_the_unit_tests(project):
    quick = run(project, "--quick", "-v")
    assert quick.returncode == 0, quick.stdout + quick.stderr
    assert "1 passed" in quick.stdout and "test_unit" in quick.stdout and "test_end_to_end" not in quick.stdout
    whole = run(project, "-v")
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert "2 passed" in whole.stdout and "test_end_to_end" in whole.stdout


@pytest.mark.parametrize(
    "mistake, check",
    [
        ("import sys\nimport json\n\nprint(json, sys)\n", "ruff check"),  # imports out of order
        ("x  =  1\n", "ruff format"),
        ("def halved(value: int) -> int:\n    return value / 2\n", "mypy"),
    ],
    ids=["unsorted imports", "unformatted", "wrong type"],
)
def test_a_failing_check_stops_the_run_before_pytest_and_says_which(project, mistake, check):
    (project / "exporter" / "mistake.py").write_text(mistake)
    result = run(project, "--quick")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"scripts/test: `{check}" in result.stderr
    assert "passed" not in result.stdout  # pytest never started


def test_the_quick_tier_leaves_out_every_test_on_the_simulated_aws_and_keeps_the_unit_tests():
    collected = subprocess.run(
        [ROOT / ".venv" / "bin" / "python", "-m", "pytest", "--collect-only", "-q", "-m", "not slow and not long"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "tests/test_config.py::" in collected and "tests/test_logparse.py::" in collected  # unit tests
    assert "tests/test_collection.py::test_accounts_share_one_botocore_data_loader" in collected  # no AWS needed
    assert "test_deleted_and_vanished_lose_their_series_at_the_next_poll" not in collected  # on the simulated AWS
    assert "test_the_demo_triage" not in collected  # marked slow by hand: it runs the diagnose command
    assert "tests/test_stack.py::" not in collected and "tests/test_static_checks.py::" not in collected
