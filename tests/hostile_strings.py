"""One corpus of hostile strings, for every output that shows text from outside (AWS or a client).

Each is something AWS accepts in a Name tag, a log line or an error message (or a client sends): lone
surrogates, C0 and C1 controls, terminal escape sequences, line breaks, quotes, braces, backslashes,
bidirectional overrides, PromQL and HTML injections, and a very long string. ``RAW`` lists what must never
reach an output unescaped.
"""

from __future__ import annotations

import re

CORPUS = {
    "lone_surrogate": "site-\ud800-\udfff-end",
    "clear_screen": "\x1b[2J\x1b[Hsite",
    "osc_title": "\x1b]0;owned\x07site",
    "bel": "ring\x07ring",
    "carriage_return": "fake\rsite",
    "newline": "site\nCRITICAL forged-line  vpn-0forged",
    "nul": "nul\x00byte",
    "c1_csi": "c1\x9b31mred",
    "del": "del\x7fchar",
    "tab_vt_ff": "tab\tvt\x0bff\x0c",
    "separators": "line\u2028para\u2029end",
    "bidi_override": "site\u202etxt.exe",
    "bidi_isolate": "a\u2066b\u2069c\u200f",
    "quotes": 'it\'s "quoted" `back`',
    "promql": '"} or vector(1) or x{a="',
    "braces": "{{ .Labels }} {%s} ${x}",
    "backslashes": "back\\slash\\\\\\",
    "html": "<script>alert(1)</script>&amp;",
    "non_ascii": "café ✓ 東京",  # honest, but not for a terminal whose encoding is ASCII
    "long": "x" * 5000 + "\x1b[31m" + "y" * 5000,
}

# Characters that must never appear raw where a hostile string is shown (newline: within one value).
RAW = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def joined() -> str:
    """Every hostile string in one (a Name tag, a message) that carries them all at once."""
    return " | ".join(value for key, value in CORPUS.items() if key != "long")


# What EC2's XML answers cannot carry (XML 1.0 has no way to write them; a CR arrives as an LF).
_NOT_IN_XML = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff]")


def ec2_tag_safe() -> list[str]:
    """The hostile strings a tag on an EC2 resource can hold, as DescribeVpnConnections returns them."""
    return [value for value in CORPUS.values() if not _NOT_IN_XML.search(value)]
