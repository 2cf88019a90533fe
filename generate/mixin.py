"""The monitoring mixin's data: ``python -m generate.mixin`` (or ``python -m generate``, with everything else)
rewrites ``mixin/generated/`` with the same rule groups as ``alerts/aws-vpn.rules.yml`` and the same dashboards
as ``dashboards/*.json``, built with a placeholder wherever an operator's setting of ``alerts/settings.yml`` goes
(every one but the Alertmanager receivers: the job selector, the runbooks' address, every threshold and hold),
which ``mixin/mixin.libsonnet`` replaces by its ``_config``. ``tests/test_mixin.py`` fails when it is stale.
"""

from __future__ import annotations

import json
from typing import Any

from generate import alerting, dashboards, output
from generate.alerting import Settings

MIXIN_DIR = output.ROOT / "mixin"
GENERATED_DIR = MIXIN_DIR / "generated"
# Settings of alerts/settings.yml that are not the rules' or dashboards' (Alertmanager's).
NOT_IN_THE_MIXIN = ("receivers",)
# _config keys named as the mixin first published them; the others are their setting's name in camelCase.
RENAMED = {"exporter_job": "jobSelector", "runbook_base": "runbookBase"}


def config_key(setting: str) -> str:
    """The ``_config`` key of a setting of alerts/settings.yml (``bgp_down_for``: ``bgpDownFor``)."""
    first, *rest = setting.split("_")
    return RENAMED.get(setting) or first + "".join(word.capitalize() for word in rest)


def config_keys() -> dict[str, str]:
    """_config key -> the setting of alerts/settings.yml it stands for."""
    return {config_key(setting): setting for setting in alerting.DEFAULTS if setting not in NOT_IN_THE_MIXIN}


def placeholder(key: str) -> str:
    return f"@@{key}@@"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def render(settings: Settings) -> dict[str, str]:
    """File name (in ``mixin/generated/``) -> text; ``settings`` are the defaults of ``_config``."""
    keys = config_keys()
    with_placeholders = {**settings, **{setting: placeholder(key) for key, setting in keys.items()}}
    groups = alerting.rules_document(with_placeholders)["groups"]
    built = dashboards.build_all(with_placeholders).values()
    is_alerting = [all("alert" in rule for rule in group["rules"]) for group in groups]
    rules = {
        "alerts": [g for g, alerts in zip(groups, is_alerting, strict=False) if alerts],
        "recording": [g for g, alerts in zip(groups, is_alerting, strict=False) if not alerts],
    }
    return {
        "config.json": _json(
            {
                "defaults": {key: settings[setting] for key, setting in keys.items()},
                "placeholders": {key: placeholder(key) for key in keys},
            }
        ),
        "rules.json": _json(rules),
        "dashboards.json": _json({dashboards.published_name(dashboard): dashboard for dashboard in built}),
    }


def files(settings: Settings) -> dict[str, str]:
    """``render()``'s files by path in the repository."""
    prefix = GENERATED_DIR.relative_to(output.ROOT)
    return {str(prefix / name): text for name, text in render(settings).items()}


if __name__ == "__main__":
    output.report(output.write(output.ROOT, files(alerting.load_settings())))
