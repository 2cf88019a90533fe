"""Logging in logfmt, with pre-shared keys scrubbed from every line.

The model reader already drops secrets; this is the second wall, for what a library may log
(botocore logs whole response bodies at debug level, and EC2's XML carries the keys).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
import traceback
from pathlib import Path

from exporter.untrusted import printable, redact

_NOISY_LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug", "moto")
MAX_VALUE_CHARS = 8192  # a logged value (a message, an error, a traceback) is cut here: a 1 MB tag is not a line
_ESCAPED_CHAR = re.compile(r"\\(?:u[0-9a-f]{4}|x[0-9a-f]{2}|.)|.", re.DOTALL)  # one character, as written


def _logfmt_value(value: str) -> str:
    """A logfmt value: redacted, then quoted when it must be, always one line of printable text (a message
    carries what AWS and clients sent: escape sequences, CRs, lone surrogates), cut to MAX_VALUE_CHARS.

    Redacted first: escaping writes a JSON key's quotes as ``\\"``, which the patterns no longer match, and
    a cut can drop the closing tag a configuration's pattern needs."""
    value = redact(value)
    if value and len(value) <= MAX_VALUE_CHARS and not any(c in value for c in ' ="\\') and printable(value) == value:
        return value
    escaped = printable(value[:MAX_VALUE_CHARS].replace("\\", "\\\\").replace('"', '\\"'))
    if len(escaped) > MAX_VALUE_CHARS or len(value) > MAX_VALUE_CHARS:  # cut between escapes, never inside one
        kept, size = [], 0
        for char in _ESCAPED_CHAR.finditer(escaped):
            size += len(char.group())
            if size > MAX_VALUE_CHARS:
                break
            kept.append(char.group())
        escaped = "".join(kept) + f"... ({len(value) - len(kept)} more characters)"
    return '"' + escaped + '"'


class LogfmtFormatter(logging.Formatter):
    """``ts=... level=... logger=... msg="..."`` lines: each value redacted, and the whole line again."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        line = (
            f"ts={stamp} level={record.levelname.lower()} logger={record.name} msg={_logfmt_value(record.getMessage())}"
        )
        if record.exc_info and record.exc_info[1] is not None:
            line += " " + exception_fields(record.exc_info[1])
            if logging.getLogger().isEnabledFor(logging.DEBUG):  # the whole traceback only when asked for
                line += f" traceback={_logfmt_value(self.formatException(record.exc_info))}"
        return redact(line)


def exception_fields(err: BaseException) -> str:
    """An exception as logfmt fields on the same line: ``error="Kind: message" where=file.py:123`` (the
    innermost frame), never a multi-line traceback that log pipelines split into unrelated lines."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f" where={Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    text = " ".join(redact(f"{type(err).__name__}: {err}").split())[:500]  # redacted before the cut
    return f"error={_logfmt_value(text)}{where}"


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
    threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    """A thread's uncaught exception (a library's worker, say) as one redacted logfmt line, not a traceback."""
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread else "?"
    # The exception itself: logging takes its type and traceback from it (the formatter shows nothing without one).
    logging.getLogger("exporter").error("uncaught exception thread=%s", thread, exc_info=args.exc_value)
