"""The diagnose output is triage first: counts, worst connection first, cause before symptom, one line per
finding shared by both tunnels, and the evidence that decides the fix; a hung AWS never holds it."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from exporter.demo.environment import simulated_aws_environment
from exporter.diagnosis.findings import CRITICAL
from exporter.diagnosis.report import HEALTHY, RANKS, build_report, exit_code, render_text, summary_line
from exporter.diagnosis.rules import diagnosed
from exporter.model import CustomerGateway, HistoryDay, Observation, RegionTelemetry, SourceResult, TunnelKey
from exporter.sources.logs.parse import LogEvent
from exporter.untrusted import printable
from tests import docs
from tests.hostile_strings import CORPUS, RAW
from tests.test_diagnosis import HEALTHY as HEALTHY_TUNNEL
from tests.test_diagnosis import NOW, connection, log_state, tunnel
from tests.test_secrets import MOTO_CGW_KEY

REFUSED = LogEvent(
    "bgp_open_error", NOW - 60, bgp_error="open_message_error", bgp_error_detail="remote AS 65001, expected 65100"
)


def snapshot_of(*connections, logs=None, gateways=()):
    """A diagnosed snapshot of connections in one region; ``logs`` maps a tunnel's outside IP to its log view."""
    region = RegionTelemetry("1", "us-east-1", connections, gateways)
    tunnel_logs = {
        TunnelKey("1", "us-east-1", c.vpn_connection_id, t.outside_ip): logs[t.outside_ip]
        for c in connections
        for t in c.tunnels
        if t.outside_ip in (logs or {})
    }
    return diagnosed(Observation(NOW, (region,), tunnel_logs=tunnel_logs))


def named(name, vpn_id, *tunnels):
    return replace(connection(*tunnels), name=name, vpn_connection_id=vpn_id)


BGP_DOWN = (tunnel("198.51.100.1", inside_cidr="169.254.1.0/30"), tunnel("198.51.100.2", inside_cidr="169.254.1.4/30"))
PARTNER = named("partner", "vpn-2", *BGP_DOWN)
FINE = named("fine", "vpn-1", tunnel("198.51.100.3", "UP", "bgp_routes"), tunnel("198.51.100.4", "UP", "bgp_routes"))
REFUSED_BOTH = {"198.51.100.1": log_state(REFUSED), "198.51.100.2": log_state(REFUSED)}


def test_summary_counts_and_worst_connection_first():
    lonely = named(
        "lonely", "vpn-3", tunnel("198.51.100.5", message="ipsec_down"), tunnel("198.51.100.6", "UP", "bgp_routes")
    )
    report = build_report(snapshot_of(FINE, lonely, PARTNER, logs=REFUSED_BOTH))
    assert report["summary"] == {"connections": 3, CRITICAL: 1, "warning": 1, "info": 0, HEALTHY: 1}
    assert [c["name"] for c in report["connections"]] == ["partner", "lonely", "fine"]
    assert [c["severity"] for c in report["connections"]] == [CRITICAL, "warning", HEALTHY]
    text = render_text(report)
    assert text.splitlines()[0] == summary_line(report) == "3 connections: 1 critical, 1 warning, 1 healthy"
    healthy_line = next(line for line in text.splitlines() if "fine" in line)
    assert healthy_line.startswith("HEALTHY") and text.rstrip().endswith(healthy_line)  # last, on one line
    assert exit_code(report) == 3


def test_ties_keep_a_stable_order_between_runs():
    ones = [
        named(name, vpn_id, tunnel("198.51.100.1", "UP", "bgp_routes"), HEALTHY_TUNNEL)
        for name, vpn_id in (("b", "vpn-9"), ("a", "vpn-8"), ("a", "vpn-7"))
    ]
    forwards = build_report(snapshot_of(*ones))["connections"]
    backwards = build_report(snapshot_of(*reversed(ones)))["connections"]
    assert (
        [c["vpn_connection_id"] for c in forwards]
        == [c["vpn_connection_id"] for c in backwards]
        == ["vpn-7", "vpn-8", "vpn-9"]
    )


def test_the_cause_comes_before_the_symptoms_it_explains():
    report = build_report(snapshot_of(PARTNER, logs=REFUSED_BOTH))
    codes = [f["code"] for f in report["connections"][0]["grouped_findings"]]
    assert codes == ["bgp_open_message_error", "ipsec_up_bgp_down", "connection_down"]
    assert [f["code"] for f in report["connections"][0]["findings"]][:2] == ["bgp_open_message_error"] * 2
    text = render_text(report)
    assert text.index("bgp_open_message_error") < text.index("ipsec_up_bgp_down") < text.index("connection_down")
    # once the cause is named, its next step is the one printed, not the symptoms' generic checklist
    assert text.count("next step:") == 1


def test_a_finding_identical_on_both_tunnels_is_printed_once():
    selectors = LogEvent("phase2_established", NOW - 60, selectors=("172.31.0.0/16", "10.0.0.0/16"), nat_t=True)
    logs = {"198.51.100.1": log_state(selectors), "198.51.100.2": log_state(selectors)}
    report = build_report(snapshot_of(PARTNER, logs=logs))
    grouped = {f["code"]: f for f in report["connections"][0]["grouped_findings"]}
    mismatch = grouped["traffic_selectors_mismatch"]  # its evidence names each tunnel's inside CIDR
    assert mismatch["tunnels"] == ["198.51.100.1", "198.51.100.2"] and mismatch["where"].startswith("both tunnels")
    assert any("169.254.1.0/30 / 169.254.1.4/30" in e for e in mismatch["evidence"])
    text = render_text(report)
    assert text.count("traffic_selectors_mismatch") == 1
    assert "traffic_selectors_mismatch on both tunnels (198.51.100.1, 198.51.100.2)" in text
    # different evidence stays apart: only one tunnel's OPEN was refused
    apart = build_report(snapshot_of(PARTNER, logs={"198.51.100.1": log_state(REFUSED)}))
    refused = [f for f in apart["connections"][0]["grouped_findings"] if f["code"] == "bgp_open_message_error"]
    assert [f["where"] for f in refused] == ["tunnel 198.51.100.1"]


def test_the_customer_gateway_and_the_as_numbers_decide_the_fix():
    gateway = CustomerGateway("cgw-1", "65100", "203.0.113.80", "partner-cgw")
    report = build_report(snapshot_of(PARTNER, logs=REFUSED_BOTH, gateways=(gateway,)))
    connection_report = report["connections"][0]
    assert connection_report["customer_gateway"] == {
        "customer_gateway_id": "cgw-1",
        "ip_address": "203.0.113.80",
        "bgp_asn": "65100",
    }
    refused = connection_report["grouped_findings"][0]
    assert "customer gateway cgw-1: IP 203.0.113.80, BGP ASN 65100" in refused["evidence"]
    text = render_text(report)
    assert "remote AS 65001, expected 65100" in text and "203.0.113.80, BGP ASN 65100" in text
    assert "1m00s ago" in text and "the latest at 07:59:00 UTC" in text  # how long ago, and when


def test_a_name_tag_selects_every_connection_that_carries_it():
    twin = named("partner", "vpn-4", tunnel("198.51.100.7", "UP", "bgp_routes"), HEALTHY_TUNNEL)
    snapshot = snapshot_of(FINE, PARTNER, twin)
    report = build_report(snapshot, ["partner"])
    assert sorted(c["vpn_connection_id"] for c in report["connections"]) == ["vpn-2", "vpn-4"]
    assert report["not_found"] == []
    by_id = build_report(snapshot, ["vpn-1", "nobody"])
    assert [c["name"] for c in by_id["connections"]] == ["fine"] and by_id["not_found"] == ["nobody"]
    assert "! nobody: no connection has this id or Name tag" in render_text(by_id)
    assert exit_code(by_id) == 4


def test_a_run_without_any_data_says_no_data_and_why():
    failed = SourceResult("unknown", "us-east-1", "ec2", False, 3.0, None, "timeout: no answer within 3s")
    report = build_report(diagnosed(Observation(NOW, (), (failed,))))
    text = render_text(report)
    assert text.startswith("no data") and "ec2 unknown/us-east-1: timeout: no answer within 3s" in text
    assert "stale" not in text
    assert report["no_data"] and exit_code(report) == 5  # nothing could be read


def test_the_exit_status_tells_nothing_read_from_partly_read_from_a_finding():
    """Both failure kinds were 4: a run that read nothing (no credentials) could not be told from one where a log
    group was refused."""
    ok = SourceResult("1", "us-east-1", "ec2", True, 1.0, NOW, "")
    logs_failed = SourceResult("1", "us-east-1", "logs", False, 1.0, None, "AccessDeniedException: FilterLogEvents")
    sts_failed = SourceResult(
        "unknown", "eu-west-1", "sts", False, 1.0, None, "no AWS credentials (NoCredentialsError)"
    )

    def status(*results, critical=False):
        snapshot = snapshot_of(FINE, PARTNER, logs=REFUSED_BOTH) if critical else snapshot_of(FINE)
        return exit_code(build_report(replace(snapshot, results=results)))

    assert (status(ok), status(ok, logs_failed), status(ok, sts_failed)) == (0, 4, 4)  # all read; partly read
    assert status(ok, logs_failed, critical=True) == 3  # a critical finding, whatever else failed
    nothing = build_report(diagnosed(Observation(NOW, (), (sts_failed,))))
    assert exit_code(nothing) == 5 and render_text(nothing).startswith("no data: every source failed: sts unknown/")


@pytest.mark.slow  # runs the diagnose command: not in `scripts/test --quick`
def test_diagnose_without_credentials_says_what_to_set_and_exits_5(aws, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"poll_timeout: 10s\ntargets:\n  - regions: [us-east-1]\nstate_dir: {tmp_path / 'state'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=aws,  # never a real AWS, were credentials found after all
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
    )
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "diagnose", "--config", str(config), "--no-color"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert result.stdout.startswith("no data: every source failed: sts unknown/us-east-1: no AWS credentials")
    assert "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in result.stdout
    assert "AWS_PROFILE" in result.stderr  # the log line says it too


FULL = 86400.0
STRIP_DAYS = (
    *[(FULL, 0.0, 0.0, 0)] * 24,
    (FULL, 0.0, 600.0, 2),
    (FULL, 2520.0, 3900.0, 3),
    (0.0, 0.0, 0.0, 0),
    (FULL, 0.0, 0.0, 1),
    (FULL, 0.0, 0.0, 0),
    (3600.0, 0.0, 0.0, 0),
)


def with_history(snapshot, **days_by_id):
    """The snapshot with a history for the named connections (by id): (observed, unavailable, unredundant, flaps)
    per day, the last one the snapshot's own day."""
    today = datetime.fromtimestamp(snapshot.completed_at, tz=timezone.utc).date()
    history = {
        ("1", "us-east-1", vpn_id): tuple(
            HistoryDay((today - timedelta(days=len(days) - 1 - i)).isoformat(), *values)
            for i, values in enumerate(days)
        )
        for vpn_id, days in days_by_id.items()
    }
    return replace(snapshot, history=history)


def test_each_connections_last_30_days_on_one_line_worst_first():
    report = build_report(
        with_history(snapshot_of(FINE, PARTNER, logs=REFUSED_BOTH), **{"vpn-1": STRIP_DAYS, "vpn-2": STRIP_DAYS[-3:]})
    )
    lines = render_text(report).splitlines()
    start = lines.index("Last 30 days, oldest first (\u2581 up, \u2585 degraded, \u2588 down, \u00b7 no data):")
    assert lines[start + 1 :] == [
        "  partner  vpn-2  " + "\u00b7" * 27 + "\u2585\u2581\u2581  1 day degraded, 1 flap; no data on 27 days",
        "  fine     vpn-1  "
        + "\u2581" * 24
        + "\u2585\u2588\u00b7\u2585\u2581\u2581  2 days degraded, 1 down (42m00s), 6 flaps; no data on 1 day",
    ]  # the report's order: worst first
    ascii_text = render_text(report, encoding="ascii")
    ascii_text.encode("ascii")  # a terminal without the block characters gets letters
    assert "  fine     vpn-1  " + "_" * 24 + "=#.=__  2 days degraded" in ascii_text
    painted = render_text(report, colour=True)
    assert "\033[31m\u2588\033[0m" in painted and "\033[32m" + "\u2581" * 24 + "\033[0m" in painted  # a colour per run


def test_diagnose_json_carries_the_days():
    report = build_report(with_history(snapshot_of(FINE, PARTNER), **{"vpn-1": STRIP_DAYS}))
    fine = next(c for c in report["connections"] if c["name"] == "fine")
    history = json.loads(json.dumps(report))["connections"][report["connections"].index(fine)]["history"]
    assert len(history["days"]) == 30 and history["days"][-1]["day"] == "2027-01-15"
    assert [d["state"] for d in history["days"]][-6:] == ["degraded", "down", "no_data", "degraded", "up", "up"]
    assert history["days"][25] == {
        "day": "2027-01-11",
        "state": "down",
        "observed_seconds": FULL,
        "unavailable_seconds": 2520.0,
        "unredundant_seconds": 3900.0,
        "flaps": 3,
    }
    assert (history["up_days"], history["degraded_days"], history["down_days"], history["no_data_days"]) == (
        26,
        2,
        1,
        1,
    )
    assert history["unavailable_seconds"] == 2520.0 and history["flaps"] == 6
    assert history["summary"] == "2 days degraded, 1 down (42m00s), 6 flaps; no data on 1 day"


def test_without_a_history_no_strip_and_no_error():
    for days in ({}, {"vpn-1": ()}, {"vpn-gone": STRIP_DAYS}):
        report = build_report(with_history(snapshot_of(FINE, PARTNER), **days))
        assert all(c["history"] is None for c in report["connections"])
        assert "Last 30 days" not in render_text(report)


def test_the_history_line_shows_a_hostile_name_escaped_on_its_own_line():
    honest = build_report(with_history(snapshot_of(named("site", "vpn-9", *BGP_DOWN)), **{"vpn-9": STRIP_DAYS}))
    expected = render_text(honest, width=100_000)
    for key, hostile in CORPUS.items():
        report = build_report(with_history(snapshot_of(named(hostile, "vpn-9", *BGP_DOWN)), **{"vpn-9": STRIP_DAYS}))
        text = render_text(report, width=100_000)
        text.encode("utf-8")
        assert text.count("\n") == expected.count("\n"), key
        assert not RAW.search(text.replace("\n", "")), key
        assert f"  {printable(hostile)}  vpn-9  " in text and text.rstrip().endswith("no data on 1 day"), key


def diagnose_demo(*args):
    return subprocess.run(
        [sys.executable, "-m", "exporter", "diagnose", "--demo", "--no-color", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def demo_text_and_json():
    return diagnose_demo(), diagnose_demo("--output", "json")


@pytest.mark.slow  # runs the diagnose command on the demo: not in `scripts/test --quick`
def test_the_demo_triage(demo_text_and_json):
    text, as_json = demo_text_and_json
    assert text.returncode == as_json.returncode == 3, text.stderr
    report = json.loads(as_json.stdout)
    severity = {c["name"]: c["severity"] for c in report["connections"]}
    assert {severity[n] for n in ("branch-tokyo", "dc-accelerated", "lab-down", "partner-asn")} == {CRITICAL}
    assert severity["hq-core"] == HEALTHY and severity["subsidiary-edge"] == "warning"
    counts = {rank: sum(s == rank for s in severity.values()) for rank in RANKS}
    assert report["summary"] == {"connections": 9, **counts}
    first = text.stdout.splitlines()[0]
    assert first == summary_line(report) and first.startswith("9 connections: 5 critical")
    lines = text.stdout.splitlines()
    position = {name: next(i for i, line in enumerate(lines) if f" {name}  vpn-" in line) for name in severity}
    assert max(position[n] for n, s in severity.items() if s == CRITICAL) < position["hq-core"]
    assert lines[position["hq-core"]].startswith("HEALTHY")
    partner = next(c for c in report["connections"] if c["name"] == "partner-asn")
    assert (
        partner["customer_gateway"]["ip_address"] == "203.0.113.80"
        and partner["customer_gateway"]["bgp_asn"] == "65100"
    )
    assert partner["grouped_findings"][0]["code"] == "bgp_open_message_error"
    assert len(partner["grouped_findings"][0]["tunnels"]) == 2
    for key in ("demo-psk-", MOTO_CGW_KEY):
        assert key not in text.stdout + as_json.stdout


@pytest.mark.slow  # runs the diagnose command on the demo: not in `scripts/test --quick`
def test_the_demo_partner_asn_by_name(demo_text_and_json):
    result = diagnose_demo("--vpn-connection-id", "partner-asn")
    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines()[0] == "1 connection: 1 critical"
    assert "remote AS 65001, expected 65100" in result.stdout  # what the partner's device opens with
    assert "203.0.113.80, BGP ASN 65100" in result.stdout  # the customer gateway AWS knows
    assert "bgp_open_message_error on both tunnels" in result.stdout
    assert result.stdout.index("bgp_open_message_error") < result.stdout.index("ipsec_up_bgp_down")
    missing = diagnose_demo("--vpn-connection-id", "no-such-name")
    assert missing.returncode == 4 and "no-such-name: no connection has this id or Name tag" in missing.stdout


@pytest.fixture
def hung_endpoint():
    """A TCP server on 127.0.0.1 that accepts and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.slow  # waits for poll_timeout: not in `scripts/test --quick`
def test_a_hung_endpoint_ends_the_command_within_poll_timeout(hung_endpoint, tmp_path):
    poll_timeout = 3.0
    config = tmp_path / "config.yaml"
    config.write_text(
        f"poll_interval: 10s\npoll_timeout: {poll_timeout:g}s\ntargets:\n  - regions: [us-east-1]\n"
        f"state_dir: {tmp_path / 'state'}\n"
    )  # botocore alone would wait 4 attempts x 15 s
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "diagnose", "--config", str(config), "--no-color"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **simulated_aws_environment(hung_endpoint)},
    )
    elapsed = time.monotonic() - started
    assert elapsed < poll_timeout + 10, (elapsed, result.stdout, result.stderr)  # start-up on a busy machine
    assert result.returncode == 5  # nothing could be read
    assert result.stdout.startswith("no data: every source failed: ec2 ")
    assert f"timeout: no answer within {poll_timeout:g}s" in result.stdout and "stale" not in result.stdout


@pytest.mark.slow  # runs the diagnose command on the demo: not in `scripts/test --quick`
def test_the_documented_diagnose_example_works_as_written():
    section = docs.section(docs.doc("diagnosis.md"), "### The `diagnose` command")
    commands = [
        line.split() for line in section.splitlines() if line.startswith(".venv/bin/aws-vpn-exporter diagnose --demo")
    ]
    printed = section[section.index("```text\n") + len("```text\n") :].splitlines()
    assert commands and printed
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "exporter", *command[1:]], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 3, result.stderr
        assert result.stdout.splitlines()[0] == printed[0]
        codes = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("  CRITICAL")]
        assert codes == [line.split()[1] for line in printed if line.startswith("  CRITICAL")]


def test_a_hung_logs_endpoint_ends_the_command_within_poll_timeout_too(aws, hung_endpoint, tmp_path):
    """EC2 answers and CloudWatch Logs never does: the log read gives up after poll_timeout, not after
    logs.poll_interval (60 s here), and the report says the logs source failed."""
    from tests.test_logs import REGION, logged_vpn

    logged_vpn()
    poll_timeout = 3.0
    config = tmp_path / "config.yaml"
    config.write_text(
        f"poll_timeout: {poll_timeout:g}s\nlogs: {{poll_interval: 60s}}\ntargets:\n"
        f"  - regions: [{REGION}]\nstate_dir: {tmp_path / 'state'}\n"
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "diagnose", "--config", str(config), "--no-color"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": hung_endpoint},
    )
    elapsed = time.monotonic() - started
    assert elapsed < 2 * poll_timeout + 10, (elapsed, result.stdout, result.stderr)  # the EC2 poll, then the logs
    assert "logs" in result.stdout and f"timeout: no answer within {poll_timeout:g}s" in result.stdout


def test_diagnose_opens_each_connection_with_what_to_do_now_in_the_catalogues_ranking():
    """branch-tokyo's three causes share the evidence: DO NOW names the first (findings.ranked, as the status page
    and the alerts' cause), then the order to check them and what tells each apart."""
    from exporter.diagnosis.findings import FINDINGS, ranked
    from exporter.model import Finding

    causes = ("bgp_stuck_connecting", "traffic_selectors_mismatch", "static_cgw_on_dynamic_connection")
    shot = snapshot_of(PARTNER)
    found = tuple(
        Finding("1", "us-east-1", "vpn-2", t.outside_ip, code, ("e",), "warning") for code in causes for t in BGP_DOWN
    )
    report = build_report(replace(shot, findings=shot.findings + found))
    step = report["connections"][0]["next_step"]
    assert step["code"] == ranked(causes)[0] == "static_cgw_on_dynamic_connection"
    assert step["check_in_order"] == ranked(causes) == list(reversed(causes))
    assert step["tunnels"] == ["198.51.100.1", "198.51.100.2"] and step["then_fix"] == []
    text = render_text(report, width=2000)
    lines = text.splitlines()
    do_now = next(i for i, line in enumerate(lines) if line.startswith("  DO NOW: "))
    assert lines[do_now] == (
        f"  DO NOW: {FINDINGS[causes[2]].title} (tunnels 198.51.100.1, 198.51.100.2). Fix: {FINDINGS[causes[2]].remedy}"
    )
    assert lines[do_now - 2].startswith("CRITICAL partner") and lines[do_now + 1].startswith("  3 causes fit")
    for n, code in enumerate(reversed(causes), 1):
        assert lines[do_now + 1 + n] == f"    {n}. {FINDINGS[code].title}: {FINDINGS[code].tell_apart}"
    assert do_now < next(i for i, line in enumerate(lines) if line.lstrip().startswith("tunnel "))  # before the table
    healthy = build_report(snapshot_of(FINE))["connections"][0]
    assert healthy["next_step"] is None and "DO NOW" not in render_text(build_report(snapshot_of(FINE)))
