"""90 days of tunnel history with known flaps and outages, as the history counters the exporter exports
(issue 24's interface), sampled every 5 minutes (exact for counters: the figures are differences of counter
values at sample instants, and every midnight is one; a flap inside one sample interval is counted all the same,
as the exporter's counter counts it). The ground truth is computed from the events themselves."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone

from exporter.report import series

START = int(datetime(2026, 9, 1, tzinfo=timezone.utc).timestamp())
END = int(datetime(2026, 12, 2, tzinfo=timezone.utc).timestamp())  # a day past November: its 1st evaluations
STEP = 300
SCRAPE = {"job": "aws-vpn-exporter", "instance": "exporter:9798"}
HOSTILE_ID = 'vpn-0d4\u202e|=HYPERLINK("x")'  # a bidi override, a table bar, a spreadsheet formula


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp())


@dataclass(frozen=True)
class Outage:
    tunnels: tuple[int, ...]  # which of the connection's two tunnels are down (both: the connection is unavailable)
    start: int
    end: int
    cause: str = "other"
    bgp_only: bool = False  # IPsec up, BGP down: AWS reports the tunnel DOWN; counted as BGP-down time as well


@dataclass(frozen=True)
class Connection:
    account_id: str
    region: str
    vpn_connection_id: str
    outages: tuple[Outage, ...]

    @property
    def labels(self) -> dict:
        return {"account_id": self.account_id, "region": self.region, "vpn_connection_id": self.vpn_connection_id}

    def tunnel(self, index: int) -> str:
        return f"198.51.100.{10 * len(self.vpn_connection_id) + index}"


CONNECTIONS = (
    Connection("111122223333", "eu-west-1", "vpn-0a1", ()),
    Connection(
        "111122223333",
        "eu-west-1",
        "vpn-0b2",
        (
            Outage((0, 1), at("2026-10-12T10:00:17"), at("2026-10-12T10:30:17")),  # 30 min: 99.9328 % in October
            Outage((0,), at("2026-10-20T03:00:05"), at("2026-10-20T03:00:45")),  # a 40 s blip inside one sample
            Outage((1,), at("2026-10-21T03:00:05"), at("2026-10-21T03:01:05")),
            Outage((0, 1), at("2026-11-03T01:00:00"), at("2026-11-03T01:10:00"), "maintenance"),
        ),
    ),
    Connection(
        "444455556666",
        "us-east-1",
        "vpn-0c3",
        (
            Outage((0, 1), at("2026-11-10T20:00:00"), at("2026-11-11T04:00:00")),  # across midnight
            Outage((0, 1), at("2026-11-20T12:00:00"), at("2026-11-20T14:00:00"), "maintenance"),
            Outage((0,), at("2026-11-25T00:00:00"), at("2026-11-26T00:00:00"), "maintenance"),  # redundancy only
            Outage((1,), at("2026-11-05T09:00:00"), at("2026-11-05T09:15:30"), bgp_only=True),
        ),
    ),
    Connection(
        "444455556666",
        "us-east-1",
        HOSTILE_ID,
        (
            Outage((0, 1), at("2026-10-31T22:00:00"), at("2026-11-01T02:00:00")),  # across the month's start
            Outage((0, 1), at("2026-11-14T00:00:00"), at("2026-11-16T00:00:00")),
            *(Outage((1,), at(f"2026-09-{day:02d}T08:00:00"), at(f"2026-09-{day:02d}T08:20:00")) for day in (3, 9)),
        ),
    ),
)


def _overlap(start: int, end: int, until: int) -> int:
    return max(0, min(end, until) - start)


def counters(connection: Connection, t: int) -> dict[tuple[str, tuple], float]:
    """(counter, extra labels) -> value at ``t``."""
    values: dict[tuple[str, tuple], float] = {}

    def add(name: str, labels: tuple, value: float) -> None:
        values[(name, labels)] = values.get((name, labels), 0.0) + value

    for index in (0, 1):
        tunnel = (("tunnel", connection.tunnel(index)),)
        add(series.STATE_CHANGES, tunnel, 0)
        for cause in ("maintenance", "other"):
            add(series.DOWN_SECONDS, (*tunnel, ("cause", cause)), 0)
            add(series.BGP_DOWN_SECONDS, (*tunnel, ("cause", cause)), 0)
    for cause in ("maintenance", "other"):
        add(series.UNAVAILABLE_SECONDS, (("cause", cause),), 0)
    add(series.UNREDUNDANT_SECONDS, (), 0)
    add(series.OBSERVED_SECONDS, (), t - START)
    for outage in connection.outages:
        seconds = _overlap(outage.start, outage.end, t)
        edges = (outage.start <= t) + (outage.end <= t)
        for index in outage.tunnels:
            tunnel = (("tunnel", connection.tunnel(index)),)
            add(series.STATE_CHANGES, tunnel, edges)
            add(series.DOWN_SECONDS, (*tunnel, ("cause", outage.cause)), seconds)
            if outage.bgp_only:
                add(series.BGP_DOWN_SECONDS, (*tunnel, ("cause", outage.cause)), seconds)
        if len(outage.tunnels) == 2:
            add(series.UNAVAILABLE_SECONDS, (("cause", outage.cause),), seconds)
        else:
            add(series.UNREDUNDANT_SECONDS, (), seconds)
    return values


def truth(connection: Connection, start: int, end: int) -> dict:
    """The figures over [start, end]: what the report must say."""
    before, after = counters(connection, start), counters(connection, end)
    delta = {key: after[key] - before[key] for key in after}
    unavailable = {
        dict(labels)["cause"]: value for (name, labels), value in delta.items() if name == series.UNAVAILABLE_SECONDS
    }
    observed = delta[(series.OBSERVED_SECONDS, ())]
    flaps = sum(value for (name, _), value in delta.items() if name == series.STATE_CHANGES)
    return {
        "uptime_percent": 100 * (1 - sum(unavailable.values()) / observed),
        "flaps": int(flaps),
        "unavailable_by_cause": unavailable,
        "observed_seconds": observed,
    }


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(connection: Connection, extra: tuple) -> str:
    labels = {**SCRAPE, **connection.labels, **dict(extra)}
    return ",".join(f'{key}="{_escaped(value)}"' for key, value in sorted(labels.items()))


@functools.cache
def _series() -> dict[str, list[tuple[str, list[int]]]]:
    """Family -> (labels, a value at each sample time), computed once for both formats."""
    families: dict[str, list[tuple[str, list[int]]]] = {}
    for connection in CONNECTIONS:
        rows = [counters(connection, t) for t in TIMES]
        for key in rows[0]:
            name, extra = key
            families.setdefault(name, []).append((_labels(connection, extra), [int(row[key]) for row in rows]))
    return families


TIMES = range(START, END + 1, STEP)


def exposition(openmetrics: bool) -> str:
    """Every sample, grouped by family: OpenMetrics (seconds, for promtool) or the Prometheus text format with
    millisecond timestamps (VictoriaMetrics' /api/v1/import/prometheus)."""
    scale = 1 if openmetrics else 1000
    lines = []
    for name, family in _series().items():
        if openmetrics:
            lines.append(f"# TYPE {name.removesuffix('_total')} counter")
        for labels, values in family:
            lines.extend(f"{name}{{{labels}}} {value} {t * scale}" for t, value in zip(TIMES, values, strict=True))
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"
