"""``aws-vpn-exporter report``: the argument parsing and exit statuses around exporter/report/sla.py."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from exporter.report.sla import (
    EXIT_NO_DATA,
    EXIT_NO_RULES,
    EXIT_UNREACHABLE,
    RENDERERS,
    PrometheusAPI,
    ReportError,
    Span,
    build_report,
)

SUMMARY = "each connection's SLA uptime, credit tier, flaps and downtime by cause over a month, from Prometheus"
EXIT_STATUS = (
    f"exit status: 0 the report was printed; 2 a usage error; {EXIT_UNREACHABLE} the API is unreachable or refused "
    f"a query; {EXIT_NO_DATA} no history in the range; {EXIT_NO_RULES} the recording rules are missing "
    "(--source rules)."
)


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aws-vpn-exporter report", description=SUMMARY[0].upper() + SUMMARY[1:] + ".", epilog=EXIT_STATUS
    )
    parser.add_argument(
        "--prometheus",
        required=True,
        metavar="URL",
        help="a Prometheus-compatible API (Prometheus, Thanos, Mimir, VictoriaMetrics): its base URL, before /api/v1",
    )
    parser.add_argument("--month", metavar="YYYY-MM", help="a calendar month (UTC): AWS's monthly billing cycle")
    parser.add_argument("--from", dest="start", metavar="TIME", help="range start, ISO 8601 (UTC unless it says)")
    parser.add_argument("--to", dest="end", metavar="TIME", help="range end, ISO 8601 (UTC unless it says)")
    parser.add_argument("--output", choices=sorted(RENDERERS), default="text")
    parser.add_argument(
        "--source",
        choices=["auto", "rules", "raw"],
        default="auto",
        help="the recording rules (rules), the raw counters (raw), or the rules where they are (auto, the default)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="per query (default 30)")
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.month and not (args.start or args.end):
            span = Span.month(args.month)
        elif args.start and args.end and not args.month:
            span = Span(_instant(args.start), _instant(args.end))
        else:
            parser.error("give --month YYYY-MM, or both --from and --to")
    except ValueError as err:
        parser.error(str(err))
    try:
        report = build_report(PrometheusAPI(args.prometheus, args.timeout), span, args.source)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.status
    sys.stdout.write(RENDERERS[args.output](report))
    return 0
