"""The log state never takes the exporter down: whatever is in the state file, it starts, keeps what is
valid, counts and moves aside the rest, and publishes; times ahead of now are not trusted; state it cannot
write is reported; state of tunnels gone for a retention is forgotten."""

import json
import os
import time

import boto3
import pytest

from exporter.config import LogsConfig, Target
from exporter.sources.logs.parse import LogEvent
from exporter.sources.logs.state import CLOCK_SKEW_SECONDS, StateFile, TunnelLogState
from tests.conftest import scrape, value
from tests.test_logs import GROUP, REGION, dpd, logged_vpn, put

NOW = time.time()
GOOD_TUNNEL = {
    "counts": {"dpd": 3},
    "last_event": {"ike": NOW - 60},
    "facts": {"nat_t": [True, NOW - 60], "selectors": [["10.0.0.0/8", "0.0.0.0/0"], NOW - 60]},
}


def document(tunnels=None, cursors=None):
    return json.dumps({"version": 1, "cursors": cursors or {}, "tunnels": tunnels or {}})


def make(make_exporter, tmp_path, **logs):
    return make_exporter(
        [Target(regions=(REGION,))],
        state_dir=tmp_path / "state",
        logs=LogsConfig(**{"lookback": 3600.0, "overlap": 300.0, **logs}),
    )


WHOLE_FILE = {  # content, and whether the file as a whole is moved aside (else its bad entries are dropped)
    "random bytes": (os.urandom(4096), True),
    "deep nesting": (b"[" * 200_000, True),
    "1e999 everywhere": (
        b'{"version": 1, "cursors": {"a": {"read_until_ms": 1e999, "seen": {}}}, "tunnels": 1e999}',
        False,
    ),
    "not an object": (b"[1, 2, 3]", True),
    "wrong version": (b'{"version": 99}', True),
    "not UTF-8": (b'{"version": 1, "x": "\xff\xfe"}', True),
    "empty": (b"", True),
}


@pytest.mark.parametrize("content,moved", WHOLE_FILE.values(), ids=WHOLE_FILE.keys())
def test_an_unreadable_state_file_is_moved_aside_and_the_exporter_serves(aws, make_exporter, tmp_path, content, moved):
    vpn = logged_vpn()
    put(vpn, dpd(2))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "logs-state.json").write_bytes(content)
    exporter = make(make_exporter, tmp_path)
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_collection_success", source="logs") == 1
    assert value(samples, "aws_vpn_tunnel_log_events_total", vpn_connection_id=vpn, event="dpd") == 2
    assert value(samples, "aws_vpn_exporter_state_file_errors_total") == 1
    assert len(list((tmp_path / "state").glob("logs-state.json.corrupt-*"))) == (1 if moved else 0)


def test_wrongly_shaped_entries_are_dropped_one_by_one_and_the_rest_kept(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    key = f"123456789012|{REGION}|{vpn}|198.51.100.1"
    bad_facts = {
        "bgp_error": [7, NOW],
        "bgp_error_detail": [5, NOW],
        "phase2": ["weird", NOW],
        "ike_error": [[], NOW],
        "bgp_state": ["established", "soon"],
        "dpd": [True, float("nan")],
        "unknown_fact": [1, NOW],
    }
    tunnels = {
        key: {
            **GOOD_TUNNEL,
            "counts": {"dpd": 3, "phase1_established": -1, "no_such_event": 5, "peer_dead": 10**400},
            "facts": {**GOOD_TUNNEL["facts"], **bad_facts},
        },
        "not|a|key": GOOD_TUNNEL,
        f"123456789012|{REGION}|vpn-gone|1.2.3.4": "not a mapping",
    }
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "logs-state.json").write_text(document(tunnels))
    put(vpn, dpd(1))
    exporter = make(make_exporter, tmp_path)
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_tunnel_log_events_total", vpn_connection_id=vpn, event="dpd") == 4  # 3 kept + 1
    assert value(samples, "aws_vpn_tunnel_log_events_total", vpn_connection_id=vpn, event="peer_dead") is None
    assert value(samples, "aws_vpn_tunnel_traffic_selector_info", vpn_connection_id=vpn, aws_side="10.0.0.0/8") == 1
    assert value(samples, "aws_vpn_tunnel_bgp_last_error_timestamp_seconds", vpn_connection_id=vpn) is None
    assert value(samples, "aws_vpn_exporter_state_file_errors_total") == 1  # one load, counted once
    assert not list((tmp_path / "state").glob("logs-state.json.corrupt-*"))  # kept, not moved aside
    assert value(samples, "aws_vpn_exporter_collection_success", source="logs") == 1


def test_a_cursor_in_the_future_is_clamped_and_reading_goes_on(aws, make_exporter, tmp_path):
    """A restored file or a clock that jumped back once stopped log reading for good."""
    vpn = logged_vpn()
    group = f"123456789012|{REGION}|{GROUP}"
    future_ms = int((NOW + 30 * 86400) * 1000)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "logs-state.json").write_text(
        document(cursors={group: {"read_until_ms": future_ms, "resume_ms": future_ms, "seen": {}}})
    )
    exporter = make(make_exporter, tmp_path, overlap=60.0)
    put(vpn, dpd(2))
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_tunnel_log_events_total", vpn_connection_id=vpn, event="dpd") == 2
    assert value(samples, "aws_vpn_exporter_state_file_errors_total") == 1


def test_an_event_dated_far_ahead_cannot_pin_a_fact():
    state = TunnelLogState()
    logged_at = 1_800_000_000.0
    assert not state.apply(
        "bgp", LogEvent("bgp_open_error", 4_102_444_800.0, bgp_error="open_message_error"), logged_at
    )  # 2100
    assert state.facts["bgp_error"] == ("open_message_error", logged_at)
    assert state.apply("bgp", LogEvent("bgp_established", logged_at + 10, bgp_state="established"), logged_at + 5)
    assert state.apply(
        "bgp", LogEvent("bgp_session_down", logged_at + CLOCK_SKEW_SECONDS - 1, bgp_state="idle"), logged_at
    )  # within the skew: the message's own time is kept
    assert state.facts["bgp_state"] == ("idle", logged_at + CLOCK_SKEW_SECONDS - 1)


def test_future_dated_events_are_counted(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    put(
        vpn,
        [
            json.dumps(
                {
                    "event_timestamp": 4_102_444_800,
                    "details": "Peer is not responsive - Declaring peer dead",
                    "ike_phase1_state": "down",
                }
            )
        ],
    )
    exporter = make(make_exporter, tmp_path)
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_log_events_future_dated_total") == 1
    assert value(samples, "aws_vpn_tunnel_log_last_event_timestamp_seconds", vpn_connection_id=vpn) <= time.time()


def test_a_state_file_that_cannot_be_written_is_reported_and_shutdown_stays_quick(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    put(vpn, dpd(2))
    (tmp_path / "blocker").write_text("a file where the state directory's parent should be")
    exporter = make_exporter(
        [Target(regions=(REGION,))],
        state_dir=tmp_path / "blocker" / "state",
        logs=LogsConfig(lookback=3600.0, overlap=300.0),
    )
    exporter.poll_once()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_state_file_writable") == 0
    assert value(samples, "aws_vpn_tunnel_log_events_total", vpn_connection_id=vpn, event="dpd") == 2
    started = time.monotonic()
    exporter.stop()  # saving fails again: no exception, no wait
    assert time.monotonic() - started < 5


def test_a_writable_state_file_is_reported_as_such(aws, make_exporter, tmp_path):
    logged_vpn()
    exporter = make(make_exporter, tmp_path)
    exporter.poll_once()
    assert value(scrape(exporter.url), "aws_vpn_exporter_state_file_writable") == 1


def test_state_of_tunnels_gone_for_a_retention_is_forgotten(aws, make_exporter, tmp_path):
    vpn = logged_vpn()
    put(vpn, dpd(2))
    exporter = make(make_exporter, tmp_path, retention=1.0)
    exporter.poll_once()
    state = json.loads((tmp_path / "state" / "logs-state.json").read_text())
    assert state["tunnels"] and state["cursors"]
    compiled = lambda: exporter.sources["logs"].ingestor._addresses._compiled  # noqa: E731  (one entry per live outside IP)
    assert compiled()
    boto3.client("ec2", region_name=REGION).delete_vpn_connection(VpnConnectionId=vpn)
    exporter.poll_once()
    assert json.loads((tmp_path / "state" / "logs-state.json").read_text())["tunnels"]  # not yet: retention
    time.sleep(1.2)
    exporter.poll_once()
    state = json.loads((tmp_path / "state" / "logs-state.json").read_text())
    assert state == {"version": 1, "cursors": {}, "tunnels": {}}
    assert compiled() == {}  # nor does memory keep what deleted tunnels needed


def test_a_state_file_larger_than_the_cap_is_moved_aside(tmp_path, monkeypatch):
    monkeypatch.setattr("exporter.durable.MAX_BYTES", 100)
    (tmp_path / "logs-state.json").write_text(document({"a|b|c|d": GOOD_TUNNEL}))
    errors = []
    assert StateFile(tmp_path, on_corrupt=lambda: errors.append(1)).load().tunnels == {}
    assert errors == [1] and list(tmp_path.glob("logs-state.json.corrupt-*"))


def test_the_customer_gateway_cache_forgets_deleted_connections(aws, make_exporter, tmp_path):
    from tests.conftest import add_vpn_connection, tunnel_telemetry

    kept = add_vpn_connection(REGION, [tunnel_telemetry("198.51.100.7", "UP", "1 BGP ROUTES", 1)])
    deleted = add_vpn_connection(REGION, [tunnel_telemetry("198.51.100.8", "UP", "1 BGP ROUTES", 1)])
    exporter = make(make_exporter, tmp_path)
    exporter.poll_once()
    cached = lambda: sum(len(gateways) for gateways in exporter.sources["ec2"].poller._customer_gateways.values())  # noqa: E731
    assert cached() == 2
    boto3.client("ec2", region_name=REGION).delete_vpn_connection(VpnConnectionId=deleted)
    exporter.poll_once()
    assert cached() == 1 and kept
