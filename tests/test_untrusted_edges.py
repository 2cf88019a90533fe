"""Where untrusted text still reached an output after the first pass (tests/test_untrusted_text.py): a
pre-shared key quoted as JSON survived the log's redaction once logfmt had escaped its quotes, a 1 MB
message made a 1 MB log line, the alert sink wrote a label into an unquoted attribute, and discovery took
an account id or a region name with a trailing newline (or other scripts' digits) as a valid one."""

from __future__ import annotations

import io
import json
import logging
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from exporter import logsetup
from exporter.config import Organization
from exporter.sources.aws import describe_error
from exporter.sources.discovery import OrganizationDiscovery
from exporter.sources.logs.parse import MAX_DETAIL, parse_ike_json
from generate.alerting import UNSHOWABLE
from tests.hostile_strings import CORPUS, RAW, joined
from tests.services import alert_sink

SECRET = "abc123SECRETkey"


def _logged(*args, error: BaseException | None = None, level: str = "info") -> str:
    stream = io.StringIO()
    logsetup.configure(level, stream)
    try:
        if error is None:
            logging.getLogger("exporter.test").warning(*args)
        else:
            try:
                raise error
            except type(error):
                logging.getLogger("exporter.test").exception(*args)
    finally:
        logsetup.configure("warning")
    return stream.getvalue()


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"PreSharedKey": SECRET, "TunnelInsideCidr": "169.254.1.0/30"}),
        json.dumps(
            {
                "CustomerGatewayConfiguration": f"<vpn><ike><pre_shared_key>{SECRET}</pre_shared_key></ike></vpn>",
                "CustomerGatewayId": "cgw-1",
            }
        ),
        repr({"PreSharedKey": SECRET, "Note": "it's"}),
    ],
)
def test_a_key_quoted_as_json_is_redacted_in_the_message_and_in_an_error(body):
    """logfmt escapes a message's quotes before the line is redacted: ``"PreSharedKey": "..."`` became
    ``\\"PreSharedKey\\": \\"...\\"``, which no pattern matched, so the key was written out."""
    for level in ("info", "debug"):  # debug adds the whole traceback
        text = _logged("describe answered body=%s", body, level=level)
        assert SECRET not in text and "<redacted>" in text, text
        text = _logged("poll failed", error=RuntimeError(f"unexpected answer {body}"), level=level)
        assert SECRET not in text and "<redacted>" in text, text


def test_a_key_beyond_the_cut_of_a_long_error_is_still_redacted():
    """The configuration's XML is redacted up to its closing tag: cutting first left no closing tag."""
    body = (
        "<customerGatewayConfiguration>"
        + "&lt;x&gt;" * 40
        + SECRET
        + "&lt;y&gt;" * 100
        + "</customerGatewayConfiguration>"
    )
    text = _logged("poll failed", error=RuntimeError(body))
    assert SECRET not in text and SECRET[:8] not in text, text


@pytest.mark.parametrize("key", ["long", "lone_surrogate", "clear_screen"])
def test_a_log_line_is_bounded_whatever_the_message_holds(key):
    """An alert's label, an account's error or a Name tag of a megabyte is one line of a few kilobytes."""
    hostile = CORPUS[key] * (1_000_000 // len(CORPUS[key]))
    text = _logged("notification alertname=%s", hostile)
    assert text.count("\n") == 1 and not RAW.search(text[:-1]), repr(RAW.search(text[:-1]))
    assert len(text) <= logsetup.MAX_VALUE_CHARS + 200, len(text)
    assert "more characters" in text  # says that it was cut, and by how much
    short = _logged("notification alertname=%s", "VpnTunnelDown")
    assert "more characters" not in short and "alertname=VpnTunnelDown" in short


def test_the_alert_sink_quotes_every_attribute_it_fills():
    """The severity cell's class was written unquoted: a space in the label added attributes of its own."""
    hostile = "x onmouseover=alert(1) " + joined()
    alert = {"status": "firing", "labels": {"alertname": "A", "severity": hostile}, "annotations": {}}
    with alert_sink() as url:
        assert requests.post(f"{url}/page", data=json.dumps({"alerts": [alert]}), timeout=5).status_code == 200
        body = requests.get(f"{url}/", timeout=5).text
    attributes = _attributes(body)
    assert attributes and all(
        names <= {"class", "href", "charset", "http-equiv", "content", "border"} for names in attributes
    ), attributes
    assert 'class="x onmouseover=alert(1) ' in body


def _attributes(body: str) -> list[set[str]]:
    """The attribute names of every element, as a browser's parser reads them."""
    found: list[set[str]] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append({name for name, _ in attrs})

    Parser().feed(body)
    return found


def _discovery(unrecognized: Counter) -> OrganizationDiscovery:
    return OrganizationDiscovery(
        Organization(role_name="VpnExporter"),
        lambda *a, **k: None,
        BotoConfig(),
        ThreadPoolExecutor(1),
        lambda field: unrecognized.update([field]),
    )


@pytest.mark.parametrize("account_id", ["123456789012\n", "١٢٣٤٥٦٧٨٩٠١٢", "12345678901\u0662"])
def test_discovery_refuses_an_account_id_that_only_looks_like_twelve_digits(account_id):
    """``^\\d{12}$`` matched "123456789012\\n" ($ before a final newline) and twelve Arabic-Indic digits: an
    account_id label, a role ARN and a page line with a newline or another script in them."""
    unrecognized = Counter()
    found = _discovery(unrecognized)._classify({"Id": account_id, "State": "ACTIVE"}, set())
    assert found[0] is None and unrecognized["account_id"] == 1
    assert _discovery(Counter())._classify({"Id": "123456789012", "State": "ACTIVE"}, set())[0] == "123456789012"


class _Regions:
    def __init__(self, names):
        self.names = names

    def client(self, service, region):
        return self

    def describe_regions(self, AllRegions):  # noqa: N803 (boto3's name)
        return {"Regions": [{"RegionName": name, "OptInStatus": "opt-in-not-required"} for name in self.names]}


def test_discovery_refuses_a_region_name_with_a_newline_or_other_digits():
    unrecognized = Counter()
    regions = _discovery(unrecognized)._enabled_regions(_Regions(["eu-west-1", "us-east-1\n", "us-east-\u0661"]))
    assert regions == ("eu-west-1",) and unrecognized["region_name"] == 2


def _phase2(aws_side: str) -> str:
    return json.dumps(
        {
            "event_timestamp": 1_700_000_000,
            "ike_phase2_state": "established",
            "details": "AWS tunnel Phase 2 SA is established with inbound SPI: 0xcbf7f2e3: outbound SPI: "
            f"0xc9be76cd: traffic selectors: (AWS-side) {aws_side} <=> (CGW-side) 10.0.0.0/8",
        }
    )


def test_a_logged_selector_list_longer_than_the_state_keeps_is_not_taken():
    """A 48 KB list of CIDRs in one Phase 2 line became a 48 KB label (traffic_selector_info, the status page,
    the page's cause), and the saved state holding it failed its check on restart (fact dropped, logged as
    invalid). Cut short it would read as a mismatch: it is not taken at all."""
    long = ",".join(f"10.{i // 256}.{i % 256}.0/24" for i in range(3500))
    assert parse_ike_json(_phase2(long)).selectors is None
    assert parse_ike_json(_phase2("10.1.0.0/16, 10.2.0.0/16")).selectors == ("10.1.0.0/16,10.2.0.0/16", "10.0.0.0/8")
    fits = ",".join(f"10.{i}.0.0/16" for i in range(MAX_DETAIL // 13))
    assert len(fits) <= MAX_DETAIL and parse_ike_json(_phase2(fits)).selectors == (fits, "10.0.0.0/8")


def test_an_error_code_from_aws_is_bounded_like_its_message():
    """The message was cut at MAX_ERROR_MESSAGE, the code was not: a megabyte code (from a proxy, or a JSON
    error body) went whole into the status page, ``diagnose`` and every failure's log line."""
    code = "Throttling" + "\x1b[2J\n" * 200_000
    described = describe_error(
        ClientError({"Error": {"Code": code, "Message": CORPUS["newline"]}}, "DescribeVpnConnections")
    )
    assert len(described) < 500 and "\n" not in described, len(described)
    assert described.startswith("Throttling\x1b[2J \x1b[2J") and "CRITICAL forged-line" in described


def test_the_alert_texts_replace_every_character_the_other_outputs_escape():
    """The rules' own list (a Go character class) missed U+061C, the Arabic letter mark the status page and
    the log escape: one list now serves both (exporter/untrusted.py)."""
    go_class = re.compile(re.sub(r"\\x\{([0-9a-f]+)\}", lambda m: f"\\U{int(m.group(1), 16):08x}", UNSHOWABLE))
    unsafe = [chr(code) for code in range(0x3000) if RAW.match(chr(code)) and not 0xD800 <= code <= 0xDFFF]
    assert "\u061c" in unsafe and [char for char in unsafe if not go_class.match(char)] == []
    assert not go_class.search('café ✓ 東京 "} {{ }} \\')
    rules = (Path(__file__).parent.parent / "alerts" / "aws-vpn.rules.yml").read_text()
    assert rules.count(UNSHOWABLE) > 20  # the generated rules carry it
