"""EC2 collection: every (account, region) polled concurrently into one immutable result.

Each region is isolated: a failure there is recorded against it (success 0, its previous data kept
with its age) and never hides the others.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial

from exporter.config import Config
from exporter.model import CustomerGateway, RegionTelemetry, SourceResult
from exporter.sources.aws import AwsAccount, describe_error
from exporter.sources.ec2.telemetry import read_connections, read_customer_gateway
from exporter.sources.isolation import run_isolated

log = logging.getLogger(__name__)

_FILTER_VALUES_MAX = 200  # EC2 filters take at most 200 values


@dataclass(frozen=True)
class Ec2Collection:
    regions: tuple[RegionTelemetry, ...]
    results: tuple[SourceResult, ...]
    unrecognized: dict[str, int]
    accounts: dict[str, AwsAccount]  # account id -> the credentials that reached it

    def observed(self) -> dict[str, object]:
        return {"regions": self.regions}


Key = tuple[str, str]  # (the target's credentials, region): stable across a reload or a discovery change


class Poller:
    """Collects EC2 VPN telemetry for every configured account and region.

    A region whose last poll succeeded and found no VPN connection is asked again only every
    ``empty_region_interval`` (most regions of an organization are empty); between its polls, that empty,
    successful result is served again with its real age. Each empty region gets its own phase within the
    interval, so the calls are spread over the polls rather than all falling on one.
    """

    def __init__(
        self,
        config: Config,
        accounts: Sequence[AwsAccount],
        executor: Executor,
        clock: Callable[[], float] = time.time,
        inherit: Poller | None = None,
    ):
        self._config = config
        self._accounts = {
            (account.target.credentials, region): account for account in accounts for region in account.target.regions
        }
        self._executor = executor
        self._clock = clock
        self._previous: dict[Key, RegionTelemetry] = {}
        self._last_success: dict[Key, float] = {}
        self._latest: dict[Key, SourceResult] = {}  # the latest result, served again while an empty region waits
        self._empty_due: dict[Key, float] = {}  # when an empty region is asked again
        self._customer_gateways: dict[Key, dict[str, CustomerGateway | None]] = {}
        self._reported_twins: set[Key] = set()  # pairs found to reach an account and region another pair owns
        self._lock = threading.Lock()  # one poll at a time, even when called outside the scheduler
        if inherit is not None and inherit._config.connection_tags == config.connection_tags:
            self._inherit(inherit)

    def _inherit(self, old: Poller) -> None:
        """Keep what the previous poller knew of the pairs still watched (a reload, a discovery change): their
        last data and its age, the empty regions' schedule, the customer gateways. Each dict is copied whole
        first (atomic under the GIL), as the old poller may still be finishing a poll."""
        interval, now = self._config.empty_region_interval, self._clock()
        for name in ("_previous", "_last_success", "_latest", "_empty_due", "_customer_gateways"):
            copied = dict(getattr(old, name))
            if name == "_empty_due":  # a shorter (or no) empty_region_interval applies at once
                copied = {k: min(due, now + interval) for k, due in copied.items()} if interval > 0 else {}
            getattr(self, name).update((key, value) for key, value in copied.items() if key in self._accounts)

    def poll(self) -> Ec2Collection:
        """Collect every account and region once (empty regions only when due)."""
        with self._lock:
            now = self._clock()
            owners = self._owners()
            due = {key for key in owners if not self._waiting(key, now)}
            jobs = {key: partial(self._collect_region, key, self._accounts[key]) for key in due}
            outcomes = run_isolated(self._executor, jobs, self._config.poll_timeout, cancel_queued=True)
            regions: list[RegionTelemetry] = []
            results: list[SourceResult] = []
            odd: Counter[str] = Counter()
            served: dict[tuple[str, str], Key] = {}  # (account id, region) -> the pair whose data is served
            telemetry: RegionTelemetry | None
            for key, account in self._accounts.items():
                if key not in owners:
                    continue
                region = key[1]
                outcome = outcomes.get(key)
                if outcome is None:  # an empty region between its polls: its last result, with its real age
                    telemetry, result = self._previous[key], self._latest[key]
                else:
                    telemetry, result = self._record(key, account, outcome, odd, now)
                owner = served.setdefault((result.account_id, region), key)
                if owner != key:  # its account was learned only now (STS): the earlier pair keeps it
                    self._report_twin(key, owner, result.account_id)
                    continue
                if telemetry is not None:
                    regions.append(telemetry)
                results.append(result)
            regions.sort(key=lambda r: (r.account_id, r.region))
            results.sort(key=lambda r: (r.account_id, r.region, r.source))
            accounts: dict[str, AwsAccount] = {}
            for key in served.values():  # the owner's credentials read the account's logs, status and traffic
                accounts.setdefault(self._accounts[key].account_label, self._accounts[key])
            return Ec2Collection(tuple(regions), tuple(results), dict(odd), accounts)

    def _record(
        self, key: Key, account: AwsAccount, outcome, odd: Counter, now: float
    ) -> tuple[RegionTelemetry | None, SourceResult]:
        """A polled pair's telemetry (its last good one when the poll failed) and result, remembered."""
        region = key[1]
        if outcome.ok:
            telemetry, region_odd = outcome.value
            odd.update(region_odd)
            self._previous[key] = telemetry
            self._last_success[key] = self._clock()
        else:
            log.warning(
                "collection failed account=%s region=%s source=%s error=%r",
                account.account_label,
                region,
                outcome.failed_at or "ec2",
                outcome.value,
            )
            telemetry = self._previous.get(key)
        self._schedule_empty(key, outcome.ok and not telemetry.connections, now)
        result = SourceResult(
            telemetry.account_id if telemetry else account.account_label,
            region,
            # the account's credentials or identity failed (AssumeRole, GetCallerIdentity, none at all): said as the
            # sts source, in place of the EC2 poll that could not start
            outcome.failed_at or "ec2",
            outcome.ok,
            outcome.duration_seconds,
            self._last_success.get(key),
            "" if outcome.ok else outcome.value,
        )
        self._latest[key] = result
        return telemetry, result

    def _owners(self) -> dict[Key, None]:
        """One owner per account and region: the first pair (explicit targets come before discovered ones)
        of each account known so far, from a role ARN or STS. A pair whose account is not known yet is
        polled, and its data dropped if the account turns out to be owned (``poll``)."""
        owners: dict[Key, None] = {}  # a dict: ordered, and a set for the poll's lookups
        taken: dict[tuple[str, str], Key] = {}
        for key, account in self._accounts.items():
            label = account.account_label
            owner = taken.setdefault((label, key[1]), key) if label != "unknown" else key
            if owner == key:
                owners[key] = None
            else:
                self._report_twin(key, owner, label)
        return owners

    def _report_twin(self, key: Key, owner: Key, account_id: str) -> None:
        if key not in self._reported_twins:
            self._reported_twins.add(key)
            log.warning(
                "two targets reach account=%s region=%s; polled with the first only credentials=%s left_out=%s",
                account_id,
                key[1],
                owner[0],
                key[0],
            )

    def _waiting(self, key: Key, now: float) -> bool:
        """An empty region not yet due. Half a poll interval of slack, so that with 30 s polls and 5 min, a
        region is asked every 10th poll, not every 11th. A due time further away than one interval was set before
        the wall clock stepped back: the region is asked now, not hours later."""
        due = self._empty_due.get(key)
        return (
            due is not None
            and key in self._latest
            and now < due - self._config.poll_interval / 2
            and due - now <= self._config.empty_region_interval
        )

    def _schedule_empty(self, key: Key, empty: bool, now: float) -> None:
        interval = self._config.empty_region_interval
        if not empty or interval <= 0:
            self._empty_due.pop(key, None)
        elif key in self._empty_due:
            self._empty_due[key] = now + interval
        else:  # first seen empty: a phase of its own in the interval, so the empty regions do not all fall due at once
            self._empty_due[key] = now + interval * (zlib.crc32(f"{key[0]}|{key[1]}".encode()) % 1000 + 1) / 1000

    def _collect_region(self, key: Key, account: AwsAccount):
        region = key[1]
        account_id = account.account_id()
        response = account.client("ec2", region).describe_vpn_connections()
        odd: Counter = Counter()
        connections = read_connections(response.get("VpnConnections"), odd, self._config.connection_tags)
        gateways = self._gateways_for(key, account, {c.customer_gateway_id for c in connections})
        return RegionTelemetry(account_id, region, connections, gateways), odd

    def _gateways_for(self, key: Key, account: AwsAccount, wanted: set[str]) -> tuple[CustomerGateway, ...]:
        """Customer gateways rarely change: ask EC2 only for ids not seen before."""
        region = key[1]
        cache = self._customer_gateways.setdefault(key, {})
        for gone in [gateway_id for gateway_id in cache if gateway_id not in wanted]:
            del cache[gone]  # deleted connections' gateways: the cache stays as small as the account
        missing = sorted(gateway_id for gateway_id in wanted if gateway_id and gateway_id not in cache)
        for start in range(0, len(missing), _FILTER_VALUES_MAX):
            chunk = missing[start : start + _FILTER_VALUES_MAX]
            try:
                response = account.client("ec2", region).describe_customer_gateways(
                    Filters=[{"Name": "customer-gateway-id", "Values": chunk}]
                )
            except Exception as err:  # optional metadata: never fails the region
                log.warning("customer gateway lookup failed region=%s error=%r", region, describe_error(err))
                break
            found = {
                g.customer_gateway_id: g
                for g in map(read_customer_gateway, response.get("CustomerGateways") or ())
                if g is not None
            }
            for gateway_id in chunk:
                cache[gateway_id] = found.get(gateway_id)
        return tuple(gateway for g in sorted(wanted) if (gateway := cache.get(g)) is not None)
