"""The seed's second check: traffic selectors against the connection's needs."""

import pytest

from exporter.diagnosis.selectors import check_selectors
from tests.conftest import parse_exposition


@pytest.mark.parametrize(
    "aws,cgw,routing,remote,local,mismatch,reasons",
    [
        ("0.0.0.0/0", "0.0.0.0/0", "dynamic", "0.0.0.0/0", "0.0.0.0/0", False, ()),
        ("0.0.0.0/0", "0.0.0.0/0", "dynamic", "", "", False, ()),  # unset options mean 0.0.0.0/0
        # the seed's example: narrow selectors on a dynamic connection
        (
            "172.31.0.0/16",
            "10.0.0.0/16",
            "dynamic",
            "0.0.0.0/0",
            "0.0.0.0/0",
            True,
            ("aws_side_differs", "cgw_side_differs", "inside_cidr_not_covered"),
        ),
        # static connection whose selectors match its CIDR options
        ("172.16.0.0/16", "10.40.0.0/16", "static", "172.16.0.0/16", "10.40.0.0/16", False, ()),
        ("172.16.0.0/16", "10.41.0.0/16", "static", "172.16.0.0/16", "10.40.0.0/16", True, ("cgw_side_differs",)),
        # dynamic with narrow options that selectors match: BGP's inside addresses still cannot cross
        (
            "172.16.0.0/16",
            "10.40.0.0/16",
            "dynamic",
            "172.16.0.0/16",
            "10.40.0.0/16",
            True,
            ("inside_cidr_not_covered",),
        ),
        ("172.16.0.0/17,172.16.128.0/17", "0.0.0.0/0", "static", "172.16.0.0/16", "", False, ()),
        ("garbage", "0.0.0.0/0", "dynamic", "", "", True, ("unreadable",)),
    ],
)
def test_selector_checks(aws, cgw, routing, remote, local, mismatch, reasons):
    result = check_selectors(aws, cgw, routing, remote, local, "169.254.20.0/30")
    assert (result.mismatch, result.reasons) == (mismatch, reasons)


def test_a_published_snapshot_checks_each_tunnels_selectors_once(monkeypatch):
    """The diagnosis and the exposition read one check per tunnel, made when the snapshot is published."""

    import exporter.diagnosis.rules
    import exporter.diagnosis.selectors
    from exporter.diagnosis.rules import diagnosed
    from exporter.exposition.render import RenderedSnapshot
    from tests.test_golden import full_observation

    calls = []
    real = exporter.diagnosis.selectors.check_tunnel_selectors

    def counting(*args):
        calls.append(args[1].outside_ip)
        return real(*args)

    for module in (exporter.diagnosis.selectors, exporter.diagnosis.rules):
        monkeypatch.setattr(module, "check_tunnel_selectors", counting)
    observation, _ = full_observation()  # one tunnel has negotiated selectors, and they do not fit
    snapshot = diagnosed(observation)
    body = RenderedSnapshot.of(snapshot, isolate=False).body.decode()
    parse_exposition(body)  # no series twice
    assert calls == ["198.51.100.1"]
    assert any(f.code == "traffic_selectors_mismatch" for f in snapshot.findings)
    assert (
        'aws_vpn_tunnel_selector_mismatch{account_id="111122223333",region="eu-west-1",'
        'vpn_connection_id="vpn-0aaa",tunnel="198.51.100.1"} 1.0' in body
    )
