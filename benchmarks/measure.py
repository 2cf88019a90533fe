"""Shared by the benchmark scripts."""

import logging
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable


def rss_mib() -> float:
    """This process's resident set size, in MiB (Linux)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


class RssSampler(threading.Thread):
    """Samples this process's RSS every 0.1 s and keeps the peak."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.running = 0.0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_mib())
            time.sleep(0.1)


def calls_by_operation(exporter) -> Counter:
    """The AWS API attempts an exporter made, by operation, as it counts them itself
    (aws_vpn_exporter_aws_api_calls_total)."""
    counted = Counter()
    for metric in exporter.metrics.api_calls.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                counted[sample.labels["operation"]] += int(sample.value)
    return counted


class SimulatedAws:
    """moto in a process of its own, so the exporter's time and RSS are measured without it, seeded there by
    ``seed(*args)`` (then ``warm_up(url)``, so that moto's first-use imports are not counted as the exporter's
    time). A daemon: a failed assertion never leaves the benchmark waiting for it. ``url``, ``seeded`` (the
    seconds seeding took) and ``rss`` (moto's, in MiB) once started; ``call(function, *args)`` changes the
    simulated AWS meanwhile (in its process); ``stop()`` at the end."""

    def __init__(self, seed: Callable, *args, warm_up: Callable[[str], None] | None = None):
        context = multiprocessing.get_context("spawn")
        self._queue, self._calls = context.Queue(), context.Queue()
        self._process = context.Process(
            target=_serve, args=(seed, args, warm_up, self._queue, self._calls), daemon=True
        )
        self._process.start()
        self.url, self.seeded, self.rss = self._queue.get()

    def call(self, function: Callable, *args):
        """``function(*args)`` run in moto's process (a module-level function, as it is pickled); its result."""
        self._calls.put((function, args))
        result = self._queue.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def stop(self) -> None:
        self._calls.put(None)
        self._process.join()


def _serve(seed: Callable, args: tuple, warm_up, queue, calls) -> None:
    from moto.server import ThreadedMotoServer

    from exporter.demo import strict_aws

    strict_aws.install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    started = time.perf_counter()
    seed(*args)
    host, port = server.get_host_and_port()
    if warm_up is not None:
        warm_up(f"http://{host}:{port}")
    queue.put((f"http://{host}:{port}", time.perf_counter() - started, rss_mib()))
    while (request := calls.get()) is not None:
        function, call_args = request
        try:
            queue.put(function(*call_args))
        except Exception as err:  # raised in the benchmark's process
            queue.put(err)
    server.stop()
