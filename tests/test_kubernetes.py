"""deploy/kubernetes: current with its generator, valid against the Kubernetes API's schemas (strictly: an
unknown field fails) and prometheus-operator's CRDs, holding exactly the rules and dashboards of alerts/ and
dashboards/, wired together (selectors, ports, probes, the exporter's own flags and config), and locked down."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
import threading
import zlib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import requests
import yaml

from exporter.cli import build_parser
from exporter.config import parse_config
from exporter.web.server import ExporterServer, parse_listen_address
from generate import alerting
from generate import kubernetes as generate
from tests.services import tool

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).resolve().parent / "schemas"
KUBERNETES_VERSION = "1.31.0"  # GA APIs only (apps/v1, policy/v1): any cluster since 1.21 takes these objects
CORE_API_VERSIONS = ("v1", "apps/v1", "policy/v1")


def load_tree(directory: Path) -> dict[str, list[dict]]:
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for path in sorted(directory.glob("*.yaml"))
    }


@pytest.fixture(scope="session")
def tree() -> dict[str, list[dict]]:
    return load_tree(generate.DEPLOY_DIR)


@pytest.fixture(scope="session")
def objects(tree) -> list[dict]:
    return [obj for name, docs in tree.items() if name != "kustomization.yaml" for obj in docs]


def only(objects: list[dict], kind: str) -> list[dict]:
    return [obj for obj in objects if obj["kind"] == kind]


# --- prometheus-operator's CRDs as JSON Schema, as strict as the API server with field validation "Strict" ---


def structural(schema: dict) -> dict:
    """An openAPIV3Schema of a CRD as JSON Schema: unknown fields refused where the API server prunes (or, with
    kubectl's default strict field validation, refuses) them, int-or-string and nullable spelled out."""
    schema = dict(schema)
    for key in ("properties", "patternProperties"):
        if key in schema:
            schema[key] = {name: structural(sub) for name, sub in schema[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            schema[key] = structural(schema[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in schema:
            schema[key] = [structural(sub) for sub in schema[key]]
    if schema.pop("x-kubernetes-int-or-string", False):
        schema.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.pop("nullable", False) and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    if (
        schema.get("type") == "object"
        and "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        schema["additionalProperties"] = False
    if "(?i)" in schema.get("pattern", ""):  # Go's regexp takes a flag group anywhere, Python's only first
        schema["pattern"] = "(?i)" + schema["pattern"].replace("(?i)", "")
    if schema.get("x-kubernetes-list-type") == "set":
        schema["uniqueItems"] = True
    return schema


def _unique_map_keys(validator, keys, instance, schema):
    """x-kubernetes-list-type: map: no two items with the same keys (the API server refuses the object)."""
    if not validator.is_type(instance, "array"):
        return
    seen = set()
    for item in filter(lambda item: isinstance(item, dict), instance):
        key = json.dumps([item.get(name) for name in keys])
        if key in seen:
            yield jsonschema.ValidationError(f"duplicate entry for key { ({name: item.get(name) for name in keys}) }")
        seen.add(key)


CrdValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"x-kubernetes-list-map-keys": _unique_map_keys}
)


@pytest.fixture(scope="session")
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    validators = {}
    for path in sorted(SCHEMAS.glob("monitoring.coreos.com_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            schema = structural(version["schema"]["openAPIV3Schema"])
            CrdValidator.check_schema(schema)
            validators[(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])] = CrdValidator(
                schema
            )
    return validators


def validate(obj: dict, crd_validators) -> None:
    """Raises jsonschema.ValidationError for an object the cluster would refuse."""
    if obj["apiVersion"] in CORE_API_VERSIONS:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        return
    validator = crd_validators.get((obj["apiVersion"], obj["kind"]))
    assert validator, f"no vendored CRD for {obj['apiVersion']} {obj['kind']} in {SCHEMAS}"
    validator.validate(obj)
    # A CRD's schema leaves metadata to the API server, which checks it as any object's: as a ConfigMap's.
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}, KUBERNETES_VERSION, strict=True
    )


# --- generated, current, valid ---


def test_the_tree_is_current_with_its_generator(tmp_path):
    written = generate.write_all(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in generate.DEPLOY_DIR.glob("*.yaml")), (
        "a file in deploy/kubernetes that the generator does not write"
    )
    for path in written:
        assert (generate.DEPLOY_DIR / path.name).read_text() == path.read_text(), (
            f"deploy/kubernetes/{path.name} is stale: run scripts/generate"
        )


def test_every_object_is_valid(objects, crd_validators):
    kinds = sorted(obj["kind"] for obj in objects)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Service",
            "ServiceMonitor",
            "PrometheusRule",
        ]
        + ["ConfigMap"] * 5
    ), kinds
    for obj in objects:
        validate(obj, crd_validators)
        assert obj["metadata"]["namespace"] == generate.load_settings()["namespace"]


def _set(path: str, value):
    """A mutation: the value at a dotted path (list indexes as numbers) replaced, or a new key added."""

    def mutate(obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        target = obj
        for part in parents:
            target = target[part]
        target[last] = value
        return obj

    return mutate


def _duplicate_group(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj["spec"]["groups"].append(copy.deepcopy(obj["spec"]["groups"][0]))
    return obj


def _role_arn_not_a_string(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] = 1
    return obj


def _drop_group_name(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    del obj["spec"]["groups"][0]["name"]
    return obj


MUTATIONS = {  # kind -> (what is wrong, mutation): each must fail validation, or passing it proves nothing
    "Deployment": [
        ("unknown container field", _set("spec.template.spec.containers.0.livenessprobe", {})),
        ("wrong type", _set("spec.template.spec.containers.0.securityContext.readOnlyRootFilesystem", "yes")),
        ("replicas as a string", _set("spec.replicas", "1")),
        ("unknown metadata field", _set("metadata.lables", {})),
    ],
    "Service": [("port as a string", _set("spec.ports.0.port", "9798"))],
    "PodDisruptionBudget": [("unknown spec field", _set("spec.maxUnavailble", 1))],
    "ServiceAccount": [("annotation value not a string", _role_arn_not_a_string)],
    "ServiceMonitor": [
        ("unknown endpoint field", _set("spec.endpoints.0.portt", "http-metrics")),
        ("endpoints not a list", _set("spec.endpoints", {})),
        ("bad scrape interval", _set("spec.endpoints.0.interval", "30 seconds")),
        ("label value not a string", _set("metadata.labels.release", 1)),
    ],
    "PrometheusRule": [
        ("unknown rule field", _set("spec.groups.1.rules.0.alrt", "x")),
        ("expr a list", _set("spec.groups.1.rules.0.expr", ["up"])),
        ("bad for", _set("spec.groups.1.rules.0.for", "3 minutes")),
        ("group without a name", _drop_group_name),
        ("two groups of one name", _duplicate_group),
        ("unknown metadata field", _set("metadata.lables", {})),
    ],
}


@pytest.mark.parametrize(
    "kind,what,mutation",
    [(kind, what, mutation) for kind, cases in MUTATIONS.items() for what, mutation in cases],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_validation_refuses_a_broken_object(objects, crd_validators, kind, what, mutation):
    original = only(objects, kind)[0]
    validate(original, crd_validators)
    with pytest.raises(jsonschema.ValidationError):
        validate(mutation(original), crd_validators)


def test_kustomization_lists_every_manifest_once(tree):
    kustomization = tree["kustomization.yaml"][0]
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and kustomization["kind"] == "Kustomization"
    assert set(kustomization) == {"apiVersion", "kind", "resources"}
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources))
    assert sorted(resources) == sorted(name for name in tree if name != "kustomization.yaml")
    names = [(obj["kind"], obj["metadata"]["name"]) for obj in (o for n in resources for o in tree[n])]
    assert len(names) == len(set(names)), "two objects of one kind and name"


# --- one source: the same rules and dashboards ---


def test_the_prometheus_rule_holds_exactly_the_rules_file(objects):
    committed = yaml.safe_load(alerting.RULES_FILE.read_text())["groups"]
    rule = only(objects, "PrometheusRule")[0]
    assert rule["spec"]["groups"] == committed  # names, alert and record names, exprs, for, labels, annotations
    names = [r.get("alert") or r["record"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert len(names) == len(alerting.build_alerts(alerting.load_settings())) + len(alerting.RECORDING_RULES)


def test_promtool_accepts_the_prometheus_rules_groups(objects, tmp_path):
    path = tmp_path / "groups.yml"
    path.write_text(yaml.safe_dump({"groups": only(objects, "PrometheusRule")[0]["spec"]["groups"]}))
    result = subprocess.run([tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_config_maps_hold_exactly_the_dashboards(objects):
    maps = [obj for obj in only(objects, "ConfigMap") if obj["metadata"]["labels"].get("grafana_dashboard") == "1"]
    files = sorted((ROOT / "dashboards").glob("*.json"))
    assert len(maps) == len(files)
    held = {key: text for obj in maps for key, text in obj["data"].items()}
    assert len(held) == len(files), "one dashboard per ConfigMap, each under its own name"
    for path in files:
        text = path.read_text()
        assert held[json.loads(text)["uid"] + ".json"] == text, path.name


# --- wired together, and to the exporter itself ---


def test_objects_select_each_other(objects):
    (account,), (service,), (monitor,) = (
        only(objects, "ServiceAccount"),
        only(objects, "Service"),
        only(objects, "ServiceMonitor"),
    )
    (rule,) = only(objects, "PrometheusRule")
    settings = generate.load_settings()
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == settings["iam_role_arn"]
    assert monitor["metadata"]["labels"]["release"] == rule["metadata"]["labels"]["release"] == settings["release"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [port["name"]] == [generate.PORT_NAME]
    # prometheus-operator's job label is the Service's name; the alerts' exporter_job must select it.
    assert "jobLabel" not in monitor["spec"] and service["metadata"]["name"] == "aws-vpn-exporter"
    assert generate.selects_job(alerting.load_settings()["exporter_job"], service["metadata"]["name"])
    deployments = only(objects, "Deployment")
    config_maps = {obj["metadata"]["name"]: obj for obj in only(objects, "ConfigMap")}
    budgets = {obj["metadata"]["name"]: obj for obj in only(objects, "PodDisruptionBudget")}
    for deployment in deployments:
        template = deployment["spec"]["template"]
        pod_labels = template["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"] == pod_labels
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert budgets[deployment["metadata"]["name"]]["spec"]["selector"]["matchLabels"] == pod_labels
        assert template["spec"]["serviceAccountName"] == account["metadata"]["name"]
        (container,) = template["spec"]["containers"]
        assert port["targetPort"] in [p["name"] for p in container["ports"]]
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        config = config_maps[volumes["config"]["configMap"]["name"]]
        text = config["data"][generate.CONFIG_KEY]
        assert (
            template["metadata"]["annotations"][generate.CONFIG_HASH] == hashlib.sha256(text.encode()).hexdigest()
        )  # a config change rolls the pods
        assert parse_config(yaml.safe_load(text), "configmap").targets


def test_the_container_runs_the_exporter_as_its_flags_and_config_say(objects):
    for deployment in only(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        args = build_parser().parse_args(container["args"])  # the exporter's own parser
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert args.config == f"{mounts['config']['mountPath']}/{generate.CONFIG_KEY}" and mounts["config"]["readOnly"]
        host, port = parse_listen_address(args.listen)
        assert host == "0.0.0.0" and [p["containerPort"] for p in container["ports"]] == [port] == [9798]
        volumes = {v["name"]: v for v in pod["volumes"]}
        (config_map,) = [
            obj
            for obj in only(objects, "ConfigMap")
            if obj["metadata"]["name"] == volumes["config"]["configMap"]["name"]
        ]
        config = parse_config(yaml.safe_load(config_map["data"][generate.CONFIG_KEY]), "configmap")
        assert mounts["state"]["mountPath"] == str(config.state_dir) and "emptyDir" in volumes["state"]
        assert "readOnly" not in mounts["state"]


def test_the_probes_ask_what_the_exporter_answers(objects):
    """Liveness is 200 from start-up (a slow first poll never restarts the pod); readiness waits for a snapshot."""
    (container,) = only(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"]
    snapshot = []
    server = ExporterServer(("127.0.0.1", 0), lambda: snapshot[0] if snapshot else None, lambda: b"")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        live, ready = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
        assert live["port"] == ready["port"] == container["ports"][0]["name"]
        assert requests.get(url + live["path"], timeout=5).status_code == 200
        assert requests.get(url + ready["path"], timeout=5).status_code == 503
        snapshot.append(object())  # the first poll has completed
        assert requests.get(url + ready["path"], timeout=5).status_code == 200
        assert requests.get(url + live["path"], timeout=5).status_code == 200
    finally:
        server.shutdown()
        server.server_close()


def test_the_pod_matches_the_image():
    """The Dockerfile's user, environment and port are what the pod spec assumes."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"^USER {generate.IMAGE_UID}$", dockerfile, re.M)
    assert re.search(rf"^EXPOSE {generate.PORT}$", dockerfile, re.M)
    env = dict(pair.split("=", 1) for line in re.findall(r"^ENV (.+)$", dockerfile, re.M) for pair in line.split())
    assert generate.IMAGE_ENV.items() <= env.items()


# --- locked down (Pod Security Standards, "restricted") ---


def test_pods_meet_the_restricted_pod_security_standard(objects):
    allowed_volumes = {
        "configMap",
        "emptyDir",
        "projected",
        "secret",
        "downwardAPI",
        "persistentVolumeClaim",
        "ephemeral",
        "csi",
    }
    for deployment in only(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == generate.IMAGE_UID != 0
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))
        assert pod["automountServiceAccountToken"] is False
        for volume in pod["volumes"]:
            assert set(volume) - {"name"} <= allowed_volumes, volume
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert "privileged" not in security and not security.get("runAsUser") == 0
            assert not any("hostPort" in port for port in container["ports"])
            assert container["env"] == [{"name": "PYTHONMALLOC", "value": "malloc"}]
            requests_, limits = container["resources"]["requests"], container["resources"]["limits"]
            assert {"cpu", "memory"} <= requests_.keys() and "memory" in limits


def test_a_disruption_budget_never_blocks_a_drain(objects):
    for budget in only(objects, "PodDisruptionBudget"):
        assert budget["spec"] == {"maxUnavailable": 1, "selector": budget["spec"]["selector"]}


# --- settings: one place, read strictly ---

SHARDED = """
namespace: vpn
image: registry.example.com/aws-vpn-exporter@sha256:{digest}
iam_role_arn: arn:aws:iam::123456789012:role/vpn-exporter
release: prom
shards: 3
replicas_per_shard: 2
resources: {{requests: {{cpu: 100m, memory: 128Mi}}, limits: {{memory: 256Mi}}}}
config:
  targets:
    - regions: [us-east-1, us-east-2, us-west-1, us-west-2, eu-west-1, eu-central-1]
    - regions: [us-east-1, ap-northeast-1]
      role_arn: arn:aws:iam::210987654321:role/vpn-exporter
  state_dir: /state
""".format(digest="a" * 64)


def test_shards_and_replicas_cover_every_region_once(tmp_path, crd_validators):
    settings_file = tmp_path / "settings.yml"
    settings_file.write_text(SHARDED)
    generate.write_all(tmp_path / "out", settings_file)
    tree = load_tree(tmp_path / "out")
    objects = [obj for name, docs in tree.items() if name != "kustomization.yaml" for obj in docs]
    for obj in objects:
        validate(obj, crd_validators)
        assert obj["metadata"]["namespace"] == "vpn"
    deployments, budgets = only(objects, "Deployment"), only(objects, "PodDisruptionBudget")
    assert [d["metadata"]["name"] for d in deployments] == [f"aws-vpn-exporter-shard-{i}" for i in range(3)]
    assert all(d["spec"]["replicas"] == 2 for d in deployments)
    assert [b["spec"]["selector"] for b in budgets] == [d["spec"]["selector"] for d in deployments]
    shard_labels = {d["spec"]["template"]["metadata"]["labels"][generate.SHARD_LABEL] for d in deployments}
    assert len(shard_labels) == 3, "each budget selects only its own shard's pods"
    config_maps = {c["metadata"]["name"]: c for c in only(objects, "ConfigMap")}
    owners: dict[tuple, list[int]] = {}
    for deployment in deployments:
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        text = config_maps[volumes["config"]["configMap"]["name"]]["data"][generate.CONFIG_KEY]
        config = parse_config(yaml.safe_load(text), "shard")
        for target in config.sharded_targets():
            for region in target.regions:
                owners.setdefault((target.role_arn, region), []).append(config.shard.index)
    assert len(owners) == 8 and all(len(shards) == 1 for shards in owners.values()), owners
    # the hash the exporter uses, so the split above is the exporter's own
    assert all(
        zlib.crc32(f"{role or 'default'}|{region}".encode()) % 3 == shards[0]
        for (role, region), shards in owners.items()
    )


VALID = SHARDED.replace("shards: 3", "shards: 1")


@pytest.mark.parametrize(
    "change,error",
    [
        (("namespace: vpn", "namespace: VPN"), "namespace: 'VPN' is not a namespace name"),
        (("namespace: vpn\n", "namespace: vpn\nnamespaces: x\n"), "namespaces: unknown key, did you mean namespace?"),
        (("namespace: vpn\n", ""), "namespace: missing"),
        (
            ("image: registry.example.com/aws-vpn-exporter@sha256:" + "a" * 64, "image: aws-vpn-exporter"),
            "image: 'aws-vpn-exporter': name a pinned tag or digest",
        ),
        (
            ("iam_role_arn: arn:aws:iam::123456789012:role/vpn-exporter", "iam_role_arn: vpn-exporter"),
            "iam_role_arn: 'vpn-exporter' is not an IAM role ARN",
        ),
        (("replicas_per_shard: 2", "replicas_per_shard: '2'"), "replicas_per_shard: expected int"),
        (("cpu: 100m", "cpu: 100"), "resources: requests.cpu: 100 is not a quantity in quotes"),
        (("state_dir: /state", "state_dir: state"), "config: state_dir: an absolute path in the pod"),
        (("state_dir: /state", "state_dir: /state\n  shard: {index: 0, count: 2}"), "config: shard: set by `shards`"),
        (("us-east-2", "us-east-9x"), "config: targets[0].regions[1]: not an AWS region name"),
        (("state_dir: /state", "state_dir: /state\n  poll_intervall: 30s"), "config: poll_intervall: unknown key"),
        (("shards: 1", "shards: 9"), "of 9 would watch no region"),
    ],
)
def test_a_bad_settings_file_fails_naming_the_file_and_key(tmp_path, change, error):
    old, new = change
    assert old in VALID
    settings_file = tmp_path / "settings.yml"
    settings_file.write_text(VALID.replace(old, new, 1))
    with pytest.raises(SystemExit) as failure:
        generate.write_all(tmp_path / "out", settings_file)
    assert str(failure.value).startswith(f"{settings_file}: ") and error in str(failure.value), failure.value
    assert not (tmp_path / "out").exists(), "nothing is written from a bad settings file"


def test_the_alerts_job_selector_must_select_the_service_monitors_job():
    assert generate.selects_job('job="aws-vpn-exporter"', "aws-vpn-exporter")
    assert generate.selects_job('job=~"aws-vpn-.*", env!="dev"', "aws-vpn-exporter")
    assert not generate.selects_job('job="vpn"', "aws-vpn-exporter")
    assert not generate.selects_job('job!~"aws-.*"', "aws-vpn-exporter")
    settings = generate.load_settings()
    with pytest.raises(SystemExit, match='exporter_job: job="vpn" does not select job="aws-vpn-exporter"'):
        alert_settings = {**alerting.load_settings(), "exporter_job": 'job="vpn"'}
        generate.documents(settings, alert_settings, alerting.rules_document(alert_settings), {})
