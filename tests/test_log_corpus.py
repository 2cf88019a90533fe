"""Every message AWS documents for Site-to-Site VPN logs (tests/fixtures/aws_log_messages.yaml, built from
the user guide's log pages; sources in its header), in JSON and in several text layouts, gets its own
class, never ``other``/``bgp_other``, and keeps the detail that decides the fix.

AWS does not document the text format's layout, so each message is tried in every layout the documented
facts allow: the fields before the message, after it, console-style names, quoted values, and bare
positional columns with no field names at all."""

import json
from pathlib import Path

import pytest
import yaml

from exporter.sources.logs.parse import BGP_ERRORS, BGP_EVENTS, IKE_ERRORS, IKE_EVENTS, log_kind_of, parse

CORPUS = yaml.safe_load((Path(__file__).parent / "fixtures" / "aws_log_messages.yaml").read_text())
IKE = CORPUS["ike"]
BGP = CORPUS["bgp"]
STAMP = "2025-11-08 05:40:29.641Z"


def ike_layouts(details):
    """(format, message, fields present) for one IKE ``details`` message."""
    fields = {
        "event_timestamp": 1762580429,
        "details": details,
        "dpd_enabled": True,
        "nat_t_detected": False,
        "ike_phase1_state": "Established",
        "ike_phase2_state": "Down",
    }
    return [
        ("json", json.dumps(fields), True),
        (
            "text",
            f"{STAMP} vpn-1234abcd 1.2.3.4 dpd_enabled=true nat_t_detected=false ike_phase1_state=Established "
            f"ike_phase2_state=Down {details}",
            True,
        ),
        (
            "text",
            f"{STAMP} {details} dpd_enabled=true nat_t_detected=false ike_phase1_state=Established "
            "ike_phase2_state=Down",
            True,
        ),
        (
            "text",
            f"VpnLogCreationTimestamp: {STAMP} VpnConnectionId: vpn-1234abcd TunnelOutsideIPAddress: 1.2.3.4 "
            "TunnelDPDEnabled: True TunnelCGWNATTDetectionStatus: False TunnelIKEPhase1State: Established "
            f"TunnelIKEPhase2State: Down VpnLogDetail: {details}",
            True,
        ),
        (
            "text",
            f'timestamp="{STAMP}" "dpd_enabled": "true", "nat_t_detected": "false", "ike_phase1_state": '
            f'"Established", "ike_phase2_state": "Down", details="{details}"',
            True,
        ),
        ("text", f"{STAMP}\tvpn-1234abcd\t1.2.3.4\ttrue\tfalse\tEstablished\tDown\t{details}", False),
    ]


@pytest.mark.parametrize("entry", IKE, ids=[e["details"][:60] for e in IKE])
def test_every_documented_ike_message_in_every_layout(entry):
    assert entry["class"] in IKE_EVENTS and entry["class"] != "other"
    for fmt, message, has_fields in ike_layouts(entry["details"]):
        event = parse("ike", fmt, message)
        assert event.event == entry["class"], (fmt, message)
        assert event.ike_error == (entry["class"] if entry["class"] in IKE_ERRORS else None)
        if has_fields:
            assert (event.dpd, event.nat_t, event.phase1, event.phase2) == (True, False, "established", "down"), message
        if "selectors" in entry.get("expect", {}):
            assert event.selectors == tuple(entry["expect"]["selectors"]), message
        assert event.timestamp is not None


def bgp_layouts(entry):
    """(format, message, whether the route's fields are in it) for one BGP entry."""
    body = dict(entry.get("route") or {})
    if entry.get("details_present", True):
        body["details"] = entry["details"]
    route_text = " ".join(
        f"{key}={value}" for key, value in (entry.get("route") or {}).items() if key in ("prefix", "nextHopIp")
    )
    kind, status, details = entry["type"], entry["status"], entry["details"]
    layouts = [
        (
            "json",
            json.dumps(
                {
                    "resource_id": "vpn-1234abcd_1.2.3.4",
                    "event_timestamp": 1762580429641,
                    "timestamp": STAMP,
                    "type": kind,
                    "status": status,
                    "message": body,
                }
            ),
            True,
        ),
        (
            "text",
            f"{STAMP} vpn-1234abcd_1.2.3.4 type={kind} status={status} {route_text} {details}".strip(),
            bool(route_text),
        ),
        ("text", f"{STAMP} {details} type={kind} status={status} {route_text}".strip(), bool(route_text)),
    ]
    if details:  # with no field names at all, only a message can say what happened
        layouts.append(("text", f"{STAMP}\tvpn-1234abcd_1.2.3.4\t{details}", False))
    return layouts


@pytest.mark.parametrize("entry", BGP, ids=[f"{e['type']}-{e['status']}-{e['details'][:50]}" for e in BGP])
def test_every_documented_bgp_message_in_every_layout(entry):
    assert entry["class"] in BGP_EVENTS and entry["class"] != "bgp_other"
    expect = entry.get("expect") or {}
    for fmt, message, has_route in bgp_layouts(entry):
        event = parse("bgp", fmt, message)
        assert event.event == entry["class"], (fmt, message)
        assert event.timestamp is not None
        if "to_state" in expect:
            assert event.bgp_state == expect["to_state"].lower()
        if entry["class"] in BGP_ERRORS:
            detail = event.bgp_error_detail
            if "remote_as" in expect and "expected_as" in expect:
                assert f"remote AS {expect['remote_as']}, expected {expect['expected_as']}" in detail
            if "cease_subcode" in expect:
                assert f"Cease {expect['cease_subcode']} ({expect['cease_reason']})" in detail
            if "denial_reason" in expect:
                assert detail.endswith(expect["denial_reason"]), (fmt, detail)
                if has_route:
                    assert f"prefix {expect['prefix']}" in detail and f"next hop {expect['next_hop']}" in detail
            if fmt == "json" and "as_path" in expect:
                assert f"AS path {expect['as_path']}" in detail


def test_a_cease_for_too_many_prefixes_feeds_the_max_prefix_cause():
    entry = next(e for e in BGP if e.get("expect", {}).get("cease_subcode") == "6/1")
    event = parse(
        "bgp", "json", json.dumps({"type": "BGPStatus", "status": "DOWN", "message": {"details": entry["details"]}})
    )
    assert (event.event, event.bgp_error) == (entry["class"], "max_prefix_exceeded")
    received = next(
        e
        for e in BGP
        if e.get("expect", {}).get("cease_subcode") == "6/1" and e["class"] == "bgp_notification_received"
    )
    event = parse(
        "bgp", "json", json.dumps({"type": "BGPStatus", "status": "DOWN", "message": {"details": received["details"]}})
    )
    assert event.bgp_error == "notification_received"  # the gateway's own limit tripped on AWS's routes
    other = next(e for e in BGP if e.get("expect", {}).get("cease_subcode") == "6/2")
    event = parse(
        "bgp", "json", json.dumps({"type": "BGPStatus", "status": "DOWN", "message": {"details": other["details"]}})
    )
    assert event.bgp_error == BGP_ERRORS[other["class"]]


@pytest.mark.parametrize("raw", [e["raw"] for e in CORPUS["json_examples"]])
def test_the_documented_json_examples_verbatim(raw):
    log = "bgp" if "resource_id" in raw else "ike"
    event = parse(log, "json", raw)
    assert event.event not in ("other", "bgp_other")
    assert event.timestamp is not None


@pytest.mark.parametrize("message", [None, {}, {"details": None}])
def test_a_bgp_event_with_an_empty_or_null_message_is_read(message):
    """AWS's BGP logs of the same schema send "message": null (VPC Route Server peer logging)."""
    event = parse(
        "bgp", "json", json.dumps({"type": "BGPStatus", "status": "UP", "event_timestamp": 1, "message": message})
    )
    assert event.event == "bgp_other"


@pytest.mark.parametrize(
    "message",
    [
        "2025-11-08 05:40:29.641Z\tvpn-1234abcd_1.2.3.4\tAWS-side peer sent an End-of-RIB message to neighbor 169.254.50.85",
        "2025-11-08 05:40:29.641Z type=bgpstatus status=up something new",
        '{"resource_id": "vpn-1234abcd_1.2.3.4", "type": "BGPStatus", "status": "UP", "message": null}',
    ],
)
def test_a_bgp_line_is_told_from_an_ike_line_by_its_shape(message):
    assert log_kind_of(message) == "bgp"


@pytest.mark.parametrize("entry", IKE, ids=[e["details"][:60] for e in IKE])
def test_no_documented_ike_line_looks_like_bgp(entry):
    for _, message, _ in ike_layouts(entry["details"]):
        assert log_kind_of(message) == "ike", message


def test_deny_in_a_session_message_is_not_a_denied_route():
    event = parse(
        "bgp",
        "json",
        json.dumps(
            {
                "type": "BGPStatus",
                "status": "UP",
                "message": {
                    "details": (
                        "AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor deny-all"
                    )
                },
            }
        ),
    )
    assert (event.event, event.bgp_state) == ("bgp_established", "established")


def test_the_corpus_covers_every_documented_class():
    """A class the parser knows but no documented message produces would be a guess; list them here."""
    documented = {e["class"] for e in IKE} | {e["class"] for e in BGP}
    undocumented = {"phase1_established", "dpd", "bgp_end_of_rib"} - documented  # demo / knowledge-center
    assert (
        set(IKE_EVENTS + BGP_EVENTS) - documented - {"other", "bgp_other"}
        <= {"phase1_established", "dpd"} | undocumented
    )
