"""Builds every ``dashboards/*.dashboard.py`` into ``<name>.json`` next to it: ``python -m generate.dashboards``
(``python -m generate`` builds them with everything else). A source defines ``dashboard``: a grafanalib
dashboard, or a function of the alert settings returning one when it shows a setting (the exporter's job)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from generate import output
from generate.alerting import Settings, load_settings

HERE = output.ROOT / "dashboards"


class _Encoder(json.JSONEncoder):
    """grafanalib's objects as JSON, through their public ``to_json_data()``."""

    def default(self, o: Any) -> Any:
        return o.to_json_data() if hasattr(o, "to_json_data") else super().default(o)


def sources() -> list[Path]:
    return sorted(HERE.glob("*.dashboard.py"))


def build(source: Path, settings: Settings) -> dict:
    """Load a dashboard source and return its JSON model under ``settings``."""
    spec = importlib.util.spec_from_file_location(source.stem.replace(".", "_"), source)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{source}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dashboard = module.dashboard(settings) if callable(module.dashboard) else module.dashboard
    return json.loads(json.dumps(dashboard.to_json_data(), cls=_Encoder))


def dump(dashboard: dict) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=True) + "\n"


def render(source: Path, settings: Settings) -> str:
    return dump(build(source, settings))


def output_of(source: Path) -> Path:
    return source.with_name(source.name.replace(".dashboard.py", ".json"))


def published_name(dashboard: dict) -> str:
    """The file name a dashboard is published under outside this repository (its uid: unique, stable)."""
    return dashboard["uid"] + ".json"


def build_all(settings: Settings) -> dict[Path, dict]:
    """Every dashboard's JSON model, by source."""
    return {source: build(source, settings) for source in sources()}


def files(built: dict[Path, dict]) -> dict[str, str]:
    """The JSON files of ``build_all()``, by path in the repository."""
    return {str(output_of(source).relative_to(output.ROOT)): dump(dashboard) for source, dashboard in built.items()}


def published(built: dict[Path, dict]) -> dict[str, str]:
    """The JSON of every dashboard of ``build_all()``, by published name: what the Kubernetes ConfigMaps hold."""
    return {published_name(dashboard): dump(dashboard) for dashboard in built.values()}


if __name__ == "__main__":
    output.report(output.write(output.ROOT, files(build_all(load_settings()))))
