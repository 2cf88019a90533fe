"""The status page at /: what it says in each state, escaping, its bounds at scale, and a real browser."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from exporter.config import Target
from exporter.diagnosis.findings import FINDINGS, runbook_url
from exporter.diagnosis.rules import diagnosed
from exporter.model import Connection, HistoryDay, Observation, RegionTelemetry, Snapshot, SourceResult, Tunnel
from exporter.web import statuspage
from tests.conftest import add_vpn_connection, tunnel_telemetry

NOW = 1_800_000_000.0
HOSTILE = "<script>alert(1)</script>\"&'"


def tunnel(ip: str, up: bool = True) -> Tunnel:
    return Tunnel(
        ip,
        "UP" if up else "DOWN",
        "bgp_routes" if up else "ipsec_down",
        5 if up else 0,
        NOW - 7200,
        up,
        up,
        "169.254.1.0/30",
    )


def connection(vpn: str, name: str, *tunnels: Tunnel) -> Connection:
    return Connection(vpn, name, "available", "dynamic", "vgw", "vgw-1", "cgw-1", False, tunnels=tunnels)


def snapshot(connections, results=None, completed_at: float = NOW) -> Snapshot:
    region = RegionTelemetry("123456789012", "us-east-1", tuple(connections))
    results = results if results is not None else (SourceResult("123456789012", "us-east-1", "ec2", True, 0.2, NOW),)
    return diagnosed(Observation(completed_at, (region,), tuple(results)))


class _Text(HTMLParser):
    """The page's visible text, as a person (or a screen reader) gets it without CSS."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script", "title")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script", "title")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def text_of(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return re.sub(r"\s+", " ", "".join(parser.parts))


def test_waiting_for_the_first_poll():
    page = statuspage.render(None, now=NOW)
    assert "Waiting for the first poll" in text_of(page)
    assert f'<meta http-equiv="refresh" content="{statuspage.WAITING_REFRESH_SECONDS}">' in page
    assert 'href="/metrics"' in page and "<script" not in page


def test_headline_connections_worst_first_and_findings():
    healthy = connection("vpn-0a", "alpha", tunnel("192.0.2.1"), tunnel("192.0.2.2"))
    one_down = connection("vpn-0b", "bravo", tunnel("192.0.2.3"), tunnel("192.0.2.4", up=False))
    down = connection("vpn-0c", "charlie", tunnel("192.0.2.5", up=False), tunnel("192.0.2.6", up=False))
    page = statuspage.render(snapshot([healthy, one_down, down]), now=NOW)
    text = text_of(page)
    assert "2 of 3 VPN connections need attention." in text
    assert f'<meta http-equiv="refresh" content="{statuspage.REFRESH_SECONDS}">' in page
    assert text.index("charlie") < text.index("bravo") < text.index("alpha")  # critical, warning, fine
    assert "3 of 6 tunnels UP" in text
    assert "IPSEC IS DOWN" in text and "5 BGP ROUTES" in text and "2h ago" in text
    for code in ("connection_down", "redundancy_lost"):
        assert FINDINGS[code].remedy in text and FINDINGS[code].summary in text
        assert f'href="{runbook_url(code)}"' in page
    assert "tunnel_logging_disabled" in text  # info: shown, though it needs no attention
    assert "Snapshot taken 0s ago" in text and "1 of 1 sources succeeded" in text
    fine = statuspage.render(snapshot([healthy]), now=NOW + 90)
    assert "All 1 VPN connections are fine." in text_of(fine) and "Snapshot taken 1m ago" in text_of(fine)


def test_values_from_aws_are_escaped():
    error = f"AccessDenied: {HOSTILE}"
    results = (SourceResult("123456789012", "us-east-1", "ec2", False, 1.0, NOW - 600, error),)
    page = statuspage.render(snapshot([connection("vpn-0a", HOSTILE, tunnel("192.0.2.1", up=False))], results), now=NOW)
    assert "<script>" not in page and "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;&#x27;" in page
    assert text_of(page).count(HOSTILE) >= 3  # the connection, the findings table, the failure banner


def test_every_source_failing_is_said_with_the_errors_and_the_data_marked_stale():
    results = (
        SourceResult("123456789012", "us-east-1", "ec2", False, 5.0, NOW - 3600, "throttled (RequestLimitExceeded)"),
        SourceResult("123456789012", "us-east-1", "logs", False, 1.0, NOW - 7200, "AccessDeniedException"),
    )
    page = statuspage.render(snapshot([connection("vpn-0a", "alpha", tunnel("192.0.2.1"))], results), now=NOW)
    text = text_of(page)
    assert 'role="alert"' in page
    assert "Collection is failing: every source (2) failed on the latest poll" in text
    assert "The data below is stale: it is from the last successful collection, 1h ago" in text
    assert "throttled (RequestLimitExceeded)" in text and "AccessDeniedException" in text
    assert "0 of 2 sources succeeded" in text and "FAILED" in text
    assert text.index("Collection is failing") < text.index("VPN connections")  # before everything else
    assert "Stale data: all 1 VPN connections are fine." in text

    never = (SourceResult("123456789012", "us-east-1", "ec2", False, 5.0, None, "no credentials"),)
    text = text_of(statuspage.render(snapshot([], never), now=NOW))
    assert "No source has ever succeeded: there is no data to show." in text and "no credentials" in text
    assert "No VPN connections found" not in text and "No active findings" not in text  # nothing was read
    assert "No AWS call has succeeded (1 sources failed)" in text

    some = results[:1] + (SourceResult("123456789012", "eu-west-1", "ec2", True, 0.3, NOW),)
    text = text_of(statuspage.render(snapshot([], some), now=NOW))
    assert "Collection is failing" not in text and "1 of 2 sources succeeded" in text
    assert (
        "1 of 2 sources failed on the latest poll: what they last collected is still shown, the oldest from 1h ago"
        in text
    )


def test_large_snapshots_are_paged_worst_first():
    many = [
        connection(
            f"vpn-{i:05d}",
            f"site-{i:05d}",
            tunnel(f"10.0.{i // 200}.{i % 200}"),
            tunnel(f"10.1.{i // 200}.{i % 200}", up=i % 50 != 0),
        )
        for i in range(250)
    ]
    shot = snapshot(many)
    first = text_of(statuspage.render(shot, now=NOW))
    assert "5 of 250 VPN connections need attention." in first
    assert "Showing 1–100 of 250 (page 1 of 3)" in first
    assert "site-00000" in first and "site-00200" in first  # the 5 that need attention come first
    # each shown connection once, those that need attention in the "do first" table too; the findings table
    # names 5 per code (redundancy lost, logging off)
    assert first.count("site-0") == 100 + 5 + 5 + 5
    last = statuspage.render(shot, now=NOW, page=3)
    assert "Showing 201–250 of 250 (page 3 of 3)" in text_of(last) and 'href="/?page=2#connections"' in last
    assert text_of(statuspage.render(shot, now=NOW, page=99)) == text_of(last)


def test_render_time_at_10000_tunnels():
    """The page is built per request: at 10,000 tunnels, all of them with findings, it stays far under a second
    (benchmarks/status_page.py prints the figures; about 25 ms median on the 2-core CI machine)."""
    import sys
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from scrape import synthetic_snapshot
    from status_page import worst_case

    shot = worst_case(synthetic_snapshot(10_000))
    assert len(shot.findings) >= 10_000
    start = time.perf_counter()
    page = statuspage.render(shot)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, elapsed
    assert len(page) < 500_000 and "5,000 of 5,000 VPN connections need attention." in page


def test_served_at_root_with_a_hostile_name_tag(aws, make_exporter):
    add_vpn_connection(
        "us-east-1", [tunnel_telemetry("192.0.2.10", "DOWN", "IPSEC IS UP")], {"StaticRoutesOnly": False}, name=HOSTILE
    )
    exporter = make_exporter([Target(regions=("us-east-1",))])
    exporter.poll_once()
    page = requests.get(exporter.url + "/", timeout=10).text
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;&#x27;" in page
    assert HOSTILE in text_of(page) and "IPSEC IS UP" in text_of(page)


# --- a real browser -----------------------------------------------------------------------------------


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium")
    assert binary, "chromium is installed by scripts/test (Debian package chromium)"
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )


def png_rows(data: bytes, rows: int) -> tuple[int, list[bytes]]:
    """The first ``rows`` rows of an 8-bit RGB or RGBA PNG, unfiltered (stdlib only): (bytes per pixel, rows)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, header = 8, [], None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunk = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        offset += 12 + length
    width, _height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompressobj().decompress(b"".join(idat), rows * (stride + 1))
    out, previous = [], bytearray(stride)
    for y in range(rows):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up, corner = previous[x], previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + left) & 255
            elif kind == 2:
                line[x] = (line[x] + up) & 255
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        out.append(bytes(line))
        previous = line
    return bpp, out


def test_a_real_browser_shows_the_demo(demo, make_exporter, tmp_path):
    exporter = make_exporter(demo.targets())
    exporter.server.demo = True  # as the CLI's --demo sets it
    exporter.poll_once()
    url = exporter.url + "/"

    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = text_of(dom.stdout)
    assert re.search(r"\d of 9 VPN connections need attention\.", text), text[:500]
    assert "simulated AWS" in text
    assert "branch-tokyo" in text and "198.51.100.21" in text and "IPSEC IS UP" in text
    assert FINDINGS["ipsec_up_bgp_down"].remedy in text
    assert f'href="{runbook_url("ipsec_up_bgp_down")}"' in dom.stdout
    assert "sources succeeded" in text and 'href="/metrics"' in dom.stdout

    screenshot = tmp_path / "status.png"
    shot = chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2000", "--hide-scrollbars", url)
    assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-2000:]
    data = screenshot.read_bytes()
    assert len(data) > 50_000, len(data)  # a blank 1280x2000 page compresses to a few KiB
    bpp, rows = png_rows(data, 150)  # the heading, the demo note and the headline
    pixels = {row[x : x + 3] for row in rows[::5] for x in range(0, len(row), bpp * 7)}
    assert len(pixels) >= 5, pixels  # text, background, the coloured headline: not a single colour
    headline = {row[x : x + 3] for row in rows[120:150] for x in range(0, 400 * bpp, bpp)}
    assert any(r > g + 40 and r > b + 40 for r, g, b in headline), headline  # the red "need attention" band


def test_every_source_failing_on_the_real_path_is_ready_and_said(aws, faults, make_exporter):
    """/-/ready is 200 once a poll completed, even one where every source failed; / says what failed."""
    from exporter.config import AwsSettings, LogsConfig
    from tests.faults import Fault

    add_vpn_connection(
        "us-east-1",
        [tunnel_telemetry("192.0.2.10", "UP", "2 BGP ROUTES", 2)],
        {"StaticRoutesOnly": False},
        name="east-site",
    )
    exporter = make_exporter(
        [Target(regions=("us-east-1",))], aws=AwsSettings(max_attempts=1), logs=LogsConfig(enabled=False)
    )
    faults.faults.append(Fault(operation="DescribeVpnConnections", status=403, code="UnauthorizedOperation"))
    exporter.poll_once()
    assert requests.get(exporter.url + "/-/ready", timeout=5).status_code == 200
    text = text_of(requests.get(exporter.url + "/", timeout=5).text)
    assert "Collection is failing: every source (1) failed on the latest poll" in text
    assert "No source has ever succeeded" in text and "UnauthorizedOperation" in text

    faults.faults.clear()
    exporter.poll_once()
    faults.faults.append(Fault(operation="DescribeVpnConnections", status=403, code="UnauthorizedOperation"))
    exporter.poll_once()
    text = text_of(requests.get(exporter.url + "/", timeout=5).text)
    assert "The data below is stale: it is from the last successful collection, 0s ago" in text
    assert "Stale data: all 1 VPN connections are fine." in text and "east-site" in text


def test_a_tunnels_cause_is_the_action_and_the_lists_are_critical_first():
    """The cause (a warning) is what to do now; the lists under it read critical, warning, info."""
    from dataclasses import replace

    from exporter.model import Finding

    stuck = replace(tunnel("192.0.2.9", up=False), ipsec_up=True, status_message="ipsec_up")
    taken = snapshot([connection("vpn-0c", "charlie", stuck)])
    causes = (Finding("123456789012", "us-east-1", "vpn-0c", "192.0.2.9", "bgp_stuck_connecting", (), "warning"),)
    page = statuspage.render(replace(taken, findings=taken.findings + causes), now=NOW)
    action = text_of(re.search(r"<div class=\"action[^>]*>.*?</div>", page, re.S).group(0))
    stuck_spec = FINDINGS["bgp_stuck_connecting"]
    assert action.startswith(f"Do now: {stuck_spec.title} (tunnel 192.0.2.9). Fix: {stuck_spec.remedy}")
    assert "check in this order" not in action  # one cause: nothing to tell apart
    connection_list = text_of(re.search(r'<ul class="found">.*?</ul>', page, re.S).group(0))
    table = text_of(page[page.index('<h2 id="findings"') : page.index('<h2 id="sources"')])
    for listed in (connection_list, table):
        severities = re.findall(r"\b(critical|warning|info)\b", listed)
        assert severities == sorted(severities, key=("critical", "warning", "info").index), severities
        assert listed.index(FINDINGS["ipsec_up_bgp_down"].title) < listed.index(stuck_spec.title)
        assert listed.index(stuck_spec.title) < listed.index(FINDINGS["tunnel_logging_disabled"].title)


def test_regions_with_no_connection_are_counted_not_listed_unless_they_fail():
    """An organization watched with ``regions: all`` has mostly empty regions: their rows would bury the ones
    that matter."""
    results = (
        SourceResult("123456789012", "us-east-1", "ec2", True, 0.2, NOW),
        *(SourceResult("123456789012", region, "ec2", True, 0.1, NOW) for region in ("eu-west-2", "sa-east-1")),
        SourceResult("123456789012", "ap-south-1", "ec2", False, 5.0, NOW - 600, "AccessDenied"),
    )
    text = text_of(statuspage.render(snapshot([connection("vpn-0a", "alpha", tunnel("192.0.2.1"))], results), now=NOW))
    assert "3 of 4 sources succeeded" in text
    assert "us-east-1ec2ok" in text and "ap-south-1ec2FAILED" in text  # listed: a busy region, a failure
    assert "eu-west-2" not in text and "sa-east-1" not in text
    assert "2 sources of account and region pairs with no VPN connection succeeded (not listed)." in text


def test_the_organizations_discovery_is_said():
    from exporter.sources.discovery import OrganizationView

    views = (
        OrganizationView(
            "111111111111",
            True,
            NOW - 120,
            accounts={"watched": 40, "inactive": 2},
            account_success={"222222222222": True, "333333333333": False},
            owned_pairs=160,
        ),
        OrganizationView("444444444444", False, None, "AccessDeniedException: ListAccounts <b>"),
    )
    page = statuspage.render(snapshot([connection("vpn-0a", "alpha", tunnel("192.0.2.1"))]), now=NOW, discovery=views)
    text = text_of(page)
    assert (
        "Accounts listed from 111111111111: 2 inactive, 40 watched; this replica polls 160 account and region "
        "pairs; listed 2m ago. 1 account could not be read (its role or DescribeRegions): 333333333333."
    ) in text
    assert "never listed. The latest listing failed: AccessDeniedException: ListAccounts <b>; the last good" in text
    assert "<b>;" not in page  # AWS's words are escaped
    assert "Organization discovery" not in text_of(statuspage.render(snapshot([]), now=NOW))


def test_the_demo_page_says_what_discovery_found(demo, make_exporter):
    exporter = make_exporter((), organizations=(demo.organization(),))
    exporter.poll("discovery")
    exporter.poll_once()
    text = text_of(requests.get(f"{exporter.url}/", timeout=10).text)
    assert "Accounts listed from 123456789012: 1 inactive, 2 watched; this replica polls" in text


def test_ages_after_a_wall_clock_step_are_measured_on_the_monotonic_clock(monkeypatch):
    """A step of the wall clock after a poll (NTP, a VM resumed) does not age the page's data by the step: the
    snapshot's age is the monotonic time since it was taken, and the sources' ages are counted from it."""
    results = (SourceResult("123456789012", "us-east-1", "ec2", False, 5.0, NOW - 3600, "timeout"),)
    taken = replace(snapshot([connection("vpn-0a", "alpha", tunnel("192.0.2.1"))], results), completed_monotonic=5000.0)
    monkeypatch.setattr(statuspage.time, "monotonic", lambda: 5600.0)  # ten minutes after the poll
    for step in (-2 * 3600.0, 2 * 3600.0):  # and the wall clock stepped 2 h meanwhile
        text = text_of(statuspage.render(taken, now=NOW + 600 + step))
        assert "Snapshot taken 10m ago" in text, step
        assert "The data below is stale: it is from the last successful collection, 1h ago" in text, step


# --- the 30-day strip ------------------------------------------------------------------------------------

REF = ("123456789012", "us-east-1", "vpn-0a")
TODAY = datetime.fromtimestamp(NOW, tz=timezone.utc).date()  # 2027-01-15


def history(*days: tuple[float, float, float, int]) -> tuple[HistoryDay, ...]:
    """HistoryDays from (observed, unavailable, unredundant seconds, flaps), the last one today (oldest first)."""
    return tuple(
        HistoryDay((TODAY - timedelta(days=len(days) - 1 - i)).isoformat(), *values) for i, values in enumerate(days)
    )


def with_history(shot: Snapshot, days: dict) -> Snapshot:
    return replace(shot, history=days)


def cells(page: str) -> list[tuple[str, str]]:
    """(class, title) of each strip cell, in order ("u" for an up day's, which has no class)."""
    return [(css or "u", title) for css, title in re.findall(r'<i(?: class="(\w)")? title="([^"]*)"></i>', page)]


FULL = 86400.0


@pytest.mark.parametrize(
    ("day", "css", "title"),
    [
        ((0.0, 0.0, 0.0, 0), "n", "no data"),
        ((0.0, 600.0, 0.0, 3), "n", "no data"),  # nothing observed: whatever else it says
        ((FULL, 0.0, 0.0, 0), "u", "up"),
        ((3600.0, 0.0, 0.0, 0), "u", "up"),  # today, so far
        ((FULL, 0.0, 0.0, 1), "g", "degraded, 1 flap"),
        ((FULL, 0.0, 65.0, 0), "g", "degraded, 1m05s without redundancy, no flap"),
        ((FULL, 2520.0, 3900.0, 4), "d", "down, 42m00s unavailable, 1h05m without redundancy, 4 flaps"),
        ((FULL, 1.0, 0.0, 0), "d", "down, 0m01s unavailable, no flap"),
        ((FULL, float("nan"), -5.0, -1), "u", "up"),  # nonsense counts read as nothing
        ((FULL, float("inf"), 0.0, 0), "d", "down, 24h00m unavailable, no flap"),  # no more than a day holds
    ],
)
def test_a_days_cell_says_its_state_by_colour_and_its_downtime_and_flaps_in_its_title(day, css, title):
    page = statuspage.render(
        with_history(snapshot([connection("vpn-0a", "alpha", tunnel("192.0.2.1"))]), {REF: history(day)}), now=NOW
    )
    shown = cells(page)
    assert len(shown) == 30 and shown[-1] == (css, f"2027-01-15: {title}")
    assert shown[:-1] == [("n", f"{(TODAY - timedelta(days=29 - i)).isoformat()}: no data") for i in range(29)]
    assert f"2027-01-15: {title}</li>" in page  # the same day as text, for a screen reader or without CSS
    assert "<script" not in page


def test_the_strip_spans_the_last_30_days_and_says_them_as_text():
    days = history(
        *([(FULL, 0.0, 0.0, 0)] * 31),
        (FULL, 0.0, 600.0, 2),
        (FULL, 2520.0, 3900.0, 3),
        (0.0, 0.0, 0.0, 0),
        (3600.0, 0.0, 0.0, 0),
    )
    days = (HistoryDay("2027-01-16", FULL, FULL, 0.0, 9), HistoryDay("not a day", 1.0, 1.0, 0.0, 0)) + days  # ignored
    shot = with_history(
        snapshot([connection("vpn-0a", "alpha", tunnel("192.0.2.1"), tunnel("192.0.2.2"))]), {REF: days}
    )
    page = statuspage.render(shot, now=NOW)
    shown = cells(page)
    assert [css for css, _ in shown] == ["u"] * 26 + ["g", "d", "n", "u"]
    assert shown[0][1] == "2026-12-17: up" and shown[-1][1] == "2027-01-15: up"
    text = text_of(page)
    assert "Last 30 days: 1 day degraded, 1 down (42m00s), 5 flaps; no data on 1 day" in text
    assert (
        "2026-12-17 to 2027-01-11: up"
        "2027-01-12: degraded, 10m00s without redundancy, 2 flaps"
        "2027-01-13: down, 42m00s unavailable, 1h05m without redundancy, 3 flaps"
        "2027-01-14: no data"
        "2027-01-15: up"
    ) in text
    assert '<details class="days"><summary><span class="strip" aria-hidden="true">' in page  # the text is read once
    assert text.index("Last 30 days") < text.index("Tunnel")  # under the connection's heading, before its tunnels


def test_without_a_history_there_is_no_strip_and_no_error():
    plain = snapshot(
        [connection("vpn-0a", "alpha", tunnel("192.0.2.1")), connection("vpn-0b", "bravo", tunnel("192.0.2.3"))]
    )
    for days in ({}, {REF: ()}, {("123456789012", "us-east-1", "vpn-gone"): history((FULL, 0.0, 0.0, 0))}):
        page = statuspage.render(with_history(plain, days), now=NOW)
        assert "Last 30 days" not in page and 'class="strip"' not in page and "alpha" in page
    one = text_of(statuspage.render(with_history(plain, {REF: history((FULL, 0.0, 0.0, 0))}), now=NOW))
    assert one.count("Last 30 days") == 1 and "up every observed day, no flap; no data on 29 days" in one


def test_the_strip_escapes_the_connection_it_belongs_to_and_drops_a_day_that_is_not_a_date():
    from tests.hostile_strings import RAW, joined

    hostile = joined()
    ref = ("123456789012", "us-east-1", hostile)
    days = (
        HistoryDay(f'2027-01-14"><script>{hostile}', FULL, 0.0, 0.0, 1),  # not a date: left out
        *history((FULL, 0.0, 0.0, 1)),
        HistoryDay("2027-W02-5", FULL, FULL, 0.0, 0),  # 2027-01-15 as an ISO week date: the latest entry wins
        HistoryDay("2027-01-15", None, 0.0, 0.0, 0),  # type: ignore[arg-type]  # not a count: left out
    )
    page = statuspage.render(
        with_history(snapshot([connection(hostile, hostile, tunnel("192.0.2.1"))]), {ref: days}), now=NOW
    )
    assert "<script>" not in page and not RAW.search(page.replace("\n", ""))
    assert len(cells(page)) == 30 and cells(page)[-2:] == [
        ("n", "2027-01-14: no data"),
        ("d", "2027-01-15: down, 24h00m unavailable, no flap"),
    ]
    assert "2027-W02-5" not in page


def test_the_strips_stay_small_at_a_page_of_connections():
    """At a full page (PAGE_SIZE connections, each with 30 days of history), the strips add a bounded amount per
    connection: about 1.3 KiB when most days were up, under 3 KiB when every day was degraded alike, under 5.5 KiB
    when every day was bad in its own way (the tooltips and the text both say each bad day). benchmarks/status_page.py prints the page's sizes at 9 and 400 connections."""
    rows = [connection(f"vpn-{i:05d}", f"site-{i:05d}", tunnel(f"10.0.0.{i}")) for i in range(statuspage.PAGE_SIZE)]
    plain = snapshot(rows)
    bad = [(FULL, 0.0, 600.0, 2), (FULL, 2520.0, 3900.0, 3)]
    cases = (
        (history(*([(FULL, 0.0, 0.0, 0)] * 28), *bad), 1536),  # mostly up
        (history(*([(FULL, 0.0, FULL, 0)] * 30)), 3072),  # one tunnel configured: 30 degraded tooltips, one line
        (history(*((FULL, 60.0 * i, 3900.0, i % 7) for i in range(30))), 5632),  # every day bad, each its own
    )
    for days, budget in cases:
        full = with_history(plain, {("123456789012", "us-east-1", c.vpn_connection_id): days for c in rows})
        added = len(statuspage.render(full, now=NOW)) - len(statuspage.render(plain, now=NOW))
        assert 0 < added < budget * statuspage.PAGE_SIZE, (added / statuspage.PAGE_SIZE, budget)


@pytest.mark.slow  # starts Chromium
def test_a_real_browser_draws_the_strip(tmp_path):
    days = history(*([(FULL, 0.0, 0.0, 0)] * 27), (FULL, 0.0, 600.0, 2), (FULL, 2520.0, 0.0, 3), (0.0, 0.0, 0.0, 0))
    shot = with_history(
        snapshot([connection("vpn-0a", "alpha", tunnel("192.0.2.1"), tunnel("192.0.2.2"))]), {REF: days}
    )
    html = tmp_path / "page.html"
    html.write_text(statuspage.render(shot, now=NOW))
    dom = chromium(tmp_path, "--dump-dom", html.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'title="2027-01-14: down, 42m00s unavailable, 3 flaps"' in dom.stdout
    screenshot = tmp_path / "strip.png"
    taken = chromium(
        tmp_path, f"--screenshot={screenshot}", "--window-size=900,500", "--hide-scrollbars", html.as_uri()
    )
    assert taken.returncode == 0 and screenshot.exists(), taken.stderr[-2000:]
    bpp, rows = png_rows(screenshot.read_bytes(), 500)
    pixels: dict[bytes, int] = {}
    for row in rows:
        for x in range(0, len(row), bpp):
            pixels[row[x : x + 3]] = pixels.get(row[x : x + 3], 0) + 1

    def area(colour: str) -> int:  # pixels of this colour, give or take a little colour management
        want = bytes.fromhex(colour)
        return sum(n for rgb, n in pixels.items() if all(abs(a - b) <= 6 for a, b in zip(rgb, want, strict=True)))

    up, degraded, down = area("2da44e"), area("d4a72c"), area("cf222e")
    assert degraded > 20 and down > 20, (degraded, down)  # a cell is about 9 x 18 px
    assert up > 8 * degraded  # 27 short green cells (a third of the height) against one amber one


# --- the on-call reading: what to do now, folding, filters, nothing read ------------------------------------

BRANCH_TOKYO_CAUSES = ("bgp_stuck_connecting", "traffic_selectors_mismatch", "static_cgw_on_dynamic_connection")


def branch_tokyo_like(*others: Connection) -> Snapshot:
    """Both tunnels down with IPsec up and three causes on each, given in the wrong order; then ``others``."""
    from exporter.model import Finding

    stuck = [
        replace(tunnel(ip, up=False), ipsec_up=True, status_message="ipsec_up") for ip in ("192.0.2.21", "192.0.2.22")
    ]
    shot = snapshot([connection("vpn-0t", "branch-tokyo", *stuck), *others])
    causes = tuple(
        Finding("123456789012", "us-east-1", "vpn-0t", t.outside_ip, code, ("evidence",), FINDINGS[code].severity)
        for code in BRANCH_TOKYO_CAUSES
        for t in stuck
    )
    return replace(shot, findings=shot.findings + causes)


def action_of(page: str) -> str:
    return text_of(re.search(r'<div class="action[^>]*>.*?</div>', page, re.S).group(0))


def test_the_action_line_says_what_to_do_first_and_how_to_tell_the_causes_apart():
    page = statuspage.render(branch_tokyo_like(), now=NOW)
    action = action_of(page)
    first, second, third = (FINDINGS[c] for c in reversed(BRANCH_TOKYO_CAUSES))  # the catalogue's ranking
    assert action.startswith(f"Do now: {first.title} (tunnels 192.0.2.21, 192.0.2.22). Fix: {first.remedy}")
    assert "3 causes fit the same evidence; check in this order:" in action
    assert action.index(first.tell_apart) < action.index(second.tell_apart) < action.index(third.tell_apart)
    assert all(spec.tell_apart for spec in (first, second, third))
    # named in words; the code is only a small link
    assert '<a class="code" href="#finding-static_cgw_on_dynamic_connection">' in page
    assert "Do now: static_cgw" not in action
    # the same ranking in diagnose
    from exporter.diagnosis.report import build_report

    step = build_report(branch_tokyo_like())["connections"][0]["next_step"]
    assert step["code"] == "static_cgw_on_dynamic_connection"
    assert step["check_in_order"] == list(reversed(BRANCH_TOKYO_CAUSES))
    # and the "do first" table at the top names it, linked to the section
    glance = text_of(page[page.index('<table class="glance"') : page.index('<section class="conn"')])
    assert "branch-tokyo" in glance and f"{first.title} (tunnels 192.0.2.21, 192.0.2.22) (or 2 other causes)" in glance
    assert 'href="#conn-1"' in page and '<section class="conn" id="conn-1">' in page


def test_a_cause_on_another_tunnel_is_a_next_step_not_a_rival():
    from exporter.model import Finding

    both = snapshot([connection("vpn-0a", "alpha", tunnel("192.0.2.1", up=False), tunnel("192.0.2.2", up=False))])
    found = (
        Finding("123456789012", "us-east-1", "vpn-0a", "192.0.2.1", "ike_authentication_failed", (), "warning"),
        Finding("123456789012", "us-east-1", "vpn-0a", "192.0.2.2", "ike_proposal_mismatch", (), "warning"),
    )
    action = action_of(statuspage.render(replace(both, findings=both.findings + found), now=NOW))
    assert action.startswith(f"Do now: {FINDINGS['ike_authentication_failed'].title} (tunnel 192.0.2.1).")
    assert "check in this order" not in action
    assert f"Then: {FINDINGS['ike_proposal_mismatch'].title} (tunnel 192.0.2.2)." in action


def test_without_a_cause_the_worst_symptom_is_what_to_do():
    down = snapshot([connection("vpn-0a", "alpha", tunnel("192.0.2.1", up=False), tunnel("192.0.2.2", up=False))])
    action = action_of(statuspage.render(down, now=NOW))  # connection down; tunnel logging off (info) too
    assert action.startswith(f"Do now: {FINDINGS['connection_down'].title}. Fix: {FINDINGS['connection_down'].remedy}")


def test_connections_needing_no_attention_are_folded_to_one_line_after_the_problems():
    fine = [
        connection(f"vpn-1{i}", f"fine-{i}", tunnel(f"192.0.2.{i + 30}"), tunnel(f"192.0.2.{i + 40}")) for i in range(3)
    ]
    page = statuspage.render(branch_tokyo_like(*fine), now=NOW)
    assert page.count('<section class="conn"') == 1  # the problem, in full
    folded = re.search(r'<ul class="folded">(.*?)</ul>', page, re.S).group(1)
    lines = re.findall(r"<li>.*?</li>\n", folded, re.S)
    assert len(lines) == 3 and all(line.count("\n") == 1 for line in lines)
    assert "fine-0" in folded and "2/2 tunnels UP" in text_of(folded) and "<table" not in folded
    assert page.index("branch-tokyo") < page.index('<ul class="folded">')
    assert "3 connections needing no attention (one line each)" in text_of(page)


def many_connections(count: int) -> Snapshot:
    accounts = ("111111111111", "222222222222")
    regions = []
    for a, account in enumerate(accounts):
        for region in ("us-east-1", "eu-west-1"):
            conns = tuple(
                connection(
                    f"vpn-{account[0]}{region[:2]}{i:04d}",
                    f"{region[:2]}-site-{account[0]}-{i:04d}",
                    tunnel(f"10.{a}.{i // 200}.{i % 200}"),
                    tunnel(f"10.9.{i // 200}.{i % 200}", up=i % 10 != 0),
                )
                for i in range(count // 4)
            )
            regions.append(RegionTelemetry(account, region, conns))
    results = tuple(SourceResult(r.account_id, r.region, "ec2", True, 0.2, NOW) for r in regions)
    return diagnosed(Observation(NOW, tuple(regions), results))


def shown_ids(page: str) -> set[str]:
    return set(re.findall(r'<code class="code">(vpn-[^<]*)</code>', page))


def test_each_filter_narrows_the_connections_and_the_pager_keeps_them():
    shot = many_connections(400)
    every = set().union(*(shown_ids(statuspage.render(shot, now=NOW, page=p)) for p in range(1, 5)))
    assert len(every) == 400

    def only(query: str, page: int = 1) -> str:
        return statuspage.render(shot, now=NOW, page=page, filters=statuspage.Filters.from_query(query))

    ids = shown_ids(only("account=222222222222"))
    assert ids and all(i.startswith("vpn-2") for i in ids)
    assert 'value="222222222222" selected' in only("account=222222222222")
    ids = shown_ids(only("region=eu-west-1"))
    assert ids and all(i[5:7] == "eu" for i in ids)
    warned = only("severity=warning")
    assert "40 of 400 connections match the filters" in text_of(warned)
    assert len(shown_ids(warned)) == 40 and warned.count('<section class="conn"') == 40
    assert "connections needing no attention" not in text_of(only("severity=warning"))
    assert '<section class="conn"' not in only("severity=info") and "0 of 400" in text_of(only("severity=fine"))
    searched = only("q=SITE-1-0007")  # a substring, case-insensitive
    assert shown_ids(searched) == {"vpn-1us0007", "vpn-1eu0007"}
    combined = only("account=111111111111&region=us-east-1&severity=info&q=site")
    assert "90 of 400 connections match the filters" in text_of(combined)
    # 200 of an account: two pages, the pager's links keep the filters
    first = only("account=111111111111")
    assert "page 1 of 2" in text_of(first) and 'href="/?account=111111111111&amp;page=2#connections"' in first
    second = only("account=111111111111", page=2)
    assert shown_ids(second) and all(i.startswith("vpn-1") for i in shown_ids(second))
    assert not shown_ids(first) & shown_ids(second)


@pytest.mark.parametrize(
    "query",
    [
        "account=999999999999",  # well-formed, not watched
        "account=12&region=mars-north-9&severity=catastrophic",
        "region=" + HOSTILE,
        "severity=" + HOSTILE,
        "account=" + "1" * 5000,
        "page=2&page=3&account=<b>",
    ],
)
def test_unknown_filter_values_are_ignored(query):
    shot = many_connections(40)
    page = statuspage.render(shot, now=NOW, filters=statuspage.Filters.from_query(query))
    assert shown_ids(page) == shown_ids(statuspage.render(shot, now=NOW))
    assert "match the filters" not in text_of(page) and "<b>" not in page and "<script>" not in page


def test_a_hostile_or_oversized_search_is_escaped_and_bounded():
    from urllib.parse import quote

    shot = many_connections(40)
    filters = statuspage.Filters.from_query("q=" + quote(HOSTILE + "\x1b[31m\x00" + "x" * 10_000))
    assert len(filters.q) == statuspage.SEARCH_MAX and "\x1b" not in filters.q and "\x00" not in filters.q
    page = statuspage.render(shot, now=NOW, filters=filters)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;&#x27;" in page
    assert "0 of 40 connections match the filters" in text_of(page)
    assert len(page) < len(statuspage.render(shot, now=NOW)) + 2 * statuspage.SEARCH_MAX * 6
    assert statuspage.Filters.from_query("q=" + "y" * 100_000).q == "y" * statuspage.SEARCH_MAX  # read QUERY_MAX
    assert statuspage.Filters.from_query("q=" + "y" * 100).q == "y" * statuspage.SEARCH_MAX


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        ("NoCredentialsError: Unable to locate credentials", "set AWS credentials (AWS_PROFILE"),
        ("AccessDenied (UnauthorizedOperation)", "check the IAM policy"),
        ("ExpiredToken: the security token included in the request is expired", "renew the exporter's AWS credentials"),
        ("EndpointConnectionError: could not connect", "check the exporter can reach AWS's endpoints"),
        (HOSTILE, "read the errors below"),
    ],
)
def test_when_no_source_has_succeeded_the_page_says_what_failed_and_what_to_do(error, fix):
    results = tuple(
        SourceResult("123456789012", region, source, False, 0.1, None, error)
        for region in ("us-east-1", "eu-west-1")
        for source in ("ec2", "logs")
    )
    page = statuspage.render(snapshot([], results), now=NOW)
    text = text_of(page)
    headline = text_of(re.search(r'<p class="headline[^>]*>.*?</p>', page, re.S).group(0))
    assert headline.startswith("No AWS call has succeeded (4 sources failed): " + fix) and error in headline
    assert '<p class="headline bad"' in page and "<script>" not in page
    assert "Nothing could be read, so nothing could be diagnosed." in text
    for reassuring in ("No VPN connections found", "No active findings", "are fine"):
        assert reassuring not in text
    assert 'class="ok"' not in page.replace('<td class="ok">ok</td>', "")  # nothing green


def test_no_active_findings_is_not_said_in_green_when_a_source_failed():
    results = (
        SourceResult("123456789012", "us-east-1", "ec2", True, 0.2, NOW),
        SourceResult("123456789012", "us-east-1", "logs", False, 0.2, None, "AccessDeniedException"),
    )
    plain = replace(tunnel("192.0.2.1"), ike_log=replace(tunnel("192.0.2.1").ike_log, enabled=True))
    shot = snapshot([connection("vpn-0a", "alpha", plain)], results)
    text = text_of(statuspage.render(replace(shot, findings=()), now=NOW))
    assert "No active findings" not in text and "None in what could be read" in text


def test_the_page_at_400_connections_stays_bounded():
    """A page holds PAGE_SIZE connections whatever the total; every one needing attention (the worst case)
    costs a bounded amount each (benchmarks/status_page.py --connections 9 400 prints the figures)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from status_page import exactly, with_history, worst_case

    mostly_fine = statuspage.render(exactly(400))  # 24 need attention: the rest of the page's 100 are one line each
    worst = statuspage.render(with_history(worst_case(exactly(400))))
    assert "need attention" in worst and "Showing 1–100 of 400 (page 1 of 4)" in text_of(worst)
    assert len(mostly_fine) < 80_000 and len(worst) < 450_000, (len(mostly_fine), len(worst))  # about 70 and 390 KB
    assert worst.count('<section class="conn"') == statuspage.PAGE_SIZE


def test_the_server_applies_the_forms_query_to_the_page():
    import threading
    from urllib.parse import quote

    from exporter.exposition.render import RenderedSnapshot
    from exporter.web.server import ExporterServer

    shot = many_connections(40)
    rendered = RenderedSnapshot(shot, b"")
    server = ExporterServer(("127.0.0.1", 0), lambda: rendered, lambda: b"")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        page = requests.get(url + "?region=eu-west-1&severity=warning&q=site", timeout=10).text
        assert shown_ids(page) == {"vpn-1eu0000", "vpn-2eu0000"}
        assert "2 of 40 connections match the filters" in text_of(page)
        hostile = requests.get(url + "?q=" + quote(HOSTILE) + "&account=" + quote(HOSTILE), timeout=10)
        assert hostile.status_code == 200 and "<script>" not in hostile.text
        assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;&#x27;"' in hostile.text
    finally:
        server.shutdown()
        server.server_close()


def test_an_error_that_says_its_own_fix_is_the_headlines_first_step_said_once():
    from exporter.model import SourceResult

    error = "no AWS credentials (NoCredentialsError); to fix: give the exporter credentials: AWS_PROFILE"
    headline = statuspage._nothing_read([SourceResult("unknown", "us-east-1", "sts", False, 0.1, None, error)])
    assert headline == (
        "No AWS call has succeeded (1 sources failed): give the exporter credentials: AWS_PROFILE. "
        "Last error: no AWS credentials (NoCredentialsError)"
    )
    assert headline.count("AWS_PROFILE") == 1
