"""A small Alertmanager webhook receiver: the stack's visible "pager", and the end-to-end test's.

``python -m exporter.alert_sink --web.listen-address 0.0.0.0:9099`` keeps the latest notifications
in memory, logs each one, and shows them at ``/`` (HTML) and ``/notifications`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from exporter import logsetup
from exporter.untrusted import html_text
from exporter.web.server import content_length, parse_listen_address, send

log = logging.getLogger("exporter.alert_sink")
MAX_BODY_BYTES = 1 << 20
REFRESH_SECONDS = 10
HEALTH_PATH = "/-/healthy"  # the path `aws-vpn-exporter healthcheck` probes, as on the exporter


class AlertSink(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], keep: int = 500):
        self.notifications: deque = deque(maxlen=keep)  # (received at, receiver path, payload)
        self.lock = threading.Lock()
        super().__init__(address, _Handler)

    def received(self) -> list[tuple[float, str, dict]]:
        with self.lock:
            return list(self.notifications)


class _Handler(BaseHTTPRequestHandler):
    server: AlertSink

    def do_POST(self) -> None:  # noqa: N802
        length = content_length(self.headers)
        if length is None:
            return send(self, 400, "text/plain", b"Content-Length is not a number\n")
        if length > MAX_BODY_BYTES:
            return send(self, 413, "text/plain", b"too large\n")
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return send(self, 400, "text/plain", b"not JSON\n")
        with self.server.lock:
            self.server.notifications.append((time.time(), self.path, payload))
        for alert in payload.get("alerts", []):
            labels = alert.get("labels", {})
            log.info(
                "notification receiver=%s status=%s severity=%s alertname=%s vpn_connection_id=%s tunnel=%s",
                self.path.strip("/"),
                alert.get("status"),
                labels.get("severity"),
                labels.get("alertname"),
                labels.get("vpn_connection_id", ""),
                labels.get("tunnel", ""),
            )
        send(self, 200, "text/plain", b"ok\n")

    def do_GET(self) -> None:  # noqa: N802
        if self.path == HEALTH_PATH:  # the stack's health check: cheap, whatever has been received
            return send(self, 200, "text/plain", b"ok\n")
        received = self.server.received()
        if self.path.startswith("/notifications"):
            body = json.dumps(
                [{"received_at": at, "receiver": path, "payload": payload} for at, path, payload in received], indent=2
            ).encode()
            return send(self, 200, "application/json", body)
        rows = "".join(
            _row(at, path, alert) for at, path, payload in reversed(received) for alert in payload.get("alerts", [])
        )
        page = (
            f"<!doctype html><meta charset=utf-8><meta http-equiv=refresh content={REFRESH_SECONDS}>"
            "<title>Alert sink</title><style>td{vertical-align:top} .critical{color:#b00} "
            "pre{white-space:pre-wrap;margin:0;max-width:70em}</style><h1>Notifications from Alertmanager</h1>"
            f"<p>Newest first; this page refreshes every {REFRESH_SECONDS} s.</p>"
            "<table border=1><tr><th>UTC</th><th>receiver</th><th>status</th><th>severity</th><th>alert</th>"
            f"<th>what and why</th></tr>{rows}</table>"
        ).encode()
        send(self, 200, "text/html; charset=utf-8", page)

    def log_message(self, *args) -> None:
        pass


def _row(at: float, path: str, alert: dict) -> str:
    """One alert of a notification: what fired, where, the diagnosed cause and the runbook link."""
    labels, annotations = alert.get("labels", {}), alert.get("annotations", {})
    severity = labels.get("severity", "")
    runbook = annotations.get("runbook_url", "")
    link = f'<br><a href="{html_text(runbook)}">runbook</a>' if str(runbook).startswith(("https://", "http://")) else ""
    cause = annotations.get("cause") or annotations.get("fix") or ""
    return (
        f"<tr><td>{time.strftime('%H:%M:%S', time.gmtime(at))}</td><td>{html_text(path)}</td>"
        f"<td>{html_text(alert.get('status', ''))}</td>"
        f'<td class="{html_text(severity)}">{html_text(severity)}</td>'
        f"<td>{html_text(labels.get('alertname', ''))}</td>"
        f"<td>{html_text(annotations.get('description', ''))}<pre>{html_text(cause, lines=True)}</pre>{link}</td></tr>"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.alert_sink", description=__doc__.splitlines()[0])
    parser.add_argument("--web.listen-address", dest="listen", default="127.0.0.1:9099")
    args = parser.parse_args(argv)
    logsetup.configure("info")
    sink = AlertSink(parse_listen_address(args.listen))
    log.info("listening address=%s", args.listen)
    sink.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
