"""Runs one job per account and region in a pool, so that a failure or a hang stays with its job."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Executor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from exporter.sources.aws import describe_error
from exporter.sources.failures import failed_source

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    value: Any  # the job's result, or a short secret-free error description
    duration_seconds: float
    # a failure that is not the job's own source's: "sts" when the account's credentials or identity failed
    failed_at: str | None = None


def timed(job: Callable[[], Any]) -> Outcome:
    """Run one job; its exception becomes its failed Outcome."""
    started = time.monotonic()
    try:
        return Outcome(True, job(), time.monotonic() - started)
    except Exception as err:  # isolation is the point: recorded against this job only
        return Outcome(False, describe_error(err), time.monotonic() - started, failed_source(err))


def run_isolated(
    executor: Executor, jobs: Mapping[Key, Callable[[], Any]], timeout: float, cancel_queued: bool = False
) -> dict[Key, Outcome]:
    """Run every job concurrently; an exception or a timeout becomes that job's failed Outcome. With
    ``cancel_queued``, jobs not yet started at the timeout are cancelled: else they still run after it, their answers
    thrown away, ahead of the next poll's jobs in the shared pool. (Sources that mark a job running when they submit
    it, and clear the mark when it ends, keep the default: a cancelled job would never clear it.)"""
    futures = {key: executor.submit(timed, job) for key, job in jobs.items()}
    wait(futures.values(), timeout=timeout)
    if cancel_queued:
        for future in futures.values():
            future.cancel()  # only those still queued: a running one goes on, within max_concurrency
    return {
        key: future.result()
        if future.done() and not future.cancelled()
        else Outcome(False, f"timeout: no answer within {timeout:g}s", timeout)
        for key, future in futures.items()
    }
