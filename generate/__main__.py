"""Every generated artifact at once, all or nothing: ``python -m generate`` (what ``scripts/generate`` runs)
builds the alert rules, runbooks and Alertmanager example, the promtool cases, the dashboards, the mixin's data,
docs/metrics.md and the Kubernetes manifests in memory, from the two settings files, the manifests from the rules and dashboards
just built; only when every one built does it write them (each staged, then renamed over its target). A failure
half-way (a bad setting, a promtool case without its wording) writes nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from generate import alert_cases, alerting, dashboards, kubernetes, metrics_doc, mixin, output


def build(root: Path = output.ROOT) -> dict[str, str]:
    """Every generated file, by path in the repository, from the settings files under ``root``."""
    alert_settings = alerting.load_settings(root / alerting.SETTINGS_FILE.relative_to(output.ROOT))
    deploy_settings = kubernetes.load_settings(root / kubernetes.SETTINGS_FILE.relative_to(output.ROOT))
    rules = alerting.rules_document(alert_settings)
    built = dashboards.build_all(alert_settings)
    return {
        **alerting.render(alert_settings, rules),
        **alert_cases.render(alert_settings),
        **dashboards.files(built),
        **mixin.files(alert_settings),
        **metrics_doc.files(),
        **kubernetes.files(deploy_settings, alert_settings, rules, dashboards.published(built)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generate", description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--root",
        type=Path,
        default=output.ROOT,
        help="the tree whose settings files are read and whose generated files are written (default: this one)",
    )
    args = parser.parse_args(argv)
    output.report(output.write(args.root, build(args.root)), args.root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
