"""``aws-vpn-exporter healthcheck``: is the exporter on this host answering? For Docker's HEALTHCHECK.

It works whatever the web config: over TLS when the exporter serves TLS, and with basic auth on, a 401
counts as alive (the probe has no password: the web config holds only bcrypt hashes), as does a TLS
handshake refused for want of a client certificate. In a container, the exporter's own flags are read
from PID 1's command line, so the image's HEALTHCHECK needs no copy of them.
"""

from __future__ import annotations

import argparse
import http.client
import ssl
from pathlib import Path

ALIVE = (200, 401)
SUMMARY = "is the exporter on this host answering? (for Docker's HEALTHCHECK)"


def _flags_of_pid1() -> list[str]:
    """The exporter's own arguments when it runs as PID 1 (a container), else none."""
    try:
        arguments = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []
    return exporter_flags([word.decode("utf-8", "replace") for word in arguments if word])


def exporter_flags(words: list[str]) -> list[str]:
    """The arguments of a command line that runs the exporter, else none (another program's are not ours)."""
    return words[1:] if words and any("aws-vpn-exporter" in word or word == "exporter" for word in words[:3]) else []


def target(argv: list[str], pid1: list[str]) -> tuple[str, str | None]:
    """(listen address, web config file) the probe reads: its own flags, else the exporter's as PID 1."""
    inherited = exporter_flags(pid1)
    parser = argparse.ArgumentParser(prog="aws-vpn-exporter healthcheck", description=SUMMARY[0].upper() + SUMMARY[1:])
    parser.add_argument(
        "--web.listen-address", dest="listen", default=_option(inherited, "--web.listen-address") or "127.0.0.1:9798"
    )
    parser.add_argument("--web.config.file", dest="web_config", default=_option(inherited, "--web.config.file"))
    args = parser.parse_args(argv)
    return args.listen, args.web_config


def _option(words: list[str], name: str) -> str | None:
    for index, word in enumerate(words):
        if word == name and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def probe(listen: str, web_config_path: str | None, timeout: float = 3.0) -> tuple[bool, str]:
    """(alive, what was seen) for the exporter listening on ``listen``."""
    from exporter.web.config import load_web_config
    from exporter.web.server import parse_listen_address

    host, port = parse_listen_address(listen)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    tls = load_web_config(web_config_path).tls is not None if web_config_path else False
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # our own server, on this host
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/-/healthy")
        status = connection.getresponse().status
    except ssl.SSLError as err:
        if "CERTIFICATE_REQUIRED" in str(err).upper():
            return True, "TLS server answered (client certificate required)"
        return False, f"TLS error: {err}"
    except OSError as err:
        return False, f"{type(err).__name__}: {err}"
    finally:
        connection.close()
    return status in ALIVE, f"HTTP {status}"


def main(argv: list[str]) -> int:
    listen, web_config = target(argv, _flags_of_pid1())
    try:
        alive, seen = probe(listen, web_config)
    except Exception as err:  # a bad flag or web config: unhealthy, with the reason
        alive, seen = False, f"{type(err).__name__}: {err}"
    print(f"{'healthy' if alive else 'unhealthy'}: {seen}")
    return 0 if alive else 1
