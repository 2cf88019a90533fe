"""Tunnel traffic (CloudWatch AWS/VPN TunnelDataIn/Out through GetMetricData): the simulated AWS answers as
AWS does, every tunnel's bytes are joined to its connection and tunnel, late data counts once, the cost is
estimated, a refused call turns the source off there only, and the two findings read the bytes."""

import math
import zlib
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from exporter.config import LogsConfig, Target, TrafficConfig
from exporter.demo import strict_aws, tunnel_traffic
from exporter.model import Connection, Tunnel, TunnelTraffic
from exporter.sources.traffic import rules as traffic_rules
from exporter.sources.traffic.poller import PERIOD, monthly_cost
from tests.conftest import add_vpn_connection, scrape, series, tunnel_telemetry, value
from tests.faults import Fault, alter_metric_data

NOW = 1_800_000_000.0
TRAFFIC = TrafficConfig(enabled=True)


def _query(query_id: str, ip: str, period: int = 300, unit: str | None = "Bytes") -> dict:
    stat = {
        "Metric": {
            "Namespace": "AWS/VPN",
            "MetricName": "TunnelDataIn",
            "Dimensions": [{"Name": "TunnelIpAddress", "Value": ip}],
        },
        "Period": period,
        "Stat": "Sum",
    }
    if unit:
        stat["Unit"] = unit
    return {"Id": query_id, "MetricStat": stat}


def _put(ip: str, at: datetime, value: float, unit: str = "Bytes") -> None:
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends["123456789012"]["us-east-1"].put_metric_data(
        "AWS/VPN",
        [
            {
                "MetricName": "TunnelDataIn",
                "Dimensions": [{"Name": "TunnelIpAddress", "Value": ip}],
                "Timestamp": at,
                "Value": value,
                "Unit": unit,
            }
        ],
    )


def test_the_simulated_aws_answers_get_metric_data_as_aws_does(aws, monkeypatch):
    """Each assertion fails on moto 5.2's own GetMetricData (no limits, no paging, EndTime's period included)."""
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    start = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    end = start + timedelta(minutes=15)
    for minute in range(0, 20, 5):  # the periods 12:00, 12:05, 12:10 and 12:15 (which starts at EndTime)
        _put("198.51.100.1", start + timedelta(minutes=minute, seconds=30), 100.0 + minute)
    _put("198.51.100.1", start + timedelta(seconds=40), 7.0, unit="Count")  # another unit: not in a Bytes query
    with pytest.raises(cloudwatch.exceptions.ClientError, match="ValidationError.*500"):
        cloudwatch.get_metric_data(
            MetricDataQueries=[_query(f"q{i}", "198.51.100.1") for i in range(501)], StartTime=start, EndTime=end
        )
    for bad in ("Q1", "1q", "q-1"):
        with pytest.raises(cloudwatch.exceptions.ClientError, match="ValidationError"):
            cloudwatch.get_metric_data(MetricDataQueries=[_query(bad, "198.51.100.1")], StartTime=start, EndTime=end)
    with pytest.raises(cloudwatch.exceptions.ClientError, match="ValidationError.*unique"):
        cloudwatch.get_metric_data(MetricDataQueries=[_query("q", "198.51.100.1")] * 2, StartTime=start, EndTime=end)
    answer = cloudwatch.get_metric_data(MetricDataQueries=[_query("q", "198.51.100.1")], StartTime=start, EndTime=end)
    (result,) = answer["MetricDataResults"]
    assert result["Timestamps"] == [start + timedelta(minutes=m) for m in (10, 5, 0)]  # newest first; not 12:15
    assert result["Values"] == [110.0, 105.0, 100.0] and result["StatusCode"] == "Complete"
    monkeypatch.setattr(strict_aws, "metric_data_page_datapoints", 2)
    first = cloudwatch.get_metric_data(MetricDataQueries=[_query("q", "198.51.100.1")], StartTime=start, EndTime=end)
    assert first["MetricDataResults"][0]["StatusCode"] == "PartialData" and first["NextToken"]
    pages = cloudwatch.get_paginator("get_metric_data").paginate(
        MetricDataQueries=[_query("q", "198.51.100.1")], StartTime=start, EndTime=end
    )
    values = [v for page in pages for r in page["MetricDataResults"] for v in r["Values"]]
    assert sorted(values) == [100.0, 105.0, 110.0]


def traffic_exporter(make_exporter, targets, **traffic):
    return make_exporter(targets, traffic=TrafficConfig(enabled=True, **traffic))


def test_every_demo_tunnel_has_its_bytes_joined_to_its_connection(demo, make_exporter):
    exporter = traffic_exporter(make_exporter, demo.targets())
    exporter.poll_once()
    exporter.poll("traffic")
    samples = scrape(exporter.url)
    tunnels = {
        (s["account_id"], s["region"], s["vpn_connection_id"], s["tunnel"])
        for s in series(samples, "aws_vpn_tunnel_info")
    }
    assert len(tunnels) == sum(len(c.tunnels) for c in demo.connections)
    for name in (
        "aws_vpn_tunnel_received_bytes_total",
        "aws_vpn_tunnel_sent_bytes_total",
        "aws_vpn_tunnel_traffic_counted_until_timestamp_seconds",
    ):
        joined = {(s["account_id"], s["region"], s["vpn_connection_id"], s["tunnel"]) for s in series(samples, name)}
        assert joined == tunnels, name
    by_name = {c.scenario.name: c.vpn_connection_id for c in demo.connections}
    # traffic in the last nine days on every tunnel but those of the idle connection and of the new one
    silent = {t for t in tunnels if t[2] in (by_name["legacy-static"], by_name["new-branch"])}
    carried = {
        (s["account_id"], s["region"], s["vpn_connection_id"], s["tunnel"])
        for s in series(samples, "aws_vpn_tunnel_last_traffic_timestamp_seconds")
    }
    assert carried == tunnels - silent and len(silent) == 4
    for region in {(t[0], t[1]) for t in tunnels}:
        count = sum(1 for t in tunnels if (t[0], t[1]) == region)
        assert value(
            samples, "aws_vpn_exporter_traffic_estimated_monthly_cost_usd", account_id=region[0], region=region[1]
        ) == pytest.approx(count * 2 * 8640 * 0.01 / 1000)
        # the first pass: a look-back and a window, two metrics per tunnel each
        assert (
            value(
                samples, "aws_vpn_exporter_cloudwatch_metrics_requested_total", account_id=region[0], region=region[1]
            )
            == 4 * count
        )
    assert (
        value(
            samples,
            "aws_vpn_exporter_collection_success",
            source="traffic",
            region="eu-west-1",
            account_id="123456789012",
        )
        == 1
    )
    findings = {
        (s["vpn_connection_id"], s["finding"])
        for s in series(samples, "aws_vpn_tunnel_finding")
        if s["finding"] in ("ipsec_up_no_traffic", "connection_idle")
    }
    assert findings == {
        (by_name["dc-accelerated"], "ipsec_up_no_traffic"),
        (by_name["legacy-static"], "connection_idle"),
    }


def test_late_data_counts_once_and_exactly(demo, make_exporter):
    """With a delay shorter than CloudWatch's, a period is first read with part of its bytes; what it grows
    by later is added once, and the counters end at exactly what AWS published."""
    exporter = traffic_exporter(make_exporter, demo.targets(), delay=300)
    started = demo._started_at
    clock = {"now": started}
    exporter.sources["traffic"].poller._clock = lambda: clock["now"]
    exporter.poll_once()
    exporter.poll("traffic")  # the first pass counts the window before it
    hq = next(c for c in demo.connections if c.scenario.name == "hq-core")
    first_end = (int(started) - 300) // PERIOD * PERIOD
    aligned = (int(started) // PERIOD + 1) * PERIOD + 10  # 10 s into a period: the newest one read is partial
    for step in range(12):
        clock["now"] = aligned + step * PERIOD
        demo.apply(clock["now"])
        exporter.poll("traffic")
    last_end = (int(clock["now"]) - 300) // PERIOD * PERIOD
    backfilled = (int(started) - tunnel_traffic.PUBLISHED_AFTER) // PERIOD * PERIOD - PERIOD  # published whole

    def published(start: int) -> float:
        """The share of a period the simulated AWS has published by now: its late part comes a period later."""
        late_part_at = start + 2 * PERIOD + tunnel_traffic.PUBLISHED_AFTER
        return 1.0 if start <= backfilled or late_part_at <= clock["now"] else 1 - tunnel_traffic.LATE_SHARE

    samples = scrape(exporter.url)
    counted = range(first_end - 3600, last_end, PERIOD)
    assert len(counted) >= 10 and published(counted[-1]) < 1 == published(counted[-2])  # both cases occur
    for tunnel in hq.tunnels:
        expected = [
            [share * b for b in tunnel_traffic.bytes_in_period(hq.scenario, tunnel.scenario, "healthy", start)]
            for start, share in ((start, published(start)) for start in counted)
        ]
        labels = {"vpn_connection_id": hq.vpn_connection_id, "tunnel": tunnel.scenario.outside_ip}
        assert value(samples, "aws_vpn_tunnel_received_bytes_total", **labels) == pytest.approx(
            sum(e[0] for e in expected)
        )
        assert value(samples, "aws_vpn_tunnel_sent_bytes_total", **labels) == pytest.approx(sum(e[1] for e in expected))
        assert value(samples, "aws_vpn_tunnel_traffic_counted_until_timestamp_seconds", **labels) == last_end


def test_a_restart_continues_the_counters_without_counting_a_period_twice(demo, make_exporter, tmp_path):
    """The counters live in state_dir: a restart goes on from them (no reset for Prometheus to see), and the
    periods it reads again are not added again; the hours it was down are caught up, up to a day."""
    started = (int(demo._started_at) // PERIOD + 1) * PERIOD + 10
    clock = {"now": started}

    def run(minutes: int) -> dict:
        exporter = traffic_exporter(make_exporter, demo.targets(), delay=300)  # state_dir: tmp_path / "state"
        exporter.sources["traffic"].poller._clock = lambda: clock["now"]
        exporter.poll_once()
        for _ in range(minutes // 5):
            clock["now"] += PERIOD
            demo.apply(clock["now"])
            exporter.poll("traffic")
        totals = {
            s["tunnel"]: v
            for (name, labels), v in scrape(exporter.url).items()
            for s in [dict(labels)]
            if name == "aws_vpn_tunnel_received_bytes_total"
        }
        exporter.stop()
        return totals

    before = run(20)
    clock["now"] += 2 * 3600  # down for two hours: longer than the window
    demo.apply(clock["now"])
    after = run(5)
    straight = {}  # what one exporter that never stopped would have counted, from the same simulated AWS
    (tmp_path / "state" / "traffic-state.json").unlink()
    hq = next(c for c in demo.connections if c.scenario.name == "hq-core")
    for tunnel in hq.tunnels:
        ip = tunnel.scenario.outside_ip
        first_end = (started + PERIOD - 300) // PERIOD * PERIOD
        last_end = (int(clock["now"]) - 300) // PERIOD * PERIOD
        straight[ip] = sum(
            tunnel_traffic.bytes_in_period(hq.scenario, tunnel.scenario, "healthy", start)[0]
            for start in range(first_end - 3600, last_end - PERIOD, PERIOD)
        )
        assert before[ip] < after[ip]
        # all but the newest period (still missing its late share) exactly as if it had never stopped
        newest = tunnel_traffic.bytes_in_period(hq.scenario, tunnel.scenario, "healthy", last_end - PERIOD)[0]
        assert after[ip] == pytest.approx(straight[ip] + newest * (1 - tunnel_traffic.LATE_SHARE))


def test_a_corrupt_traffic_state_is_moved_aside_and_counted(demo, make_exporter, tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "traffic-state.json").write_text('{"version": 1, "tunnels": {"a|b|c|d": {"in": -1}}}')
    exporter = traffic_exporter(make_exporter, demo.targets())  # state_dir: tmp_path / "state"
    exporter.poll_once()
    exporter.poll("traffic")
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_state_file_errors_total") == 1
    assert series(samples, "aws_vpn_tunnel_received_bytes_total")
    (tmp_path / "state" / "traffic-state.json").write_text('{"version": 1, "tunn')
    exporter.sources["traffic"].poller._counting = None  # as a restart does
    exporter.poll("traffic")
    assert list((tmp_path / "state").glob("traffic-state.json.corrupt-*"))


def test_a_refused_get_metric_data_turns_traffic_off_there_and_nothing_else(demo, faults, make_exporter):
    faults.faults.append(Fault(region="eu-west-1", operation="GetMetricData", code="AccessDeniedException", status=400))
    exporter = traffic_exporter(make_exporter, demo.targets())
    exporter.poll_once()
    exporter.poll("traffic")
    exporter.poll("traffic")
    samples = scrape(exporter.url)
    refused = {"account_id": "123456789012", "region": "eu-west-1"}
    assert value(samples, "aws_vpn_exporter_collection_success", source="traffic", **refused) == 0
    assert value(samples, "aws_vpn_exporter_collection_success", source="ec2", **refused) == 1
    assert (
        value(
            samples,
            "aws_vpn_exporter_collection_success",
            source="traffic",
            account_id="123456789012",
            region="us-east-1",
        )
        == 1
    )
    assert not series(samples, "aws_vpn_tunnel_received_bytes_total", **refused)
    assert series(samples, "aws_vpn_tunnel_received_bytes_total", region="us-east-1")
    hits = faults.faults[0].hits
    exporter.poll("traffic")
    assert faults.faults[0].hits == hits  # off: not asked again until a reload
    exporter.sources["traffic"].poller.reconfigure(TRAFFIC, 30)
    exporter.poll("traffic")
    assert faults.faults[0].hits == hits + 1


def test_tunnels_sharing_an_outside_ip_are_counted_not_guessed(aws, make_exporter):
    telemetry = [tunnel_telemetry("10.0.0.1", "UP", "1 BGP ROUTES", 1), tunnel_telemetry("10.0.0.2", "UP", "")]
    options = {
        "StaticRoutesOnly": False,
        "TunnelOptions": [{"OutsideIpAddress": "10.0.0.1"}, {"OutsideIpAddress": "10.0.0.2"}],
    }
    add_vpn_connection("us-east-1", telemetry, options, name="a")
    add_vpn_connection(
        "us-east-1", [telemetry[0]], {**options, "TunnelOptions": options["TunnelOptions"][:1]}, name="b"
    )
    exporter = traffic_exporter(make_exporter, [Target(regions=("us-east-1",))])
    exporter.poll_once()
    exporter.poll("traffic")
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_traffic_unattributable_tunnels", region="us-east-1") == 2
    assert [s["tunnel"] for s in series(samples, "aws_vpn_tunnel_received_bytes_total")] == ["10.0.0.2"]


def test_cost_estimate_follows_the_interval():
    assert monthly_cost(1000, TrafficConfig(interval=300)) == pytest.approx(172.8)
    assert monthly_cost(1000, TrafficConfig(interval=900)) == pytest.approx(57.6)


def _connection(routing="dynamic", accelerated=False, ipsec_up=True, changed=NOW - 86400) -> tuple:
    tunnel = Tunnel("198.51.100.1", "DOWN", "ipsec_up", 0, changed, ipsec_up, False if routing == "dynamic" else None)
    return Connection(
        "vpn-1", "x", "available", routing, "vgw", "vgw-1", "cgw-1", accelerated, tunnels=(tunnel,)
    ), tunnel


@pytest.mark.parametrize(
    "case,fires",
    [
        ({}, True),
        ({"routing": "static"}, False),  # a static connection may be idle and healthy
        ({"ipsec_up": False}, False),  # the bytes report while down: never a down tunnel's cause
        ({"changed": NOW - 900 - 600}, False),  # IPsec changed 15 minutes before the data's end
    ],
)
def test_ipsec_up_no_traffic(case, fires):
    connection, tunnel = _connection(**case)
    traffic = TunnelTraffic(
        0,
        0,
        counted_until=NOW - 600,
        observed_since=NOW - 8 * 86400,
        last_received=NOW - 3 * 3600,
        received_data_until=NOW - 600,
    )
    found = dict(traffic_rules.tunnel_rules(connection, tunnel, traffic, 1800, NOW))
    assert ("ipsec_up_no_traffic" in found) is fires
    received = TunnelTraffic(1, 0, counted_until=NOW - 600, observed_since=NOW - 8 * 86400, last_received=NOW - 900)
    assert not list(traffic_rules.tunnel_rules(connection, tunnel, received, 1800, NOW))


def test_connection_idle_needs_every_tunnel_known_and_the_whole_time():
    connection, _ = _connection()
    idle = TunnelTraffic(0, 0, counted_until=NOW, observed_since=NOW - 8 * 86400)
    assert [code for code, _ in traffic_rules.connection_rules(connection, [idle, idle], 7 * 86400, NOW)] == [
        "connection_idle"
    ]
    assert not list(traffic_rules.connection_rules(connection, [idle, None], 7 * 86400, NOW))
    recent = TunnelTraffic(
        0, 5e6, counted_until=NOW, observed_since=NOW - 8 * 86400, last_sent=NOW - 86400, last_traffic=NOW - 86400
    )
    assert not list(traffic_rules.connection_rules(connection, [idle, recent], 7 * 86400, NOW))
    short = TunnelTraffic(0, 0, counted_until=NOW, observed_since=NOW - 3 * 86400)
    assert not list(traffic_rules.connection_rules(connection, [short, short], 7 * 86400, NOW))


# --- what a real account can answer: gaps in EC2, odd CloudWatch values, shifted timestamps, clock steps ---

IPS = ("198.51.100.7", "198.51.100.8")
LATER = ("198.51.100.9", "198.51.100.10")  # a connection created later
LATE = 0.25  # as AWS: most of a period's bytes appear minutes after it ends, the rest a period later


def _bytes(ip: str, direction: str, start: int) -> float:
    """The ground truth: what the simulated AWS says a tunnel carried in a period (whole bytes)."""
    return float(1_000_000 + zlib.crc32(f"{ip}|{direction}|{start}".encode()) % 500_000)


class _Published:
    """The simulated CloudWatch's AWS/VPN bytes for IPS, published as time goes: a period's first share three
    minutes after it ends, the late share a period later; ``truth`` adds up what the test published."""

    def __init__(self, since: int):
        self.parts: set[tuple[int, int]] = set()  # (period start, part) already put
        self.since = since

    def until(self, now: float) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        backend = cloudwatch_backends["123456789012"]["us-east-1"]
        for start in range(self.since, int(now), PERIOD):
            for part, due, share in ((0, start + PERIOD + 180, 1 - LATE), (1, start + 2 * PERIOD + 180, LATE)):
                if due > now or (start, part) in self.parts:
                    continue
                self.parts.add((start, part))
                backend.put_metric_data(
                    "AWS/VPN",
                    [
                        tunnel_traffic.datum(name, ip, start + 30 + part, _bytes(ip, direction, start) * share)
                        for ip in IPS + LATER
                        for direction, name in (("in", "TunnelDataIn"), ("out", "TunnelDataOut"))
                    ],
                )

    @staticmethod
    def truth(ip: str, direction: str, first: int, end: int, skip=()) -> float:
        return sum(_bytes(ip, direction, start) for start in range(first, end, PERIOD) if start not in skip)


def _two_tunnels(ips=IPS) -> str:
    telemetry = [tunnel_telemetry(ip, "UP", "1 BGP ROUTES", 1) for ip in ips]
    return add_vpn_connection(
        "us-east-1", telemetry, {"StaticRoutesOnly": False, "TunnelOptions": [{"OutsideIpAddress": ip} for ip in ips]}
    )


def _counters(exporter) -> dict[tuple[str, str], float]:
    samples = scrape(exporter.url)
    return {
        (s["tunnel"], direction): value(samples, f"aws_vpn_tunnel_{name}_bytes_total", **s)
        for direction, name in (("in", "received"), ("out", "sent"))
        for s in series(samples, f"aws_vpn_tunnel_{name}_bytes_total")
    }


class _Run:
    """An exporter on a clock the test moves, polling EC2 and traffic every 5 minutes, that checks its counters
    never go back (a reset for Prometheus) and finally against what the test published."""

    def __init__(self, make_exporter, start: int):
        self.make_exporter, self.now, self.seen = make_exporter, float(start), {}
        self.published = _Published(start // PERIOD * PERIOD - 4 * 3600)
        self.exporter = self.start()
        self.first = dict.fromkeys(IPS, self.end() - 3600)  # a tunnel's first pass counts the window before it

    def start(self):
        exporter = traffic_exporter(make_exporter=self.make_exporter, targets=[Target(regions=("us-east-1",))])
        exporter.sources["traffic"].poller._clock = lambda: self.now
        return exporter

    def restart(self) -> None:
        self.exporter.stop()
        self.exporter = self.start()

    def end(self, now: float | None = None) -> int:
        return int((self.now if now is None else now) - TRAFFIC.delay) // PERIOD * PERIOD

    def step(self, ahead: float = 0.0) -> None:
        """Five minutes on; a poll, with the exporter's wall clock ``ahead`` of AWS's."""
        self.published.until(self.now)
        clock = self.now
        self.now += ahead
        self.exporter.poll_once()
        self.exporter.poll("traffic")
        self.now = clock + PERIOD
        for key, count in _counters(self.exporter).items():
            assert count >= self.seen.get(key, 0), f"{key} went back from {self.seen[key]} to {count}: a reset"
            self.seen[key] = count

    def check(self, skip=()) -> None:
        counted = _counters(self.exporter)
        last = self.end(self.now - PERIOD)
        assert set(counted) == {(ip, d) for ip in self.first for d in ("in", "out")}
        for (ip, direction), count in counted.items():
            assert count == _Published.truth(ip, direction, self.first[ip], last, skip), (ip, direction)


def test_one_answer_without_a_connections_tunnels_keeps_their_traffic_counters(aws, make_exporter):
    """EC2 answering once with empty VgwTelemetry and TunnelOptions is a passing gap, as for the log state: the
    counters go on from where they were, and the periods of the gap are caught up, each counted once."""
    from moto.ec2.models import ec2_backends

    vpn = _two_tunnels()
    connection = ec2_backends["123456789012"]["us-east-1"].vpn_connections[vpn]
    telemetry, options = connection.vgw_telemetry, connection.options
    run = _Run(make_exporter, 1_800_000_000 // PERIOD * PERIOD + 10)
    for step in range(8):
        if step == 3:
            connection.vgw_telemetry, connection.options = [], {**options, "TunnelOptions": []}
        if step == 4:
            connection.vgw_telemetry, connection.options = telemetry, options
        run.step()
    run.check()


def test_values_no_byte_count_can_be_are_skipped_and_counted(aws, monkeypatch, make_exporter):
    """+Inf, NaN and negative Sums are no bytes: the counters stay finite and exact without those periods, and
    each refusal is counted as an unrecognised value."""
    poisoned = {}  # period start -> the value CloudWatch answers for it

    def change(results):
        for result in results:
            result["Values"] = [
                poisoned.get(int(stamp.timestamp()), v)
                for stamp, v in zip(result["Timestamps"], result["Values"], strict=False)
            ]

    alter_metric_data(monkeypatch, change)
    _two_tunnels()
    run = _Run(make_exporter, 1_800_000_000 // PERIOD * PERIOD + 10)
    run.step()
    for _step, odd in enumerate((math.inf, -4096.0, math.nan, -math.inf)):
        poisoned[run.end() - PERIOD] = odd  # the newest period the next pass reads
        run.step()
    run.step()
    run.check(skip=poisoned)
    unrecognized = {
        labels["field"]: count
        for (name, ls), count in scrape(run.exporter.url).items()
        for labels in [dict(ls)]
        if name == "aws_vpn_exporter_unrecognized_values_total"
    }
    assert unrecognized["TunnelDataIn"] >= 4 * len(IPS) and unrecognized["TunnelDataOut"] >= 4 * len(IPS)


@pytest.mark.parametrize(
    "shift", [60, -60, 149, -149], ids=["a minute late", "a minute early", "149 s late", "149 s early"]
)
def test_timestamps_off_the_grid_count_each_period_once(aws, monkeypatch, make_exporter, shift):
    """Answers whose timestamps shift by a minute (either way, up to just under half a period) from one call to
    the next are the same periods: keyed by the nearest point of the 5-minute grid, none is counted twice."""
    calls = {"n": 0}

    def change(results):
        calls["n"] += 1
        if calls["n"] % 2:
            for result in results:
                result["Timestamps"] = [stamp + timedelta(seconds=shift) for stamp in result["Timestamps"]]

    alter_metric_data(monkeypatch, change)
    _two_tunnels()
    run = _Run(make_exporter, 1_800_000_000 // PERIOD * PERIOD + 10)
    for _ in range(6):
        run.step()
    assert calls["n"] >= 6
    run.check()


@pytest.mark.parametrize("restart", [True, False])
@pytest.mark.parametrize("ahead", [2 * 3600, -2 * 3600])
def test_a_wall_clock_two_hours_off_for_a_pass_loses_and_doubles_nothing(aws, make_exporter, restart, ahead, caplog):
    """A pass made while the exporter's clock was two hours off AWS's (then stepped back, with or without a
    restart) keeps the counters, closes no period CloudWatch was still filling, and says what it clamped."""
    _two_tunnels()
    run = _Run(make_exporter, 1_800_000_000 // PERIOD * PERIOD + 10)
    for _ in range(3):
        run.step()
    run.step(ahead=ahead)
    if restart:
        run.restart()
    for _ in range(4):
        run.step()
    run.check()
    if restart and ahead > 0:
        assert "counted until the future" in caplog.text and "counters kept" in caplog.text


def test_a_tunnel_first_seen_while_the_wall_clock_is_ahead_counts_the_window_before_cloudwatchs_data(
    aws, make_exporter
):
    """Its first window is CloudWatch's: the hour before the newest period AWS had published, not an hour
    before a time CloudWatch has yet to reach (whose periods would then never count)."""
    _two_tunnels()
    run = _Run(make_exporter, 1_800_000_000 // PERIOD * PERIOD + 10)
    for _ in range(3):
        run.step()
    _two_tunnels(LATER)
    run.published.until(run.now)
    newest = max(start for start, part in run.published.parts if part == 0)  # the newest period with data
    run.first.update(dict.fromkeys(LATER, newest + PERIOD - 3600))
    run.step(ahead=2 * 3600)
    for _ in range(4):
        run.step()
    run.check()


def test_state_file_writable_is_every_state_files_last_save(aws, make_exporter, tmp_path):
    """One truth for every state file in use: with logs off, the traffic state's and the history's saves."""
    _two_tunnels()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the state directory should be: every save fails")
    exporter = make_exporter(
        [Target(regions=("us-east-1",))], traffic=TRAFFIC, logs=LogsConfig(enabled=False), state_dir=blocked
    )
    assert value(scrape(exporter.url), "aws_vpn_exporter_state_file_writable") == 1  # nothing saved yet
    exporter.poll_once()
    exporter.poll("traffic")
    assert value(scrape(exporter.url), "aws_vpn_exporter_state_file_writable") == 0
    blocked.unlink()
    exporter.poll("traffic")
    assert value(scrape(exporter.url), "aws_vpn_exporter_state_file_writable") == 0  # the history's last save failed
    exporter.poll("ec2")  # the history saves with each EC2 poll
    assert value(scrape(exporter.url), "aws_vpn_exporter_state_file_writable") == 1
    assert (blocked / "traffic-state.json").exists()
    both = make_exporter([Target(regions=("us-east-1",))], traffic=TRAFFIC, state_dir=tmp_path / "both")
    both.poll_once()
    both.poll("logs")
    both.poll("traffic")
    assert value(scrape(both.url), "aws_vpn_exporter_state_file_writable") == 1
    both.sources["traffic"].poller.document.path = (
        blocked / "traffic-state.json"
    )  # the log state saves; the traffic state cannot
    blocked.rename(tmp_path / "moved")
    blocked.write_text("a file again")
    both.poll("logs")
    both.poll("traffic")
    assert both.sources["logs"].ingestor.save() and (tmp_path / "both" / "logs-state.json").exists()
    assert value(scrape(both.url), "aws_vpn_exporter_state_file_writable") == 0
