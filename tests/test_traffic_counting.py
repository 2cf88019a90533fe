"""The traffic counters against a CloudWatch whose every data point the test places: pagination and passes
failing part-way, restarts, an EC2 gap, publication gaps, passes that outlive their poll, windows off the
5-minute grid. The fake answers GetMetricData as the API reference says (periods from StartTime,
[StartTime, EndTime), pages), as the simulated AWS does, so each case is deterministic and instant."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from exporter.config import TrafficConfig
from exporter.model import Connection, RegionTelemetry, Tunnel, TunnelKey
from exporter.sources.traffic import rules as traffic_rules
from exporter.sources.traffic.poller import PERIOD, TrafficPoller

ACCOUNT, REGION = "123456789012", "us-east-1"
T0 = 1_800_000_000.0 // 86400 * 86400  # a day boundary, so arithmetic below reads easily


class FakeCloudWatch:
    def __init__(self):
        self.raw: dict[tuple[str, str], dict[float, float]] = {}  # (ip, metric) -> {timestamp: value}
        self.page_size = 100_800
        self.before_page = lambda call, page: None  # hook: block, fail
        self.calls = 0

    def put(self, ip, metric, ts, value):
        self.raw.setdefault((ip, metric), {})
        self.raw[(ip, metric)][ts] = self.raw[(ip, metric)].get(ts, 0.0) + value

    def client(self, service, region):
        return self

    def get_paginator(self, name):
        return self

    def paginate(self, MetricDataQueries, StartTime, EndTime, ScanBy):
        self.calls += 1
        call = self.calls
        series = []
        for q in MetricDataQueries:
            stat = q["MetricStat"]
            ip = stat["Metric"]["Dimensions"][0]["Value"]
            period = stat["Period"]
            buckets = {}
            for ts, v in self.raw.get((ip, stat["Metric"]["MetricName"]), {}).items():
                if StartTime <= ts < EndTime:
                    b = StartTime + (ts - StartTime) // period * period
                    buckets[b] = buckets.get(b, 0.0) + v
            series.append((q["Id"], sorted(buckets.items())))
        flat = [(qid, b, v) for qid, pts in series for b, v in pts]
        pages = [flat[i : i + self.page_size] for i in range(0, max(len(flat), 1), self.page_size)]
        for number, chunk in enumerate(pages):
            self.before_page(call, number)
            results = {}
            for qid, b, v in chunk:
                r = results.setdefault(qid, {"Id": qid, "Timestamps": [], "Values": [], "StatusCode": "Complete"})
                r["Timestamps"].append(datetime.fromtimestamp(b, tz=timezone.utc))
                r["Values"].append(v)
            if number < len(pages) - 1:
                for r in results.values():
                    r["StatusCode"] = "PartialData"
            yield {"MetricDataResults": list(results.values())}


def region(*tunnels, routing="dynamic", changed=T0 - 30 * 86400, vpn="vpn-1"):
    ts = tuple(Tunnel(ip, "UP", "bgp_routes", 1, changed, True, True) for ip in tunnels)
    return RegionTelemetry(
        ACCOUNT, REGION, (Connection(vpn, "x", "available", routing, "vgw", "vgw-1", "cgw-1", False, tunnels=ts),)
    )


def poller(clock, tmp_path=None, executor=None, **config):
    return TrafficPoller(
        TrafficConfig(enabled=True, **config),
        executor or ThreadPoolExecutor(4),
        30,
        clock=lambda: clock["now"],
        state_dir=tmp_path,
    )


def healthy(cw, ip, start, end, per_period=1000.0):
    for t in range(int(start), int(end), PERIOD):
        cw.put(ip, "TunnelDataIn", t + 1, per_period)
        cw.put(ip, "TunnelDataOut", t + 1, per_period)


def key(ip, vpn="vpn-1"):
    return TunnelKey(ACCOUNT, REGION, vpn, ip)


def test_pagination_and_a_failure_mid_pass_neither_double_nor_undercount(tmp_path):
    cw = FakeCloudWatch()
    healthy(cw, "1.1.1.1", T0 - 3 * 86400, T0 + 2 * 86400)
    healthy(cw, "2.2.2.2", T0 - 3 * 86400, T0 + 2 * 86400)
    clock = {"now": T0 + 600}
    p = poller(clock, tmp_path)
    r = region("1.1.1.1", "2.2.2.2")
    p.poll((r,), {ACCOUNT: cw})
    first = p.poll((r,), {ACCOUNT: cw}).tunnels[key("1.1.1.1")].received_bytes
    assert first == 12 * 1000  # the window (1 h) before the first end
    cw.page_size = 7  # a query's points split across pages
    fail = {"on": True}

    def before_page(call, page):
        if fail["on"] and page == 2:
            raise RuntimeError("throttled on page 3")

    cw.before_page = before_page
    for step in range(1, 40):
        clock["now"] = T0 + 600 + step * PERIOD
        fail["on"] = step % 3 == 0  # every third pass fails part-way
        p.poll((r,), {ACCOUNT: cw})
    fail["on"] = False
    out = p.poll((r,), {ACCOUNT: cw}).tunnels[key("1.1.1.1")]
    assert out.received_bytes == (out.counted_until - (T0 - 3600)) / PERIOD * 1000


def test_a_region_missing_from_ec2_for_one_poll_keeps_its_counters(tmp_path):
    """After a restart, EC2's first poll of a region fails (no previous data): the region is absent from
    ``regions``, and the traffic pass prunes and saves without its tunnels."""
    cw = FakeCloudWatch()
    healthy(cw, "1.1.1.1", T0 - 3 * 86400, T0 + 2 * 86400)
    clock = {"now": T0 + 600}
    p = poller(clock, tmp_path)
    r = region("1.1.1.1")
    for step in range(24):  # two hours of passes
        clock["now"] = T0 + 600 + step * PERIOD
        before = p.poll((r,), {ACCOUNT: cw}).tunnels[key("1.1.1.1")].received_bytes
    # restart: the state file has the counter
    saved = json.loads((tmp_path / "traffic-state.json").read_text())
    assert key("1.1.1.1").encode() in saved["tunnels"]
    p = poller(clock, tmp_path)
    clock["now"] += PERIOD
    p.poll((), {ACCOUNT: cw})  # EC2's first poll of the region failed: nothing to report for it
    clock["now"] += PERIOD
    after = p.poll((r,), {ACCOUNT: cw}).tunnels[key("1.1.1.1")].received_bytes
    assert after >= before, f"counter went back from {before} to {after}: Prometheus sees a reset"


def test_a_cloudwatch_publication_gap_is_not_no_traffic():
    cw = FakeCloudWatch()
    healthy(cw, "1.1.1.1", T0 - 3 * 86400, T0 + 3600)  # then CloudWatch publishes nothing (delay, outage)
    clock = {"now": T0 + 600}
    p = poller(clock)
    r = region("1.1.1.1")
    for step in range(20):
        clock["now"] = T0 + 600 + step * PERIOD
        out = p.poll((r,), {ACCOUNT: cw})
    connection = r.connections[0]
    tunnel = connection.tunnels[0]
    found = dict(traffic_rules.tunnel_rules(connection, tunnel, out.tunnels[key("1.1.1.1")], 1800, clock["now"]))
    assert "ipsec_up_no_traffic" not in found, found.get("ipsec_up_no_traffic")


def test_a_six_day_old_idle_connection_is_not_idle_for_seven_days():
    cw = FakeCloudWatch()
    created = int(T0) - int(6.2 * 86400) // PERIOD * PERIOD
    for t in range(created, int(T0 + 3600), PERIOD):  # zeros from its creation, as AWS reports them
        for ip in ("1.1.1.1", "2.2.2.2"):
            cw.put(ip, "TunnelDataIn", t + 1, 0.0)
            cw.put(ip, "TunnelDataOut", t + 1, 0.0)
    clock = {"now": T0 + 600}
    p = poller(clock)
    r = region("1.1.1.1", "2.2.2.2")
    out = p.poll((r,), {ACCOUNT: cw})
    traffic = [out.tunnels[key(ip)] for ip in ("1.1.1.1", "2.2.2.2")]
    found = list(traffic_rules.connection_rules(r.connections[0], traffic, 7 * 86400, clock["now"]))
    assert not found, found


@pytest.mark.slow  # seconds of real waiting: not in `scripts/test --quick`
def test_the_save_races_with_a_pass_that_outlived_its_timeout(tmp_path):
    """A pass still counting (inserting periods) while poll() saves the state: the save never sees a dict
    change size under it."""
    cw = FakeCloudWatch()
    ips = [f"10.0.{i // 250}.{i % 250}" for i in range(1, 200)]
    for ip in ips:
        healthy(cw, ip, T0 - 86400, T0 + 86400)
    clock = {"now": T0 + 600}
    p = poller(clock, tmp_path, window=86400)  # many periods to encode and to insert
    r = region(*ips)
    p.poll((r,), {ACCOUNT: cw})  # every tunnel known
    errors = []
    for _attempt in range(30):
        clock["now"] += PERIOD * 12
        started = threading.Event()

        def before_page(call, page, started=started):
            started.set()

        cw.before_page = before_page
        try:
            p.poll((r,), {ACCOUNT: cw}, within=0.0001)  # the pass outlives the poll, the save runs meanwhile
        except RuntimeError as err:
            errors.append(err)
            break
        time.sleep(0.05)
    assert not errors, errors


def test_a_pass_that_outlived_its_poll_and_the_next_never_count_a_period_twice(monkeypatch):
    """A pass that timed out still counts when the next poll comes: the next poll's pass of that region waits
    its turn (said as its outcome) instead of counting the same periods beside it."""
    import sys

    cw = FakeCloudWatch()
    ips = [f"10.0.0.{i}" for i in range(1, 120)]
    for ip in ips:
        healthy(cw, ip, T0 - 86400, T0 + 2 * 86400)
    clock = {"now": T0 + 600}
    p = poller(clock)
    r = region(*ips)
    p.poll((r,), {ACCOUNT: cw})
    clock["now"] += 6 * 3600  # six hours of new periods for both passes
    go = threading.Event()

    def before_page(call, page):
        if call == 3:
            go.wait(10)  # pass 1 waits for pass 2 to start
        if call == 4:
            go.set()

    cw.before_page = before_page
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        p.poll((r,), {ACCOUNT: cw}, within=0.05)  # pass 1 times out, goes on in its thread
        out = p.poll((r,), {ACCOUNT: cw})  # pass 2, same end: the same periods
    finally:
        sys.setswitchinterval(old)
    time.sleep(0.5)
    out = p.poll((r,), {ACCOUNT: cw})
    want = (out.tunnels[key(ips[0])].counted_until - (T0 - 3600)) / PERIOD * 1000
    over = {ip: out.tunnels[key(ip)].received_bytes - want for ip in ips if out.tunnels[key(ip)].received_bytes != want}
    assert not over, f"{len(over)} tunnels off, e.g. {list(over.items())[:3]}"


def test_a_window_that_is_not_a_whole_number_of_periods_counts_each_once():
    """GetMetricData buckets from StartTime: a window off the 5-minute grid is rounded up to it, so every
    period keeps its start from pass to pass."""
    cw = FakeCloudWatch()
    healthy(cw, "1.1.1.1", T0 - 86400, T0 + 86400)
    clock = {"now": T0 + 600}
    p = poller(clock, window=1020)  # "17m"
    r = region("1.1.1.1")
    for step in range(24):
        clock["now"] = T0 + 600 + step * PERIOD
        out = p.poll((r,), {ACCOUNT: cw}).tunnels[key("1.1.1.1")]
    counted = out.received_bytes
    truth = (out.counted_until - (T0 - 1020)) / PERIOD * 1000  # at most what CloudWatch holds in that span
    assert counted <= truth + 1000, f"counted {counted:.0f}, CloudWatch holds at most {truth + 1000:.0f}"


@pytest.mark.parametrize("change", ["catch_up", "reload"])
def test_an_odd_window_counts_once_when_the_grid_would_change(change):
    cw = FakeCloudWatch()
    healthy(cw, "1.1.1.1", T0 - 86400, T0 + 4 * 86400)
    clock = {"now": T0 + 600}
    p = poller(clock, window=1020 if change == "catch_up" else 3600)
    r = region("1.1.1.1")
    for step in range(6):
        clock["now"] = T0 + 600 + step * PERIOD
        p.poll((r,), {ACCOUNT: cw})
    start_total = p.poll((r,), {ACCOUNT: cw}).tunnels[key("1.1.1.1")]
    if change == "catch_up":
        clock["now"] += 86400 + 600  # down for a day and ten minutes: read back MAX_CATCH_UP (aligned)
    else:
        p.reconfigure(TrafficConfig(enabled=True, window=1020), 30)
    for _ in range(6):
        clock["now"] += PERIOD
        out = p.poll((r,), {ACCOUNT: cw}).tunnels[key("1.1.1.1")]
    new_periods = (out.counted_until - start_total.counted_until) / PERIOD
    if change == "catch_up":
        new_periods = 86400 / PERIOD + 5  # what can be read at most
    grew = out.received_bytes - start_total.received_bytes
    assert grew <= new_periods * 1000, f"grew by {grew / 1000:.0f} periods' bytes, {new_periods:.0f} new periods"


@pytest.mark.parametrize(
    "per_period,idle,idle_after",
    [(0.0, True, 7 * 86400), (1500.0, True, 7 * 86400), (50_000.0, False, 7 * 86400), (0.0, True, 36 * 3600)],
)
def test_bgp_keepalives_alone_leave_a_connection_idle(per_period, idle, idle_after):
    """A dynamic connection nobody uses still carries BGP's keepalives (about 2 kB a period each way): idle is
    judged above KEEPALIVE_BYTES, at day resolution before the exporter saw it and per period after."""
    cw = FakeCloudWatch()
    for ip in ("1.1.1.1", "2.2.2.2"):
        healthy(cw, ip, T0 - 9 * 86400, T0 + 86400, per_period=per_period)
    clock = {"now": T0 + 600}
    p = poller(clock, idle_after=idle_after)
    r = region("1.1.1.1", "2.2.2.2")
    for step in range(3):
        clock["now"] = T0 + 600 + step * PERIOD
        out = p.poll((r,), {ACCOUNT: cw})
    traffic = [out.tunnels[key(ip)] for ip in ("1.1.1.1", "2.2.2.2")]
    found = [code for code, _ in traffic_rules.connection_rules(r.connections[0], traffic, idle_after, clock["now"])]
    assert found == (["connection_idle"] if idle else [])
    assert (traffic[0].last_traffic is None) is idle and (traffic[0].last_received is None) is (per_period == 0)


def test_a_tunnel_ec2_stops_reporting_is_kept_for_the_retention_then_forgotten(tmp_path):
    """The log state's rule: kept through a gap (its counters go on where they were), gone a retention after
    EC2 last reported it, so the state stays bounded under churn."""
    cw = FakeCloudWatch()
    healthy(cw, "1.1.1.1", T0 - 86400, T0 + 10 * 86400)
    healthy(cw, "2.2.2.2", T0 - 86400, T0 + 10 * 86400)
    clock = {"now": T0 + 600}
    p = poller(clock, tmp_path)
    both, one = region("1.1.1.1", "2.2.2.2"), region("1.1.1.1")
    p.poll((both,), {ACCOUNT: cw})
    clock["now"] += 3 * PERIOD
    p.poll((one,), {ACCOUNT: cw})  # an answer without the second tunnel
    clock["now"] += PERIOD
    out = p.poll((both,), {ACCOUNT: cw}).tunnels[key("2.2.2.2")]
    assert out.received_bytes == (out.counted_until - (T0 - 3600)) / PERIOD * 1000  # no reset, nothing missed
    for _ in range(8):  # a week and a day without it
        clock["now"] += 86400
        p.poll((one,), {ACCOUNT: cw})
    assert key("2.2.2.2").encode() not in json.loads((tmp_path / "traffic-state.json").read_text())["tunnels"]
    assert key("1.1.1.1").encode() in json.loads((tmp_path / "traffic-state.json").read_text())["tunnels"]


def test_a_state_saved_by_an_older_version_while_the_clock_was_ahead_keeps_its_counters(tmp_path, caplog):
    """A state written before this rule (no ``seen_at``, its floor moved with a clock two hours ahead): the
    counters are kept, the times clamped to now and said, and the periods after now are read again."""
    cw = FakeCloudWatch()
    healthy(cw, "1.1.1.1", T0 - 86400, T0 + 86400)
    ahead = T0 + 2 * 3600
    saved = {
        "in": 5000.0,
        "out": 5000.0,
        "last_in": ahead,
        "last_out": T0,
        "last_used": None,
        "observed_since": T0 - 3600,
        "counted_until": ahead,
        "floor": ahead - 3600,
        "data_until": T0 - 1800,
        "periods": [],
    }  # that pass read CloudWatch up to T0 - 1800, then closed everything before its floor
    (tmp_path / "traffic-state.json").write_text(
        json.dumps({"version": 1, "tunnels": {key("1.1.1.1").encode(): saved}})
    )
    clock = {"now": T0 + 600}
    out = poller(clock, tmp_path).poll((region("1.1.1.1"),), {ACCOUNT: cw}).tunnels[key("1.1.1.1")]
    assert "counted until the future" in caplog.text
    assert out.counted_until == T0 and out.last_received <= clock["now"]
    # kept, and what CloudWatch published after that pass's data is counted: no period lost or counted twice
    assert out.received_bytes == 5000 + (T0 - (T0 - 1800)) / PERIOD * 1000
