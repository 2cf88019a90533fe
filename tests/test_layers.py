"""The import contract: the layers depend downwards only.

- ``exporter/model.py`` is the lowest layer and imports nothing of the project;
- the sources (``exporter/sources/``) collect, and never import the diagnosis, the exposition or the web pages;
- the running exporter (``exporter/``) never imports the generators (``generate/``), which the wheel leaves out.

Every import counts: at the top, inside a function, or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (the modules a rule covers, the imports they may not make, why[, the imports allowed all the same])
RULES = (
    ("exporter.model", ("exporter", "generate"), "the model is the lowest layer"),
    (
        "exporter.sources",
        ("exporter.diagnosis", "exporter.exposition", "exporter.web", "exporter.app", "exporter.cli"),
        "a source collects; the layers above read what it returns",
    ),
    ("exporter", ("generate",), "the generators are not part of the running exporter (nor of the wheel)"),
    (
        "exporter.sources.aws",
        ("exporter.sources",),
        "the AWS plumbing every source shares depends on no source",
        ("exporter.sources.secrets", "exporter.sources.failures"),  # plumbing too: secrets, what a failure means
    ),
)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, relative imports resolved, ``from a import b`` read as both a and a.b."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(root: Path) -> list[str]:
    """What breaks the contract in the tree at ``root``: "module imports name (why)"."""
    found = []
    for path in sorted((root / "exporter").rglob("*.py")):
        module = module_name(path, root)
        for covered, forbidden, why, *allowed in RULES:
            if not _within(module, covered):
                continue
            exempt = (covered, *(allowed[0] if allowed else ()))
            for name in sorted(imports_of(path, module)):
                if any(_within(name, prefix) for prefix in forbidden) and not any(_within(name, e) for e in exempt):
                    found.append(f"{module} imports {name} ({why})")
    return found


def test_the_layers_depend_downwards_only():
    assert violations(ROOT) == []


@pytest.mark.parametrize(
    ("module", "statement"),
    [
        ("exporter/model.py", "from exporter.config import Config"),
        ("exporter/model.py", "if TYPE_CHECKING:\n    from exporter.sources.logs.state import StateFile"),
        ("exporter/sources/traffic/poller.py", "from exporter.diagnosis.findings import FINDINGS"),
        ("exporter/sources/ec2/poller.py", "def late():\n    from ...exposition import render"),
        ("exporter/sources/logs/reader.py", "from ...web import statuspage"),
        ("exporter/cli.py", "import generate.alerting"),
        ("exporter/sources/aws.py", "from exporter.sources.ec2.telemetry import read_connection"),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path, module, statement):
    """The check is run on a copy of the tree with one forbidden import added (absolute, relative, late, typed)."""
    for path in (ROOT / "exporter").rglob("*.py"):
        copy = tmp_path / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text())
    target = tmp_path / module
    target.write_text(target.read_text() + "\n" + statement + "\n")
    assert violations(tmp_path) != []
    assert all(module.replace("/", ".").removesuffix(".py") in line for line in violations(tmp_path))


# What the rest of the exporter may import from exporter/sources/: the registry and the Source shape, the AWS
# plumbing, and the vocabulary of EC2's and the logs' data that the article's checklist (diagnosis/) is written in.
REACHABLE_SOURCES = (
    "exporter.sources.registry",
    "exporter.sources.source",
    "exporter.sources.aws",
    "exporter.sources.ec2.telemetry",
    "exporter.sources.logs.parse",
    "exporter.sources.logs.state",
)


def reached_around_the_registry(root: Path) -> list[str]:
    found = []
    for path in sorted((root / "exporter").rglob("*.py")):
        module = module_name(path, root)
        if _within(module, "exporter.sources"):
            continue
        for name in sorted(imports_of(path, module)):
            if _within(name, "exporter.sources") and name != "exporter.sources":
                if not any(_within(name, allowed) for allowed in REACHABLE_SOURCES):
                    found.append(f"{module} imports {name}")
    return found


def test_a_source_is_reached_only_through_the_registry():
    """Adding a source is its package and a registry line: nothing else in the exporter names it."""
    assert reached_around_the_registry(ROOT) == []


def test_the_exporter_names_no_source(tmp_path):
    """app.py wires the registered sources without naming one (no source's name in its code or strings)."""
    from exporter.sources.registry import SOURCES

    names = {source.name for source in SOURCES}
    tree = ast.parse((ROOT / "exporter" / "app.py").read_text())
    used = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    used |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    used |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & used, names & used


def test_a_source_imported_around_the_registry_is_caught(tmp_path):
    for path in (ROOT / "exporter").rglob("*.py"):
        copy = tmp_path / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text())
    web = tmp_path / "exporter" / "web" / "statuspage.py"
    web.write_text(web.read_text() + "\nfrom exporter.sources.traffic.poller import PERIOD\n")
    found = reached_around_the_registry(tmp_path)
    assert found and all(line.startswith("exporter.web.statuspage imports exporter.sources.traffic") for line in found)
