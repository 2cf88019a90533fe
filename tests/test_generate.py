"""``python -m generate`` (``scripts/generate``): it writes exactly the committed generated files, and a failure
anywhere (a bad setting caught late, a promtool case without its wording, a file that cannot be written) leaves
every file as it was; the generators take their settings as arguments and share no state between runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from generate import __main__ as pipeline
from generate import alert_cases, alerting, kubernetes, output

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILES = [alerting.SETTINGS_FILE.relative_to(ROOT), kubernetes.SETTINGS_FILE.relative_to(ROOT)]


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return pipeline.build()


def copy_of_the_tree(tmp_path: Path, names) -> Path:
    """The settings files and the committed generated files, in a directory of their own."""
    root = tmp_path / "tree"
    for name in [*SETTINGS_FILES, *names]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes((ROOT / name).read_bytes())
    return root


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: its bytes and modification time."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def run(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "generate", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_it_builds_every_generated_file_and_they_are_the_committed_ones(generated):
    assert set(generated) >= {
        "alerts/aws-vpn.rules.yml",
        "alerts/alertmanager.yml",
        "alerts/tests/aws-vpn.test.yml",
        "docs/runbooks.md",
        "docs/metrics.md",
        "dashboards/exporter.json",
        "mixin/generated/rules.json",
        "deploy/kubernetes/prometheusrule.yaml",
        "deploy/kubernetes/grafana-dashboards.yaml",
    }
    stale = [name for name, text in generated.items() if (ROOT / name).read_text(encoding="utf-8") != text]
    assert not stale, f"stale: run scripts/generate ({', '.join(stale)})"


def test_a_run_writes_byte_identical_files_and_nothing_else(tmp_path, generated):
    root = tmp_path / "tree"
    for name in SETTINGS_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes((ROOT / name).read_bytes())
    result = run(root)
    assert result.returncode == 0, result.stderr
    written = {name for name in snapshot(root) if Path(name) not in SETTINGS_FILES}
    assert written == set(generated)
    for name in generated:
        assert (root / name).read_bytes() == (ROOT / name).read_bytes(), name
        assert (root / name).stat().st_mode & 0o777 == 0o644, name


def test_a_setting_refused_by_the_last_generator_writes_nothing(tmp_path, generated):
    """The manifests are built last: an exporter_job the ServiceMonitor's job does not match is refused there,
    after the rules, runbooks, cases, dashboards and mixin (all changed by it) were built."""
    root = copy_of_the_tree(tmp_path, generated)
    settings = root / alerting.SETTINGS_FILE.relative_to(ROOT)
    settings.write_text(settings.read_text().replace('exporter_job: job="aws-vpn-exporter"', 'exporter_job: job="vpn"'))
    before = snapshot(root)
    result = run(root)
    assert result.returncode != 0
    assert 'exporter_job: job="vpn" does not select job="aws-vpn-exporter"' in result.stderr
    assert "wrote" not in result.stderr
    assert snapshot(root) == before


def test_a_generator_failing_half_way_writes_nothing(tmp_path, generated, monkeypatch):
    """A promtool case whose wording is missing (the KeyError of the issue) fails after the rules and runbooks
    were built from settings that change them; none of it reaches the tree."""
    root = copy_of_the_tree(tmp_path, generated)
    settings = root / alerting.SETTINGS_FILE.relative_to(ROOT)
    settings.write_text(settings.read_text().replace("bgp_down_for: 3m", "bgp_down_for: 4m"))
    monkeypatch.delitem(alert_cases.EXPECTED, "VpnTunnelFlapping")
    before = snapshot(root)
    with pytest.raises(KeyError, match="VpnTunnelFlapping"):
        pipeline.main(["--root", str(root)])
    assert snapshot(root) == before


def test_a_file_that_cannot_be_written_leaves_every_file_as_it_was(tmp_path):
    (tmp_path / "first.txt").write_text("old")
    files = {"first.txt": "new", "sub/second.txt": "fine", "third.txt": "\ud800 cannot be UTF-8"}
    with pytest.raises(UnicodeEncodeError):
        output.write(tmp_path, files)
    assert (tmp_path / "first.txt").read_text() == "old"
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == ["first.txt"]


def test_a_written_file_keeps_its_mode(tmp_path):
    (tmp_path / "script").write_text("old")
    (tmp_path / "script").chmod(0o755)
    output.write(tmp_path, {"script": "new", "new.txt": "new"})
    assert (tmp_path / "script").read_text() == "new" and (tmp_path / "script").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o644


def test_building_with_other_settings_changes_no_later_build(generated):
    """No generator keeps settings between calls: rules built with other settings leave the next build as it was."""
    other = {**alerting.load_settings(), "bgp_down_for": "9m", "runbook_base": "https://wiki.example.com/vpn"}
    assert alerting.rules_document(other) != alerting.rules_document(alerting.load_settings())
    alert_cases.render(other)
    assert pipeline.build() == generated
