"""A value no code path expected, in one tunnel or one connection, costs that tunnel's series (or that
connection's findings) and is counted; every other tunnel keeps publishing, poll after poll."""

from dataclasses import replace

import pytest

import exporter.diagnosis.rules
import exporter.sources.ec2.families
from exporter.config import Target
from exporter.exposition.render import RenderedSnapshot
from exporter.model import Connection, Observation, RegionTelemetry, Snapshot, Tunnel
from tests.conftest import add_vpn_connection, parse_exposition, scrape, series, tunnel_telemetry, value

REGION = "eu-west-1"


def undiagnosed(*fields) -> Snapshot:
    """A snapshot of these regions with nothing diagnosed: what the renderer alone makes of them."""
    return Snapshot.of(Observation(*fields), {}, ())


def tunnel(ip: str, **changes) -> Tunnel:
    return replace(Tunnel(ip, "UP", "bgp_routes", 3, 1_700_000_000.0, True, True, "169.254.10.0/30"), **changes)


def connection(vpn: str, *tunnels: Tunnel) -> Connection:
    return Connection(vpn, "name", "available", "dynamic", "vgw", "vgw-1", "cgw-1", False, tunnels=tunnels)


BAD_VALUES = {  # what the EC2 reader never produces, but a future change or a bad state might
    "route count too large for a float": {"accepted_routes": 10**400},
    "label value not a string": {"status_message": None},
    "time not a number": {"last_status_change": "yesterday"},
}


@pytest.mark.parametrize("isolate", [False, True], ids=["in process", "forked child"])
@pytest.mark.parametrize("bad", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_a_tunnel_that_cannot_be_rendered_is_left_out_and_named(bad, isolate):
    snapshot = undiagnosed(
        1_700_000_100.0,
        (
            RegionTelemetry(
                "111",
                REGION,
                (
                    connection("vpn-good", tunnel("198.51.100.1"), tunnel("198.51.100.2")),
                    connection("vpn-odd", tunnel("198.51.100.3"), tunnel("198.51.100.4", **bad)),
                ),
            ),
        ),
    )
    rendered = RenderedSnapshot.of(snapshot, isolate=isolate)
    samples = parse_exposition(rendered.body.decode())
    assert rendered.failed and all("vpn-odd 198.51.100.4" in unit for unit in rendered.failed)
    for name in ("aws_vpn_tunnel_info", "aws_vpn_tunnel_up", "aws_vpn_tunnel_ipsec_up", "aws_vpn_tunnel_bgp_up"):
        assert {s["tunnel"] for s in series(samples, name)} == {"198.51.100.1", "198.51.100.2", "198.51.100.3"}
    assert {s["vpn_connection_id"] for s in series(samples, "aws_vpn_connection_info")} == {"vpn-good", "vpn-odd"}


def test_a_snapshot_without_bad_values_leaves_nothing_out():
    snapshot = undiagnosed(
        1_700_000_100.0, (RegionTelemetry("111", REGION, (connection("vpn-good", tunnel("1.1.1.1")),)),)
    )
    assert RenderedSnapshot.of(snapshot, isolate=True).failed == ()
    assert RenderedSnapshot.of(snapshot, isolate=True).body == RenderedSnapshot.of(snapshot, isolate=False).body


def test_failures_are_counted_and_the_rest_keeps_publishing(aws, make_exporter, monkeypatch):
    good = add_vpn_connection(
        REGION,
        [
            tunnel_telemetry("198.51.100.1", "DOWN", "IPSEC IS UP"),
            tunnel_telemetry("198.51.100.2", "UP", "1 BGP ROUTES", 1),
        ],
    )
    odd = add_vpn_connection(
        REGION,
        [
            tunnel_telemetry("198.51.100.3", "DOWN", "IPSEC IS UP"),
            tunnel_telemetry("198.51.100.4", "UP", "1 BGP ROUTES", 1),
        ],
    )
    real_rows, real_diagnosis = exporter.sources.ec2.families._tunnel_rows, exporter.diagnosis.rules.diagnose_connection

    def rows(family, labels, *args):
        if labels[3] == "198.51.100.4":
            raise OverflowError("a value no code path expected")
        return real_rows(family, labels, *args)

    def diagnosis(observation, region, connection, *args):
        if connection.vpn_connection_id == odd:
            raise KeyError("a value no rule expected")
        return real_diagnosis(observation, region, connection, *args)

    monkeypatch.setattr(exporter.sources.ec2.families, "_tunnel_rows", rows)
    monkeypatch.setattr(exporter.diagnosis.rules, "diagnose_connection", diagnosis)
    app = make_exporter([Target(regions=(REGION,))])
    counted = 0.0
    for _ in range(2):
        app.poll_once()
        samples = scrape(app.url)
        errors = value(samples, "aws_vpn_exporter_render_errors_total")
        assert errors > counted and value(samples, "aws_vpn_exporter_diagnosis_errors_total") == errors  # per publish
        counted = errors
        assert value(samples, "aws_vpn_tunnel_up", tunnel="198.51.100.3") == 0
        assert value(samples, "aws_vpn_tunnel_up", tunnel="198.51.100.4") is None
        assert series(samples, "aws_vpn_tunnel_finding", vpn_connection_id=good), "the good connection is diagnosed"
        assert not series(samples, "aws_vpn_tunnel_finding", vpn_connection_id=odd)
        assert value(samples, "aws_vpn_exporter_collection_success", source="ec2") == 1
