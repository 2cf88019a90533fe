"""Kubernetes manifests for the exporter, a kustomize base: ``python -m generate.kubernetes`` (or ``python -m
generate``, with everything else) rewrites ``deploy/kubernetes/*.yaml`` from ``deploy/kubernetes/settings.yml``
(the one place a team changes: image, IAM role, namespace, ``release`` label, shards, the exporter's config) and
from the rule groups and dashboards built with them, handed over in memory. ``tests/test_kubernetes.py`` fails when
the committed copies are stale.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from exporter.config import _ROLE_ARN as ROLE_ARN  # the exporter's own check of a role ARN
from exporter.config import ConfigError, parse_config
from generate import alerting, dashboards, output, settings
from generate.alerting import Settings

ROOT = output.ROOT
DEPLOY_DIR = ROOT / "deploy" / "kubernetes"
SETTINGS_FILE = DEPLOY_DIR / "settings.yml"
ALERT_SETTINGS = alerting.SETTINGS_FILE.relative_to(ROOT)  # named in errors: the tree generated may be a copy
COMMAND = "scripts/generate"

# What the image fixes (Dockerfile: USER, ENV, EXPOSE); tests/test_kubernetes.py checks them against it.
IMAGE_UID = 10001
IMAGE_ENV = {"PYTHONMALLOC": "malloc"}  # glibc malloc: RSS levels off under connection churn (docs/performance.md)
PORT = 9798
PORT_NAME = "http-metrics"
APP = "aws-vpn-exporter"
CONTAINER = "exporter"
CONFIG_DIR = "/etc/aws-vpn-exporter"
CONFIG_KEY = "config.yml"
SHARD_LABEL = "aws-vpn-exporter/shard"
CONFIG_HASH = "aws-vpn-exporter/config-sha256"  # a changed config rolls the pods, which read it at start-up
STATE_LIMIT = "64Mi"  # the log state file: 271 KiB after a million events on 50 tunnels (docs/performance.md)
LIVENESS_PATH, READINESS_PATH = "/-/healthy", "/-/ready"  # exporter/web/server.py

TYPES = {
    "namespace": str,
    "image": str,
    "iam_role_arn": str,
    "release": str,
    "shards": int,
    "replicas_per_shard": int,
    "resources": dict,
    "config": dict,
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
IMAGE = re.compile(r"^[^\s@]+(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")


def _refusal(key: str, value: Any) -> str | None:
    if key == "namespace" and not DNS_LABEL.match(value):
        return f"{value!r} is not a namespace name (lower-case letters, digits and '-', at most 63)"
    if key == "image" and (not IMAGE.match(value) or value.endswith(":latest")):
        return f"{value!r}: name a pinned tag or digest (e.g. registry.example.com/aws-vpn-exporter:0.1.0)"
    if key == "iam_role_arn" and not ROLE_ARN.match(value):
        return f"{value!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
    if key == "release" and not LABEL_VALUE.match(value):
        return f"{value!r} is not a label value"
    if key in ("shards", "replicas_per_shard") and value < 1:
        return "must be at least 1"
    if key == "resources":
        return _resources_refusal(value)
    if key == "config" and "shard" in value:
        return "shard: set by `shards` here, one config per shard"
    if key == "config" and not str(value.get("state_dir", "")).startswith("/"):
        return "state_dir: an absolute path in the pod (the state volume is mounted there)"
    return None


def _resources_refusal(value: dict) -> str | None:
    for kind, amounts in value.items():
        if kind not in ("requests", "limits") or not isinstance(amounts, dict):
            return f"{kind}: expected requests or limits, each a mapping"
        for resource, amount in amounts.items():
            if resource not in ("cpu", "memory", "ephemeral-storage"):
                return f"{kind}.{resource}: expected cpu, memory or ephemeral-storage"
            if not isinstance(amount, str) or not QUANTITY.match(amount):
                return f"{kind}.{resource}: {amount!r} is not a quantity in quotes (e.g. '200m', '192Mi')"
    return None


def load_settings(path: Path = SETTINGS_FILE) -> dict:
    """Every key required (the file is the one place), then each shard's exporter config checked as the
    exporter checks it at start-up, so a mistake fails here rather than in a crash-looping pod."""
    loaded = settings.load(path, TYPES, _refusal)
    for index in range(loaded["shards"]):
        try:
            config = parse_config(exporter_config(loaded, index), f"{path}: config")
        except ConfigError as err:
            raise SystemExit(str(err)) from None
        if not config.sharded_targets():
            raise SystemExit(
                f"{path}: shards: shard {index} of {loaded['shards']} would watch no region "
                "(regions are shared out by hash): use fewer shards"
            )
    return loaded


def exporter_config(s: dict, index: int) -> dict:
    if s["shards"] == 1:
        return s["config"]
    return {**s["config"], "shard": {"index": index, "count": s["shards"]}}


def shard_name(s: dict, index: int) -> str:
    return APP if s["shards"] == 1 else f"{APP}-shard-{index}"


def labels(component: str, **more: str) -> dict:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": component, **more}


def metadata(s: dict, name: str, component: str, **more: str) -> dict:
    return {"name": name, "namespace": s["namespace"], "labels": labels(component, **more)}


def pod_selector(index: int) -> dict:
    return labels(CONTAINER, **{SHARD_LABEL: str(index)})


def config_text(s: dict, index: int) -> str:
    return yaml.safe_dump(exporter_config(s, index), sort_keys=False)


def service_account(s: dict) -> dict:
    meta = metadata(s, APP, CONTAINER)
    meta["annotations"] = {"eks.amazonaws.com/role-arn": s["iam_role_arn"]}  # IRSA: the pod's AWS identity
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def config_map(s: dict, index: int) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(s, f"{shard_name(s, index)}-config", CONTAINER),
        "data": {CONFIG_KEY: config_text(s, index)},
    }


def deployment(s: dict, index: int) -> dict:
    selector = pod_selector(index)
    probe = {"httpGet": {"port": PORT_NAME}, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}
    container = {
        "name": CONTAINER,
        "image": s["image"],
        "args": ["--config", f"{CONFIG_DIR}/{CONFIG_KEY}", "--web.listen-address", f"0.0.0.0:{PORT}"],
        "env": [{"name": name, "value": value} for name, value in IMAGE_ENV.items()],
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        # Alive while the process serves (from start-up on); ready once the first poll completed.
        "livenessProbe": {**probe, "httpGet": {"path": LIVENESS_PATH, "port": PORT_NAME}},
        "readinessProbe": {**probe, "httpGet": {"path": READINESS_PATH, "port": PORT_NAME}, "periodSeconds": 5},
        "resources": s["resources"],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "state", "mountPath": s["config"]["state_dir"]},
            {"name": "tmp", "mountPath": "/tmp"},
        ],  # `diagnose` run with kubectl exec writes there
    }
    pod = {
        "serviceAccountName": APP,
        "automountServiceAccountToken": False,  # no Kubernetes API calls; IRSA mounts its own token
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": IMAGE_UID,
            "runAsGroup": IMAGE_UID,
            "fsGroup": IMAGE_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector},
            }
        ],
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": f"{shard_name(s, index)}-config"}},
            {"name": "state", "emptyDir": {"sizeLimit": STATE_LIMIT}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
        ],
    }
    digest = hashlib.sha256(config_text(s, index).encode()).hexdigest()
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(s, shard_name(s, index), CONTAINER),
        "spec": {
            "replicas": s["replicas_per_shard"],
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": selector, "annotations": {CONFIG_HASH: digest}}, "spec": pod},
        },
    }


def disruption_budget(s: dict, index: int) -> dict:
    """One pod of the shard at a time: with one replica a drain evicts it (never blocked), with two one stays."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(s, shard_name(s, index), CONTAINER),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": pod_selector(index)}},
    }


def service(s: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(s, APP, CONTAINER),
        "spec": {
            "selector": labels(CONTAINER),  # every shard's pods
            "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def service_monitor(s: dict) -> dict:
    # prometheus-operator names the job after the Service: job="aws-vpn-exporter", the alerts' exporter_job.
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(s, APP, CONTAINER, release=s["release"]),
        "spec": {
            "selector": {"matchLabels": labels(CONTAINER)},
            "endpoints": [{"port": PORT_NAME, "path": "/metrics"}],
        },
    }


def prometheus_rule(s: dict, rules: dict) -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(s, APP, "alerts", release=s["release"]),
        "spec": {"groups": rules["groups"]},
    }


def dashboard_config_maps(s: dict, published: dict[str, str]) -> list[dict]:
    """One per dashboard, labelled for kube-prometheus-stack's Grafana sidecar, holding its JSON (as in
    ``dashboards/``), by published name."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(
                s,
                f"{APP}-dashboard-{name.removeprefix('aws-vpn-').removesuffix('.json')}",
                "dashboards",
                grafana_dashboard="1",
            ),
            "data": {name: text},
        }
        for name, text in published.items()
    ]


# PromQL label matchers: name, operator, "value".
MATCHER = re.compile(r'\s*([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def selects_job(selector: str, job: str) -> bool:
    """Whether the alerts' exporter selector matches the job prometheus-operator gives the exporter's targets
    (the Service's name); matchers on other labels are not judged."""
    position, matched = 0, True
    while position < len(selector):
        found = MATCHER.match(selector, position)
        if not found:
            raise SystemExit(f"{ALERT_SETTINGS}: exporter_job: cannot read {selector!r} as label matchers")
        name, operator, value = found.group(1), found.group(2), re.sub(r"\\(.)", r"\1", found.group(3))
        if name == "job":
            hit = job == value if operator in ("=", "!=") else re.fullmatch(value, job) is not None
            matched &= hit if operator in ("=", "=~") else not hit
        position = found.end()
    return matched


def documents(s: dict, alert_settings: Settings, rules: dict, published: dict[str, str]) -> dict[str, list[dict]]:
    """Each file of the base and its objects, from the rules document and the published dashboards built with
    ``alert_settings``."""
    if not selects_job(alert_settings["exporter_job"], APP):
        raise SystemExit(
            f"{ALERT_SETTINGS}: exporter_job: {alert_settings['exporter_job']} does not select "
            f'job="{APP}", the job of the ServiceMonitor in {DEPLOY_DIR.relative_to(ROOT)}'
        )
    shards = range(s["shards"])
    return {
        "serviceaccount.yaml": [service_account(s)],
        "config.yaml": [config_map(s, i) for i in shards],
        "deployment.yaml": [deployment(s, i) for i in shards],
        "poddisruptionbudget.yaml": [disruption_budget(s, i) for i in shards],
        "service.yaml": [service(s)],
        "servicemonitor.yaml": [service_monitor(s)],
        "prometheusrule.yaml": [prometheus_rule(s, rules)],
        "grafana-dashboards.yaml": dashboard_config_maps(s, published),
    }


def render(s: dict, alert_settings: Settings, rules: dict, published: dict[str, str]) -> dict[str, str]:
    """File name (in ``deploy/kubernetes/``) -> text, kustomization.yaml included."""
    files = documents(s, alert_settings, rules, published)
    source = f"{SETTINGS_FILE.relative_to(ROOT)} (generate/kubernetes.py)"
    texts = {name: alerting.dump_yaml_documents(objects, COMMAND, source) for name, objects in files.items()}
    texts["kustomization.yaml"] = alerting.dump_yaml(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": list(files)},
        COMMAND,
        source,
    )
    return texts


def files(s: dict, alert_settings: Settings, rules: dict, published: dict[str, str]) -> dict[str, str]:
    """``render()``'s files by path in the repository."""
    prefix = DEPLOY_DIR.relative_to(ROOT)
    return {str(prefix / name): text for name, text in render(s, alert_settings, rules, published).items()}


def write_all(
    output_dir: Path = DEPLOY_DIR,
    settings_file: Path = SETTINGS_FILE,
    alert_settings_file: Path = alerting.SETTINGS_FILE,
) -> list[Path]:
    """The manifests alone, with the rules and dashboards built from ``alert_settings_file``; every check passes
    before a file is written."""
    s, alert_settings = load_settings(settings_file), alerting.load_settings(alert_settings_file)
    built = dashboards.build_all(alert_settings)
    texts = render(s, alert_settings, alerting.rules_document(alert_settings), dashboards.published(built))
    return output.write(output_dir, texts)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m generate.kubernetes", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--settings", type=Path, default=SETTINGS_FILE, help="default: deploy/kubernetes/settings.yml")
    parser.add_argument("--output-dir", type=Path, default=DEPLOY_DIR, help="default: deploy/kubernetes")
    args = parser.parse_args(argv)
    output.report(write_all(args.output_dir, args.settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
