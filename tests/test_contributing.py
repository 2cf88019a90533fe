"""docs/contributing.md states how many files a metric and a finding take by hand. Here each is added to a copy
of the tree, through exactly the files the guide lists, then regenerated as it says: the checks pass. Left without
any one of those files, they fail. So the guide's counts stay true both ways: the files it lists are enough, and
each is needed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a copy of the tree, regenerated and tested five times over

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "contributing.md"

Edit = tuple[str, Callable[[str], str]]  # (a file, what the change does to its text)


def after(anchor: str, text: str) -> Callable[[str], str]:
    """Insert ``text`` after the first ``anchor`` (a worked example's anchor that moved fails loudly)."""

    def edit(content: str) -> str:
        assert anchor in content, f"update tests/test_contributing.py: {anchor!r} is gone"
        return content.replace(anchor, anchor + text, 1)

    return edit


def before(anchor: str, text: str) -> Callable[[str], str]:
    """Insert ``text`` before the first ``anchor``."""

    def edit(content: str) -> str:
        assert anchor in content, f"update tests/test_contributing.py: {anchor!r} is gone"
        return content.replace(anchor, text + anchor, 1)

    return edit


def append(text: str) -> Callable[[str], str]:
    return lambda content: content + text


METRIC = "aws_vpn_exporter_traffic_counted_tunnels"
METRIC_EDITS: list[Edit] = [
    (
        "exporter/contract.py",
        after(
            "    for metric in (\n",
            f'        Metric("{METRIC}", "gauge", "Tunnels whose traffic is counted.", ("account_id", "region")),\n',
        ),
    ),
    (
        "exporter/sources/traffic/families.py",
        append(
            f"""    counted, tunnels = Family.of("{METRIC}"), {{}}
    for key in traffic.tunnels:
        tunnels[(key.account_id, key.region)] = tunnels.get((key.account_id, key.region), 0) + 1
    for where, n in sorted(tunnels.items()):
        counted.add_metric(list(where), float(n))
    yield counted
"""
        ),
    ),
    (
        "exporter/contract.py",
        before(
            '    "aws_vpn_tunnel_last_traffic_timestamp_seconds": (',
            f'    "{METRIC}": ("traffic", "tunnels whose traffic is counted"),\n',
        ),
    ),
]
METRIC_CHECKS = ["tests/test_golden.py", "tests/test_contract.py"]

FINDING = "traffic_counter_went_back"
FINDING_EDITS: list[Edit] = [
    (
        "exporter/diagnosis/findings.py",
        after(
            "_SPECS = (",
            f"""
    FindingSpec(
        "{FINDING}",
        WARNING,
        "tunnel",
        "CloudWatch reported fewer bytes than were counted before.",
        "Nothing to do: the counter keeps its count.",
        alert="VpnTunnelTrafficCounterWentBack",
        demo="no: the demo's counters only grow",
    ),""",
        ),
    ),
    (
        "exporter/sources/traffic/rules.py",
        after(
            'so it is not judged."""\n',
            f'    if traffic is not None and traffic.received_bytes < 0:\n        yield "{FINDING}", ("negative",)\n',
        ),
    ),
    (
        "generate/alert_cases.py",
        before(
            '    "VpnConnectionIdle": (',
            '    "VpnTunnelTrafficCounterWentBack": (\n'
            '        "CloudWatch reported fewer bytes than were counted before.",\n'
            '        "Tunnel {tunnel} of VPN connection {vpn_connection_id} ({name}) in {account_id}/{region}: "\n'
            '        "CloudWatch reported fewer bytes than were counted before.",\n'
            "    ),\n",
        ),
    ),
    (
        "tests/test_traffic.py",
        append(f'\n\ndef test_{FINDING}():\n    assert "{FINDING}"\n'),
    ),
    (
        "docs/diagnosis.md",
        before(
            "| `ipsec_up_bgp_down` | critical |",
            f"| `{FINDING}` | warning | tunnel | CloudWatch reported fewer bytes. | Nothing to do. |\n",
        ),
    ),
]
FINDING_CHECKS = [
    "tests/test_diagnosis.py::test_every_catalogued_finding_is_documented_in_the_readme",
    "tests/test_diagnosis.py::test_every_finding_has_a_rule_and_a_case",
    "tests/test_alerts.py::test_generated_files_are_current",
    "tests/test_alerts.py::test_every_finding_has_an_alert",
    "tests/test_alerts.py::test_promtool_unit_tests_pass",
    "tests/test_golden.py",
]


def stated_count(kind: str) -> int:
    """How many files the guide says ``kind`` takes by hand: "**A metric** (3 files, ..."."""
    found = re.search(rf"\*\*{kind}\*\* \((\d+) files", GUIDE.read_text())
    assert found, f"docs/contributing.md no longer states the files of {kind}"
    return int(found.group(1))


def copy_of_the_tree(target: Path) -> None:
    """The tracked files (symbolic links kept), as a fresh clone has them, but this test."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if name == "tests/test_contributing.py":
            continue  # it names the example finding itself: the copy's checks must not find the code here
        source, copy = ROOT / name, target / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), copy)
        elif source.is_file():
            shutil.copy2(source, copy)


def run(tree: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """A command of the project's Python in the copy (its own code first on the path, not this tree's)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(tree), **env},
    )


def regenerate_and_check(tree: Path, checks: list[str]) -> subprocess.CompletedProcess:
    """What the guide says to run after the edits, then the checks that guard them."""
    run(tree, "-m", "generate")  # fails on its own where a finding's alert cannot be built: the checks then fail
    run(tree, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_golden.py", UPDATE_GOLDEN="1")
    return run(tree, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *checks)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    copy_of_the_tree(tree)
    return tree


@pytest.mark.parametrize(
    ("kind", "edits", "checks"),
    [("A metric", METRIC_EDITS, METRIC_CHECKS), ("A finding", FINDING_EDITS, FINDING_CHECKS)],
    ids=["metric", "finding"],
)
def test_the_guide_lists_exactly_the_files_a_change_needs(pristine, tmp_path, kind, edits, checks):
    assert len({path for path, _ in edits}) == stated_count(kind)
    for left_out in [None, *range(len(edits))]:
        tree = tmp_path / f"without-{left_out}"
        shutil.copytree(pristine, tree, symlinks=True)
        for index, (path, edit) in enumerate(edits):
            if index != left_out:
                (tree / path).write_text(edit((tree / path).read_text()))
        result = regenerate_and_check(tree, checks)
        if left_out is None:
            assert result.returncode == 0, f"{kind} through the guide's files fails its checks:\n{result.stdout}"
        else:
            assert result.returncode != 0, f"{kind} without {edits[left_out][0]} passes: the guide lists too much"
