"""The image's install, from exactly what the Dockerfile copies: no Docker engine needed.

``tests/docker_context.py`` reads the Dockerfile's build stage (its COPY lines and .dockerignore) and lays out
those files alone; the package is then built there as ``pip install .`` in the image builds it, with every
Python warning an error and pip's output read for warnings too. So a file pyproject.toml needs that the image
leaves out (the LICENSE of ``license-files``: setuptools only warns today, and refuses after 2027-02-18) fails
here, not in a user's ``docker build`` a year later.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

from tests.docker_context import BuildFails, install_stage, lay_out, stages
from tests.test_wheel import _environment

ROOT = Path(__file__).resolve().parents[1]
WARNING = re.compile(r"warning|did not match any files", re.I)

MULTI_STAGE = """\
# syntax=docker/dockerfile:1
ARG BASE=python:3.12-slim
FROM ${BASE} AS build
WORKDIR /src
COPY --chown=10001:10001 pyproject.toml README.md LICENSE ./
COPY ["tool", "./tool"]
COPY --link notes/a.txt \\
     notes/b.txt docs/
RUN pip install --prefix=/install .

FROM python:3.12-slim
COPY --from=build /install /usr/local
COPY runtime.conf /etc/tool.conf
"""


def _context(tmp_path: Path, files: dict[str, str], dockerignore: str = "") -> Path:
    context = tmp_path / "context"
    for name, text in {**files, **({".dockerignore": dockerignore} if dockerignore else {})}.items():
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text(text)
    return context


CONTEXT_FILES = {
    "pyproject.toml": "p",
    "README.md": "r",
    "LICENSE": "l",
    "tool/__init__.py": "i",
    "tool/sub/data.yaml": "d",
    "tool/__pycache__/x.pyc": "c",
    "notes/a.txt": "a",
    "notes/b.txt": "b",
    "runtime.conf": "rc",
    "tests/test_x.py": "t",
}


def test_the_install_stage_is_the_one_running_pip_and_other_stages_copies_are_not_in_it():
    assert [stage.name for stage in stages(MULTI_STAGE)] == ["build", "1"]
    stage = install_stage(MULTI_STAGE)
    assert stage.name == "build" and stage.install_directory == "/src"
    assert [(copy.sources, copy.destination) for copy in stage.copies] == [
        (["pyproject.toml", "README.md", "LICENSE"], "/src/"),
        (["tool"], "/src/tool"),
        (["notes/a.txt", "notes/b.txt"], "/src/docs/"),
    ]


def test_the_layout_follows_dockers_copy_rules_and_the_dockerignore(tmp_path):
    context = _context(tmp_path, CONTEXT_FILES, dockerignore="# caches\n**/__pycache__\ntests\n")
    where = lay_out(context, install_stage(MULTI_STAGE), tmp_path / "root")
    assert where == tmp_path / "root" / "src"
    laid = sorted(p.relative_to(where).as_posix() for p in where.rglob("*") if p.is_file())
    # a directory's contents under its destination; several sources into a directory; nothing else
    assert laid == [
        "LICENSE",
        "README.md",
        "docs/a.txt",
        "docs/b.txt",
        "pyproject.toml",
        "tool/__init__.py",
        "tool/sub/data.yaml",
    ]


def test_a_copy_source_the_context_does_not_hold_fails_as_docker_build_does(tmp_path):
    context = _context(tmp_path, CONTEXT_FILES, dockerignore="LICENSE\n")
    with pytest.raises(BuildFails, match="COPY LICENSE"):
        lay_out(context, install_stage(MULTI_STAGE), tmp_path / "root")
    excepted = _context(tmp_path / "again", CONTEXT_FILES, dockerignore="*.md\n!README.md\nLICENSE\n!LICENSE\n")
    lay_out(excepted, install_stage(MULTI_STAGE), tmp_path / "root2")  # `!` takes a file back


@pytest.mark.slow  # a real build (about 5 s)
def test_the_dockerfile_build_stage_installs_with_no_warning_and_ships_the_licence(tmp_path):
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # Built with this venv's setuptools, not a downloaded one: it must be one pyproject.toml accepts.
    for requirement in map(Requirement, pyproject["build-system"]["requires"]):
        assert requirement.specifier.contains(version(requirement.name)), f"this venv lacks {requirement}"
    source = lay_out(ROOT, install_stage((ROOT / "Dockerfile").read_text()), tmp_path / "stage")
    built = subprocess.run(
        [sys.executable, "-W", "error", "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation"]
        + ["--disable-pip-version-check", "--wheel-dir", str(tmp_path / "dist"), "."],
        cwd=source,
        env=_environment(PYTHONWARNINGS="error"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, f"the image's install fails:\n{output[-4000:]}"
    warnings = [line.strip() for line in output.splitlines() if WARNING.search(line)]
    assert not warnings, f"the image's install warns: {warnings}"
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        licences = {name.split("/licenses/", 1)[1] for name in archive.namelist() if "/licenses/" in name}
    assert set(pyproject["project"]["license-files"]) <= licences, "the wheel lacks the licence files"
