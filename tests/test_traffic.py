"""Tunnel traffic (CloudWatch AWS/VPN TunnelDataIn/Out through GetMetricData): the simulated AWS answers as
AWS does, every tunnel's bytes are joined to its connection and tunnel, late data counts once, the cost is
estimated, a refused call turns the source off there only, and the two findings read the bytes."""

from datetime import datetime, timedelta, timezone

import boto3
import pytest

from exporter.config import Target, TrafficConfig
from exporter.demo import strict_aws, tunnel_traffic
from exporter.diagnosis import traffic as traffic_rules
from exporter.model import Connection, Tunnel
from exporter.sources.traffic import PERIOD, TunnelTraffic, monthly_cost
from tests.conftest import add_vpn_connection, scrape, series, tunnel_telemetry, value
from tests.faults import Fault

NOW = 1_800_000_000.0
TRAFFIC = TrafficConfig(enabled=True)


def _query(query_id: str, ip: str, period: int = 300, unit: str | None = "Bytes") -> dict:
    stat = {"Metric": {"Namespace": "AWS/VPN", "MetricName": "TunnelDataIn",
                       "Dimensions": [{"Name": "TunnelIpAddress", "Value": ip}]}, "Period": period, "Stat": "Sum"}
    if unit:
        stat["Unit"] = unit
    return {"Id": query_id, "MetricStat": stat}


def _put(ip: str, at: datetime, value: float, unit: str = "Bytes") -> None:
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends["123456789012"]["us-east-1"].put_metric_data("AWS/VPN", [
        {"MetricName": "TunnelDataIn", "Dimensions": [{"Name": "TunnelIpAddress", "Value": ip}],
         "Timestamp": at, "Value": value, "Unit": unit}])


def test_the_simulated_aws_answers_get_metric_data_as_aws_does(aws, monkeypatch):
    """Each assertion fails on moto 5.2's own GetMetricData (no limits, no paging, EndTime's period included)."""
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    start = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    end = start + timedelta(minutes=15)
    for minute in range(0, 20, 5):  # the periods 12:00, 12:05, 12:10 and 12:15 (which starts at EndTime)
        _put("198.51.100.1", start + timedelta(minutes=minute, seconds=30), 100.0 + minute)
    _put("198.51.100.1", start + timedelta(seconds=40), 7.0, unit="Count")  # another unit: not in a Bytes query
    with pytest.raises(cloudwatch.exceptions.ClientError, match="ValidationError.*500"):
        cloudwatch.get_metric_data(MetricDataQueries=[_query(f"q{i}", "198.51.100.1") for i in range(501)],
                                   StartTime=start, EndTime=end)
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
        MetricDataQueries=[_query("q", "198.51.100.1")], StartTime=start, EndTime=end)
    values = [v for page in pages for r in page["MetricDataResults"] for v in r["Values"]]
    assert sorted(values) == [100.0, 105.0, 110.0]


def traffic_exporter(make_exporter, targets, **traffic):
    return make_exporter(targets, traffic=TrafficConfig(enabled=True, **traffic))


def test_every_demo_tunnel_has_its_bytes_joined_to_its_connection(demo, make_exporter):
    exporter = traffic_exporter(make_exporter, demo.targets())
    exporter.poll_once()
    exporter.poll_traffic()
    samples = scrape(exporter.url)
    tunnels = {(s["account_id"], s["region"], s["vpn_connection_id"], s["tunnel"])
               for s in series(samples, "aws_vpn_tunnel_info")}
    assert len(tunnels) == sum(len(c.tunnels) for c in demo.connections)
    for name in ("aws_vpn_tunnel_received_bytes_total", "aws_vpn_tunnel_sent_bytes_total",
                 "aws_vpn_tunnel_traffic_counted_until_timestamp_seconds"):
        joined = {(s["account_id"], s["region"], s["vpn_connection_id"], s["tunnel"]) for s in series(samples, name)}
        assert joined == tunnels, name
    by_name = {c.scenario.name: c.vpn_connection_id for c in demo.connections}
    # traffic in the last nine days on every tunnel but those of the idle connection and of the new one
    silent = {t for t in tunnels if t[2] in (by_name["legacy-static"], by_name["new-branch"])}
    carried = {(s["account_id"], s["region"], s["vpn_connection_id"], s["tunnel"])
               for s in series(samples, "aws_vpn_tunnel_last_traffic_timestamp_seconds")}
    assert carried == tunnels - silent and len(silent) == 4
    for region in {(t[0], t[1]) for t in tunnels}:
        count = sum(1 for t in tunnels if (t[0], t[1]) == region)
        assert value(samples, "aws_vpn_exporter_traffic_estimated_monthly_cost_usd",
                     account_id=region[0], region=region[1]) == pytest.approx(count * 2 * 8640 * 0.01 / 1000)
        # the first pass: a look-back and a window, two metrics per tunnel each
        assert value(samples, "aws_vpn_exporter_cloudwatch_metrics_requested_total",
                     account_id=region[0], region=region[1]) == 4 * count
    assert value(samples, "aws_vpn_exporter_collection_success", source="traffic", region="eu-west-1",
                 account_id="123456789012") == 1
    findings = {(s["vpn_connection_id"], s["finding"]) for s in series(samples, "aws_vpn_tunnel_finding")
                if s["finding"] in ("ipsec_up_no_traffic", "connection_idle")}
    assert findings == {(by_name["dc-accelerated"], "ipsec_up_no_traffic"), (by_name["legacy-static"], "connection_idle")}


def test_late_data_counts_once_and_exactly(demo, make_exporter):
    """With a delay shorter than CloudWatch's, a period is first read with part of its bytes; what it grows
    by later is added once, and the counters end at exactly what AWS published."""
    exporter = traffic_exporter(make_exporter, demo.targets(), delay=300)
    started = demo._started_at
    clock = {"now": started}
    exporter.traffic._clock = lambda: clock["now"]
    exporter.poll_once()
    exporter.poll_traffic()  # the first pass counts the window before it
    hq = next(c for c in demo.connections if c.scenario.name == "hq-core")
    first_end = (int(started) - 300) // PERIOD * PERIOD
    aligned = (int(started) // PERIOD + 1) * PERIOD + 10  # 10 s into a period: the newest one read is partial
    for step in range(12):
        clock["now"] = aligned + step * PERIOD
        demo.apply(clock["now"])
        exporter.poll_traffic()
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
        expected = [[share * b for b in tunnel_traffic.bytes_in_period(hq.scenario, tunnel.scenario, "healthy", start)]
                    for start, share in ((start, published(start)) for start in counted)]
        labels = {"vpn_connection_id": hq.vpn_connection_id, "tunnel": tunnel.scenario.outside_ip}
        assert value(samples, "aws_vpn_tunnel_received_bytes_total", **labels) == pytest.approx(
            sum(e[0] for e in expected))
        assert value(samples, "aws_vpn_tunnel_sent_bytes_total", **labels) == pytest.approx(sum(e[1] for e in expected))
        assert value(samples, "aws_vpn_tunnel_traffic_counted_until_timestamp_seconds", **labels) == last_end


def test_a_restart_continues_the_counters_without_counting_a_period_twice(demo, make_exporter, tmp_path):
    """The counters live in state_dir: a restart goes on from them (no reset for Prometheus to see), and the
    periods it reads again are not added again; the hours it was down are caught up, up to a day."""
    started = (int(demo._started_at) // PERIOD + 1) * PERIOD + 10
    clock = {"now": started}

    def run(minutes: int) -> dict:
        exporter = traffic_exporter(make_exporter, demo.targets(), delay=300)  # state_dir: tmp_path / "state"
        exporter.traffic._clock = lambda: clock["now"]
        exporter.poll_once()
        for _ in range(minutes // 5):
            clock["now"] += PERIOD
            demo.apply(clock["now"])
            exporter.poll_traffic()
        totals = {s["tunnel"]: v for (name, labels), v in scrape(exporter.url).items()
                  for s in [dict(labels)] if name == "aws_vpn_tunnel_received_bytes_total"}
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
        straight[ip] = sum(tunnel_traffic.bytes_in_period(hq.scenario, tunnel.scenario, "healthy", start)[0]
                           for start in range(first_end - 3600, last_end - PERIOD, PERIOD))
        assert before[ip] < after[ip]
        # all but the newest period (still missing its late share) exactly as if it had never stopped
        newest = tunnel_traffic.bytes_in_period(hq.scenario, tunnel.scenario, "healthy", last_end - PERIOD)[0]
        assert after[ip] == pytest.approx(straight[ip] + newest * (1 - tunnel_traffic.LATE_SHARE))


def test_a_corrupt_traffic_state_is_moved_aside_and_counted(demo, make_exporter, tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "traffic-state.json").write_text('{"version": 1, "tunnels": {"a|b|c|d": {"in": -1}}}')
    exporter = traffic_exporter(make_exporter, demo.targets())  # state_dir: tmp_path / "state"
    exporter.poll_once()
    exporter.poll_traffic()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_state_file_errors_total") == 1
    assert series(samples, "aws_vpn_tunnel_received_bytes_total")
    (tmp_path / "state" / "traffic-state.json").write_text('{"version": 1, "tunn')
    exporter.traffic._counting = None  # as a restart does
    exporter.poll_traffic()
    assert list((tmp_path / "state").glob("traffic-state.json.corrupt-*"))


def test_a_refused_get_metric_data_turns_traffic_off_there_and_nothing_else(demo, faults, make_exporter):
    faults.faults.append(Fault(region="eu-west-1", operation="GetMetricData", code="AccessDeniedException", status=400))
    exporter = traffic_exporter(make_exporter, demo.targets())
    exporter.poll_once()
    exporter.poll_traffic()
    exporter.poll_traffic()
    samples = scrape(exporter.url)
    refused = {"account_id": "123456789012", "region": "eu-west-1"}
    assert value(samples, "aws_vpn_exporter_collection_success", source="traffic", **refused) == 0
    assert value(samples, "aws_vpn_exporter_collection_success", source="ec2", **refused) == 1
    assert value(samples, "aws_vpn_exporter_collection_success", source="traffic", account_id="123456789012",
                 region="us-east-1") == 1
    assert not series(samples, "aws_vpn_tunnel_received_bytes_total", **refused)
    assert series(samples, "aws_vpn_tunnel_received_bytes_total", region="us-east-1")
    hits = faults.faults[0].hits
    exporter.poll_traffic()
    assert faults.faults[0].hits == hits  # off: not asked again until a reload
    exporter.traffic.reconfigure(TRAFFIC, 30)
    exporter.poll_traffic()
    assert faults.faults[0].hits == hits + 1


def test_tunnels_sharing_an_outside_ip_are_counted_not_guessed(aws, make_exporter):
    telemetry = [tunnel_telemetry("10.0.0.1", "UP", "1 BGP ROUTES", 1), tunnel_telemetry("10.0.0.2", "UP", "")]
    options = {"StaticRoutesOnly": False, "TunnelOptions": [{"OutsideIpAddress": "10.0.0.1"},
                                                            {"OutsideIpAddress": "10.0.0.2"}]}
    add_vpn_connection("us-east-1", telemetry, options, name="a")
    add_vpn_connection("us-east-1", [telemetry[0]], {**options, "TunnelOptions": options["TunnelOptions"][:1]}, name="b")
    exporter = traffic_exporter(make_exporter, [Target(regions=("us-east-1",))])
    exporter.poll_once()
    exporter.poll_traffic()
    samples = scrape(exporter.url)
    assert value(samples, "aws_vpn_exporter_traffic_unattributable_tunnels", region="us-east-1") == 2
    assert [s["tunnel"] for s in series(samples, "aws_vpn_tunnel_received_bytes_total")] == ["10.0.0.2"]


def test_cost_estimate_follows_the_interval():
    assert monthly_cost(1000, TrafficConfig(interval=300)) == pytest.approx(172.8)
    assert monthly_cost(1000, TrafficConfig(interval=900)) == pytest.approx(57.6)


def _connection(routing="dynamic", accelerated=False, ipsec_up=True, changed=NOW - 86400) -> tuple:
    tunnel = Tunnel("198.51.100.1", "DOWN", "ipsec_up", 0, changed, ipsec_up, False if routing == "dynamic" else None)
    return Connection("vpn-1", "x", "available", routing, "vgw", "vgw-1", "cgw-1", accelerated,
                      tunnels=(tunnel,)), tunnel


@pytest.mark.parametrize("case,fires", [
    ({}, True),
    ({"routing": "static"}, False),  # a static connection may be idle and healthy
    ({"ipsec_up": False}, False),  # the bytes report while down: never a down tunnel's cause
    ({"changed": NOW - 900 - 600}, False),  # IPsec changed 15 minutes before the data's end
])
def test_ipsec_up_no_traffic(case, fires):
    connection, tunnel = _connection(**case)
    traffic = TunnelTraffic(0, 0, counted_until=NOW - 600, observed_since=NOW - 8 * 86400,
                            last_received=NOW - 3 * 3600, received_data_until=NOW - 600)
    found = dict(traffic_rules.tunnel_rules(connection, tunnel, traffic, 1800, NOW))
    assert ("ipsec_up_no_traffic" in found) is fires
    received = TunnelTraffic(1, 0, counted_until=NOW - 600, observed_since=NOW - 8 * 86400, last_received=NOW - 900)
    assert not list(traffic_rules.tunnel_rules(connection, tunnel, received, 1800, NOW))


def test_connection_idle_needs_every_tunnel_known_and_the_whole_time():
    connection, _ = _connection()
    idle = TunnelTraffic(0, 0, counted_until=NOW, observed_since=NOW - 8 * 86400)
    assert [code for code, _ in traffic_rules.connection_rules(connection, [idle, idle], 7 * 86400, NOW)] == \
        ["connection_idle"]
    assert not list(traffic_rules.connection_rules(connection, [idle, None], 7 * 86400, NOW))
    recent = TunnelTraffic(0, 5e6, counted_until=NOW, observed_since=NOW - 8 * 86400, last_sent=NOW - 86400,
                           last_traffic=NOW - 86400)
    assert not list(traffic_rules.connection_rules(connection, [idle, recent], 7 * 86400, NOW))
    short = TunnelTraffic(0, 0, counted_until=NOW, observed_since=NOW - 3 * 86400)
    assert not list(traffic_rules.connection_rules(connection, [short, short], 7 * 86400, NOW))
