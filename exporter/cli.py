"""Command line: ``aws-vpn-exporter [--config FILE | --demo] [--web.listen-address HOST:PORT]``, and the
``diagnose`` and ``healthcheck`` subcommands."""

from __future__ import annotations

import argparse
import faulthandler
import io
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from exporter import __version__, logsetup, memory
from exporter.config import Config, ConfigError, LogsConfig, TrafficConfig, TunnelStatusConfig, load_config
from exporter.healthcheck import SUMMARY as HEALTHCHECK_SUMMARY
from exporter.report.command import SUMMARY as REPORT_SUMMARY
from exporter.web.config import load_web_config
from exporter.web.server import parse_listen_address

DEFAULT_LISTEN = "127.0.0.1:9798"
DEMO_POLL_INTERVAL = 10.0
# The simulated AWS has no request bucket to share: its per-tunnel status is asked every minute, quickly.
DEMO_TUNNEL_STATUS = TunnelStatusConfig(interval=60.0, max_calls_per_second=20.0)
# The simulated AWS bills nothing: the demo shows tunnel traffic, read every minute (AWS publishes every 5).
DEMO_TRAFFIC = TrafficConfig(enabled=True, interval=60.0)
DEMO_EXTRA_INSTALL = "pip install 'aws-vpn-exporter[demo]'"  # moto: --demo and diagnose --demo
SIGNAL_CHECK_INTERVAL = 0.2  # seconds between the main thread's checks for a shutdown signal

log = logging.getLogger("exporter")

DIAGNOSE_SUMMARY = "collect once and print each connection's cause, evidence and next step, worst first"
EXIT_STATUS = (
    "exit status: 0 nothing critical; 3 a critical finding is active; 4 partly read: no critical finding, but "
    "a source failed or an --vpn-connection-id matched nothing; 5 nothing could be read: every source of "
    "every account and region failed (credentials, network, permissions: the message says what to do); "
    "1 a configuration error; 2 a usage error."
)


def build_parser() -> argparse.ArgumentParser:
    commands = {"diagnose": DIAGNOSE_SUMMARY, "healthcheck": HEALTHCHECK_SUMMARY, "report": REPORT_SUMMARY}
    parser = argparse.ArgumentParser(
        prog="aws-vpn-exporter",
        usage="%(prog)s [options]\n       %(prog)s {diagnose,healthcheck,report} [options]",
        description="Prometheus exporter for AWS Site-to-Site VPN tunnels.",
        epilog="commands (each with its own --help):\n"
        + "\n".join(f"  {name:<13}{summary}" for name, summary in commands.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        "--config.file",
        dest="config",
        metavar="FILE",
        help="YAML configuration file (see docs/configuration.md)",
    )
    parser.add_argument("--config.check", dest="check", action="store_true", help="validate the configuration and exit")
    parser.add_argument(
        "--demo", action="store_true", help="run against the built-in simulated AWS (no account needed)"
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address for /metrics (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config",
        metavar="FILE",
        help="TLS and basic auth, in the exporter-toolkit web config format (see docs/security.md)",
    )
    parser.add_argument(
        "--web.enable-lifecycle",
        dest="lifecycle",
        action="store_true",
        help="accept POST /-/reload (SIGHUP always reloads the config)",
    )
    parser.add_argument("--log.level", dest="log_level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _load(args: argparse.Namespace) -> Config | None:
    if args.config:
        return load_config(args.config)
    return None


def _print_problems(*errors: ConfigError) -> None:
    """Every problem of the configuration files, one ``error: FILE: KEY: REASON`` line each."""
    for err in errors:
        for problem in err.problems:
            print(f"error: {problem}", file=sys.stderr)


def build_diagnose_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aws-vpn-exporter diagnose",
        description=DIAGNOSE_SUMMARY[0].upper() + DIAGNOSE_SUMMARY[1:] + ".",
        epilog=EXIT_STATUS,
    )
    parser.add_argument("--config", "--config.file", dest="config", metavar="FILE")
    parser.add_argument("--demo", action="store_true", help="diagnose the built-in simulated AWS")
    parser.add_argument(
        "--vpn-connection-id",
        dest="ids",
        action="append",
        default=[],
        metavar="ID_OR_NAME",
        help="only this connection, by id or exact Name tag (every match of a Name; repeatable)",
    )
    parser.add_argument("--output", choices=["text", "json"], default="text")
    parser.add_argument("--no-color", dest="no_color", action="store_true", help="never colour the text output")
    parser.add_argument(
        "--log.level", dest="log_level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    return parser


def diagnose_main(argv: list[str]) -> int:
    """One collection in the foreground, printed for a person (or a script with --output json)."""
    import json

    from exporter.app import Exporter
    from exporter.diagnosis.report import build_report, exit_code, render_text

    args = build_diagnose_parser().parse_args(argv)
    logsetup.configure(args.log_level)
    try:
        config = _load(args)
    except ConfigError as err:
        _print_problems(err)
        return 1
    if config is None and not args.demo:
        print("error: pass --config FILE, or --demo", file=sys.stderr)
        return 2
    config, demo = _with_demo(config, args.demo)
    with tempfile.TemporaryDirectory(prefix="aws-vpn-diagnose-") as state_dir:
        # A one-shot run reads logs.lookback afresh and never touches a running exporter's state; its log
        # read, like its EC2 poll, gives up after poll_timeout (a hung CloudWatch Logs endpoint included).
        logs = replace(config.logs, poll_interval=min(config.logs.poll_interval, config.poll_timeout))
        _copy_state_diagnose_reads(config.state_dir, Path(state_dir))
        exporter = Exporter(replace(config, state_dir=Path(state_dir), logs=logs))
        try:
            # every source once: AWS's own status of the tunnels asked about and a first traffic pass, as time allows
            rendered = exporter.poll_once(every=True, within=config.poll_timeout, only=frozenset(args.ids))
        finally:
            exporter.stop()
            if demo is not None:
                demo.stop()
    assert rendered is not None, "the EC2 poll publishes a snapshot, a failed one included"
    report = build_report(rendered.snapshot, args.ids, config.runbook_base)
    if isinstance(sys.stdout, io.TextIOWrapper):  # a character the terminal's encoding lacks never fails the run
        sys.stdout.reconfigure(errors="backslashreplace")
    if args.output == "json":
        print(json.dumps(report, indent=2))
    else:
        colour = sys.stdout.isatty() and not args.no_color and "NO_COLOR" not in os.environ
        sys.stdout.write(render_text(report, colour=colour, encoding=sys.stdout.encoding or "ascii"))
    return exit_code(report)


def _copy_state_diagnose_reads(running: Path, scratch: Path) -> None:
    """The running exporter's state a one-shot run starts from (its 30-day history): copied, so the running
    exporter's files are never written; missing or unreadable, the run starts without it."""
    from exporter.sources.registry import SOURCES

    for source in SOURCES:
        for name in source.diagnose_reads:
            try:
                shutil.copyfile(running / name, scratch / name)
            except OSError:
                pass


def _with_demo(config: Config | None, demo_requested: bool):
    """Start the simulated AWS when asked, and point the config's targets at it."""
    if not demo_requested:
        return config, None
    try:
        from exporter.demo.environment import DemoEnvironment

        demo = DemoEnvironment()
    except ModuleNotFoundError as err:  # the base install watches real AWS; the simulated one is an extra
        if (err.name or "").partition(".")[0] == "exporter":
            raise
        raise SystemExit(
            f"error: --demo needs the simulated AWS, which is not installed (no module "
            f"{err.name!r}): {DEMO_EXTRA_INSTALL}"
        ) from None
    demo.start()
    os.environ.update(demo.aws_environment())
    # A simulated AWS starts afresh each time, so its log cursors live in a fresh directory too.
    base = config or Config(
        targets=(),
        poll_interval=DEMO_POLL_INTERVAL,
        poll_timeout=DEMO_POLL_INTERVAL - 1,
        logs=LogsConfig(poll_interval=DEMO_POLL_INTERVAL),
        tunnel_status=DEMO_TUNNEL_STATUS,
        traffic=DEMO_TRAFFIC,
        state_dir=Path(tempfile.mkdtemp(prefix="aws-vpn-exporter-demo-")),
    )
    return _demo_targets(base, demo), demo


def _demo_targets(config: Config, demo) -> Config:
    """The simulated accounts, discovered as the organization they form (organisation discovery at work)."""
    return replace(config, targets=(), organizations=(demo.organization(),), source="<demo>")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["diagnose"]:
        # Its output is printed: calls still blocked on a hung endpoint past poll_timeout are not waited for.
        _leave_now(diagnose_main(argv[1:]))
    if argv[:1] == ["report"]:
        from exporter.report.command import main as report_main

        return report_main(argv[1:])
    if argv[:1] == ["healthcheck"]:
        from exporter.healthcheck import main as healthcheck_main

        return healthcheck_main(argv[1:])
    args = build_parser().parse_args(argv)
    logsetup.configure(args.log_level)
    try:
        listen = parse_listen_address(args.listen)
    except ValueError as err:
        print(f"error: --web.listen-address: {err}", file=sys.stderr)
        return 2
    config, web_config, failed = None, None, []
    try:
        config = _load(args)
    except ConfigError as err:
        failed.append(err)
    try:  # checked even when the config failed: every problem of both files at once
        web_config = load_web_config(args.web_config) if args.web_config else None
    except ConfigError as err:
        failed.append(err)
    if failed:
        _print_problems(*failed)
        return 1
    if args.check:
        if config is None:
            print("error: --config.check needs --config FILE", file=sys.stderr)
            return 2

        def count(n: int, what: str) -> str:
            return f"{n} {what}{'' if n == 1 else 's'}"

        organizations = (
            f", {count(len(config.organizations), 'organization')} to discover" if config.organizations else ""
        )
        print(f"{config.source}: OK ({count(len(config.targets), 'explicit target')}{organizations})")
        return 0
    if config is None and not args.demo:
        print("error: pass --config FILE to watch AWS, or --demo to try the built-in simulated AWS", file=sys.stderr)
        return 2

    memory.tune_malloc()  # before the demo's and the exporter's threads start
    config, demo = _with_demo(config, args.demo)
    reload_source = None
    if args.config:

        def reload_source() -> Config:
            fresh = load_config(args.config)
            return _demo_targets(fresh, demo) if demo is not None else fresh

    return _serve(config, listen, demo, web_config, reload_source, args.lifecycle)


def _serve(
    config: Config, listen: tuple[str, int], demo, web_config=None, reload_source=None, lifecycle: bool = False
) -> int:
    from exporter.app import Exporter

    exporter = Exporter(config, listen, web_config)
    exporter.reload_source = reload_source
    exporter.lifecycle = lifecycle
    exporter.demo = demo is not None
    try:
        exporter.start_server()
    except OSError as err:
        print(f"error: cannot listen on {listen[0]}:{listen[1]}: {err.strerror}", file=sys.stderr)
        return 1
    if demo is not None:
        exporter.add_job(demo.apply, 5, "demo-apply")
        host, port = exporter.address
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
        log.info(
            "demo running on a simulated AWS: open %s/ (status page) and %s/metrics, or run "
            "aws-vpn-exporter diagnose --demo",
            url,
            url,
        )
    received, hangups = _catch_shutdown_signals()
    exporter.start_polling()
    while not received:
        time.sleep(SIGNAL_CHECK_INTERVAL)
        if hangups:
            hangups.clear()
            log.info("reloading config signal=SIGHUP")
            exporter.reload()
    log.info("shutting down signal=%s", signal.Signals(received[0]).name)
    exporter.stop()
    if demo is not None:
        demo.stop()
    log.info("state saved; exiting")
    _leave_now(0)


def _catch_shutdown_signals() -> tuple[list[int], list[int]]:
    """Record SIGTERM and SIGINT in the first list returned (a second one exits at once, unsaved), and
    SIGHUP in the second (the config is re-read, as Prometheus does).

    The handler takes no lock (one that sets a threading.Event can deadlock against the main
    thread's own wait on it), and the main thread checks the list every SIGNAL_CHECK_INTERVAL, so
    a signal is acted on promptly whichever thread the kernel delivered it to. SIGQUIT dumps every
    thread's stack to stderr, as a Go exporter does, for a stuck process: from the main thread, holding the
    GIL, so no other thread's frames change under the dump (faulthandler's own C-level handler walks them
    while they run, and crashed the process about once in ten dumps here, with SIGSEGV)."""
    received: list[int] = []
    hangups: list[int] = []

    def handler(signum: int, _frame) -> None:
        if received:
            os.write(2, b"second signal: exiting without waiting\n")
            os._exit(128 + signum)
        received.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)
    signal.signal(signal.SIGHUP, lambda signum, _frame: hangups.append(signum))
    signal.signal(signal.SIGQUIT, lambda signum, _frame: faulthandler.dump_traceback(all_threads=True))
    return received, hangups


def _leave_now(code: int) -> NoReturn:
    """Exit without joining threads still blocked on AWS (up to attempts x read timeout): the state
    is saved, and a hung call must not hold a restart past its orchestrator's grace period."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
