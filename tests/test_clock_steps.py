"""A step of the wall clock (NTP, a VM resumed, an operator) neither stops the polls nor hides a stall: the
schedule and the snapshot's age run on the monotonic clock, and an empty region is still asked again within its
interval. The wall clock is stepped in this process, as
Python code reads it (``time.time`` and ``datetime.now``), by ±2 h while the exporter polls every 0.2 s."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time

import pytest

from exporter.config import LogsConfig, Target, TunnelStatusConfig
from tests.conftest import parse_exposition, value

HOURS_2 = 2 * 3600.0
INTERVAL = 0.2


class SteppedWallClock:
    """The process's wall clock, stepped by ``step(seconds)``: ``time.time`` and ``datetime.now`` in the
    exporter's modules and in its (former) scheduling library. The monotonic clock is left alone, as a real
    step leaves it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.offset = 0.0
        real_time, real_datetime, clock = time.time, dt.datetime, self

        class SteppedType(type):
            def __instancecheck__(cls, instance):  # a datetime made before the patch is still a datetime
                return isinstance(instance, real_datetime)

        class Stepped(real_datetime, metaclass=SteppedType):
            @classmethod
            def now(cls, tz=None):
                return real_datetime.now(tz) + dt.timedelta(seconds=clock.offset)

            @classmethod
            def utcnow(cls):
                return real_datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=clock.offset)

        monkeypatch.setattr(time, "time", lambda: real_time() + self.offset)
        for name, module in list(sys.modules.items()):
            if name.startswith(("exporter", "apscheduler")) and getattr(module, "datetime", None) is real_datetime:
                monkeypatch.setattr(module, "datetime", Stepped)
        self.now = lambda: real_time() + self.offset  # what the exporter dates its collections with

    def step(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def wall_clock(monkeypatch):
    return SteppedWallClock(monkeypatch)


@pytest.fixture
def polling(aws, make_exporter, wall_clock):
    """An exporter polling one region every 0.2 s (EC2 only), its wall clock the stepped one."""
    exporter = make_exporter(
        [Target(regions=("us-east-1",))],
        poll_interval=INTERVAL,
        poll_timeout=5.0,
        empty_region_interval=0.0,
        logs=LogsConfig(enabled=False),
        tunnel_status=TunnelStatusConfig(enabled=False),
    )
    exporter.sources["ec2"].clock = wall_clock.now
    exporter.sources["ec2"].poller._clock = wall_clock.now
    exporter.start_polling()
    assert snapshots_within(exporter, 10.0, wanted=2) >= 2
    return exporter


def snapshots_within(exporter, seconds: float, wanted: int | None = None) -> int:
    """How many new snapshots the exporter published within ``seconds`` (stopping early at ``wanted``)."""
    seen, last = 0, exporter.current
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (wanted is None or seen < wanted):
        if exporter.current is not last:
            seen, last = seen + 1, exporter.current
        time.sleep(0.01)
    return seen


def snapshot_age(exporter) -> float:
    return value(parse_exposition(exporter.metrics.render().decode()), "aws_vpn_exporter_snapshot_age_seconds")


@pytest.mark.parametrize("step", [-HOURS_2, HOURS_2], ids=["back-2h", "forward-2h"])
def test_polls_go_on_after_the_wall_clock_steps(polling, wall_clock, step):
    wall_clock.step(step)
    # 2 s at 0.2 s intervals is 10 polls; 3 leaves room for a loaded machine, and a stalled schedule makes none
    assert snapshots_within(polling, 2.0) >= 3
    assert 0 <= snapshot_age(polling) < 1.5  # the age of a fresh snapshot, not the step


@pytest.mark.parametrize("step", [-HOURS_2, HOURS_2], ids=["back-2h", "forward-2h"])
def test_a_stall_shows_as_growing_age_whatever_the_wall_clock_does(polling, wall_clock, step):
    release = threading.Event()
    polling.sources["ec2"].poller.poll = lambda: (
        release.wait(30) and None
    )  # every further poll hangs: the snapshot goes stale
    try:
        time.sleep(INTERVAL * 2)  # the poll already running finishes
        wall_clock.step(step)
        first = snapshot_age(polling)
        time.sleep(1.0)
        second = snapshot_age(polling)
        assert 0 <= first < 60 and second - first >= 0.9, (first, second)  # real seconds, not the step
    finally:
        release.set()


@pytest.mark.parametrize("step", [-HOURS_2, HOURS_2], ids=["back-2h", "forward-2h"])
def test_an_empty_region_is_asked_again_within_its_interval_after_a_step(aws, make_exporter, wall_clock, step):
    from tests.test_discovery import vpn

    exporter = make_exporter(
        [Target(regions=("us-east-1",))],
        poll_interval=30.0,
        empty_region_interval=300.0,
        logs=LogsConfig(enabled=False),
        tunnel_status=TunnelStatusConfig(enabled=False),
    )
    exporter.sources["ec2"].clock = exporter.sources["ec2"].poller._clock = wall_clock.now
    exporter.poll("ec2")  # empty: asked again within 5 minutes
    wall_clock.step(step)
    created = vpn("123456789012", "us-east-1", "new-site")
    for _ in range(11):  # 5 minutes of polls, after the step
        wall_clock.step(30)
        exporter.poll("ec2")
    region = next(r for r in exporter._outputs["ec2"].regions if r.region == "us-east-1")
    assert [c.vpn_connection_id for c in region.connections] == [created]
