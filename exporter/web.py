"""The HTTP endpoint: /metrics, /-/healthy, /-/ready and a landing page.

A scrape appends the small live registry to the pre-rendered snapshot; it never calls AWS.
With gzip, the pre-compressed snapshot and the freshly compressed live part are sent as two gzip
members, which every gzip reader (Go's included) decodes as one stream.
"""

from __future__ import annotations

import gzip
import html
import logging
import socket
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST

from exporter import __version__
from exporter.metrics import RenderedSnapshot
from exporter.webconfig import WebConfig

log = logging.getLogger(__name__)

_LANDING = """<!doctype html>
<html><head><title>AWS Site-to-Site VPN exporter</title></head>
<body><h1>AWS Site-to-Site VPN exporter</h1>
<p>Version {version}. {status}</p>
<ul><li><a href="/metrics">Metrics</a></li><li><a href="/-/healthy">Health</a></li>
<li><a href="/-/ready">Readiness</a> (ready after the first complete poll)</li></ul>
</body></html>
"""


class ExporterServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's default backlog of 5 drops SYNs when many scrapers connect at once

    def __init__(self, address: tuple[str, int], current: Callable[[], RenderedSnapshot | None],
                 live_metrics: Callable[[], bytes], web_config: WebConfig | None = None):
        self.current = current
        self.live_metrics = live_metrics
        self.web_config = web_config or WebConfig()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        if self.web_config.tls is not None:
            # The handshake runs in each connection's thread, so a slow client never blocks accept().
            self.socket = self.web_config.tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def process_request_thread(self, request, client_address) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(_Handler.timeout)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as err:
                log.debug("tls handshake failed client=%s error=%r", client_address[0], err)
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    server_version = f"aws-vpn-exporter/{__version__}"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # a body goes out in parts; a small last part must not wait for an ACK
    timeout = 30  # seconds a client may stall before its connection is closed

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if not self.server.web_config.authorized(self.headers.get("Authorization")):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="aws-vpn-exporter"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._metrics()
        elif path == "/-/healthy":
            self._send(200, "text/plain; charset=utf-8", b"Healthy.\n")
        elif path == "/-/ready":
            ready = self.server.current() is not None
            self._send(200 if ready else 503, "text/plain; charset=utf-8",
                       b"Ready.\n" if ready else b"Waiting for the first poll.\n")
        elif path == "/":
            rendered = self.server.current()
            status = "Waiting for the first poll." if rendered is None else (
                f"Serving a snapshot of {sum(1 for _ in rendered.snapshot.connections())} VPN connections.")
            body = _LANDING.format(version=html.escape(__version__), status=html.escape(status)).encode()
            self._send(200, "text/html; charset=utf-8", body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"Not found.\n")

    def _metrics(self) -> None:
        rendered = self.server.current()
        live = self.server.live_metrics()
        gzip_ok = "gzip" in (self.headers.get("Accept-Encoding") or "")
        # The snapshot part is sent as it is, never copied into a new ~1 MB buffer per scrape.
        if gzip_ok:
            head = rendered.body_gzip if rendered else b""
            self._send(200, CONTENT_TYPE_LATEST, head, gzip.compress(live, compresslevel=1, mtime=0), encoding="gzip")
        else:
            self._send(200, CONTENT_TYPE_LATEST, rendered.body if rendered else b"", live)

    def _send(self, code: int, content_type: str, *parts: bytes, encoding: str | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(sum(len(part) for part in parts)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        for part in parts:
            self.wfile.write(part)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        log.debug("http %s", format % args)


def parse_listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) into a tuple; ValueError with the reason otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)
