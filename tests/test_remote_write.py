"""Beyond one machine, on real engines: two sharded exporter replicas over ONE simulated AWS of three
accounts and four regions, each scraped by its own Debian Prometheus in agent mode, which remote-writes
to a central Prometheus (its remote-write receiver, fed as Thanos Receive or Mimir would be). The central
evaluates the shipped rules (generated with short holds) and alerts a real Alertmanager.

The Prometheus configs are the shipped stack/scaling/agent.yml and central.yml, with only the addresses
and the agent's name filled in and, for speed, the scrape, evaluation and remote-write intervals set to
1 s. The assertions are on the central store, against what the simulated AWS itself holds.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

import boto3
import pytest
import requests
import yaml

from exporter import contract as m
from exporter.app import Exporter
from exporter.config import Shard, Target
from exporter.demo.environment import DEFAULT_ACCOUNT, DemoEnvironment
from exporter.demo.scenario import Scenarios, load_scenarios
from generate.alerting import ALERTMANAGER_FILE, DEFAULTS, RULES_FILE, SETTINGS_FILE
from tests import services
from tests.conftest import FIGURES
from tests.docs import doc
from tests.test_alerts import generate
from tests.test_stack import _rewrite as rewrite

pytestmark = pytest.mark.slow  # real Prometheus agents, a central store and Alertmanager: not in `scripts/test --quick`

ROOT = Path(__file__).resolve().parent.parent
AGENT_FILE = ROOT / "stack" / "scaling" / "agent.yml"
CENTRAL_FILE = ROOT / "stack" / "scaling" / "central.yml"
SHARDS = 2
POLL_INTERVAL = 2.0
HOLD = "5s"  # every rule's `for:` in this test (the shipped rules hold for minutes)
BRANCHES = "345678901234"  # a third account, reached by assuming a role
# Deadlines: what this takes on the 2-core CI machine, times more than two.
ARRIVAL_DEADLINE = 60
ALERTS_DEADLINE = 60
TUNNEL_METRICS = (m.TUNNEL_UP, m.TUNNEL_INFO, m.TUNNEL_IPSEC_UP, m.TUNNEL_ACCEPTED_ROUTES, m.TUNNEL_LAST_STATUS_CHANGE)
# All the exporters say about accounts (no rule output) but discovery's: every replica lists the organization
# itself (its identity, ListAccounts, the member roles, DescribeRegions: few calls an hour), so those come from
# each, by design.
AWS_SERIES = (
    '({__name__=~"aws_vpn_[^:]+", __name__!~"aws_vpn_exporter_discover.*", account_id!=""} unless '
    'aws_vpn_exporter_aws_api_calls_total{operation=~"ListAccounts|AssumeRole|DescribeRegions|GetCallerIdentity"})'
)


def scaled_out_scenarios() -> Scenarios:
    """The demo's two accounts, plus a third with a healthy and an IPsec-up/BGP-down connection in two
    more regions, so that each shard owns tunnels and each has one that pages."""
    demo = load_scenarios()

    def copy(name: str, new_name: str, region: str):
        base = next(c for c in demo.connections if c.name == name)
        tunnels = tuple(replace(t, outside_ip="192.0.2." + t.outside_ip.rsplit(".", 1)[1]) for t in base.tunnels)
        return replace(base, name=new_name, account=BRANCHES, region=region, tunnels=tunnels)

    return Scenarios(
        accounts={**demo.accounts, BRANCHES: "vpn-exporter"},
        connections=demo.connections
        + (copy("hq-core", "hq-sydney", "ap-southeast-2"), copy("branch-tokyo", "branch-oregon", "us-west-2")),
    )


def watched(aws: DemoEnvironment) -> dict:
    """What every replica is told to watch: the simulated AWS's organization, discovered (ListAccounts, the
    member role, DescribeRegions), no account listed by hand."""
    return {"targets": (), "organizations": (aws.organization(),)}


def expected_targets(aws: DemoEnvironment) -> tuple[Target, ...]:
    """The accounts and regions that hold tunnels, as the scenarios say (not as the exporter found them): the
    test's own account of who should own what."""
    return aws.targets()


def agent_name(shard: int) -> str:
    return f"agent-{shard}"


@dataclass(frozen=True)
class Tunnel:
    account_id: str
    region: str
    vpn_connection_id: str
    tunnel: str
    name: str
    status: str
    message: str
    shard: int  # the replica that owns its (credentials, region)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.account_id, self.region, self.vpn_connection_id, self.tunnel


def tunnels_in_aws(targets: tuple[Target, ...]) -> list[Tunnel]:
    """Every tunnel the simulated AWS holds in the watched accounts and regions, read with
    DescribeVpnConnections here (not through the exporter), with the shard that owns it."""
    found = []
    for target in targets:
        for region in target.regions:
            ec2, account = _ec2(target, region)
            owner = [i for i in range(SHARDS) if Shard(i, SHARDS).owns(target, region)]
            assert len(owner) == 1, (target, region, owner)
            for connection in ec2.describe_vpn_connections()["VpnConnections"]:
                name = next((t["Value"] for t in connection.get("Tags", []) if t["Key"] == "Name"), "")
                for telemetry in connection["VgwTelemetry"]:
                    found.append(
                        Tunnel(
                            account,
                            region,
                            connection["VpnConnectionId"],
                            telemetry["OutsideIpAddress"],
                            name,
                            telemetry["Status"],
                            telemetry["StatusMessage"],
                            owner[0],
                        )
                    )
    return found


def account_of(target: Target) -> str:
    return target.account_id_from_role or DEFAULT_ACCOUNT


def _ec2(target: Target, region: str):
    sts = boto3.client("sts", region_name=region)
    if not target.role_arn:
        return boto3.client("ec2", region_name=region), sts.get_caller_identity()["Account"]
    extra = {"ExternalId": target.external_id} if target.external_id else {}
    credentials = sts.assume_role(RoleArn=target.role_arn, RoleSessionName="test-remote-write", **extra)["Credentials"]
    ec2 = boto3.client(
        "ec2",
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    return ec2, target.role_arn.split(":")[4]


def short_hold_rules(workdir: Path) -> Path:
    """The shipped rules, generated from the shipped settings with every hold set to ``HOLD``."""
    settings = yaml.safe_load(SETTINGS_FILE.read_text()) or {}
    settings.update({key: HOLD for key in DEFAULTS if key.endswith("_for")})
    workdir.mkdir()
    result = generate(workdir, yaml.safe_dump(settings))
    assert result.returncode == 0, result.stderr
    rules = workdir / "out" / "alerts"
    assert _expressions(rules / RULES_FILE.name) == _expressions(RULES_FILE), "only the holds may differ"
    return rules


def _expressions(path: Path) -> list:
    document = yaml.safe_load(path.read_text())
    return [
        (rule.get("alert") or rule["record"], rule["expr"], rule.get("labels"))
        for group in document["groups"]
        for rule in group["rules"]
    ]


@contextlib.contextmanager
def replica(watch: dict, shard: Shard, state_dir: Path):
    exporter = Exporter(
        services.demo_config(
            watch["targets"], state_dir, POLL_INTERVAL, shard=shard, organizations=watch["organizations"]
        ),
        ("127.0.0.1", 0),
    )
    exporter.start()
    try:
        yield f"127.0.0.1:{exporter.address[1]}"
    finally:
        exporter.stop()


def agent_config(workdir: Path, shard: int, exporter: str, central_url: str) -> Path:
    path = workdir / f"{agent_name(shard)}.yml"
    path.write_text(
        rewrite(
            AGENT_FILE.read_text(),
            {
                "agent: agent-0": f"agent: {agent_name(shard)}",
                "exporter-0:9798": exporter,
                "http://central:9090": central_url,
                "scrape_interval: 15s": "scrape_interval: 1s",
                "batch_send_deadline: 5s": "batch_send_deadline: 1s",
            },
        )
    )
    return path


def central_config(workdir: Path, rules: Path, alertmanager_url: str) -> Path:
    directory = workdir / "central"
    directory.mkdir()
    (directory / "rules").symlink_to(rules)  # as stack/scaling/rules is alerts/
    path = directory / CENTRAL_FILE.name
    path.write_text(
        rewrite(
            CENTRAL_FILE.read_text(),
            {
                "alertmanager:9093": alertmanager_url.removeprefix("http://"),
                "evaluation_interval: 15s": "evaluation_interval: 1s",
            },
        )
    )
    return path


@dataclass(frozen=True)
class Topology:
    central: str  # the central Prometheus' URL
    alertmanager: str
    tunnels: list[Tunnel]  # what the simulated AWS holds
    exporters: dict[int, str]  # shard -> the address its agent scrapes (its `instance`)
    targets: tuple[Target, ...]  # the credentials of each account, as the scenarios say


@pytest.fixture(scope="module")
def topology(moto_url, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("remote-write")
    rules = short_hold_rules(workdir / "rules")
    with contextlib.ExitStack() as stack:
        aws = stack.enter_context(services.simulated_aws(moto_url, scaled_out_scenarios()))
        targets = expected_targets(aws)
        tunnels = tunnels_in_aws(targets)
        exporters = {
            i: stack.enter_context(replica(watched(aws), Shard(i, SHARDS), workdir / f"state-{i}"))
            for i in range(SHARDS)
        }
        alertmanager = stack.enter_context(services.alertmanager(ALERTMANAGER_FILE, workdir / "alertmanager"))
        central = stack.enter_context(
            services.prometheus(
                central_config(workdir, rules, alertmanager),
                workdir / "central-data",
                "--web.enable-remote-write-receiver",
            )
        )
        started = time.time()
        for shard, exporter in exporters.items():
            stack.enter_context(
                services.prometheus_agent(
                    agent_config(workdir, shard, exporter, central), workdir / f"{agent_name(shard)}-wal"
                )
            )
        services.wait_until(
            lambda: _arrived(central, tunnels),
            ARRIVAL_DEADLINE,
            "every tunnel and every agent's `up` in the central store",
        )
        owned = "/".join(str(sum(t.shard == shard for t in tunnels)) for shard in range(SHARDS))
        FIGURES.append(
            f"remote write: {len(tunnels)} tunnels ({owned} by shard) from {SHARDS} agents in the "
            f"central store {time.time() - started:.1f} s after the agents started"
        )
        yield Topology(central, alertmanager, tunnels, exporters, targets)


def _arrived(url: str, tunnels: list[Tunnel]) -> bool:
    """Every tunnel, and each agent's ``up`` (its batches arrive independently of the tunnels')."""
    seen = services.query(url, f"count by (account_id, region, vpn_connection_id, tunnel) ({m.TUNNEL_UP})")
    agents = services.query(url, 'count by (agent) (up{job="aws-vpn-exporter"})')
    return {_key(s["metric"]) for s in seen} == {t.key for t in tunnels} and len(agents) == SHARDS


def test_the_shipped_scaling_configs_pass_promtool():
    for arguments in (["--agent", str(AGENT_FILE)], [str(CENTRAL_FILE)]):
        checked = subprocess.run(
            [services.tool("promtool"), "check", "config", *arguments], capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (CENTRAL_FILE.parent / "rules" / RULES_FILE.name).resolve() == RULES_FILE.resolve()
    shown = doc("deployment.md")
    for path in (AGENT_FILE, CENTRAL_FILE):  # docs/deployment.md shows these very files
        assert path.read_text() in shown, (
            f"docs/deployment.md's Scaling out does not show {path.relative_to(ROOT)} as it is"
        )


def test_the_simulated_aws_spreads_over_both_shards(topology):
    tunnels = topology.tunnels
    assert len({t.account_id for t in tunnels}) >= 3 and len({(t.account_id, t.region) for t in tunnels}) >= 5
    for shard in range(SHARDS):
        owned = [t for t in tunnels if t.shard == shard]
        assert len(owned) >= 4, f"shard {shard} owns {len(owned)} tunnels"
        assert any(t.status == "DOWN" and t.message == "IPSEC IS UP" for t in owned), f"shard {shard} has no page"


def test_every_tunnel_is_in_the_central_store_exactly_once(topology):
    expected = {t.key for t in topology.tunnels}
    for metric in TUNNEL_METRICS:
        counted = services.query(
            topology.central, f"count by (account_id, region, vpn_connection_id, tunnel) ({metric})"
        )
        keys = [_key(series["metric"]) for series in counted]
        assert set(keys) == expected and len(keys) == len(expected), metric
        assert {series["value"][1] for series in counted} == {"1"}, f"{metric}: a tunnel has several series"


def test_each_tunnel_comes_from_its_shard_and_agent_with_aws_status(topology):
    owner = {t.key: t for t in topology.tunnels}
    for series in services.query(topology.central, m.TUNNEL_UP):
        labels, tunnel = series["metric"], owner[_key(series["metric"])]
        assert labels["agent"] == agent_name(tunnel.shard), labels
        assert labels["instance"] == topology.exporters[tunnel.shard] and labels["job"] == "aws-vpn-exporter", labels
        assert series["value"][1] == ("1" if tunnel.status == "UP" else "0"), labels
    per_agent = {
        s["metric"]["agent"]: int(s["value"][1])
        for s in services.query(topology.central, f"count by (agent) ({m.TUNNEL_UP})")
    }
    assert per_agent == {agent_name(shard): sum(t.shard == shard for t in topology.tunnels) for shard in range(SHARDS)}


def test_no_series_is_duplicated_across_shards(topology):
    url = topology.central
    named = f'label_replace({AWS_SERIES}, "metric", "$1", "__name__", "(.+)")'  # aggregation drops __name__
    duplicated = services.query(url, f"count without (agent, instance) ({named}) > 1")
    assert not duplicated, [s["metric"] for s in duplicated[:5]]
    sources = services.query(url, f"count by (account_id, region, agent) ({AWS_SERIES})")
    by_pair = {}
    for series in sources:
        by_pair.setdefault((series["metric"]["account_id"], series["metric"]["region"]), []).append(
            series["metric"]["agent"]
        )
    assert {pair: agents for pair, agents in by_pair.items() if len(agents) != 1} == {}
    assert {(t.account_id, t.region): [agent_name(t.shard)] for t in topology.tunnels}.items() <= by_pair.items()
    # the discovered regions with no VPN (collection series only) come from the shard that owns them too
    credentials = {account_of(target): target for target in topology.targets}
    for (account, region), (agent,) in by_pair.items():
        owner = next(i for i in range(SHARDS) if Shard(i, SHARDS).owns(credentials[account], region))
        assert agent == agent_name(owner), (account, region, agent)
    up = services.query(url, 'up{job="aws-vpn-exporter"}')
    assert sorted((s["metric"]["agent"], s["metric"]["instance"], s["value"][1]) for s in up) == [
        (agent_name(shard), address, "1") for shard, address in sorted(topology.exporters.items())
    ]
    assert not services.query(url, _rule("VpnExporterAbsent")["expr"])
    reporting = services.query(url, f"count by (shard_index) ({m.SHARDS})")
    assert sorted(s["metric"]["shard_index"] for s in reporting) == [str(i) for i in range(SHARDS)]
    assert not services.query(url, _rule("VpnExporterShardMissing")["expr"])


def _expected_alerts(tunnels: list[Tunnel]) -> dict[str, set]:
    """What the shipped rules must page for, from AWS's own telemetry."""
    connections: dict[tuple, list[Tunnel]] = {}
    for t in tunnels:
        connections.setdefault(t.key[:3], []).append(t)
    return {
        "VpnTunnelIpsecUpBgpDown": {t.key for t in tunnels if t.status == "DOWN" and t.message == "IPSEC IS UP"},
        "VpnTunnelDown": {t.key for t in tunnels if t.status == "DOWN" and t.message != "IPSEC IS UP"},
        "VpnConnectionDown": {c for c, ts in connections.items() if all(t.status == "DOWN" for t in ts)},
        "VpnRedundancyLost": {
            c for c, ts in connections.items() if len(ts) > 1 and sum(t.status == "UP" for t in ts) == 1
        },
    }


def _firing(url: str) -> list[dict]:
    alerts = requests.get(f"{url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [a["labels"] for a in alerts if a["state"] == "firing"]


def test_the_shipped_rules_fire_once_per_tunnel_and_connection_on_the_central_store(topology):
    expected = _expected_alerts(topology.tunnels)
    shard_of = {t.key: t.shard for t in topology.tunnels} | {t.key[:3]: t.shard for t in topology.tunnels}
    for name, keys in expected.items():
        assert keys, f"the scenario has no case for {name}"
    assert {shard_of[k] for k in expected["VpnTunnelIpsecUpBgpDown"]} == set(range(SHARDS))

    def firing_as_expected():
        firing = _firing(topology.central)
        seen = {
            name: [
                _key(labels, connection=name.startswith("VpnConnection") or name == "VpnRedundancyLost")
                for labels in firing
                if labels["alertname"] == name
            ]
            for name in expected
        }
        return (firing, seen) if all(set(seen[name]) == keys for name, keys in expected.items()) else None

    firing, seen = services.wait_until(firing_as_expected, ALERTS_DEADLINE, "the expected alerts firing", step=1)
    for name, keys in seen.items():
        assert len(keys) == len(set(keys)), f"{name} fires twice for one tunnel or connection"
    for labels in firing:  # per-tunnel alerts keep the agent that shipped the tunnel; connection alerts drop it
        if labels["alertname"] in ("VpnTunnelIpsecUpBgpDown", "VpnTunnelDown"):
            assert labels["agent"] == agent_name(shard_of[_key(labels)]), labels
        elif labels["alertname"] in ("VpnConnectionDown", "VpnRedundancyLost"):
            assert "agent" not in labels and "instance" not in labels, labels
    FIGURES.append(
        "remote write: "
        + ", ".join(f"{name} x{len(keys)}" for name, keys in expected.items())
        + " firing on the central store"
    )


def test_alertmanager_groups_by_connection_not_by_agent(topology):
    """The agents' `agent` and `instance` labels never split a connection's page into several."""
    expected = _expected_alerts(topology.tunnels)["VpnTunnelIpsecUpBgpDown"]
    connections = {key[:3] for key in expected}

    def groups():
        found = requests.get(f"{topology.alertmanager}/api/v2/alerts/groups", timeout=10).json()
        found = [g for g in found if g["labels"].get("alertname") == "VpnTunnelIpsecUpBgpDown"]
        return found if sum(len(g["alerts"]) for g in found) == len(expected) else None

    found = services.wait_until(groups, ALERTS_DEADLINE, "Alertmanager to hold every IPsec-up/BGP-down tunnel", step=1)
    assert {
        (g["labels"]["account_id"], g["labels"]["region"], g["labels"]["vpn_connection_id"]) for g in found
    } == connections and len(found) == len(connections)
    for group in found:
        assert set(group["labels"]) == {"alertname", "account_id", "region", "vpn_connection_id"}, group["labels"]
        assert len({a["labels"]["agent"] for a in group["alerts"]}) == 1


def _key(labels: dict, connection: bool = False) -> tuple:
    names = ("account_id", "region", "vpn_connection_id") + (() if connection else ("tunnel",))
    return tuple(labels[name] for name in names)


def _rule(name: str) -> dict:
    rules = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return next(rule for group in rules for rule in group["rules"] if rule.get("alert") == name)
