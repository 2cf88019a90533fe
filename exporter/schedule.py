"""The exporter's jobs, each run every so many seconds on the monotonic clock.

A wall-clock scheduler stops when the clock is stepped back (its next run is suddenly hours away) and misfires
when it is stepped forward; NTP, a resumed VM or an operator steps it. Monotonic time only moves on. Each job
has a thread of its own: jobs run beside each other, a job never beside itself, and runs missed while it
overran are not made up (coalesced), the next one keeps the job's phase.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Job:
    """One function and its interval; ``due`` is the monotonic instant it runs next (None: paused)."""

    def __init__(
        self, scheduler: Scheduler, job_id: str, func: Callable[[], object], interval: float, due: float | None
    ):
        self.id, self.func, self.interval, self.due = job_id, func, interval, due
        self._scheduler = scheduler
        self._again = False  # asked to run now while running: once more, straight after
        self._running = False
        self._removed = False
        self._thread = threading.Thread(target=self._loop, name=f"job-{job_id}", daemon=True)

    def remove(self) -> None:
        self._scheduler.remove_job(self.id)

    def _loop(self) -> None:
        condition = self._scheduler.condition
        while True:
            with condition:
                while not self._removed and not self._scheduler.stopped and not self._is_due():
                    condition.wait(None if self.due is None else max(0.0, self.due - time.monotonic()))
                if self._removed or self._scheduler.stopped:
                    return
                planned, self._running, self._again = self.due, True, False
            try:
                self.func()
            except Exception:
                log.exception("job failed job=%s", self.id)
            with condition:
                self._running = False
                if self._again:
                    self.due = time.monotonic()
                elif self.due == planned and planned is not None:  # not moved meanwhile: the next in its phase
                    missed = math.floor((time.monotonic() - planned) / self.interval)  # while it overran
                    self.due = planned + self.interval * (missed + 1)

    def _is_due(self) -> bool:
        return self.due is not None and self.due <= time.monotonic()


class Scheduler:
    """Jobs by id: added (running now, or paused until asked), run now, given a new interval, removed."""

    def __init__(self):
        self.condition = threading.Condition()
        self.stopped = False
        self.running = False
        self._jobs: dict[str, Job] = {}

    def add_job(self, func: Callable[[], object], interval: float, job_id: str, start: bool = True) -> Job:
        _check(interval)
        with self.condition:
            if job_id in self._jobs:
                raise ValueError(f"job {job_id!r} exists")
            job = Job(self, job_id, func, interval, time.monotonic() if start else None)
            self._jobs[job_id] = job
            if self.running:
                job._thread.start()
            return job

    def get_job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def run_now(self, job_id: str) -> None:
        """Run the job at once (a paused job too); if it is running, once more when it finishes."""
        with self.condition:
            job = self._jobs[job_id]
            if job._running:
                job._again = True
            job.due = time.monotonic()
            self.condition.notify_all()

    def reschedule(self, job_id: str, interval: float) -> None:
        """A new interval, from now: a shorter one applies at once; a paused job stays paused."""
        _check(interval)
        with self.condition:
            job = self._jobs[job_id]
            if interval == job.interval:
                return
            job.interval = interval
            if job.due is not None:
                job.due = min(job.due, time.monotonic() + interval)
            self.condition.notify_all()

    def remove_job(self, job_id: str) -> None:
        with self.condition:
            job = self._jobs.pop(job_id, None)
            if job is not None:
                job._removed = True
                self.condition.notify_all()

    def start(self) -> None:
        with self.condition:
            self.running = True
            for job in self._jobs.values():
                job._thread.start()

    def shutdown(self) -> None:
        """No job starts again; a job running finishes in its own (daemon) thread."""
        with self.condition:
            self.running, self.stopped = False, True
            self.condition.notify_all()


def _check(interval: float) -> None:
    if not interval > 0:
        raise ValueError(f"a job's interval must be positive, not {interval!r}")
