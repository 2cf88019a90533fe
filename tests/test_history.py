"""The tunnels' history against the simulated AWS, with known ground truth: exact state changes (two within one
poll, one while the exporter was stopped), downtime to the second from AWS's own timestamps, maintenance, bad
values, a corrupt state file, and counters that survive a restart, SIGTERM and kill -9."""

from __future__ import annotations

import json
import signal
from datetime import datetime, timezone

import pytest
from moto.ec2.models import ec2_backends

from exporter.config import LogsConfig, Target, TunnelStatusConfig
from exporter.model import (
    Connection,
    RegionTelemetry,
    SourceResult,
    Tunnel,
    TunnelKey,
    TunnelStatus,
    TunnelStatusCollection,
)
from exporter.sources.history.counter import HistoryCounter
from tests.conftest import add_vpn_connection, parse_exposition, scrape, tunnel_telemetry, value

ACCOUNT, REGION = "123456789012", "us-east-1"
IPS = ("1.1.1.1", "1.1.1.2")
T0 = 1_790_000_000.0  # 2026-09-21 (a fixed, fake "now" the test moves by hand)


class Clock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def vpn(up: tuple[bool, bool] = (True, True), changed: float = T0 - 3600) -> str:
    telemetry = [
        tunnel_telemetry(ip, "UP" if on else "DOWN", "1 BGP ROUTES" if on else "IPSEC IS DOWN", 1, int(changed))
        for ip, on in zip(IPS, up, strict=True)
    ]
    return add_vpn_connection(REGION, telemetry, {"StaticRoutesOnly": False})


def set_tunnel(vpn_id: str, index: int, status: str, message: str, changed: float | None) -> None:
    """What EC2 reports for the tunnel from now on (``changed`` None: no LastStatusChange at all)."""
    entry = ec2_backends[ACCOUNT][REGION].vpn_connections[vpn_id].vgw_telemetry[index]
    entry.update(Status=status, StatusMessage=message)
    if changed is None:
        entry.pop("LastStatusChange", None)
    else:
        entry["LastStatusChange"] = datetime.fromtimestamp(changed, tz=timezone.utc)


def down(vpn_id, index, at):
    set_tunnel(vpn_id, index, "DOWN", "IPSEC IS DOWN", at)


def up(vpn_id, index, at):
    set_tunnel(vpn_id, index, "UP", "1 BGP ROUTES", at)


@pytest.fixture
def history(aws, make_exporter, tmp_path):
    """``start()`` builds an exporter (EC2 and history only) on one state_dir and one fake clock; ``poll(at)``."""
    clock = Clock()

    class History:
        exporter = None

        def start(self, status_pass: bool = False):
            """``status_pass``: on (its output set by the test), so DOWN seconds wait for it to check the tunnel."""
            exporter = make_exporter(
                [Target(regions=(REGION,))],
                logs=LogsConfig(enabled=False),
                tunnel_status=TunnelStatusConfig(enabled=status_pass),
            )
            exporter.sources["ec2"].clock = exporter.sources["ec2"].poller._clock = clock
            exporter.sources["history"].counter.clock = clock
            self.exporter = exporter
            return exporter

        def poll(self, at: float):
            clock.now = at
            self.exporter.poll_once()
            return scrape(self.exporter.url)

    return History()


def tunnel(samples, name, vpn_id, index, **labels):
    return value(samples, name, vpn_connection_id=vpn_id, tunnel=IPS[index], **labels)


def connection(samples, name, vpn_id, **labels):
    return value(samples, name, vpn_connection_id=vpn_id, **labels)


def test_downtime_equals_aws_timestamps_to_the_second_not_poll_times(history):
    vpn_id = vpn()
    history.start()
    history.poll(T0)
    down(vpn_id, 0, T0 + 7)  # polls every 30 s; the edges fall between them
    history.poll(T0 + 30)
    samples = history.poll(T0 + 60)
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="other") == 53  # still down
    up(vpn_id, 0, T0 + 71)
    samples = history.poll(T0 + 90)
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="other") == 64  # 71 - 7
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 0) == 2
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 1, cause="other") == 0
    assert connection(samples, "aws_vpn_connection_unredundant_seconds_total", vpn_id) == 64
    assert connection(samples, "aws_vpn_connection_unavailable_seconds_total", vpn_id, cause="other") == 0
    assert connection(samples, "aws_vpn_connection_observed_seconds_total", vpn_id) == 90

    down(vpn_id, 0, T0 + 100)  # both down: the connection is unavailable from the second edge
    down(vpn_id, 1, T0 + 104)
    up(vpn_id, 1, T0 + 115)
    samples = history.poll(T0 + 120)
    assert connection(samples, "aws_vpn_connection_unavailable_seconds_total", vpn_id, cause="other") == 0
    # tunnel 1 went down (104) and up (115) within one poll: AWS shows only the latest edge, with the same status
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 1) == 2
    up(vpn_id, 0, T0 + 140)
    down(vpn_id, 1, T0 + 130)
    samples = history.poll(T0 + 150)
    assert connection(samples, "aws_vpn_connection_unavailable_seconds_total", vpn_id, cause="other") == 10  # 130-140


def test_down_and_up_within_one_poll_counts_two_changes_and_no_guessed_seconds(history):
    vpn_id = vpn()
    history.start()
    history.poll(T0)
    up(vpn_id, 0, T0 + 12)  # status and message as before, the timestamp advanced: away and back
    samples = history.poll(T0 + 30)
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 0) == 2
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="other") == 0  # a lower bound
    day = history.exporter.current.snapshot.history[(ACCOUNT, REGION, vpn_id)][-1]
    assert (day.day, day.flaps, day.observed_seconds) == ("2026-09-21", 2, 30)


def test_a_change_while_the_exporter_is_stopped_is_counted_after_restart(history):
    vpn_id = vpn()
    history.start()
    history.poll(T0)
    history.poll(T0 + 30)
    history.exporter.stop()
    down(vpn_id, 0, T0 + 100)  # while stopped: down at 100, and still down
    history.start()
    samples = history.poll(T0 + 400)
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 0) == 1
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="other") == 300
    assert connection(samples, "aws_vpn_connection_observed_seconds_total", vpn_id) == 400  # the gap filled


def test_counters_survive_a_restart_and_a_corrupt_state_file_is_counted(history, tmp_path):
    vpn_id = vpn()
    history.start()
    history.poll(T0)
    down(vpn_id, 0, T0 + 10)
    history.poll(T0 + 30)
    history.exporter.stop()
    history.start()
    samples = history.poll(T0 + 60)
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="other") == 50
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 0) == 1
    assert value(samples, "aws_vpn_exporter_state_file_errors_total") == 0

    history.exporter.stop()
    (tmp_path / "state" / "history-state.json").write_text("{not json")
    history.start()
    samples = history.poll(T0 + 90)
    assert value(samples, "aws_vpn_exporter_state_file_errors_total") == 1
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 0) == 0  # started over
    assert connection(samples, "aws_vpn_connection_observed_seconds_total", vpn_id) == 0


def test_an_invalid_entry_in_the_state_file_is_dropped_and_counted_the_rest_kept(history, tmp_path):
    vpn_id = vpn()
    history.start()
    history.poll(T0)
    up(vpn_id, 0, T0 + 10)
    history.poll(T0 + 30)
    history.exporter.stop()
    path = tmp_path / "state" / "history-state.json"
    data = json.loads(path.read_text())
    second = next(key for key in data["tunnels"] if key.endswith(IPS[1]))
    data["tunnels"][second]["down"] = {"other": "lots"}
    path.write_text(json.dumps(data))
    history.start()
    samples = history.poll(T0 + 60)
    assert value(samples, "aws_vpn_exporter_state_file_errors_total") == 1
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 0) == 2  # kept


def test_downtime_in_an_endpoint_replacement_is_maintenance(history):
    vpn_id = vpn()
    history.start()
    history.poll(T0)
    replaced = {}

    def status_pass():
        return TunnelStatusCollection(
            {key: TunnelStatus(checked_at=T0, last_maintenance_applied=at) for key, at in replaced.items()}
        )

    history.exporter._outputs["tunnel_status"] = status_pass()
    down(vpn_id, 0, T0 + 5)  # a failure of its own
    history.poll(T0 + 30)
    up(vpn_id, 0, T0 + 40)
    history.poll(T0 + 60)
    first = next(k for k in history.exporter.current.snapshot.history_counters.tunnels if k.outside_ip == IPS[0])
    replaced[first] = T0 + 100  # AWS replaced tunnel 0's endpoint at 100: down until IKE is up again at 190
    history.exporter._outputs["tunnel_status"] = status_pass()
    down(vpn_id, 0, T0 + 100)
    history.poll(T0 + 120)
    down(vpn_id, 1, T0 + 150)  # the other tunnel fails meanwhile: the connection is unavailable, in maintenance
    up(vpn_id, 0, T0 + 190)
    samples = history.poll(T0 + 210)
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="other") == 35
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="maintenance") == 90
    assert connection(samples, "aws_vpn_connection_unavailable_seconds_total", vpn_id, cause="maintenance") == 40
    down(vpn_id, 0, T0 + 220)  # after the replacement: other again
    samples = history.poll(T0 + 240)
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="maintenance") == 90
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="other") == 55
    assert connection(samples, "aws_vpn_connection_unavailable_seconds_total", vpn_id, cause="other") == 20


def test_a_replacement_the_status_pass_reports_after_the_outage_is_still_its_cause(history):
    """The status pass runs every 15 minutes: AWS's replacement at 100 is reported at 300, after the tunnel was
    back UP at 190. The DOWN seconds wait for its check, then count as maintenance; a pass that stops checking
    holds them at most two intervals (then: other)."""
    vpn_id = vpn()
    history.start(status_pass=True)
    history.poll(T0)
    first = next(k for k in history.exporter.current.snapshot.history_counters.tunnels if k.outside_ip == IPS[0])

    def status_pass(checked_at, applied=None):
        status = TunnelStatus(checked_at=checked_at, last_maintenance_applied=applied)
        history.exporter._outputs["tunnel_status"] = TunnelStatusCollection({first: status})

    status_pass(T0)
    down(vpn_id, 0, T0 + 100)
    history.poll(T0 + 120)
    up(vpn_id, 0, T0 + 190)
    samples = history.poll(T0 + 210)
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 0) == 2  # at once
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="other") == 0  # waiting
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="maintenance") == 0
    status_pass(T0 + 300, applied=T0 + 100)
    samples = history.poll(T0 + 330)
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="maintenance") == 90
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="other") == 0

    down(vpn_id, 1, T0 + 400)  # the status pass fails from now on: held two intervals (1800 s), no longer
    history.poll(T0 + 420)
    samples = history.poll(T0 + 2000)
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 1, cause="other") == 0
    assert connection(samples, "aws_vpn_connection_unredundant_seconds_total", vpn_id) == 90 + 1600  # not held
    samples = history.poll(T0 + 2800)  # counted up to 1800 s ago
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 1, cause="other") == 600  # 400 to 1000


def test_bgp_down_with_ipsec_up_is_counted_apart(history):
    vpn_id = vpn()
    history.start()
    history.poll(T0)
    set_tunnel(vpn_id, 0, "DOWN", "IPSEC IS UP", T0 + 10)
    samples = history.poll(T0 + 30)
    assert tunnel(samples, "aws_vpn_tunnel_bgp_down_seconds_total", vpn_id, 0, cause="other") == 20
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="other") == 20
    assert tunnel(samples, "aws_vpn_tunnel_bgp_down_seconds_total", vpn_id, 1, cause="other") == 0


@pytest.mark.parametrize("bad", [None, T0 + 86400], ids=["missing", "future"])
def test_a_bad_timestamp_is_counted_and_skipped_and_freezes_no_other_tunnel(history, bad):
    vpn_id = vpn()
    history.start()
    history.poll(T0)
    set_tunnel(vpn_id, 0, "DOWN", "IPSEC IS DOWN", bad)
    down(vpn_id, 1, T0 + 10)
    samples = history.poll(T0 + 30)
    field = "history_last_status_change" if bad is None else "history_last_status_change_future"
    assert value(samples, "aws_vpn_exporter_unrecognized_values_total", field=field) == 1
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 0) == 0  # skipped: its last state holds
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="other") == 0
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 1) == 1
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 1, cause="other") == 20
    down(vpn_id, 0, T0 + 40)  # good again: counted from its own timestamp
    samples = history.poll(T0 + 60)
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 0) == 1
    assert tunnel(samples, "aws_vpn_tunnel_down_seconds_total", vpn_id, 0, cause="other") == 20


def test_a_clock_stepped_back_counts_nothing_twice(history):
    vpn_id = vpn(up=(False, False))
    history.start()
    history.poll(T0)
    history.poll(T0 + 30)
    samples = history.poll(T0 - 3600)  # stepped back an hour
    assert connection(samples, "aws_vpn_connection_unavailable_seconds_total", vpn_id, cause="other") == 30
    assert value(samples, "aws_vpn_exporter_unrecognized_values_total", field="history_clock_step_back") == 1
    samples = history.poll(T0 - 3600 + 30)  # counting goes on from the new clock
    assert connection(samples, "aws_vpn_connection_observed_seconds_total", vpn_id) == 60


def test_the_bgp_log_gives_the_exact_count_when_it_saw_more(history):
    from exporter.model import LogCollection, TunnelLogView

    vpn_id = vpn()
    history.start()
    history.poll(T0)
    key = next(k for k in history.exporter.current.snapshot.history_counters.tunnels if k.outside_ip == IPS[0])

    def logs(transitions):
        view = TunnelLogView(
            counts=(("bgp_established", transitions // 2), ("bgp_session_down", transitions - transitions // 2))
        )
        return LogCollection({key: view}, (), ())

    history.exporter._outputs["logs"] = logs(10)  # the log state's totals before: not this history's
    history.poll(T0 + 30)
    up(vpn_id, 0, T0 + 50)  # EC2: away and back (2); the BGP log: three flaps (6)
    history.exporter._outputs["logs"] = logs(16)
    samples = history.poll(T0 + 60)
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 0) == 6


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_the_running_command_keeps_its_counters_through_sigterm_and_kill_9(aws, tmp_path, how):
    import time

    from tests.services import free_port, stop_within, wait_until
    from tests.test_shutdown import start

    now = time.time()
    vpn_id = vpn(changed=now - 3600)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"poll_interval: 1s\ntargets:\n  - regions: [us-east-1]\nlogs:\n  enabled: false\n"
        f"tunnel_status:\n  enabled: false\nstate_dir: {tmp_path / 'state'}\n"
    )
    port = free_port()

    def changes():
        import requests

        try:
            samples = parse_exposition(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
        except requests.ConnectionError:
            return None
        return value(samples, "aws_vpn_tunnel_state_changes_total", vpn_connection_id=vpn_id, tunnel=IPS[0])

    first = start(config, port)
    try:
        wait_until(lambda: changes() == 0, 60, "the first exporter to count the tunnel")
        up(vpn_id, 0, time.time())  # away and back: 2
        wait_until(lambda: changes() == 2, 60, "the first exporter to count 2 changes")
    finally:
        if how == signal.SIGTERM:
            code, errors = stop_within(first, 30)
            assert code == 0, errors
        else:
            first.kill()
            first.wait(30)
    down(vpn_id, 0, time.time())  # while stopped: one more
    second = start(config, port)
    try:
        wait_until(lambda: changes() == 3, 60, "the restarted exporter to count 3 changes")
    finally:
        stop_within(second, 30)


# --- the counter alone, on hand-built EC2 output (no simulated AWS) --------------------------------------


def region_of(statuses: tuple[tuple[str, float], ...], vpn_id: str = "vpn-1") -> RegionTelemetry:
    tunnels = tuple(
        Tunnel(ip, status, "bgp_routes" if status == "UP" else "ipsec_down", 1, changed, status == "UP", status == "UP")
        for ip, (status, changed) in zip(IPS, statuses, strict=True)
    )
    connection = Connection(vpn_id, "", "available", "dynamic", "vgw", "vgw-1", "cgw-1", False, tunnels=tunnels)
    return RegionTelemetry(ACCOUNT, REGION, (connection,))


def ec2_ok(at: float) -> tuple[SourceResult, ...]:
    return (SourceResult(ACCOUNT, REGION, "ec2", True, 0.1, at),)


def test_days_are_split_at_utc_midnight_and_the_last_30_kept(tmp_path):
    clock = Clock(1_790_035_200.0 - 60)  # a minute before 2026-09-22 00:00 UTC
    counter = HistoryCounter(tmp_path, clock=clock)
    both_down = region_of((("DOWN", clock.now - 600), ("DOWN", clock.now - 600)))
    counter.poll((both_down,), ec2_ok(clock.now), None, None)
    clock.now += 120
    days = counter.poll((both_down,), ec2_ok(clock.now), None, None).days[(ACCOUNT, REGION, "vpn-1")]
    assert [(d.day, d.observed_seconds, d.unavailable_seconds) for d in days] == [
        ("2026-09-21", 60, 60),
        ("2026-09-22", 60, 60),
    ]
    clock.now += 40 * 86400  # 40 days on: the gap is filled (nothing changed), and only 30 days are kept
    days = counter.poll((both_down,), ec2_ok(clock.now), None, None).days[(ACCOUNT, REGION, "vpn-1")]
    assert len(days) == 30 and days[-1].day == "2026-11-01" and days[0].day == "2026-10-03"
    assert all(d.unavailable_seconds == 86400 for d in days[:-1])


def test_a_region_whose_ec2_poll_fails_counts_no_guessed_time(tmp_path):
    clock = Clock()
    counter = HistoryCounter(tmp_path, clock=clock)
    region = region_of((("UP", T0 - 600), ("UP", T0 - 600)))
    counter.poll((region,), ec2_ok(T0), None, None)
    clock.now = T0 + 300  # EC2 failed since T0: its data is as of T0
    observed = counter.poll((region,), ec2_ok(T0), None, None).connections[(ACCOUNT, REGION, "vpn-1")]
    assert observed.observed_seconds == 0
    recovered = region_of((("DOWN", T0 + 100), ("UP", T0 - 600)))  # EC2 answers again: the gap from its timestamps
    clock.now = T0 + 330
    history = counter.poll((recovered,), ec2_ok(T0 + 330), None, None)
    assert history.connections[(ACCOUNT, REGION, "vpn-1")].observed_seconds == 330
    assert dict(history.tunnels[TunnelKey(ACCOUNT, REGION, "vpn-1", IPS[0])].down_seconds)["other"] == 230


def test_tunnels_ec2_stopped_reporting_are_forgotten_after_the_retention(tmp_path):
    clock = Clock()
    counter = HistoryCounter(tmp_path, clock=clock, retention=3600)
    gone, kept = region_of((("UP", T0 - 60),) * 2, "vpn-gone"), region_of((("UP", T0 - 60),) * 2, "vpn-kept")
    counter.poll((gone, kept), ec2_ok(T0), None, None)
    clock.now = T0 + 1800
    counter.poll((kept,), ec2_ok(clock.now), None, None)
    assert "vpn-gone" in (tmp_path / "history-state.json").read_text()  # a passing gap resets nothing
    clock.now = T0 + 3700
    counter.poll((kept,), ec2_ok(clock.now), None, None)
    saved = json.loads((tmp_path / "history-state.json").read_text())
    assert "vpn-gone" not in json.dumps(saved) and len(saved["tunnels"]) == 2 and len(saved["connections"]) == 1


def test_diagnose_starts_from_a_copy_of_the_running_exporters_history_and_writes_none(tmp_path):
    """The one-shot command shows the 30-day strips the running exporter counted, without touching its files (and
    still reads the logs afresh: their state is not copied)."""
    from exporter.cli import _copy_state_diagnose_reads

    running, scratch = tmp_path / "running", tmp_path / "scratch"
    running.mkdir()
    scratch.mkdir()
    (running / "history-state.json").write_text('{"version": 1}')
    (running / "logs-state.json").write_text("{}")
    before = {path.name: path.stat().st_mtime_ns for path in running.iterdir()}
    _copy_state_diagnose_reads(running, scratch)
    assert (scratch / "history-state.json").read_text() == '{"version": 1}'
    assert not (scratch / "logs-state.json").exists()
    assert {path.name: path.stat().st_mtime_ns for path in running.iterdir()} == before
    _copy_state_diagnose_reads(tmp_path / "missing", scratch)  # no running exporter: nothing, no error


def test_the_history_is_counted_in_the_publish_of_each_ec2_poll_not_in_one_of_its_own(history, monkeypatch):
    """A derived source has no job: one EC2 poll renders once, with its history already counted."""
    vpn_id = vpn()
    exporter = history.start()
    history.poll(T0)
    published = []
    real = exporter._publish
    monkeypatch.setattr(exporter, "_publish", lambda: (published.append(1), real())[1])
    down(vpn_id, 0, T0 + 5)
    history.poll(T0 + 30)  # discovery (nothing new), EC2, and the quick history (nothing new since EC2's)
    assert len(published) == 1
    samples = scrape(exporter.url)
    assert tunnel(samples, "aws_vpn_tunnel_state_changes_total", vpn_id, 0) == 1  # counted before that one render
    exporter.start_polling()
    try:
        assert exporter.scheduler.get_job("poll-ec2") is not None
        assert exporter.scheduler.get_job("poll-history") is None
    finally:
        exporter.scheduler.shutdown()
