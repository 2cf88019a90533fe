"""The seed's second check: traffic selectors against the connection's needs."""

import pytest

from exporter.selectors import check_selectors


@pytest.mark.parametrize("aws,cgw,routing,remote,local,mismatch,reasons", [
    ("0.0.0.0/0", "0.0.0.0/0", "dynamic", "0.0.0.0/0", "0.0.0.0/0", False, ()),
    ("0.0.0.0/0", "0.0.0.0/0", "dynamic", "", "", False, ()),  # unset options mean 0.0.0.0/0
    # the seed's example: narrow selectors on a dynamic connection
    ("172.31.0.0/16", "10.0.0.0/16", "dynamic", "0.0.0.0/0", "0.0.0.0/0", True,
     ("aws_side_differs", "cgw_side_differs", "inside_cidr_not_covered")),
    # static connection whose selectors match its CIDR options
    ("172.16.0.0/16", "10.40.0.0/16", "static", "172.16.0.0/16", "10.40.0.0/16", False, ()),
    ("172.16.0.0/16", "10.41.0.0/16", "static", "172.16.0.0/16", "10.40.0.0/16", True, ("cgw_side_differs",)),
    # dynamic with narrow options that selectors match: BGP's inside addresses still cannot cross
    ("172.16.0.0/16", "10.40.0.0/16", "dynamic", "172.16.0.0/16", "10.40.0.0/16", True, ("inside_cidr_not_covered",)),
    ("172.16.0.0/17,172.16.128.0/17", "0.0.0.0/0", "static", "172.16.0.0/16", "", False, ()),
    ("garbage", "0.0.0.0/0", "dynamic", "", "", True, ("unreadable",)),
])
def test_selector_checks(aws, cgw, routing, remote, local, mismatch, reasons):
    result = check_selectors(aws, cgw, routing, remote, local, "169.254.20.0/30")
    assert (result.mismatch, result.reasons) == (mismatch, reasons)
