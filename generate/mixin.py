"""The monitoring mixin's data: ``python -m generate.mixin`` rewrites ``mixin/generated/`` with the same rule
groups as ``alerts/aws-vpn.rules.yml`` and the same dashboards as ``dashboards/*.json``, built with a placeholder
wherever an operator's setting (the exporter's job selector, the runbooks' address) goes, which
``mixin/mixin.libsonnet`` replaces by its ``_config``. ``tests/test_mixin.py`` fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from generate import alerting, dashboards

MIXIN_DIR = alerting.ROOT / "mixin"
GENERATED_DIR = MIXIN_DIR / "generated"
# _config key -> (the setting of alerts/settings.yml it stands for, the placeholder built in its place)
PLACEHOLDERS = {"jobSelector": ("exporter_job", "@@jobSelector@@"), "runbookBase": ("runbook_base", "@@runbookBase@@")}


def _json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def render() -> dict[str, str]:
    """File name -> text."""
    config = {key: alerting.SETTINGS[setting] for key, (setting, _) in PLACEHOLDERS.items()}
    with alerting.settings_replaced(**{setting: token for setting, token in PLACEHOLDERS.values()}):
        groups = alerting.rules_document()["groups"]
        built = [dashboards.build(source) for source in dashboards.sources()]
    is_alerting = [all("alert" in rule for rule in group["rules"]) for group in groups]
    rules = {
        "alerts": [g for g, alerts in zip(groups, is_alerting, strict=False) if alerts],
        "recording": [g for g, alerts in zip(groups, is_alerting, strict=False) if not alerts],
    }
    return {
        "config.json": _json(
            {"defaults": config, "placeholders": {key: token for key, (_, token) in PLACEHOLDERS.items()}}
        ),
        "rules.json": _json(rules),
        "dashboards.json": _json({dashboards.published_name(dashboard): dashboard for dashboard in built}),
    }


def write_all(output_dir: Path = GENERATED_DIR) -> list[Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        (output_dir / name).write_text(text, encoding="utf-8")
        written.append(output_dir / name)
    return written


if __name__ == "__main__":
    for path in write_all():
        print(f"wrote {path.relative_to(alerting.ROOT)}", file=sys.stderr)
