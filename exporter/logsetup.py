"""Logging in logfmt, with pre-shared keys scrubbed from every line.

The model reader already drops secrets; this is the second wall, for what a library may log
(botocore logs whole response bodies at debug level, and EC2's XML carries the keys).
"""

from __future__ import annotations

import logging
import re
import sys
import time

_REDACTED = "<redacted>"
# Each pattern keeps group "keep" and replaces group "secret".
_SECRET_PATTERNS = (
    # The customer gateway configuration as an XML element (its content is escaped XML).
    re.compile(r"(?is)(?P<keep>(?P<lt><|&lt;)customerGatewayConfiguration(?:>|&gt;))(?P<secret>.*?)"
               r"(?=(?P=lt)/customerGatewayConfiguration)"),
    # ... or as a JSON / Python-repr value.
    re.compile(r"(?is)(?P<keep>customerGatewayConfiguration['\"]\s*:\s*(?P<q>['\"]))(?P<secret>(?:\\.|(?!(?P=q)).)*)"),
    # Any pre-shared key field: XML, escaped XML, JSON, Python repr, key=value.
    re.compile(r"(?i)(?P<keep>pre_?shared_?key(?:>|&gt;|['\"]?\s*[:=]\s*['\"]?))(?P<secret>[^<&'\"\s,}]+)"),
)
_NOISY_LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer", "apscheduler", "werkzeug", "moto")


def redact(text: str) -> str:
    """Replace anything that looks like a pre-shared key or a CGW configuration."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda match: match.group("keep") + _REDACTED, text)
    return text


def _logfmt_value(value: str) -> str:
    if value and not any(c in value for c in ' ="\n\t'):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogfmtFormatter(logging.Formatter):
    """``ts=... level=... logger=... msg="..."`` lines, redacted after formatting."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        line = (f"ts={stamp} level={record.levelname.lower()} logger={record.name} "
                f"msg={_logfmt_value(message)}")
        return redact(line)


def configure(level: str = "info", stream=None) -> None:
    """Route all logging through one redacting handler; keep library chatter at warning."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
