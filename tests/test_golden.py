"""The exposition, byte for byte: hand-built snapshots rendered and compared with ``tests/golden/*.txt``.

A change that alters any series, label, HELP or TYPE line, value format or order fails here, and the
diff shows exactly what a scrape would see differently. After an intended change, rewrite the files
and review the diff as part of the change:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py

(node_exporter's e2e fixture and prometheus-pve-exporter's golden files work the same way).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exporter.config import TrafficConfig
from exporter.diagnosis.findings import FINDINGS
from exporter.diagnosis.rules import diagnosed
from exporter.diagnosis.selectors import check_snapshot
from exporter.exposition.render import RenderedSnapshot
from exporter.model import (
    Connection,
    ConnectionHistory,
    CustomerGateway,
    Finding,
    HistoryCollection,
    HistoryDay,
    LogDestination,
    LogGroupStatus,
    Observation,
    RegionTelemetry,
    Snapshot,
    SourceResult,
    TrafficCollection,
    Tunnel,
    TunnelConfig,
    TunnelHistory,
    TunnelKey,
    TunnelLogView,
    TunnelStatus,
    TunnelTraffic,
)
from tests.conftest import parse_exposition

GOLDEN = Path(__file__).resolve().parent / "golden"
NOW = 1_800_000_000.0
ACCOUNT, REGION = "111122223333", "eu-west-1"
ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/vpn/tunnels"
LOGGED = LogDestination(True, ARN, "json")
CONFIGURED = TunnelConfig(
    "add",
    "clear",
    30.0,
    False,
    ("ikev1", "ikev2"),
    ("AES128", "AES256"),
    ("AES128",),
    ("SHA1", "SHA2-256"),
    ("SHA2-256",),
    ("2", "14", "24"),
    ("14",),
    28800.0,
    3600.0,
    "certificate",
)
ODD_NAME = 'site "A" \\ north\nsecond line ünïcode'  # every character the text format must escape


def full_observation() -> tuple[Observation, tuple[Finding, ...]]:
    """Every metric family with at least one series, every finding, and label values that need escaping."""
    dynamic = Connection(
        "vpn-0aaa",
        ODD_NAME,
        "available",
        "dynamic",
        "vgw",
        "vgw-0aaa",
        "cgw-0aaa",
        True,
        tunnel_bandwidth="standard",
        outside_ip_address_type="PublicIpv4",
        tunnel_inside_ip_version="ipv4",
        gateway_association_state="associated",
        tunnels=(
            Tunnel(
                "198.51.100.1",
                "DOWN",
                "ipsec_up",
                0,
                NOW - 600,
                True,
                False,
                "169.254.10.0/30",
                LOGGED,
                LOGGED,
                CONFIGURED,
            ),
            Tunnel("198.51.100.2", "UP", "bgp_routes", 12, NOW - 86_400, True, True, "169.254.10.4/30", LOGGED, LOGGED),
        ),
    )
    static = Connection(
        "vpn-0bbb",
        "",
        "available",
        "static",
        "tgw",
        "tgw-0bbb",
        "cgw-0bbb",
        False,
        static_routes=(("10.1.0.0/16", "available"), ("10.2.0.0/16", "available"), ("10.3.0.0/16", "pending")),
        gateway_association_state="other",
        tunnels=(
            Tunnel("2001:db8::1", "UNKNOWN", "missing", None, None, None, None),
            Tunnel("198.51.100.4", "DOWN", "empty", 0, NOW - 30.5, False, None, "169.254.11.4/30"),
        ),
    )
    region = RegionTelemetry(
        ACCOUNT,
        REGION,
        (dynamic, static),
        (CustomerGateway("cgw-0aaa", "65010", "203.0.113.10", ODD_NAME), CustomerGateway("cgw-0bbb", "", "", "")),
    )
    logs = {
        TunnelKey(ACCOUNT, REGION, "vpn-0aaa", "198.51.100.1"): TunnelLogView(
            counts=(("bgp_open_message_error", 2), ("dpd", 1_000_000), ("phase2_established", 3)),
            last_event=(("bgp", NOW - 5), ("ike", NOW - 61.25)),
            facts=(
                ("selectors", ("10.0.0.0/16", "192.168.0.0/24"), NOW - 61),
                ("nat_t", False, NOW - 61),
                ("dpd", True, NOW - 61),
                ("phase1", "established", NOW - 61),
                ("phase2", "weird", NOW - 61),
                ("bgp_state", "active", NOW - 5),
                ("bgp_error", "open_message_error", NOW - 5),
            ),
        ),
        TunnelKey(ACCOUNT, REGION, "vpn-0aaa", "198.51.100.2"): TunnelLogView(last_event=(("ike", NOW - 3600),)),
    }
    findings = tuple(
        sorted(
            (
                Finding(
                    ACCOUNT,
                    REGION,
                    "vpn-0aaa",
                    "" if spec.scope == "connection" else "198.51.100.1",
                    code,
                    (),
                    spec.severity,
                )
                for code, spec in FINDINGS.items()
            ),
            key=lambda f: (f.tunnel, f.code),
        )
    )
    results = (
        SourceResult(ACCOUNT, REGION, "ec2", True, 0.25, NOW - 1),
        SourceResult(ACCOUNT, REGION, "logs", False, 15.0, NOW - 900, "ThrottlingException: FilterLogEvents"),
        SourceResult("444455556666", "us-east-1", "ec2", False, 3.0, None, "AccessDenied"),
    )
    status = {
        TunnelKey(ACCOUNT, REGION, "vpn-0aaa", "198.51.100.1"): TunnelStatus(
            NOW - 60,
            True,
            NOW + 86_400,
            NOW - 90 * 86_400,
            "failed",
            'no "route" \\ here',
            None,
            "ikev1",
            "AES128",
            "AES128",
            "SHA1",
            "SHA1",
            "2",
            "2",
        ),
        TunnelKey(ACCOUNT, REGION, "vpn-0aaa", "198.51.100.2"): TunnelStatus(
            NOW - 60, False, provisioning_status="pending", pending_since=NOW - 7200
        ),
    }
    traffic = TrafficCollection(
        silent_after=TrafficConfig.silent_after,
        idle_after=TrafficConfig.idle_after,
        tunnels={
            TunnelKey(ACCOUNT, REGION, "vpn-0aaa", "198.51.100.1"): TunnelTraffic(
                0.0, 1500.0, NOW - 600, NOW - 8 * 86_400, None, NOW - 900, NOW - 600, None
            ),
            TunnelKey(ACCOUNT, REGION, "vpn-0aaa", "198.51.100.2"): TunnelTraffic(
                12_345_678_901.0, 9.5e9, NOW - 600, NOW - 8 * 86_400, NOW - 600, NOW - 600, NOW - 600, NOW - 600
            ),
        },
        metrics_requested={(ACCOUNT, REGION): 16},
        monthly_cost={(ACCOUNT, REGION): 0.6912},
        unattributable={(ACCOUNT, REGION): 0},
    )
    history = HistoryCollection(
        tunnels={
            TunnelKey(ACCOUNT, REGION, "vpn-0aaa", "198.51.100.1"): TunnelHistory(
                7, (("maintenance", 540.0), ("other", 1234.5)), (("maintenance", 0.0), ("other", 61.0))
            ),
            TunnelKey(ACCOUNT, REGION, "vpn-0aaa", "198.51.100.2"): TunnelHistory(
                0, (("maintenance", 0.0), ("other", 0.0)), (("maintenance", 0.0), ("other", 0.0))
            ),
        },
        connections={
            (ACCOUNT, REGION, "vpn-0aaa"): ConnectionHistory(
                (("maintenance", 30.0), ("other", 12.5)), 1732.0, 2_592_000.0
            )
        },
        days={(ACCOUNT, REGION, "vpn-0aaa"): (HistoryDay("2027-01-14", 86_400.0, 42.5, 1732.0, 7),)},
    )
    observation = Observation(
        NOW,
        (region,),
        results,
        logs,
        (LogGroupStatus(ACCOUNT, REGION, "/aws/vpn/tunnels", NOW - 42.5),),
        tunnel_status=status,
        traffic=traffic,
        history=history.days,
        history_counters=history,
    )
    return observation, findings


def full_snapshot() -> Snapshot:
    """Every metric family and finding at once: the observation's own selector checks, every finding code."""
    observation, findings = full_observation()
    return Snapshot.of(observation, check_snapshot(observation), findings)


SNAPSHOTS = {
    "empty": lambda: diagnosed(Observation(NOW)),
    "full": full_snapshot,
}


@pytest.mark.parametrize("name", SNAPSHOTS)
@pytest.mark.parametrize("isolate", [False, True], ids=["in process", "forked child"])
def test_the_exposition_matches_its_golden_file(name, isolate):
    rendered = RenderedSnapshot.of(SNAPSHOTS[name](), isolate=isolate)
    assert rendered.failed == ()
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN") and not isolate:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(rendered.body)
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 and review it"
    expected = path.read_bytes()
    parse_exposition(expected.decode())  # no series twice
    assert rendered.body == expected, f"the exposition differs from {path.name}; review the diff, then UPDATE_GOLDEN=1"


def test_the_full_snapshot_has_every_family_and_finding():
    """So the golden file covers what it claims: no family is left with no series in it."""
    text = (GOLDEN / "full.txt").read_text()
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}
    assert set(families) <= samples, set(families) - samples
    for code in FINDINGS:
        assert f'finding="{code}"' in text
