"""The log parser on the message shapes of the seed and of AWS's documentation, and on garbage."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.sources.logs.parse import BGP_EVENTS, IKE_ERRORS, IKE_EVENTS, PARSE_ERROR_REASONS, LogParseError, parse

SEED_EVENT = json.dumps(
    {
        "event_timestamp": 1673252138,
        "details": "AWS tunnel Phase 2 SA is established with inbound SPI: 0xcbf7f2e3: outbound SPI: 0xc9be76cd: "
        "traffic selectors: (AWS-side) 172.31.0.0/16 <=> (CGW-side) 10.0.0.0/16",
        "dpd_enabled": True,
        "nat_t_detected": True,
        "ike_phase1_state": "established",
        "ike_phase2_state": "established",
    }
)


def test_the_seed_example():
    event = parse("ike", "json", SEED_EVENT)
    assert event.event == "phase2_established"
    assert event.selectors == ("172.31.0.0/16", "10.0.0.0/16")
    assert (event.timestamp, event.dpd, event.nat_t, event.phase1, event.phase2) == (
        1673252138.0,
        True,
        True,
        "established",
        "established",
    )


@pytest.mark.parametrize(
    "details,event",
    [
        ("Peer is not responsive - Declaring peer dead", "peer_dead"),
        ("AWS tunnel payload decryption was unsuccessful due to invalid Pre-shared Key", "psk_mismatch"),
        ("AWS tunnel detected a pre-shared key mismatch with cgw: 203.0.113.1", "psk_mismatch"),
        ("No Proposal Match Found by AWS", "no_proposal_chosen"),
        ('No Proposal Match Found. Notifying with "No proposal chosen"', "no_proposal_chosen"),
        ("AWS tunnel received DELETE for Phase 2 SA with SPI: 0x1234", "phase2_deleted"),
        ("AWS tunnel received DELETE for IKE_SA from CGW", "phase1_deleted"),
        ("AWS tunnel DPD timed out after 3 retransmits", "dpd_timeout"),
        ("AWS tunnel detected a (CHILD_REKEY) collision as CHILD_DELETE", "rekey_collision"),
        ("AWS tunnel (CHILD_SA) redundant SA is being deleted due to detected collision", "rekey_collision"),
        ("AWS tunnel Phase 2 was unable to establish while keeping Phase 1", "phase2_failed"),
        ("AWS: Traffic Selector: TS_UNACCEPTABLE: received from responder", "traffic_selector_unacceptable"),
        ("AWS tunnel is sending AUTHENTICATION_FAILED as the response", "authentication_failed"),
        ("AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: 203.0.113.1", "phase1_timeout"),
        ("AWS tunnel is sending a CREATE_CHILD_SA request", "child_sa_exchange"),
        ("AWS tunnel is sending DPD R-U-THERE", "dpd"),
        ("AWS tunnel Phase 1 SA is established", "phase1_established"),
        ("Something AWS has not documented", "other"),
    ],
)
def test_documented_ike_messages(details, event):
    parsed = parse("ike", "json", json.dumps({"event_timestamp": 1, "details": details}))
    assert parsed.event == event
    assert parsed.selectors is None
    assert parsed.ike_error == (event if event in IKE_ERRORS else None)


def test_multiple_selectors_and_case_of_states():
    details = (
        "AWS tunnel Phase 2 SA is established with inbound SPI: 0x1: outbound SPI: 0x2: traffic selectors: "
        "(AWS-side) 10.0.0.0/16, 10.1.0.0/16 <=> (CGW-side) 0.0.0.0/0"
    )
    event = parse(
        "ike",
        "json",
        json.dumps(
            {
                "details": details,
                "ike_phase1_state": "Established",
                "ike_phase2_state": "REKEYING",
                "nat_t_detected": False,
            }
        ),
    )
    assert event.selectors == ("10.0.0.0/16,10.1.0.0/16", "0.0.0.0/0")
    assert (event.phase1, event.phase2, event.nat_t, event.dpd) == ("established", "rekeying", False, None)
    assert parse("ike", "json", json.dumps({"details": "x", "ike_phase1_state": "Weird"})).phase1 == "unknown"


BGP_DOC = (
    '{"resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":1762580429641,"timestamp":"2025-11-08 '
    '05:40:29.641Z","type":"BGPStatus","status":"UP","message":{"details":"AWS-side peer BGP session state '
    'has changed from OpenConfirm to Established with neighbor 169.254.50.85"}}'
)


def bgp(kind, status, details):
    return json.dumps(
        {
            "resource_id": "vpn-1_1.2.3.4",
            "event_timestamp": 1762580429641,
            "type": kind,
            "status": status,
            "message": {"details": details},
        }
    )


def test_the_documented_bgp_example():
    event = parse("bgp", "json", BGP_DOC)
    assert (event.event, event.bgp_state, event.bgp_error) == ("bgp_established", "established", None)
    assert event.timestamp == pytest.approx(1762580429.641)


@pytest.mark.parametrize(
    "kind,status,details,event,state,error",
    [
        (
            "BGPStatus",
            "DOWN",
            "AWS-side peer BGP session state has changed from Established to Idle with neighbor x",
            "bgp_session_down",
            "idle",
            "session_down",
        ),
        (
            "BGPStatus",
            "DOWN",
            "AWS-side peer BGP session state has changed from Connect to Active with neighbor x",
            "bgp_state_change",
            "active",
            None,
        ),
        (
            "BGPStatus",
            "DOWN",
            "BGP notification sent: Hold Timer Expired",
            "bgp_hold_timer_expired",
            None,
            "hold_timer_expired",
        ),
        (
            "BGPStatus",
            "DOWN",
            "Received bad OPEN message from neighbor x: remote AS is 65001, expected 65000",
            "bgp_open_error",
            None,
            "open_message_error",
        ),
        ("BGPStatus", "UP", "Maximum-prefix limit warning: 80 of 100 prefixes", "bgp_max_prefix_warning", None, None),
        (
            "BGPStatus",
            "DOWN",
            "Maximum-prefix limit exceeded from neighbor x",
            "bgp_max_prefix_exceeded",
            None,
            "max_prefix_exceeded",
        ),
        (
            "BGPStatus",
            "DOWN",
            "Cease notification 6/2 received from neighbor x",
            "bgp_notification_received",
            None,
            "notification_received",
        ),
        (
            "BGPStatus",
            "DOWN",
            "Cease notification 6/4 sent to neighbor x",
            "bgp_notification_sent",
            None,
            "notification_sent",
        ),
        ("BGPStatus", "UP", "End-of-RIB received from neighbor x", "bgp_end_of_rib", None, None),
        ("BGPStatus", "UP", "OPEN message received from neighbor x", "bgp_open_received", None, None),
        ("RouteStatus", "ADVERTISED", "Route 10.0.0.0/16 advertised", "bgp_route_advertised", None, None),
        ("RouteStatus", "UPDATED", "Route 10.0.0.0/16 updated", "bgp_route_updated", None, None),
        ("RouteStatus", "WITHDRAWN", "Route 10.0.0.0/16 withdrawn", "bgp_route_withdrawn", None, None),
        (
            "RouteStatus",
            "UPDATED",
            "Route 10.9.0.0/16 denied: as-path contains our own AS",
            "bgp_route_denied",
            None,
            "route_denied",
        ),
        ("BGPStatus", "UP", "Something new", "bgp_other", None, None),
    ],
)
def test_bgp_messages(kind, status, details, event, state, error):
    parsed = parse("bgp", "json", bgp(kind, status, details))
    assert (parsed.event, parsed.bgp_state, parsed.bgp_error) == (event, state, error)


def test_text_format_by_field_names():
    line = (
        "2023-01-09 08:15:38.000Z vpn-1234 1.2.3.4 dpd_enabled=true nat_t_detected=false "
        "ike_phase1_state=Established ike_phase2_state=Established AWS tunnel Phase 2 SA is established with "
        "inbound SPI: 0x1: outbound SPI: 0x2: traffic selectors: (AWS-side) 0.0.0.0/0 <=> (CGW-side) 0.0.0.0/0"
    )
    event = parse("ike", "text", line)
    assert (event.event, event.nat_t, event.dpd, event.phase2) == ("phase2_established", False, True, "established")
    assert event.selectors == ("0.0.0.0/0", "0.0.0.0/0")
    assert event.timestamp == 1673252138.0
    console = (
        "TunnelDPDEnabled: True TunnelCGWNATTDetectionStatus: True TunnelIKEPhase1State: Down Peer is not "
        "responsive - Declaring peer dead"
    )
    event = parse("ike", "text", console)
    assert (event.event, event.nat_t, event.phase1, event.timestamp) == ("peer_dead", True, "down", None)
    bgp_line = "2025-11-08 05:40:29.641Z type=BGPStatus status=DOWN Hold Timer Expired"
    assert parse("bgp", "text", bgp_line).event == "bgp_hold_timer_expired"


def test_unset_format_is_guessed():
    assert parse("ike", "", SEED_EVENT).event == "phase2_established"
    assert parse("ike", "", "Peer is not responsive - Declaring peer dead").event == "peer_dead"


@pytest.mark.parametrize(
    "log,fmt,message,reason",
    [
        ("ike", "json", "{not json", "invalid_json"),
        ("ike", "json", "[1, 2]", "wrong_type"),
        ("ike", "json", '{"details": 5}', "wrong_type"),
        ("ike", "json", b'{"details": "x"}', "wrong_type"),
        ("ike", "json", '{"details": "' + "x" * 70000 + '"}', "too_large"),
        ("ike", "text", "bin\x00ary", "binary"),
        ("ike", "text", "   ", "empty"),
        ("bgp", "json", '{"type": 1}', "wrong_type"),
        ("bgp", "json", "[" * 100000, "too_large"),
        ("bgp", "json", "[" * 60000, "invalid_json"),
    ],
)
def test_malformed_messages_raise_a_bounded_reason(log, fmt, message, reason):
    with pytest.raises(LogParseError) as caught:
        parse(log, fmt, message)
    assert caught.value.reason == reason


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)
ike_like = st.fixed_dictionaries(
    {},
    optional={
        "details": st.text() | json_values,
        "event_timestamp": json_values,
        "dpd_enabled": json_values,
        "nat_t_detected": json_values,
        "ike_phase1_state": json_values,
        "ike_phase2_state": json_values,
        "type": json_values,
        "status": json_values,
        "message": json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(
    log=st.sampled_from(["ike", "bgp"]),
    fmt=st.sampled_from(["json", "text", ""]),
    message=st.text() | st.binary() | ike_like.map(json.dumps) | json_values.map(json.dumps),
)
def test_no_input_crashes_the_parser(log, fmt, message):
    try:
        event = parse(log, fmt, message)
    except LogParseError as err:
        assert err.reason in PARSE_ERROR_REASONS
        return
    assert event.event in (IKE_EVENTS if log == "ike" else BGP_EVENTS)
    assert event.timestamp is None or isinstance(event.timestamp, float)
