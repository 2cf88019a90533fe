"""Text from outside (AWS's tags, log lines, error messages; a client's request line) made safe to show.

Every such string may hold control characters (a terminal's escape sequences, a newline that forges a
line, a carriage return that hides one), bidirectional overrides that reorder what a reader sees, and lone
surrogates that no encoder accepts. ``printable`` replaces exactly those with their Python escapes
(``\\n``, ``\\x1b``, ``\\u202e``, ``\\ud800``), so the result is one visible line that UTF-8 encodes; every other
character is kept, so an honest value reads as it is.
"""

from __future__ import annotations

import html
import re
from typing import Any

# C0 and C1 controls and DEL; surrogates; the line and paragraph separators; the bidirectional marks,
# embeddings, overrides and isolates (Trojan Source). One list for every output: the alert texts take it as
# a Go regular expression (generate/alerting.py).
UNSAFE_RANGES = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0xD800, 0xDFFF),
    (0x2028, 0x2029),
    (0x061C, 0x061C),
    (0x200E, 0x200F),
    (0x202A, 0x202E),
    (0x2066, 0x2069),
)
_UNSAFE = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in UNSAFE_RANGES) + "]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match) -> str:
    char = match.group(0)
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str) -> str:
    """``text`` with every control, separator, bidi control and lone surrogate written as its escape."""
    return _UNSAFE.sub(_escaped, text)


def html_text(value: object, lines: bool = False) -> str:
    """``value`` as printable, HTML-escaped text; with ``lines``, its line breaks are kept (for a ``<pre>``)."""
    text = str(value)
    return html.escape("\n".join(map(printable, text.split("\n"))) if lines else printable(text), quote=True)


def printable_tree(value: Any) -> Any:
    """``printable`` applied to every string in nested dicts, lists and tuples (keys included)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_tree(key): printable_tree(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(printable_tree(item) for item in value)
    return value


# Pre-shared keys come back in DescribeVpnConnections; AWS text (an error message, a log line) quoting one must
# never reach an output.
_REDACTED = "<redacted>"
# Each pattern keeps group "keep" and replaces group "secret".
_SECRET_PATTERNS = (
    # The customer gateway configuration as an XML element (its content is escaped XML).
    re.compile(
        r"(?is)(?P<keep>(?P<lt><|&lt;)customerGatewayConfiguration(?:>|&gt;))(?P<secret>.*?)"
        r"(?=(?P=lt)/customerGatewayConfiguration)"
    ),
    # ... or as a JSON / Python-repr value.
    re.compile(r"(?is)(?P<keep>customerGatewayConfiguration['\"]\s*:\s*(?P<q>['\"]))(?P<secret>(?:\\.|(?!(?P=q)).)*)"),
    # Any pre-shared key field: XML, escaped XML, JSON, Python repr, key=value.
    re.compile(r"(?i)(?P<keep>pre_?shared_?key(?:>|&gt;|['\"]?\s*[:=]\s*['\"]?))(?P<secret>[^<&'\"\s,}]+)"),
)


def redact(text: str) -> str:
    """Replace anything that looks like a pre-shared key or a CGW configuration."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda match: match.group("keep") + _REDACTED, text)
    return text
