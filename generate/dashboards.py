"""Builds every ``dashboards/*.dashboard.py`` into ``<name>.json`` next to it: ``python -m generate.dashboards``
(``scripts/generate`` runs it)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "dashboards"


class _Encoder(json.JSONEncoder):
    """grafanalib's objects as JSON, through their public ``to_json_data()``."""

    def default(self, o):
        return o.to_json_data() if hasattr(o, "to_json_data") else super().default(o)


def sources() -> list[Path]:
    return sorted(HERE.glob("*.dashboard.py"))


def build(source: Path) -> dict:
    """Load a dashboard source and return its JSON model."""
    spec = importlib.util.spec_from_file_location(source.stem.replace(".", "_"), source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return json.loads(json.dumps(module.dashboard.to_json_data(), cls=_Encoder))


def render(source: Path) -> str:
    return json.dumps(build(source), indent=2, sort_keys=True) + "\n"


def output_of(source: Path) -> Path:
    return source.with_name(source.name.replace(".dashboard.py", ".json"))


def published_name(dashboard: dict) -> str:
    """The file name a dashboard is published under outside this repository (its uid: unique, stable)."""
    return dashboard["uid"] + ".json"


def published_dashboards() -> dict[str, str]:
    """The committed JSON of every dashboard, by published name: what the Kubernetes ConfigMaps hold."""
    texts = [output_of(source).read_text(encoding="utf-8") for source in sources()]
    return {published_name(json.loads(text)): text for text in texts}


if __name__ == "__main__":
    for source in sources():
        output_of(source).write_text(render(source), encoding="utf-8")
        print(f"wrote dashboards/{output_of(source).name}", file=sys.stderr)
