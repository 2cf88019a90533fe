"""Shared by the benchmark scripts."""

import threading
import time
from collections import Counter


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
