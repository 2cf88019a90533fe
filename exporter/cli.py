"""Command line: ``aws-vpn-exporter [--config FILE | --demo] [--web.listen-address HOST:PORT]``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from exporter import __version__, logsetup
from exporter.config import Config, ConfigError, LogsConfig, load_config
from exporter.web import parse_listen_address

DEFAULT_LISTEN = "127.0.0.1:9798"
DEMO_POLL_INTERVAL = 10.0

log = logging.getLogger("exporter")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aws-vpn-exporter",
        description="Prometheus exporter for AWS Site-to-Site VPN tunnels.")
    parser.add_argument("--config", "--config.file", dest="config", metavar="FILE",
                        help="YAML configuration file (see README)")
    parser.add_argument("--config.check", dest="check", action="store_true",
                        help="validate the configuration and exit")
    parser.add_argument("--demo", action="store_true",
                        help="run against the built-in simulated AWS (no account needed)")
    parser.add_argument("--web.listen-address", dest="listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help=f"address for /metrics (default {DEFAULT_LISTEN})")
    parser.add_argument("--log.level", dest="log_level", default="info",
                        choices=["debug", "info", "warning", "error"])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _load(args: argparse.Namespace) -> Config | None:
    if args.config:
        return load_config(args.config)
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.configure(args.log_level)
    try:
        listen = parse_listen_address(args.listen)
    except ValueError as err:
        print(f"error: --web.listen-address: {err}", file=sys.stderr)
        return 2
    try:
        config = _load(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.check:
        if config is None:
            print("error: --config.check needs --config FILE", file=sys.stderr)
            return 2
        print(f"{config.source}: OK ({len(config.targets)} targets)")
        return 0
    if config is None and not args.demo:
        print("error: pass --config FILE to watch AWS, or --demo to try the built-in simulated AWS",
              file=sys.stderr)
        return 2

    demo = None
    if args.demo:
        from exporter.demo.environment import DemoEnvironment

        demo = DemoEnvironment().start()
        os.environ.update(demo.aws_environment())
        # A simulated AWS starts afresh each time, so its log cursors live in a fresh directory too.
        base = config or Config(targets=(), poll_interval=DEMO_POLL_INTERVAL, poll_timeout=DEMO_POLL_INTERVAL - 1,
                                logs=LogsConfig(poll_interval=DEMO_POLL_INTERVAL),
                                state_dir=Path(tempfile.mkdtemp(prefix="aws-vpn-exporter-demo-")))
        config = replace(base, targets=demo.targets(), source="<demo>")
    return _serve(config, listen, demo)


def _serve(config: Config, listen: tuple[str, int], demo) -> int:
    from exporter.app import Exporter

    try:
        exporter = Exporter(config, listen)
    except OSError as err:
        print(f"error: cannot listen on {listen[0]}:{listen[1]}: {err.strerror}", file=sys.stderr)
        return 1
    if demo is not None:
        exporter.add_job(demo.apply, 5, "demo-apply")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    exporter.start()
    stop.wait()
    log.info("shutting down")
    exporter.stop()
    if demo is not None:
        demo.stop()
    return 0
