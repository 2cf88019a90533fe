"""The monotonic scheduler's job semantics, which the exporter's jobs rely on: a paused job waits to be asked,
a job never runs beside itself, a run asked for while it runs is not lost, a shorter interval applies at once,
a failing job keeps its schedule, and nothing starts after shutdown."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from exporter.schedule import Scheduler

HOUR = 3600.0


@pytest.fixture
def scheduler():
    scheduler = Scheduler()
    scheduler.start()
    yield scheduler
    scheduler.shutdown()


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_a_paused_job_runs_only_when_asked(scheduler):
    runs = []
    scheduler.add_job(lambda: runs.append(1), 0.05, "paused", start=False)
    time.sleep(0.3)
    assert runs == []
    scheduler.run_now("paused")
    assert wait_for(lambda: len(runs) >= 1)


def test_a_job_never_runs_beside_itself(scheduler):
    running, most, runs = [0], [0], []

    def slow():
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.15)  # overruns its 0.05 s interval
        running[0] -= 1
        runs.append(1)

    scheduler.add_job(slow, 0.05, "slow")
    assert wait_for(lambda: len(runs) >= 3)
    assert most[0] == 1


def test_run_now_while_running_runs_once_more_at_once(scheduler):
    release, runs = threading.Event(), []
    scheduler.add_job(lambda: (release.wait(10), runs.append(1)), HOUR, "discover")
    assert wait_for(lambda: scheduler.get_job("discover")._running)
    scheduler.run_now("discover")  # e.g. a reload changed the targets during a discovery
    release.set()
    assert wait_for(lambda: len(runs) == 2)  # not an hour later


def test_a_shorter_interval_applies_at_once_and_a_paused_job_stays_paused(scheduler):
    runs, paused = [], []
    scheduler.add_job(lambda: runs.append(1), HOUR, "hourly")
    scheduler.add_job(lambda: paused.append(1), HOUR, "paused", start=False)
    assert wait_for(lambda: len(runs) == 1)
    scheduler.reschedule("hourly", 0.05)
    scheduler.reschedule("paused", 0.05)
    assert wait_for(lambda: len(runs) >= 3)
    assert paused == []


def test_a_failing_job_is_logged_and_keeps_its_schedule(scheduler, caplog):
    runs = []

    def failing():
        runs.append(1)
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="exporter.schedule"):
        scheduler.add_job(failing, 0.05, "failing")
        assert wait_for(lambda: len(runs) >= 2)
    assert "job failed job=failing" in caplog.text


def test_nothing_runs_after_shutdown_or_removal(scheduler):
    runs, removed = [], []
    scheduler.add_job(lambda: runs.append(1), 0.05, "job")
    scheduler.add_job(lambda: removed.append(1), HOUR, "removed", start=False)
    scheduler.get_job("removed").remove()
    assert scheduler.get_job("removed") is None
    assert wait_for(lambda: len(runs) >= 1)
    scheduler.shutdown()
    time.sleep(0.1)  # a run already started may finish
    count = len(runs)
    time.sleep(0.3)
    assert len(runs) == count and removed == []
