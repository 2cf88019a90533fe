"""One poll: every (account, region) collected concurrently into one immutable snapshot.

Each region is isolated: a failure there is recorded against it (success 0, its previous data kept
with its age) and never hides the others. Scrapes only ever see a complete snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Sequence

from exporter.aws import AwsAccount, describe_error
from exporter.config import Config
from exporter.metrics import RenderedSnapshot
from exporter.model import CustomerGateway, RegionTelemetry, Snapshot, SourceResult
from exporter.telemetry import read_connections, read_customer_gateway

log = logging.getLogger(__name__)

_FILTER_VALUES_MAX = 200  # EC2 filters take at most 200 values


class _RegionFailed(Exception):
    """Carries the account label of a region whose collection failed."""


class Poller:
    """Collects EC2 VPN telemetry for every configured account and region."""

    def __init__(self, config: Config, accounts: Sequence[AwsAccount],
                 on_unrecognized: Callable[[str, int], None] = lambda field, count: None,
                 clock: Callable[[], float] = time.time):
        self._config = config
        self._accounts = list(accounts)
        self._on_unrecognized = on_unrecognized
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=config.max_concurrency, thread_name_prefix="poll")
        self._previous: dict[tuple[int, str], RegionTelemetry] = {}
        self._last_success: dict[tuple[int, str], float] = {}
        self._customer_gateways: dict[tuple[int, str], dict[str, CustomerGateway | None]] = {}
        self._lock = threading.Lock()  # one poll at a time, even when called outside the scheduler
        self.current: RenderedSnapshot | None = None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def poll(self) -> RenderedSnapshot:
        """Collect everything once, swap the new snapshot in, and return it."""
        with self._lock:
            jobs = [(index, account, region) for index, account in enumerate(self._accounts)
                    for region in account.target.regions]
            futures = {self._executor.submit(self._collect_region, index, account, region): (index, account, region)
                       for index, account, region in jobs}
            wait(futures, timeout=self._config.poll_timeout)
            regions, results, odd = [], [], Counter()
            for future, (index, account, region) in futures.items():
                key = (index, region)
                if future.done() and future.exception() is None:
                    telemetry, duration, region_odd = future.result()
                    odd.update(region_odd)
                    self._previous[key] = telemetry
                    self._last_success[key] = self._clock()
                    regions.append(telemetry)
                    results.append(SourceResult(telemetry.account_id, region, "ec2", True, duration,
                                                self._last_success[key]))
                    continue
                if future.done():
                    error, duration = future.exception().args
                else:
                    future.cancel()
                    error, duration = "timeout", self._config.poll_timeout
                log.warning("collection failed account=%s region=%s source=ec2 error=%r",
                            account.account_label, region, error)
                previous = self._previous.get(key)
                if previous is not None:
                    regions.append(previous)
                results.append(SourceResult(previous.account_id if previous else account.account_label, region,
                                            "ec2", False, duration, self._last_success.get(key), error))
            for field, count in odd.items():
                self._on_unrecognized(field, count)
            regions.sort(key=lambda r: (r.account_id, r.region))
            results.sort(key=lambda r: (r.account_id, r.region, r.source))
            snapshot = Snapshot(self._clock(), tuple(regions), tuple(results), dict(odd))
            self.current = RenderedSnapshot.of(snapshot)
            return self.current

    def _collect_region(self, index: int, account: AwsAccount, region: str):
        started = time.monotonic()
        try:
            account_id = account.account_id()
            response = account.client("ec2", region).describe_vpn_connections()
            odd: Counter = Counter()
            connections = read_connections(response.get("VpnConnections"), odd)
            gateways = self._gateways_for(index, account, region, {c.customer_gateway_id for c in connections})
        except Exception as err:  # isolated per region by design; the error is recorded, not raised
            raise _RegionFailed(describe_error(err), time.monotonic() - started) from None
        telemetry = RegionTelemetry(account_id, region, connections, gateways)
        return telemetry, time.monotonic() - started, odd

    def _gateways_for(self, index: int, account: AwsAccount, region: str, wanted: set[str]) -> tuple[CustomerGateway, ...]:
        """Customer gateways rarely change: ask EC2 only for ids not seen before."""
        cache = self._customer_gateways.setdefault((index, region), {})
        missing = sorted(gateway_id for gateway_id in wanted if gateway_id and gateway_id not in cache)
        for start in range(0, len(missing), _FILTER_VALUES_MAX):
            chunk = missing[start:start + _FILTER_VALUES_MAX]
            try:
                response = account.client("ec2", region).describe_customer_gateways(
                    Filters=[{"Name": "customer-gateway-id", "Values": chunk}])
            except Exception as err:  # optional metadata: never fails the region
                log.warning("customer gateway lookup failed region=%s error=%r", region, describe_error(err))
                break
            found = {g.customer_gateway_id: g for g in map(read_customer_gateway, response.get("CustomerGateways") or ())
                     if g is not None}
            for gateway_id in chunk:
                cache[gateway_id] = found.get(gateway_id)
        return tuple(cache[g] for g in sorted(wanted) if cache.get(g) is not None)
