"""No series twice on /metrics (Prometheus rejects a scrape's samples for a duplicate; promtool does not notice):
one owner per account and region, one connection per id, and a last guard in the renderer that drops and counts
what got through anyway. Every test that scrapes also checks it (``tests.conftest.parse_exposition``)."""

from __future__ import annotations

import gzip
import logging
import time
from collections import Counter
from dataclasses import replace

import boto3
import pytest

from exporter.config import Organization, Target
from exporter.demo import strict_aws
from exporter.exposition.render import RenderedSnapshot
from exporter.family import Family
from exporter.sources.ec2.telemetry import read_connections
from tests.conftest import add_vpn_connection, parse_exposition, scrape, series, tunnel_telemetry, value
from tests.faults import Fault
from tests.test_golden import full_snapshot

MANAGEMENT, MEMBER = "123456789012", "111111111111"  # the default credentials' account manages the organization
EAST, WEST = "us-east-1", "eu-west-1"
ROLE = "vpn-exporter"


def test_the_test_helper_fails_on_a_duplicate_series():
    text = 'x{a="1"} 1\nx{a="2"} 1\nx{a="1"} 2\n'
    with pytest.raises(AssertionError, match="1 duplicate series"):
        parse_exposition(text)


# --- the last guard: the renderer ------------------------------------------------------------------------


def test_a_family_renders_each_series_once_and_counts_the_rest():
    family = Family("aws_vpn_tunnel_up", "help", ("tunnel",))
    for tunnel, up in (("a", 1), ("b", 0), ("a", 0), ("a", 1)):
        family.add_metric([tunnel], up)
    dropped = Counter()
    assert family.render(dropped).splitlines()[2:] == [
        'aws_vpn_tunnel_up{tunnel="a"} 1.0',
        'aws_vpn_tunnel_up{tunnel="b"} 0.0',
    ]
    assert dropped == {"aws_vpn_tunnel_up": 2}
    unlabelled = Family("aws_vpn_exporter_poll_timestamp_seconds", "help")
    unlabelled.add_metric((), 1.0)
    unlabelled.add_metric((), 2.0)
    assert unlabelled.render(dropped).splitlines()[2:] == ["aws_vpn_exporter_poll_timestamp_seconds 1.0"]


def test_a_family_given_twice_is_rendered_once():
    """A second TYPE line for a name would make Prometheus reject the whole scrape: the first family is kept."""
    from exporter.exposition.render import render_families

    families = [Family("aws_vpn_tunnel_up", "help", ("tunnel",)) for _ in range(2)]
    families[0].add_metric(["a"], 1)
    families[1].add_metric(["b"], 1)
    dropped = Counter()
    text = render_families(families, dropped).decode()
    assert text.count("# TYPE aws_vpn_tunnel_up") == 1 and parse_exposition(text) == {
        ("aws_vpn_tunnel_up", frozenset({("tunnel", "a")})): 1.0
    }
    assert dropped == {"aws_vpn_tunnel_up": 1}


@pytest.mark.parametrize("isolate", [False, True], ids=["in process", "forked child"])
def test_a_snapshot_holding_a_region_twice_renders_every_series_once(isolate):
    """Whatever a source gets wrong, the exposition stays valid, and says how much it dropped."""
    snapshot = full_snapshot()
    twice = replace(snapshot, regions=snapshot.regions * 2, results=snapshot.results * 2)
    rendered = RenderedSnapshot.of(twice, isolate=isolate)
    samples = parse_exposition(gzip.decompress(rendered.body_gzip).decode())
    assert samples == parse_exposition(RenderedSnapshot.of(snapshot, isolate=False).body.decode())
    dropped = dict(rendered.duplicates)
    assert dropped["aws_vpn_tunnel_info"] == 4 and dropped["aws_vpn_connection_info"] == 2
    assert dropped["aws_vpn_exporter_collection_success"] == 3
    assert RenderedSnapshot.of(snapshot, isolate=isolate).duplicates == ()


def test_dropped_series_are_counted_and_logged_once(aws, make_exporter, caplog):
    add_vpn_connection(EAST, [tunnel_telemetry("198.51.100.1", "UP", "1 BGP ROUTES", 1)])
    exporter = make_exporter([Target(regions=(EAST,))])
    exporter.poll_once()
    ec2 = exporter._outputs["ec2"]
    exporter._outputs["ec2"] = replace(ec2, regions=ec2.regions * 2)  # as a bug upstream would
    with caplog.at_level(logging.ERROR, logger="exporter.app"):
        exporter._publish()
        exporter._publish()
    samples = scrape(exporter.url)  # valid: every series once
    assert value(samples, "aws_vpn_exporter_duplicate_series_dropped_total", metric="aws_vpn_tunnel_up") == 2
    assert value(samples, "aws_vpn_exporter_duplicate_series_dropped_total", metric="aws_vpn_connection_info") == 2
    logged = [r.getMessage() for r in caplog.records if "aws_vpn_tunnel_up (duplicate series)" in r.getMessage()]
    assert len(logged) == 1


# --- (c) DescribeVpnConnections listing a connection twice ------------------------------------------------


def test_a_connection_listed_twice_is_read_once_and_counted():
    item = {
        "VpnConnectionId": "vpn-1",
        "State": "available",
        "Options": {"StaticRoutesOnly": False},
        "VgwTelemetry": [{"OutsideIpAddress": "198.51.100.1", "Status": "UP", "StatusMessage": "1 BGP ROUTES"}],
    }
    odd = Counter()
    connections = read_connections(
        [item, {**item, "State": "deleted"}, dict(item, State="pending"), dict(item, VpnConnectionId="vpn-2")], odd
    )
    assert [(c.vpn_connection_id, c.state) for c in connections] == [("vpn-1", "available"), ("vpn-2", "available")]
    assert odd["duplicate_vpn_connection"] == 1


def test_describe_vpn_connections_answering_a_connection_twice_exports_it_once(aws, make_exporter, monkeypatch):
    from moto.ec2.models import ec2_backends

    vpn_id = add_vpn_connection(
        EAST,
        [
            tunnel_telemetry("198.51.100.1", "UP", "1 BGP ROUTES", 1),
            tunnel_telemetry("198.51.100.2", "DOWN", "IPSEC IS DOWN"),
        ],
    )
    backend = ec2_backends[MANAGEMENT][EAST]
    listed = backend.describe_vpn_connections
    monkeypatch.setattr(backend, "describe_vpn_connections", lambda *a, **k: listed(*a, **k) * 2)
    exporter = make_exporter([Target(regions=(EAST,))])
    exporter.poll_once()
    samples = scrape(exporter.url)  # fails on a duplicate
    assert len(series(samples, "aws_vpn_tunnel_up", vpn_connection_id=vpn_id)) == 2
    assert value(samples, "aws_vpn_exporter_unrecognized_values_total", field="duplicate_vpn_connection") == 1
    assert series(samples, "aws_vpn_exporter_duplicate_series_dropped_total") == []


# --- (a) and (b): one owner per account and region ---------------------------------------------------------


def describe_calls(exporter, account: str, region: str) -> int:
    return sum(
        int(s.value)
        for metric in exporter.metrics.api_calls.collect()
        for s in metric.samples
        if s.name.endswith("_total")
        and s.labels["operation"] == "DescribeVpnConnections"
        and (s.labels["account_id"], s.labels["region"]) == (account, region)
    )


def test_default_credentials_and_the_organizations_management_account_poll_it_once(aws, faults, make_exporter):
    """(a) An explicit default-credentials target and an organization that reads its management account with
    the same credentials' account: discovery's GetCallerIdentity fails once, so it cannot leave the account to
    the explicit target. The poll learns the account, and the explicit target owns it; the organization keeps
    the regions the explicit target does not watch."""
    boto3.client("organizations", region_name=EAST).create_organization(FeatureSet="ALL")
    strict_aws.create_role(MANAGEMENT, "org-reader", trusted=MANAGEMENT)
    vpn_id = add_vpn_connection(EAST, [tunnel_telemetry("198.51.100.1", "UP", "1 BGP ROUTES", 1)])
    organization = Organization(
        role_name=ROLE,
        regions=(EAST, WEST),
        management_account="discovery_credentials",
        role_arn=f"arn:aws:iam::{MANAGEMENT}:role/org-reader",
    )
    exporter = make_exporter([Target(regions=(EAST,))], organizations=(organization,))
    identity = Fault(operation="GetCallerIdentity", status=403, code="AccessDenied", times=1)
    faults.faults.append(identity)
    exporter.poll("discovery")
    assert identity.hits == 1  # so the organization's targets include the management account's EAST
    assert len(exporter.sources["ec2"].accounts) == 2
    for _ in range(2):
        exporter.poll("ec2")
        samples = scrape(exporter.url)  # fails on a duplicate
        assert value(samples, "aws_vpn_tunnel_up", vpn_connection_id=vpn_id) == 1
        assert {
            (s["region"], s["source"])
            for s in series(samples, "aws_vpn_exporter_collection_success", account_id=MANAGEMENT)
        } == {(EAST, "ec2"), (WEST, "ec2")}
    assert describe_calls(exporter, MANAGEMENT, EAST) == 3  # both on the first poll, then the owner only
    assert exporter._outputs["ec2"].accounts[MANAGEMENT].target == Target(
        regions=(EAST,)
    )  # its logs are read as its EC2


def test_two_roles_in_one_account_poll_each_region_once(aws, make_exporter):
    """(b) The config refuses it (tests/test_config.py); a Config built in code still polls each region once,
    with the first target's role."""
    for role in ("first", "second"):
        strict_aws.create_role(MEMBER, role, trusted=MANAGEMENT)
    first, second = (
        Target(regions=(EAST, WEST) if role == "second" else (EAST,), role_arn=f"arn:aws:iam::{MEMBER}:role/{role}")
        for role in ("first", "second")
    )
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[MEMBER][EAST]
    gateway = backend.create_customer_gateway(gateway_type="ipsec.1", ip_address="203.0.113.9", bgp_asn="65000")
    vgw = backend.create_vpn_gateway(gateway_type="ipsec.1")
    connection = backend.create_vpn_connection("ipsec.1", gateway.id, vpn_gateway_id=vgw.id, tags={"Name": "x"})
    connection.vgw_telemetry = [tunnel_telemetry("198.51.100.1", "UP", "1 BGP ROUTES", 1)]
    exporter = make_exporter([first, second])
    exporter.poll_once()
    samples = scrape(exporter.url)  # fails on a duplicate
    assert value(samples, "aws_vpn_tunnel_up", vpn_connection_id=connection.id) == 1
    assert len(series(samples, "aws_vpn_exporter_collection_success", account_id=MEMBER, source="ec2")) == 2
    assert describe_calls(exporter, MEMBER, EAST) == 1 and describe_calls(exporter, MEMBER, WEST) == 1
    assert exporter._outputs["ec2"].accounts[MEMBER].target == first


def test_two_organizations_listed_from_one_account_give_its_discovery_series_once():
    """Known only at run time (the default credentials and a role of the same account): the first one's."""
    from exporter.exposition.instrumentation import ExporterMetrics
    from exporter.sources.discovery import OrganizationView

    metrics = ExporterMetrics(lambda: None)
    first = OrganizationView(MANAGEMENT, True, 1.0, accounts={"watched": 2}, account_success={MEMBER: True})
    second = OrganizationView(
        MANAGEMENT, False, None, "AccessDenied", accounts={"watched": 1}, account_success={MEMBER: False}
    )
    metrics.discovery.views = (first, second)
    samples = parse_exposition(metrics.render().decode())  # fails on a duplicate
    assert value(samples, "aws_vpn_exporter_discovery_success", account_id=MANAGEMENT) == 1
    assert value(samples, "aws_vpn_exporter_discovered_accounts", account_id=MANAGEMENT, state="watched") == 2
    assert value(samples, "aws_vpn_exporter_discovery_account_success", account_id=MEMBER) == 1


def test_a_log_group_two_regions_log_to_has_one_lag_series_the_furthest_behind():
    """A LogGroupArn is AWS's text: tunnels of two regions may name one group, each region reporting its read."""
    snapshot = full_snapshot()
    group = snapshot.log_groups[0]
    snapshot = replace(snapshot, log_groups=(group, replace(group, read_until=group.read_until - 100)))
    rendered = RenderedSnapshot.of(snapshot, isolate=False)
    samples = parse_exposition(rendered.body.decode())  # fails on a duplicate
    lag = value(samples, "aws_vpn_exporter_log_ingestion_lag_seconds", log_group=group.log_group)
    assert lag == snapshot.completed_at - group.read_until + 100
    assert rendered.duplicates == ()


def test_an_account_discovery_could_not_tell_is_asked_again_within_minutes(aws, faults, make_exporter, monkeypatch):
    """(a) across replicas: another replica may own the explicit target's pair, where no poll-time owner can see
    both. Discovery asks for the default credentials' account again within minutes (RETRY_DELAYS, shortened
    here), not at the next hourly run, and then leaves the account to the explicit target, as when told at once."""
    from exporter.sources import discovery

    monkeypatch.setattr(discovery, "RETRY_DELAYS", (0.3, 0.6))
    boto3.client("organizations", region_name=EAST).create_organization(FeatureSet="ALL")
    strict_aws.create_role(MANAGEMENT, "org-reader", trusted=MANAGEMENT)
    organization = Organization(
        role_name=ROLE,
        regions=(EAST, WEST),
        management_account="discovery_credentials",
        role_arn=f"arn:aws:iam::{MANAGEMENT}:role/org-reader",
    )
    exporter = make_exporter([Target(regions=(EAST,))], organizations=(organization,), discovery_interval=3600.0)
    faults.faults.append(Fault(operation="GetCallerIdentity", status=403, code="AccessDenied", times=1))

    def discovered_management_regions() -> set[str]:
        return {
            region
            for target in exporter.sources["ec2"]._discovered
            if target.account_id_from_role == MANAGEMENT
            for region in target.regions
        }

    exporter.poll("discovery")
    assert discovered_management_regions() == {EAST, WEST}  # not told: the explicit target's EAST too
    deadline = time.monotonic() + 15
    while discovered_management_regions() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert discovered_management_regions() == set()
