"""The HTTP endpoint: /metrics, /-/healthy, /-/ready and the status page at /.

A scrape appends the small live registry to the pre-rendered snapshot; it never calls AWS.
With gzip, the pre-compressed snapshot and the freshly compressed live part are sent as two gzip
members, which every gzip reader (Go's included) decodes as one stream. Without gzip, the body is
decompressed as it is sent, in chunks, so a client that never reads holds 64 KiB, not 35 MB.

Hostile clients are bounded: at most MAX_CONNECTIONS at once, and a request's line and headers must
arrive within HEADER_DEADLINE in all. When full, the oldest connection still waiting for its headers
is closed to admit the new one: slow-header clients can never starve scrapes, nor take the process's
file descriptors from its AWS calls.
"""

from __future__ import annotations

import gzip
import logging
import socket
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import cast
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST

from exporter.exposition.render import RenderedSnapshot
from exporter.web import statuspage
from exporter.web.config import WebConfig

log = logging.getLogger(__name__)

_LANDING = """<!doctype html>
<html><head><title>AWS Site-to-Site VPN exporter</title></head>
<body><h1>AWS Site-to-Site VPN exporter</h1>
<p>Version {version}. {status}</p>
<ul><li><a href="/metrics">Metrics</a></li><li><a href="/-/healthy">Health</a></li>
<li><a href="/-/ready">Readiness</a> (ready after the first complete poll)</li></ul>
</body></html>
"""


MAX_CONNECTIONS = 256  # open connections at once; the rest of the process keeps its file descriptors
HEADER_DEADLINE = 10.0  # seconds for a request line and all its headers, however slowly they trickle in
PLAIN_CHUNK = 64 * 1024  # bytes of uncompressed exposition sent at a time to a client without gzip


class ExporterServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's default backlog of 5 drops SYNs when many scrapers connect at once

    def __init__(
        self,
        address: tuple[str, int],
        current: Callable[[], RenderedSnapshot | None],
        live_metrics: Callable[[], bytes],
        web_config: WebConfig | None = None,
        reload: Callable[[], str | None] | None = None,
        demo: bool = False,
        organizations: Callable[[], tuple] = tuple,
        runbook_base: Callable[[], str] | None = None,
    ):
        self.current = current
        self.organizations = organizations  # the organizations' latest discovery, for the status page
        self.runbook_base = runbook_base  # where the status page's runbook links point (the config's, after a reload)
        self.demo = demo  # the status page says it shows the simulated AWS
        self.live_metrics = live_metrics
        self.reload = reload  # POST /-/reload; None unless --web.enable-lifecycle
        self.web_config = web_config or WebConfig()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self._connections_lock = threading.Lock()
        self._open: set = set()  # every connection being handled
        self._waiting: dict = {}  # connection -> when it began waiting for a request's headers (oldest first)
        super().__init__(address, _Handler)
        if self.web_config.tls is not None:
            # The handshake runs in each connection's thread, so a slow client never blocks accept().
            self.socket = self.web_config.tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def process_request(self, request, client_address) -> None:
        """Admit a connection, closing the oldest one still waiting for its headers if the server is full."""
        with self._connections_lock:
            if len(self._open) >= MAX_CONNECTIONS:
                victim = next(iter(self._waiting), None)
                if victim is None:  # every connection is being answered: the newcomer waits for none
                    self.shutdown_request(request)
                    return
                self._waiting.pop(victim)
                self._open.discard(victim)  # its thread closes it within moments
                _abort(victim)
            self._open.add(request)
            self._waiting[request] = time.monotonic()
        super().process_request(request, client_address)

    def waiting_for_headers(self, request, waiting: bool) -> None:
        with self._connections_lock:
            if waiting:
                self._waiting[request] = time.monotonic()
            else:
                self._waiting.pop(request, None)

    def shutdown_request(self, request) -> None:
        with self._connections_lock:
            self._open.discard(request)
            self._waiting.pop(request, None)
        super().shutdown_request(request)

    def process_request_thread(self, request, client_address) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(min(_Handler.timeout, HEADER_DEADLINE))
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as err:
                log.debug("tls handshake failed client=%s error=%r", client_address[0], err)
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)

    def handle_error(self, request, client_address) -> None:
        """One logfmt line, never a traceback on stderr, for whatever a client's connection raised."""
        _client_error("failed", client_address[0] if client_address else "", sys.exc_info()[1])


def send(
    handler: BaseHTTPRequestHandler, code: int, content_type: str, *parts: bytes, encoding: str | None = None
) -> None:
    """A whole response with its length; the parts are written as they are, never joined into a new buffer.
    A connection about to be closed says so (``Connection: close``), so the client does not reuse it."""
    handler.send_response(code)
    if handler.close_connection and handler.request_version != "HTTP/1.0":
        handler.send_header("Connection", "close")
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(sum(len(part) for part in parts)))
    if encoding:
        handler.send_header("Content-Encoding", encoding)
    handler.end_headers()
    for part in parts:
        handler.wfile.write(part)


def content_length(headers) -> int | None:
    """A request's ``Content-Length``: 0 when absent, None when it is not a number of bytes, two of them differ,
    or a ``Transfer-Encoding`` frames the body (read by no handler here): the body's end, and so the next
    request's start, is unknown (answer 400 and close)."""
    if headers.get("Transfer-Encoding") is not None:
        return None
    lengths = {text.strip() for text in headers.get_all("Content-Length") or ("0",)}
    text = lengths.pop() if len(lengths) == 1 else ""
    return int(text) if text.isascii() and text.isdigit() else None


class _ClientErrorLog:
    """One logfmt line per client failure, at most one per interval: an attack must not flood the log."""

    INTERVAL = 10.0

    def __init__(self):
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._suppressed = 0

    def __call__(self, what: str, client: str, err: object) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.INTERVAL:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        log.info("client connection %s client=%s error=%r suppressed=%d", what, client, type(err).__name__, suppressed)


_client_error = _ClientErrorLog()


def _abort(connection) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)  # its thread's read fails at once and the thread ends
    except OSError:
        pass


class _DeadlineReader:
    """The request stream, with one deadline for a request line and all its headers (not per read)."""

    def __init__(self, stream, connection, deadline: float):
        self._stream, self._connection, self._deadline = stream, connection, deadline

    def readline(self, limit: int = -1) -> bytes:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request headers took too long")
        self._connection.settimeout(remaining)
        return self._stream.readline(limit)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def accepts_gzip(header: str | None) -> bool:
    """Whether ``Accept-Encoding`` allows gzip: listed (or ``*``) with a q-value above 0."""
    allowed = {}
    for item in (header or "").split(","):
        coding, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        allowed[coding.strip().lower()] = quality
    return allowed.get("gzip", allowed.get("x-gzip", allowed.get("*", 0.0))) > 0


class _Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    server_version = "aws-vpn-exporter"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # a body goes out in parts; a small last part must not wait for an ACK
    timeout = 30  # seconds a client may stall before its connection is closed

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def handle_one_request(self) -> None:
        """Each request's line and headers within HEADER_DEADLINE; then the normal socket timeout."""
        stream = self.rfile
        self.server.waiting_for_headers(self.connection, True)
        # The reader stands in for the stream it wraps (every other attribute is the stream's own).
        self.rfile = cast(BufferedIOBase, _DeadlineReader(stream, self.connection, time.monotonic() + HEADER_DEADLINE))
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError) as err:
            _client_error("closed", self.client_address[0], err)
            self.close_connection = True
        finally:
            self.rfile = stream

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self.server.waiting_for_headers(self.connection, False)
        self.connection.settimeout(self.timeout)
        return parsed

    def _refused(self) -> bool:
        if self.server.web_config.authorized(self.headers.get("Authorization")):
            return False
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="aws-vpn-exporter"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def _skip_body(self, read: bool = True) -> bool:
        """No request body is used, but none may be read as the next request (behind a proxy that keeps the
        connection, a smuggled one): read and dropped (``read``: a small one), or the connection closed after the
        answer; False, once answered 400, when its length is unknown. A GET's is never read: a client announcing
        a body it never sends would hold a thread that no longer counts as waiting for headers."""
        length = content_length(self.headers)
        if length is None:
            self.close_connection = True
            self._send(
                400,
                "text/plain; charset=utf-8",
                b"Content-Length is not a number (or given twice, or with a Transfer-Encoding).\n",
            )
            return False
        if read and 0 < length <= 65536:
            self.server.waiting_for_headers(self.connection, True)  # a body never sent: evictable, as headers are
            try:
                self.rfile.read(length)
            finally:
                self.server.waiting_for_headers(self.connection, False)
        elif length:
            self.close_connection = True
        return True

    def do_POST(self) -> None:  # noqa: N802
        if not self._skip_body():
            return
        if self._refused():
            return
        if self.path.split("?", 1)[0] != "/-/reload":
            self._send(405, "text/plain; charset=utf-8", b"Method not allowed.\n")
        elif self.server.reload is None:
            self._send(403, "text/plain; charset=utf-8", b"Lifecycle API is not enabled (--web.enable-lifecycle).\n")
        else:
            error = self.server.reload()
            self._send(
                200 if error is None else 500,
                "text/plain; charset=utf-8",
                b"Reloaded.\n" if error is None else f"Reload failed: {error}\n".encode(),
            )

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if not self._skip_body(read=False) or self._refused():
            return
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._metrics()
        elif path == "/-/healthy":
            self._send(200, "text/plain; charset=utf-8", b"Healthy.\n")
        elif path == "/-/ready":
            ready = self.server.current() is not None
            self._send(
                200 if ready else 503,
                "text/plain; charset=utf-8",
                b"Ready.\n" if ready else b"Waiting for the first poll.\n",
            )
        elif path == "/":
            self._status_page()
        else:
            self._send(404, "text/plain; charset=utf-8", b"Not found.\n")

    def _status_page(self) -> None:
        rendered = self.server.current()
        try:
            body = statuspage.render(
                rendered.snapshot if rendered else None,
                demo=self.server.demo,
                page=_page_number(self.path),
                discovery=self.server.organizations(),
                filters=statuspage.Filters.from_query(self.path.partition("?")[2]),
                runbook_base=self.server.runbook_base() if self.server.runbook_base else statuspage.RUNBOOK_BASE,
            ).encode()
        except Exception:  # isolation: a value the page cannot show never costs /metrics or the server
            log.exception("status page failed")
            self._send(
                500, "text/plain; charset=utf-8", b"The status page failed; see the log. /metrics is unaffected.\n"
            )
            return
        self._send(200, "text/html; charset=utf-8", body)

    def _metrics(self) -> None:
        rendered = self.server.current()
        live = self.server.live_metrics()
        # The snapshot part is sent as it is, never copied into a new ~1 MB buffer per scrape.
        if accepts_gzip(self.headers.get("Accept-Encoding")):
            head = rendered.body_gzip if rendered else b""
            self._send(200, CONTENT_TYPE_LATEST, head, gzip.compress(live, compresslevel=1, mtime=0), encoding="gzip")
        else:
            self._send_plain(rendered.body_gzip if rendered else b"", live)

    def _send_plain(self, body_gzip: bytes, tail: bytes) -> None:
        """The exposition decompressed chunk by chunk as the client reads it (chunked transfer encoding)."""
        chunked = self.request_version != "HTTP/1.0"  # an HTTP/1.0 body ends when the connection closes
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.close_connection = True
        self.end_headers()

        def write(data: bytes) -> None:
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)

        decompressor = zlib.decompressobj(31)
        for start in range(0, len(body_gzip), PLAIN_CHUNK // 8):
            data = decompressor.decompress(body_gzip[start : start + PLAIN_CHUNK // 8], PLAIN_CHUNK)
            while data:
                write(data)
                data = decompressor.decompress(decompressor.unconsumed_tail, PLAIN_CHUNK)
        write(decompressor.flush())
        write(tail)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _send(self, code: int, content_type: str, *parts: bytes, encoding: str | None = None) -> None:
        send(self, code, content_type, *parts, encoding=encoding)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        log.debug("http %s", format % args)


def _page_number(path: str) -> int:
    """``page`` of the query string, 1 when absent or not a positive number (the page clamps it)."""
    value = parse_qs(path.partition("?")[2]).get("page", ["1"])[0]
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else 1


def parse_listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) into a tuple; ValueError with the reason otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)
