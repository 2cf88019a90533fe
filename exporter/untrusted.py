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
# embeddings, overrides and isolates (Trojan Source).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
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
