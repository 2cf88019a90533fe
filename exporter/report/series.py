"""The history counters (exporter/contract.py) and the recording rules over them, defined once: the rule
generator (generate/alerting.py) writes these rules, the dashboards read them, and the ``report`` command
queries them (or, without them, the same expressions over the raw counters).

Every increase is the counter's exact difference, ``c - c offset w``: summed over consecutive windows it
telescopes to the exact increase over their union, which ``increase()`` does not (it extrapolates, and a step
between the last sample of one window and the first of the next belongs to neither). ``increase()`` stands in
only where the difference cannot be taken: a counter reset within the window (``resets()``; a restart that lost
the state file), or a series younger than the window. Replicas of
one shard (high availability) export the same counters: ``max by`` keeps one series per tunnel or connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter import contract

CONNECTION = contract.CONNECTION_LABELS
TUNNEL = contract.TUNNEL_LABELS

STATE_CHANGES = contract.TUNNEL_STATE_CHANGES
DOWN_SECONDS = contract.TUNNEL_DOWN_SECONDS
BGP_DOWN_SECONDS = contract.TUNNEL_BGP_DOWN_SECONDS
UNAVAILABLE_SECONDS = contract.CONNECTION_UNAVAILABLE_SECONDS
UNREDUNDANT_SECONDS = contract.CONNECTION_UNREDUNDANT_SECONDS
OBSERVED_SECONDS = contract.CONNECTION_OBSERVED_SECONDS

WINDOWS = {"1h": 3600, "1d": 86400}
DAY = 86400


@dataclass(frozen=True)
class Counter:
    name: str
    level: str  # vpn_tunnel | vpn_connection: the labels kept
    by_cause: bool = False

    @property
    def labels(self) -> tuple[str, ...]:
        return (TUNNEL if self.level == "vpn_tunnel" else CONNECTION) + (("cause",) if self.by_cause else ())

    def increase(self, window: str) -> str:
        """The exact increase over ``window`` (a PromQL duration) ending at the evaluation time."""
        c = self.name
        return (
            f"max by ({', '.join(self.labels)}) (\n  ({c} - {c} offset {window} unless resets({c}[{window}]) > 0)\n"
            f"  or increase({c}[{window}])\n)"
        )

    def record(self, window: str) -> str:
        return f"{self.level}:{self.name.removesuffix('_total')}:increase{window}"


COUNTERS = (
    Counter(STATE_CHANGES, "vpn_tunnel"),
    Counter(DOWN_SECONDS, "vpn_tunnel", by_cause=True),
    Counter(BGP_DOWN_SECONDS, "vpn_tunnel", by_cause=True),
    Counter(UNAVAILABLE_SECONDS, "vpn_connection", by_cause=True),
    Counter(UNREDUNDANT_SECONDS, "vpn_connection"),
    Counter(OBSERVED_SECONDS, "vpn_connection"),
)
BY_NAME = {counter.name: counter for counter in COUNTERS}


def recorded(counter_name: str, window: str) -> str:
    """The recording rule's name for a counter's increase over ``window`` (1h or 1d)."""
    return BY_NAME[counter_name].record(window)


# A connection's flaps: the sum of its tunnels'.
CONNECTION_FLAPS = {window: f"vpn_connection:aws_vpn_tunnel_state_changes:increase{window}" for window in WINDOWS}
AVAILABILITY_1D = "vpn_connection:aws_vpn_connection_availability:ratio1d"
# Month to date, through the last midnight (UTC): the sums of the daily series over the month's completed days.
UNAVAILABLE_MONTH_TO_DATE = "vpn_connection:aws_vpn_connection_unavailable_seconds:sum_month_to_date"
OBSERVED_MONTH_TO_DATE = "vpn_connection:aws_vpn_connection_observed_seconds:sum_month_to_date"
SLA_UPTIME_MONTH_TO_DATE = "vpn_connection:aws_vpn_connection_sla_uptime:ratio_month_to_date"


def days_window(days: int) -> str:
    """A subquery range holding exactly ``days`` midnights up to the evaluation time's: Prometheus 2 closes
    ranges at both ends, Prometheus 3 and VictoriaMetrics at the end only, and one second less fits both."""
    return f"{days * DAY - 1}s"


def sum_of_days(expr: str, days: int) -> str:
    """The sum of a daily series' values at the last ``days`` midnights (subquery steps fall on multiples of
    the step since the epoch: midnights UTC), i.e. over the ``days`` whole days before the last midnight."""
    return f"sum_over_time(({expr})[{days_window(days)}:1d])"


def month_to_date(daily: str) -> str:
    """``daily`` summed over the completed days of the current month (UTC); on the 1st, over the whole month just
    ended (its final figure). PromQL has no range that depends on the date, so one branch per length, each
    gated on the day of the month: every branch reads only the recorded daily series (at most 31 samples)."""
    branches = [f"{sum_of_days(daily, n - 1)} and on() (day_of_month() == {n})" for n in range(2, 32)]
    branches += [
        f"{sum_of_days(daily, length)} and on() (day_of_month() == 1 and on() "
        f"days_in_month(vector(time() - {DAY})) == {length})"
        for length in range(28, 32)
    ]
    return "\n or ".join(f"({branch})" for branch in branches)
