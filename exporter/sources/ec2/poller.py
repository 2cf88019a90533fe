"""EC2 collection: every (account, region) polled concurrently into one immutable result.

Each region is isolated: a failure there is recorded against it (success 0, its previous data kept
with its age) and never hides the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

from exporter.sources.aws import AwsAccount, describe_error
from exporter.config import Config
from exporter.sources.isolation import run_isolated
from exporter.model import CustomerGateway, RegionTelemetry, SourceResult
from exporter.sources.ec2.telemetry import read_connections, read_customer_gateway

log = logging.getLogger(__name__)

_FILTER_VALUES_MAX = 200  # EC2 filters take at most 200 values


@dataclass(frozen=True)
class Ec2Collection:
    regions: tuple[RegionTelemetry, ...]
    results: tuple[SourceResult, ...]
    unrecognized: dict[str, int]
    accounts: dict[str, AwsAccount]  # account id -> the credentials that reached it


class Poller:
    """Collects EC2 VPN telemetry for every configured account and region."""

    def __init__(self, config: Config, accounts: Sequence[AwsAccount], executor: ThreadPoolExecutor,
                 clock: Callable[[], float] = time.time):
        self._config = config
        self._accounts = list(accounts)
        self._executor = executor
        self._clock = clock
        self._previous: dict[tuple[int, str], RegionTelemetry] = {}
        self._last_success: dict[tuple[int, str], float] = {}
        self._customer_gateways: dict[tuple[int, str], dict[str, CustomerGateway | None]] = {}
        self._lock = threading.Lock()  # one poll at a time, even when called outside the scheduler

    def poll(self) -> Ec2Collection:
        """Collect every account and region once."""
        with self._lock:
            jobs = {(index, region): (lambda a=account, i=index, r=region: self._collect_region(i, a, r))
                    for index, account in enumerate(self._accounts) for region in account.target.regions}
            outcomes = run_isolated(self._executor, jobs, self._config.poll_timeout)
            regions, results, odd = [], [], Counter()
            for (index, region), outcome in outcomes.items():
                account = self._accounts[index]
                if outcome.ok:
                    telemetry, region_odd = outcome.value
                    odd.update(region_odd)
                    self._previous[(index, region)] = telemetry
                    self._last_success[(index, region)] = self._clock()
                else:
                    log.warning("collection failed account=%s region=%s source=ec2 error=%r",
                                account.account_label, region, outcome.value)
                    telemetry = self._previous.get((index, region))
                if telemetry is not None:
                    regions.append(telemetry)
                results.append(SourceResult(
                    telemetry.account_id if telemetry else account.account_label, region, "ec2", outcome.ok,
                    outcome.duration_seconds, self._last_success.get((index, region)),
                    "" if outcome.ok else outcome.value))
            regions.sort(key=lambda r: (r.account_id, r.region))
            results.sort(key=lambda r: (r.account_id, r.region, r.source))
            accounts = {account.account_label: account for account in self._accounts}
            return Ec2Collection(tuple(regions), tuple(results), dict(odd), accounts)

    def _collect_region(self, index: int, account: AwsAccount, region: str):
        account_id = account.account_id()
        response = account.client("ec2", region).describe_vpn_connections()
        odd: Counter = Counter()
        connections = read_connections(response.get("VpnConnections"), odd, self._config.connection_tags)
        gateways = self._gateways_for(index, account, region, {c.customer_gateway_id for c in connections})
        return RegionTelemetry(account_id, region, connections, gateways), odd

    def _gateways_for(self, index: int, account: AwsAccount, region: str, wanted: set[str]) -> tuple[CustomerGateway, ...]:
        """Customer gateways rarely change: ask EC2 only for ids not seen before."""
        cache = self._customer_gateways.setdefault((index, region), {})
        for gone in [gateway_id for gateway_id in cache if gateway_id not in wanted]:
            del cache[gone]  # deleted connections' gateways: the cache stays as small as the account
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
