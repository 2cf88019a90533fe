"""Parses Site-to-Site VPN tunnel logs (IKE activity and BGP), in JSON or text, into events.

Every message maps onto a small, fixed set of event types (``IKE_EVENTS``, ``BGP_EVENTS``); anything
unrecognised is ``other`` / ``bgp_other``. A malformed message raises ``LogParseError`` with a bounded
reason, which the caller counts and skips. This is the hot path of log ingestion: substring tests
in a fixed order, one regex only for the rare Phase 2 message.

The JSON shapes are AWS's documented ones (the Site-to-Site VPN user guide's "Tunnel activity logs" pages); every message the user guide
documents is in ``tests/fixtures/aws_log_messages.yaml`` with the class it must get. The text format's
framing is not documented, so text lines are read by their field names, wherever they stand, and the
rest of the line is the message: field names are never read as phrases.

What decides a fix is kept as a short ``detail`` (the AS numbers of a refused OPEN, a Cease subcode, a
denied route and why): evidence for findings, never a label.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

MAX_MESSAGE_BYTES = 64 * 1024  # CloudWatch allows 256 KiB; VPN log lines are a few hundred bytes

IKE_EVENTS = (
    "phase1_established",
    "phase2_established",
    "phase1_deleted",
    "phase2_deleted",
    "phase1_timeout",
    "phase2_failed",
    "dpd",
    "dpd_timeout",
    "peer_dead",
    "psk_mismatch",
    "authentication_failed",
    "no_proposal_chosen",
    "traffic_selector_unacceptable",
    "rekey_collision",
    "child_sa_exchange",
    "other",
)
BGP_EVENTS = (
    "bgp_established",
    "bgp_session_down",
    "bgp_state_change",
    "bgp_hold_timer_expired",
    "bgp_open_error",
    "bgp_open_sent",
    "bgp_open_received",
    "bgp_notification_sent",
    "bgp_notification_received",
    "bgp_max_prefix_warning",
    "bgp_max_prefix_exceeded",
    "bgp_end_of_rib",
    "bgp_route_advertised",
    "bgp_route_updated",
    "bgp_route_withdrawn",
    "bgp_route_denied",
    "bgp_connect_attempt",
    "bgp_update_received",
    "bgp_other",
)
# BGP events that are errors; the latest one per tunnel is exported.
BGP_ERRORS = {
    "bgp_hold_timer_expired": "hold_timer_expired",
    "bgp_open_error": "open_message_error",
    "bgp_notification_sent": "notification_sent",
    "bgp_notification_received": "notification_received",
    "bgp_max_prefix_exceeded": "max_prefix_exceeded",
    "bgp_route_denied": "route_denied",
    "bgp_session_down": "session_down",
}
# IKE events that explain a tunnel whose IPsec is down; the latest one per tunnel is kept.
IKE_ERRORS = (
    "psk_mismatch",
    "authentication_failed",
    "no_proposal_chosen",
    "dpd_timeout",
    "peer_dead",
    "phase1_timeout",
    "traffic_selector_unacceptable",
    "phase2_failed",
)
CEASE_MAX_PREFIXES = "6/1"  # Cease subcode "Maximum Number of Prefixes Reached" (RFC 4486)
IKE_STATES = ("established", "rekeying", "negotiating", "down")
BGP_STATES = ("idle", "connect", "active", "opensent", "openconfirm", "established")

_SELECTORS = re.compile(
    r"\(AWS-side\)\s*(?P<aws>[0-9a-fA-F:./,\s]+?)\s*<=>\s*\(CGW-side\)\s*(?P<cgw>[0-9a-fA-F:./,\s]+)", re.IGNORECASE
)
_BGP_TRANSITION = re.compile(r"from (\w+) to (\w+)", re.IGNORECASE)
_OPEN_AS = re.compile(r"remote AS (?:is )?(\d+),? expected (?:AS )?(\d+)", re.IGNORECASE)
_CEASE = re.compile(r"\b(6/\d+)\b(?:\s*\((?:Cease/)?([^)]*)\))?", re.IGNORECASE)
_PREFIX_COUNT = re.compile(r"received (\d+) prefixes.*?limit is (\d+)", re.IGNORECASE)
_DENIED = re.compile(r"denied(?: due to)?:?\s*(.+)", re.IGNORECASE)
_TEXT_ROUTE = re.compile(
    r"\b(prefix|aspath|as_path|nexthopip|next_hop)\"?\s*[=:]\s*\"?([0-9A-Fa-f.:/]+(?: \d+)*)", re.IGNORECASE
)
_TEXT_VALUE = re.compile(r"\"?\s*[=:]\s*\"?([A-Za-z0-9_.:-]+)")  # what follows a field name (maybe quoted)
_TEXT_TIMESTAMP = re.compile(r"\b(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)Z?")

# Text-format field names, both the JSON-style and the documented console-style spellings.
_TEXT_KEYS = {
    "dpd_enabled": "dpd",
    "tunneldpdenabled": "dpd",
    "nat_t_detected": "nat_t",
    "tunnelcgwnattdetectionstatus": "nat_t",
    "ike_phase1_state": "phase1",
    "tunnelikephase1state": "phase1",
    "ike_phase2_state": "phase2",
    "tunnelikephase2state": "phase2",
    "type": "type",
    "status": "status",
}
_IKE_TEXT_KEYS = tuple((key, name, len(key)) for key, name in _TEXT_KEYS.items() if name not in ("type", "status"))
_BGP_TEXT_KEYS = tuple((key, name, len(key)) for key, name in _TEXT_KEYS.items() if name in ("type", "status"))


_BGP_MARKERS = ("bgpstatus", "routestatus", "resource_id", "aws-side peer")  # every documented BGP message
_RESOURCE_ID = re.compile(r"vpn-[0-9a-f]+_[0-9A-Fa-f]")
_BGP_TYPES = {"bgpstatus": "BGPStatus", "routestatus": "RouteStatus"}


def log_kind_of(message: object) -> str:
    """``bgp`` or ``ike`` by an event's own shape: BGP events carry a BGPStatus/RouteStatus type and a
    resource_id; IKE events carry neither. For a group that receives both logs of a tunnel."""
    if not isinstance(message, str):
        return "ike"
    lower = message.lower()
    return "bgp" if any(marker in lower for marker in _BGP_MARKERS) or _RESOURCE_ID.search(message) else "ike"


class LogParseError(ValueError):
    """A message that cannot be read; ``reason`` is one of a small fixed set, for a metric label."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class LogEvent:
    event: str
    timestamp: float | None = None  # epoch seconds, from the message itself
    phase1: str | None = None
    phase2: str | None = None
    nat_t: bool | None = None
    dpd: bool | None = None
    selectors: tuple[str, str] | None = None  # (AWS side, CGW side)
    bgp_state: str | None = None
    bgp_error: str | None = None
    ike_error: str | None = None  # the event itself, when it is one of IKE_ERRORS
    bgp_error_detail: str | None = None  # what decides the fix ("" when the message holds nothing more)


def classify_ike(details: str) -> str:
    """The event type of an IKE ``details`` message."""
    return _classify_ike(details.lower())


def _classify_ike(text: str) -> str:
    if "phase 2 sa is established" in text:
        return "phase2_established"
    if "un-established phase 1" in text:
        return "phase1_timeout"
    if "phase 2 was unable to establish" in text:
        return "phase2_failed"
    if "delete for phase 2" in text or "delete for child_sa" in text:
        return "phase2_deleted"
    if "delete for ike_sa" in text:
        return "phase1_deleted"
    if ("phase 1" in text or "ike_sa" in text) and "established" in text:
        return "phase1_established"
    if "declaring peer dead" in text:
        return "peer_dead"
    if "dpd timed out" in text:
        return "dpd_timeout"
    if "r-u-there" in text or "dpd" in text:
        return "dpd"
    if "pre-shared key" in text:
        return "psk_mismatch"
    if "authentication_failed" in text:
        return "authentication_failed"
    if "no proposal" in text:
        return "no_proposal_chosen"
    if "ts_unacceptable" in text:
        return "traffic_selector_unacceptable"
    if "collision" in text:
        return "rekey_collision"
    if "create_child_sa" in text:
        return "child_sa_exchange"
    return "other"


def _cidrs(text: str) -> str:
    return ",".join(part for part in re.split(r"[\s,]+", text.strip()) if part)


def traffic_selectors(details: str) -> tuple[str, str] | None:
    """``(AWS side, CGW side)`` from a Phase 2 message, each a comma-joined list of CIDRs; None when either is
    longer than MAX_DETAIL (what the log state keeps: a 48 KB list was a label, and dropped on restart), as a
    list cut short would read as a mismatch."""
    match = _SELECTORS.search(details)
    sides = (_cidrs(match.group("aws")), _cidrs(match.group("cgw"))) if match else None
    return sides if sides and max(map(len, sides)) <= MAX_DETAIL else None


def classify_bgp(kind: str, status: str, details: str) -> tuple[str, str | None]:
    """The event type of a BGP log message, and the session state it reports (if any)."""
    text = details.lower()
    if "denied due to" in text:  # AWS: RouteStatus "DENIED due to: <reason>", whatever the layout says of type
        return "bgp_route_denied", None
    if kind == "RouteStatus" or status in ("ADVERTISED", "UPDATED", "WITHDRAWN"):
        if "denied" in text or "deny" in text:
            return "bgp_route_denied", None
        return {
            "ADVERTISED": "bgp_route_advertised",
            "UPDATED": "bgp_route_updated",
            "WITHDRAWN": "bgp_route_withdrawn",
        }.get(status, "bgp_other"), None
    transition = _BGP_TRANSITION.search(details) if "state" in text else None
    if transition:
        before, after = transition.group(1).lower(), transition.group(2).lower()
        after_state = after if after in BGP_STATES else None
        if after == "established":
            return "bgp_established", after_state
        if before == "established":
            return "bgp_session_down", after_state
        return "bgp_state_change", after_state
    if "hold timer expired" in text:
        return "bgp_hold_timer_expired", None
    if "bad open" in text or ("remote as" in text and "expected" in text):
        return "bgp_open_error", None
    if "maximum-prefix" in text or "maximum prefix" in text:
        return ("bgp_max_prefix_exceeded" if "exceed" in text else "bgp_max_prefix_warning"), None
    if "notification" in text or "cease" in text:
        return ("bgp_notification_received" if "received" in text else "bgp_notification_sent"), None
    if "end-of-rib" in text or "end of rib" in text:
        return "bgp_end_of_rib", None
    if "initiating a connection" in text:
        return "bgp_connect_attempt", None
    if "received update" in text:
        return "bgp_update_received", None
    if "open" in text:
        return ("bgp_open_received" if "received" in text else "bgp_open_sent"), None
    return "bgp_other", None


MAX_DETAIL = 200  # characters of evidence kept from one message


def bgp_detail(event: str, details: str, route: dict) -> str:
    """What decides the fix of a BGP error, in a few words; "" when the message holds nothing more."""
    return _bgp_detail(event, details, route)[:MAX_DETAIL]


def _bgp_detail(event: str, details: str, route: dict) -> str:
    if event == "bgp_open_error":
        match = _OPEN_AS.search(details)
        return f"remote AS {match.group(1)}, expected {match.group(2)}" if match else ""
    if event in ("bgp_notification_sent", "bgp_notification_received"):
        match = _CEASE.search(details)
        if not match:
            return ""
        reason = f" ({match.group(2).strip()})" if match.group(2) else ""
        return f"Cease {match.group(1)}{reason} {'received' if event.endswith('received') else 'sent'}"
    if event == "bgp_max_prefix_exceeded":
        match = _PREFIX_COUNT.search(details)
        return f"received {match.group(1)} prefixes, limit {match.group(2)}" if match else ""
    if event == "bgp_route_denied":
        parts = [
            f"{label} {route[key]}"
            for key, label in (("prefix", "prefix"), ("asPath", "AS path"), ("nextHopIp", "next hop"))
            if isinstance(route.get(key), (str, int)) and route[key] != ""
        ]
        match = _DENIED.search(details)
        reason = match.group(1).strip().rstrip(".")[:120] if match else ""
        return ", ".join(parts) + (f": {reason}" if parts and reason else reason)
    return ""


def _check_size(message: object) -> str:
    if not isinstance(message, str):
        raise LogParseError("wrong_type")
    if len(message) > MAX_MESSAGE_BYTES:
        raise LogParseError("too_large")
    if "\x00" in message:
        raise LogParseError("binary")
    return message


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _ike_state(value: object) -> str | None:
    if isinstance(value, str) and value:
        state = value.strip().lower()
        return state if state in IKE_STATES else "unknown"
    return None


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _json_object(message: str) -> dict:
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):
        raise LogParseError("invalid_json") from None
    if not isinstance(data, dict):
        raise LogParseError("wrong_type")
    return data


def _ike_event(details: str, timestamp: float | None, fields: dict, lowered: bool = False) -> LogEvent:
    event = _classify_ike(details if lowered else details.lower())
    return LogEvent(
        event=event,
        timestamp=timestamp,
        phase1=_ike_state(fields.get("phase1")),
        phase2=_ike_state(fields.get("phase2")),
        nat_t=_flag(fields.get("nat_t")),
        dpd=_flag(fields.get("dpd")),
        selectors=traffic_selectors(details) if event == "phase2_established" else None,
        ike_error=event if event in IKE_ERRORS else None,
    )


def parse_ike_json(message: object) -> LogEvent:
    data = _json_object(_check_size(message))
    details = data.get("details", "")
    if not isinstance(details, str):
        raise LogParseError("wrong_type")
    return _ike_event(
        details,
        _number(data.get("event_timestamp")),
        {
            "phase1": data.get("ike_phase1_state"),
            "phase2": data.get("ike_phase2_state"),
            "nat_t": data.get("nat_t_detected"),
            "dpd": data.get("dpd_enabled"),
        },
    )


def _text_fields(message: str, keys: tuple[tuple[str, str, int], ...], lowered: bool = False) -> tuple[dict, str]:
    """Known ``name=value`` / ``name: value`` fields anywhere in a line, and the line without them
    (lower-cased if ``lowered``: the IKE classifier wants it so, and one ``lower()`` is saved).

    The rest is the message: field names must never be read as phrases (``dpd_enabled`` is not a DPD
    event, ``ike_phase1_state=established`` does not establish anything). str.find: 4x a regex scan.
    """
    lower = message.lower()
    fields: dict[str, str] = {}
    spans: list[tuple[int, int]] = []
    for key, name, length in keys:
        if name in fields:
            continue
        position = lower.find(key)
        while position != -1:
            before = lower[position - 1] if position else " "
            if not (before.isalnum() or before == "_"):
                match = _TEXT_VALUE.match(message, position + length)
                if match:
                    fields[name] = match.group(1)
                    spans.append((position, match.end()))
                    break
            position = lower.find(key, position + 1)
    source = lower if lowered else message
    if not spans:
        return fields, source
    spans.sort()
    parts, at = [], 0
    for start, end in spans:
        parts.append(source[at:start])
        at = max(at, end)
    parts.append(source[at:])
    return fields, " ".join(parts)


def _text_timestamp(message: str) -> float | None:
    match = _TEXT_TIMESTAMP.match(message) or _TEXT_TIMESTAMP.search(message)  # usually first in the line
    if not match:
        return None
    try:  # UTC as an offset in the string: 3x faster than datetime.replace(tzinfo=...)
        return datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}+00:00").timestamp()
    except ValueError:
        return None


def parse_ike_text(message: object) -> LogEvent:
    text = _check_size(message)
    if not text.strip():
        raise LogParseError("empty")
    fields, details = _text_fields(text, _IKE_TEXT_KEYS, lowered=True)
    return _ike_event(details, _text_timestamp(text), fields, lowered=True)


def _bgp_event(kind: str, status: str, details: str, timestamp: float | None, route: dict) -> LogEvent:
    event, state = classify_bgp(kind, status, details)
    error = BGP_ERRORS.get(event)
    detail = bgp_detail(event, details, route) if error else None
    if event == "bgp_notification_sent" and detail is not None and detail.startswith(f"Cease {CEASE_MAX_PREFIXES} "):
        error = "max_prefix_exceeded"  # AWS reset the session: the gateway advertised too many prefixes
    return LogEvent(event=event, timestamp=timestamp, bgp_state=state, bgp_error=error, bgp_error_detail=detail)


def parse_bgp_json(message: object) -> LogEvent:
    data = _json_object(_check_size(message))
    kind, status, body = data.get("type", ""), data.get("status", ""), data.get("message")
    if isinstance(body, dict):
        details = body.get("details") or ""
    else:  # AWS's BGP logs of the same schema send "message": null (VPC Route Server)
        details, body = (body if body is not None else ""), {}
    if not all(isinstance(v, str) for v in (kind, status, details)):
        raise LogParseError("wrong_type")
    stamp = _number(data.get("event_timestamp"))
    return _bgp_event(kind, status.upper(), details, stamp / 1000.0 if stamp is not None else None, body)


_TEXT_ROUTE_KEYS = {
    "prefix": "prefix",
    "aspath": "asPath",
    "as_path": "asPath",
    "nexthopip": "nextHopIp",
    "next_hop": "nextHopIp",
}


def parse_bgp_text(message: object) -> LogEvent:
    text = _check_size(message)
    if not text.strip():
        raise LogParseError("empty")
    fields, details = _text_fields(text, _BGP_TEXT_KEYS)
    route = {}
    if "denied" in details.lower():  # rare: only then look for the route's own fields
        route = {_TEXT_ROUTE_KEYS[key.lower()]: value for key, value in _TEXT_ROUTE.findall(details)}
        details = " ".join(_TEXT_ROUTE.sub(" ", details).split())
    kind = _BGP_TYPES.get(fields.get("type", "").lower(), "")
    return _bgp_event(kind, fields.get("status", "").upper(), details, _text_timestamp(text), route)


PARSERS = {
    ("ike", "json"): parse_ike_json,
    ("ike", "text"): parse_ike_text,
    ("bgp", "json"): parse_bgp_json,
    ("bgp", "text"): parse_bgp_text,
}
PARSE_ERROR_REASONS = ("invalid_json", "wrong_type", "too_large", "binary", "empty")


def parse(log: str, output_format: str, message: object) -> LogEvent:
    """Parse one message of a tunnel's ``log`` (ike|bgp) in ``output_format`` (json|text).

    An unset format is guessed from the first character, as AWS's default is JSON.
    """
    if output_format not in ("json", "text"):
        output_format = "json" if isinstance(message, str) and message.lstrip().startswith("{") else "text"
    return PARSERS[(log, output_format)](message)
