"""A fault-injecting HTTP proxy in front of moto: the real boto3 path, with AWS failures on demand.

Requests are matched by region (from the SigV4 credential scope) and operation (the EC2 ``Action``
or the JSON ``X-Amz-Target``); a matching request gets an AWS-shaped error or a dropped connection.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape as xml_escape

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass
class Fault:
    region: str | None = None
    operation: str | None = None
    status: int = 403
    code: str = "UnauthorizedOperation"
    reset: bool = False  # drop the connection instead of answering
    delay: float = 0.0  # hang this long, then forward the request (a slow or hung endpoint)
    times: int | None = None  # fail only the first this many matching requests (None: every one)
    message: str = "injected fault"  # AWS's error message (text from AWS: untrusted)
    hits: int = 0

    def matches(self, region: str, operation: str) -> bool:
        return (
            (self.region in (None, region))
            and (self.operation in (None, operation))
            and (self.times is None or self.hits < self.times)
        )


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []  # (region, operation) of every request seen
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                match = _SCOPE.search(self.headers.get("Authorization") or "")
                region = match.group(1) if match else ""
                target = self.headers.get("X-Amz-Target") or ""
                cbor = "/operation/" in self.path  # smithy-rpc-v2-cbor (CloudWatch): the operation is in the path
                operation = (
                    target.rsplit(".", 1)[-1]
                    if target
                    else self.path.rsplit("/", 1)[-1]
                    if cbor
                    else (parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0])
                )
                proxy.requests.append((region, operation))
                for fault in proxy.faults:
                    if fault.matches(region, operation):
                        fault.hits += 1
                        if not fault.delay:
                            return self._fail(fault, "cbor" if cbor else "json" if target else "query")
                        time.sleep(fault.delay)
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
                connection.request("POST", self.path, body, headers)
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "content-length", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST  # noqa: N815

            def _fail(self, fault: Fault, protocol: str):
                if fault.reset:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if protocol == "cbor":
                    data = _cbor_map({"__type": fault.code, "message": fault.message})
                    content_type = "application/cbor"
                elif protocol == "json":
                    data = json.dumps({"__type": fault.code, "message": fault.message}).encode()
                    content_type = "application/x-amz-json-1.1"
                else:
                    data = (
                        f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{fault.code}'
                        f"</Code><Message>{xml_escape(fault.message)}</Message></Error></Errors><RequestID>fault</RequestID>"
                        "</Response>"
                    ).encode()
                    content_type = "text/xml"
                self.send_response(fault.status)
                self.send_header("Content-Type", content_type)
                if protocol == "cbor":
                    self.send_header("smithy-protocol", "rpc-v2-cbor")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


def _cbor_map(items: dict[str, str]) -> bytes:
    """A CBOR map of short text strings (RFC 8949), the error body of the smithy-rpc-v2-cbor protocol."""

    def text(value: str) -> bytes:
        data = value.encode()
        return (bytes([0x60 + len(data)]) if len(data) < 24 else bytes([0x78, len(data)])) + data

    return bytes([0xA0 + len(items)]) + b"".join(text(k) + text(v) for k, v in items.items())


def alter_metric_data(monkeypatch, change) -> None:
    """Let ``change(results)`` rewrite each answer of the simulated CloudWatch's GetMetricData (its
    ``MetricDataResults``) before it is sent: answers AWS could give that the simulation does not (a value no
    byte count can be, timestamps off the grid)."""
    from moto.cloudwatch.responses import CloudWatchResponse

    answer = CloudWatchResponse.get_metric_data

    def get_metric_data(self):
        result = answer(self)
        change(result.result["MetricDataResults"])
        return result

    monkeypatch.setattr(CloudWatchResponse, "get_metric_data", get_metric_data)
