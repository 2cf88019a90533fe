"""Builds every ``*.dashboard.py`` into ``<name>.json`` next to it (``scripts/generate`` runs this)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from grafanalib._gen import DashboardEncoder  # noqa: E402


def sources() -> list[Path]:
    return sorted(HERE.glob("*.dashboard.py"))


def build(source: Path) -> dict:
    """Load a dashboard source and return its JSON model."""
    spec = importlib.util.spec_from_file_location(source.stem.replace(".", "_"), source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return json.loads(json.dumps(module.dashboard.to_json_data(), cls=DashboardEncoder))


def render(source: Path) -> str:
    return json.dumps(build(source), indent=2, sort_keys=True) + "\n"


def output_of(source: Path) -> Path:
    return source.with_name(source.name.replace(".dashboard.py", ".json"))


if __name__ == "__main__":
    for source in sources():
        output_of(source).write_text(render(source), encoding="utf-8")
        print(f"wrote dashboards/{output_of(source).name}", file=sys.stderr)
