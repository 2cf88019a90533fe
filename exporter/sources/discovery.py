"""Organisation discovery: the accounts of an AWS Organization and the regions each has enabled, as targets.

Per organization target and run (hourly by default, in a job of its own):

- ``organizations:ListAccounts``, through botocore's paginator (at most 20 accounts a page, and AWS may
  return fewer, or none, with a NextToken: the API reference says to page until NextToken is null). It
  answers only in the management account or a delegated administrator (``role_arn`` reaches one).
- Only ACTIVE accounts are kept. AWS retires ``Status`` on 9 September 2026 in favour of ``State`` (botocore's
  Account shape): ``State`` is read when present, else ``Status``; any other value is skipped and counted.
- ``include_accounts`` / ``exclude_accounts``, and accounts an explicit target (or an earlier organization
  target) already watches are left to it, so no account and region is ever collected twice.
- Each remaining account is reached by assuming ``arn:<partition>:iam::<id>:role/<role_name>`` with the
  exporter's own credentials, and asked ``ec2:DescribeRegions`` (AllRegions false: the regions enabled for
  that account; OptInStatus opt-in-not-required or opted-in). Accounts are read concurrently and isolated,
  each as soon as its ListAccounts page arrives: one refusing AssumeRole or DescribeRegions keeps its last
  regions, never hides the others, and is read again within minutes (RETRY_DELAYS). A run reads for its
  budget (run_budget); an account with no answer by then keeps its last answer (``pending``, not failed) and
  is read again a minute later. With the regions listed, a shard reads only accounts it could own a pair of.
- The management account: its id is in every account's ARN (``arn:aws:organizations::<management>:account/
  o-.../<id>``, the Service Authorization Reference), so no extra call is needed. StackSets with
  service-managed permissions never deploy to it (nor does Control Tower's execution role), so the member
  role usually is not there: ``management_account`` says what to do (see config.Organization).

A failed ListAccounts keeps the last good set, says so in ``aws_vpn_exporter_discovery_success`` and one log
line, and tries again at the next run.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field, replace

import botocore.session
from botocore.config import Config as BotoConfig

from exporter.config import Config, Organization, Shard, Target
from exporter.model import SourceResult
from exporter.sources.aws import ApiCallRecorder, AwsAccount, client_config, describe_error
from exporter.sources.isolation import Outcome, timed
from exporter.sources.source import Context, Source

log = logging.getLogger(__name__)

DISCOVERY_TIMEOUT = 120.0  # the least a run may take before its unanswered accounts wait for a retry (see run_budget)
RETRY_DELAYS = (60.0, 120.0, 240.0, 480.0, 960.0)  # a failed or unanswered account is read again after these
PAGE_SIZE = 20  # ListAccounts' MaxResults is at most 20 (API reference)
ACTIVE = "ACTIVE"
LIFECYCLE_STATES = frozenset(
    {"PENDING_ACTIVATION", "ACTIVE", "SUSPENDED", "PENDING_CLOSURE", "CLOSED"}
)  # State ∪ Status
ENABLED_REGION = frozenset({"opt-in-not-required", "opted-in"})  # DescribeRegions' OptInStatus of a usable region
DISABLED_REGION = "not-opted-in"
# Matched whole (fullmatch): "$" also matches before a final newline; ASCII digits only: \d takes any script's.
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_ACCOUNT_ARN = re.compile(r"arn:(aws[a-z-]*):organizations::([0-9]{12}):account/o-[a-z0-9]{10,32}/([0-9]{12})")
_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}")

# What became of a listed account: the values of aws_vpn_exporter_discovered_accounts' ``state`` label.
WATCHED = "watched"  # its regions were read; they are polled
FAILED = "failed"  # AssumeRole or DescribeRegions failed: its last regions (if any) are still polled; retried soon
PENDING = "pending"  # no answer yet when the run's budget ran out: its last regions are still polled; read soon
INACTIVE = "inactive"  # not ACTIVE (suspended, pending closure, closed, pending activation, or unknown)
EXCLUDED = "excluded"  # left out by include_accounts / exclude_accounts
MANAGEMENT_SKIPPED = "management_skipped"  # management_account: skip
ELSEWHERE = "elsewhere"  # an explicit target, or an earlier organization target, watches it
OTHER_SHARD = "other_shard"  # regions listed explicitly, every one of them owned by another replica: not read here
STATES = (WATCHED, FAILED, PENDING, INACTIVE, EXCLUDED, MANAGEMENT_SKIPPED, ELSEWHERE, OTHER_SHARD)


def run_budget(discovery_interval: float) -> float:
    """How long one run may read accounts: a quarter of its interval (15 min at the default hour), at least
    DISCOVERY_TIMEOUT. Accounts with no answer by then keep their last regions and are read again soon."""
    return max(DISCOVERY_TIMEOUT, discovery_interval / 4)


@dataclass(frozen=True)
class OrganizationView:
    """What one organization target's latest discovery found, and how it went (the discovery metrics)."""

    discovery_account: str  # the account ListAccounts is called in (management or delegated administrator)
    success: bool  # the latest ListAccounts succeeded
    last_success: float | None
    error: str = ""
    targets: tuple[Target, ...] = ()  # every account and its regions, before sharding
    accounts: Mapping[str, int] = field(default_factory=dict)  # state -> number of accounts
    account_success: Mapping[str, bool] = field(default_factory=dict)  # account read this run -> it succeeded
    owned_pairs: int = 0  # (account, region) pairs of these targets this replica polls


def partition_of(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


@dataclass
class _Member:
    """A listed account read here: how it is reached, its last good regions, and when it is read again."""

    role_arn: str | None  # None: the listing credentials (management_account: discovery_credentials)
    session: AwsAccount | None = None  # made when it is read; released when this shard polls none of its regions
    regions: tuple[str, ...] = ()  # the last good answer, kept through failures and runs out of budget
    state: str = PENDING
    ok: bool | None = None  # its latest answer: read, refused, or none yet
    error: str = ""
    failures: int = 0  # failed reads in a row (RETRY_DELAYS)
    retry_at: float | None = None  # time.monotonic() when it is read again; None: at the next run
    reading: Future | None = None  # a read under way (one still running when a budget ran out is kept)


class OrganizationDiscovery:
    """Discovery for one organization target; keeps its sessions and the last good answer per account."""

    def __init__(
        self,
        organization: Organization,
        record: ApiCallRecorder,
        boto_config: BotoConfig,
        executor: Executor,
        unrecognized: Callable[[str], None],
        own: botocore.session.Session | None = None,
        budget: float = DISCOVERY_TIMEOUT,
    ):
        self.organization = organization
        self._record, self._boto_config, self._executor, self._own = record, boto_config, executor, own
        self._unrecognized = unrecognized
        self.budget = budget
        self.lister = AwsAccount(
            Target(
                regions=(organization.home_region,),
                role_arn=organization.role_arn,
                external_id=organization.external_id,
            ),
            record,
            boto_config,
            own,
        )
        self._accounts: dict[str, _Member] = {}  # the latest listing's accounts read here
        self._listed: Counter = Counter()  # the latest listing's other accounts, by state
        self._shard = Shard()
        self.view: OrganizationView | None = None

    def discover(
        self, claimed: set[str], shard: Shard | None = None, clock: Callable[[], float] = time.time
    ) -> OrganizationView:
        """One run: list the accounts, reading each one's regions as its page arrives, until the run's budget
        runs out; ``claimed`` holds the accounts watched elsewhere (this run adds its own to it)."""
        shard = shard or Shard()
        deadline = time.monotonic() + self.budget
        accounts: dict[str, _Member] = {}
        try:
            caller = self.lister.account_id()
            listed, mine = self._list(caller, claimed, shard, accounts)
        except Exception as err:  # keep the last good set: an outage of Organizations must not drop accounts
            for member in accounts.values():
                if member.reading is not None:
                    member.reading.cancel()
            return self._failed(describe_error(err))
        self._accounts, self._listed, self._shard = accounts, listed, shard
        claimed.update(mine)
        self._settle(accounts, deadline)
        self.view = self._view(caller, True, clock())
        return self.view

    def retry(self) -> OrganizationView | None:
        """Read again the accounts whose retry is due (failed, or unanswered when a budget ran out)."""
        if self.view is None:
            return None
        now = time.monotonic()
        due = {a: m for a, m in self._accounts.items() if m.retry_at is not None and m.retry_at <= now}
        for member in due.values():
            if member.reading is None:
                member.reading = self._read(member)
        self._settle(due, now + self.budget)
        self.view = self._view(self.view.discovery_account, self.view.success, self.view.last_success, self.view.error)
        return self.view

    def next_retry(self) -> float | None:
        """When (time.monotonic()) the next account is due to be read again, if any is."""
        return min((m.retry_at for m in self._accounts.values() if m.retry_at is not None), default=None)

    def session_for(self, target: Target) -> AwsAccount | None:
        """The session that read this target's account, to be shared with the poller."""
        if (target.role_arn, target.external_id) == (self.lister.target.role_arn, self.lister.target.external_id):
            return self.lister
        member = self._accounts.get(target.account_id_from_role or "")
        session = member.session if member is not None else None
        return session if session is not None and session.target.role_arn == target.role_arn else None

    def _list(
        self, caller: str, claimed: set[str], shard: Shard, accounts: dict[str, _Member]
    ) -> tuple[Counter, set[str]]:
        """Page by page: each account to read is submitted as soon as its page arrives (into ``accounts``)."""
        org = self.organization
        states: Counter = Counter()
        mine: set[str] = set()  # this organization's accounts (read here or by another shard)
        seen: set[str] = set()
        client = self.lister.client("organizations", org.home_region)
        for page in client.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": PAGE_SIZE}):
            for entry in page.get("Accounts") or ():
                account_id, state, partition, management = self._classify(entry, claimed)
                if account_id is None:
                    continue
                if account_id in seen:  # listed twice: counted once, the repeat as an unrecognised value
                    self._unrecognized("account_duplicate")
                    continue
                seen.add(account_id)
                if state is None and management and org.management_account == "skip":
                    state = MANAGEMENT_SKIPPED
                if state is not None:
                    states[state] += 1
                    continue
                mine.add(account_id)
                by_lister = management and org.management_account == "discovery_credentials"
                role_arn = org.role_arn if by_lister else f"arn:{partition}:iam::{account_id}:role/{org.role_name}"
                if not self._could_own(role_arn, shard):
                    states[OTHER_SHARD] += 1
                    continue
                member = self._carried(account_id, role_arn)
                accounts[account_id] = member
                if by_lister and caller != account_id:
                    member.state, member.ok, member.retry_at, member.reading = FAILED, False, None, None
                    member.error = (
                        f"management_account is discovery_credentials, but the accounts are listed "
                        f"from {caller} (a delegated administrator), not from the management account"
                    )
                elif member.reading is None:
                    member.reading = self._read(member)
        return states, mine

    def _could_own(self, role_arn: str | None, shard: Shard) -> bool:
        """With its regions listed, an account whose every pair another replica owns is not read here (no
        AssumeRole, no session); with regions: all, its regions are unknown until read, so it always is."""
        regions = self.organization.regions
        if regions is None or shard.count == 1:
            return True
        credentials = Target(regions=regions, role_arn=role_arn)
        return any(shard.owns(credentials, region) for region in regions)

    def _carried(self, account_id: str, role_arn: str | None) -> _Member:
        """The account's record for this run: its last regions, session and retry state when the role is the same."""
        previous = self._accounts.get(account_id)
        if previous is None or previous.role_arn != role_arn:
            return _Member(role_arn)
        reading = previous.reading if previous.reading is not None and not previous.reading.cancelled() else None
        return replace(previous, reading=reading)

    def _read(self, member: _Member) -> Future:
        """Submit the account's AssumeRole and DescribeRegions (its session made now, so a shard's pool of
        sessions holds only the accounts it reads)."""

        def read() -> tuple[str, ...]:
            if member.session is None:  # made in the pool, so the listing goes on meanwhile
                member.session = (
                    self.lister
                    if member.role_arn == self.organization.role_arn
                    else AwsAccount(
                        Target(
                            regions=(self.organization.home_region,),
                            role_arn=member.role_arn,
                            external_id=self.organization.external_id,
                        ),
                        self._record,
                        self._boto_config,
                        self._own,
                    )
                )
            return self._enabled_regions(member.session)

        return self._executor.submit(timed, read)

    def _settle(self, members: dict[str, _Member], deadline: float) -> None:
        """Wait for the members' reads until the deadline; take each answer, or mark it pending."""
        wait(
            [m.reading for m in members.values() if m.reading is not None],
            timeout=max(0.0, deadline - time.monotonic()),
        )
        now = time.monotonic()
        for member in members.values():
            reading = member.reading
            if reading is None:
                continue
            if not reading.done() or reading.cancelled():  # not reached: its last answer stands, read again soon
                reading.cancel()  # not started: dropped; running: its answer is taken at the retry
                member.reading = None if reading.cancelled() else reading
                member.state, member.retry_at = PENDING, now + RETRY_DELAYS[0]
                continue
            member.reading = None
            outcome: Outcome = reading.result()
            if outcome.ok:
                member.regions, member.state, member.ok, member.error = outcome.value, WATCHED, True, ""
                member.failures, member.retry_at = 0, None
            else:
                member.state, member.ok, member.error = FAILED, False, outcome.value
                member.failures += 1
                member.retry_at = (
                    now + RETRY_DELAYS[member.failures - 1] if member.failures <= len(RETRY_DELAYS) else None
                )

    def _view(self, caller: str, success: bool, last_success: float | None, error: str = "") -> OrganizationView:
        org, shard = self.organization, self._shard
        states: Counter = Counter(self._listed)
        targets, failures, pending, answered = [], [], 0, {}
        for account_id, member in sorted(self._accounts.items()):
            states[member.state] += 1
            pending += member.state == PENDING
            if member.ok is not None:
                answered[account_id] = member.ok
            if member.state == FAILED:
                failures.append(f"{account_id}: {member.error}")
            if member.regions:
                target = Target(
                    regions=member.regions,
                    role_arn=member.role_arn,
                    external_id=org.external_id,
                    sts_region=org.home_region,
                )
                targets.append(target)
                if (
                    shard.count > 1
                    and member.session is not None
                    and member.session is not self.lister
                    and not shard.select((target,))
                ):
                    member.session = None  # another replica polls all its regions: its clients are not kept
        if failures:
            log.warning(
                "organization discovery could not read %d of %d accounts (AssumeRole or DescribeRegions); "
                "their last regions are kept and they are read again within minutes errors=%r",
                len(failures),
                len(self._accounts),
                "; ".join(failures[:5]) + (f"; and {len(failures) - 5} more" if len(failures) > 5 else ""),
            )
        if pending:
            log.warning(
                "organization discovery had no answer from %d of %d accounts within its budget of %gs; "
                "their last regions are kept and they are read again in %gs",
                pending,
                len(self._accounts),
                self.budget,
                RETRY_DELAYS[0],
            )
        return OrganizationView(caller, success, last_success, error, tuple(targets), dict(states), answered)

    def _failed(self, error: str) -> OrganizationView:
        previous = self.view
        kept = (
            f"{len(previous.targets)} accounts, {sum(len(t.regions) for t in previous.targets)} regions"
            if previous
            else "nothing discovered yet"
        )
        log.error(
            "organization discovery failed account=%s error=%r; keeping the last good set (%s)",
            self.lister.account_label,
            error,
            kept,
        )
        self.view = (
            replace(previous, success=False, error=error)
            if previous
            else OrganizationView(self.lister.account_label, False, None, error)
        )
        return self.view

    def _classify(self, entry: dict, claimed: set[str]) -> tuple[str | None, str | None, str, bool]:
        """(account id or None to skip it, a state if it is not read, its partition, is it the management)."""
        org = self.organization
        account_id = entry.get("Id")
        if not isinstance(account_id, str) or not _ACCOUNT_ID.fullmatch(account_id):
            self._unrecognized("account_id")
            return None, None, "", False
        arn = _ACCOUNT_ARN.fullmatch(str(entry.get("Arn") or ""))
        if arn is None:
            self._unrecognized("account_arn")  # the management account cannot be told; it is read as a member
        partition = arn.group(1) if arn else partition_of(org.home_region)
        management = arn is not None and arn.group(2) == account_id
        lifecycle = entry.get("State") or entry.get("Status")  # State is the field that stays
        if lifecycle not in LIFECYCLE_STATES:
            self._unrecognized("account_state")
        if lifecycle != ACTIVE:
            return account_id, INACTIVE, partition, management
        if (org.include_accounts and account_id not in org.include_accounts) or account_id in org.exclude_accounts:
            return account_id, EXCLUDED, partition, management
        if account_id in claimed:
            return account_id, ELSEWHERE, partition, management
        return account_id, None, partition, management

    def _enabled_regions(self, session: AwsAccount) -> tuple[str, ...]:
        response = session.client("ec2", self.organization.home_region).describe_regions(AllRegions=False)
        enabled = set()
        for region in response.get("Regions") or ():
            name, status = region.get("RegionName"), region.get("OptInStatus")
            if not isinstance(name, str) or not _REGION.fullmatch(name):
                self._unrecognized("region_name")
            elif status == DISABLED_REGION:
                continue  # AllRegions false should not list it; never poll a region the account cannot use
            elif status in ENABLED_REGION:
                enabled.add(name)
            else:  # listed as enabled, with a status AWS does not document: polled, and counted
                self._unrecognized("region_opt_in_status")
                enabled.add(name)
        wanted = self.organization.regions
        return tuple(sorted(enabled if wanted is None else enabled & set(wanted)))


class Discovery:
    """Every organization target of the config, discovered in turn; the targets they add to the explicit ones."""

    def __init__(
        self,
        organizations: tuple[Organization, ...],
        record: ApiCallRecorder,
        boto_config: BotoConfig,
        executor: Executor,
        unrecognized: Callable[[str], None],
        own: botocore.session.Session | None = None,
        budget: Callable[[], float] = lambda: DISCOVERY_TIMEOUT,
        rediscover: Callable[[], None] | None = None,
    ):
        """``budget``: the seconds a run may read accounts (run_budget of the current discovery_interval, asked at
        each run so a reload applies); ``rediscover``: what the discovery job runs (Exporter.discover), called
        again when a failed or unanswered account is due to be read again."""
        self._record, self._boto_config = record, boto_config
        self.organizations = [
            OrganizationDiscovery(o, record, boto_config, executor, unrecognized, own) for o in organizations
        ]
        self._budget = budget
        self._own: AwsAccount | None = None  # the exporter's own credentials, to learn their account once
        self.views: tuple[OrganizationView, ...] = ()
        self._rediscover = rediscover
        self._run_lock = threading.Lock()  # the hourly job and a retry never run at once
        self._retry_due = False  # the next run reads only the accounts due again, not the whole listing
        self._timer: threading.Timer | None = None
        self._closed = False
        self._identity_failures = 0  # runs in a row that could not tell the default credentials' account

    def discover(self, explicit: tuple[Target, ...], shard: Shard) -> tuple[Target, ...]:
        """Run every organization's discovery (or, when a retry is due, read again only its failed and unanswered
        accounts); return the targets they found (unsharded, in a stable order), with no account an explicit
        target (or an earlier organization) already watches."""
        with self._run_lock:
            for organization in self.organizations:
                organization.budget = self._budget()
            retrying, self._retry_due = self._retry_due and bool(self.views), False
            if retrying:
                views = [
                    organization.retry() or view
                    for organization, view in zip(self.organizations, self.views, strict=False)
                ]
            else:
                claimed = self._explicit_accounts(explicit)
                views = [
                    organization.discover(claimed, shard)  # adds the accounts it reads to ``claimed``
                    for organization in self.organizations
                ]
            self.views = tuple(
                replace(view, owned_pairs=sum(len(t.regions) for t in shard.select(view.targets))) for view in views
            )
            self._schedule_retry()
            return tuple(target for view in self.views for target in view.targets)

    def close(self) -> None:
        """No more retries (the exporter stops, or a reload replaced this discovery)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()

    def _schedule_retry(self) -> None:
        """A timer for the earliest account due again (minutes, RETRY_DELAYS), so that a failed or unanswered
        account is not left to the next hourly run."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = [at for at in (o.next_retry() for o in self.organizations) if at is not None]
        if self._identity_failures:  # an account may be collected twice (by another replica too) until it is known
            due.append(time.monotonic() + RETRY_DELAYS[min(self._identity_failures, len(RETRY_DELAYS)) - 1])
        if due and self._rediscover is not None and not self._closed:
            self._timer = threading.Timer(max(0.0, min(due) - time.monotonic()), self._retry)
            self._timer.daemon = True
            self._timer.start()

    def _retry(self) -> None:
        if self._closed or self._rediscover is None:  # (scheduled only with a rediscover)
            return
        self._retry_due = not self._identity_failures  # else a whole run, which asks for the account again
        try:
            self._rediscover()
        except Exception:  # a timer thread: say it, and let the hourly run try again
            log.exception("organization discovery retry failed")

    def session_for(self, target: Target) -> AwsAccount | None:
        return next((s for s in (o.session_for(target) for o in self.organizations) if s is not None), None)

    def _explicit_accounts(self, explicit: tuple[Target, ...]) -> set[str]:
        """The accounts explicit targets watch: from their role ARNs, and (asked once) the default credentials'."""
        accounts = {account for t in explicit if (account := t.account_id_from_role) is not None}
        if any(not t.role_arn for t in explicit):
            region = self.organizations[0].organization.home_region if self.organizations else "us-east-1"
            if self._own is None:
                self._own = AwsAccount(Target(regions=(region,)), self._record, self._boto_config)
            try:
                accounts.add(self._own.account_id())
            except Exception as err:
                self._identity_failures += 1
                log.warning(
                    "could not tell the default credentials' account error=%r; an organization account "
                    "that is also an explicit target may be collected twice until a run tells it (the next "
                    "in %gs)",
                    describe_error(err),
                    RETRY_DELAYS[min(self._identity_failures, len(RETRY_DELAYS)) - 1],
                )
                return accounts
        self._identity_failures = 0
        return accounts


@dataclass(frozen=True)
class DiscoveredTargets:
    """The organizations' targets (unsharded), and the sessions they were read with (EC2 reuses them)."""

    targets: tuple[Target, ...] = ()
    session_for: Callable[[Target], AwsAccount | None] = lambda target: None
    results: tuple[SourceResult, ...] = ()  # its own metrics say how discovery went (instrumentation)

    def observed(self) -> dict[str, object]:
        return {}


class DiscoverySource(Source):
    """Organization discovery as a source: hourly, it lists the accounts and regions EC2 then polls. Always
    registered: with no organization target it finds nothing and calls nothing."""

    name = "discovery"
    quick = True

    def __init__(self, config: Config, context: Context):
        self.config, self._context = config, context
        self.discovery = self._build(config)
        self._standing: DiscoveredTargets | None = None

    def _build(self, config: Config) -> Discovery | None:
        if not config.organizations:
            return None
        aws = config.aws
        return Discovery(
            config.organizations,
            self._context.metrics.record_api_call,
            client_config(aws.max_attempts, aws.connect_timeout, aws.read_timeout),
            self._context.background_executor,
            lambda field: self._context.metrics.unrecognized.labels(field).inc(),
            self._context.own_credentials,
            budget=lambda: run_budget(self.config.discovery_interval),
            rediscover=lambda: self._context.run_now(self.name),
        )

    def interval(self, config: Config) -> float:
        return config.discovery_interval

    def poll(self, upstream, within=None, only=frozenset()) -> DiscoveredTargets | None:
        """One run; None when a reload replaced this discovery meanwhile (its answer is not applied)."""
        discovery = self.discovery
        if discovery is None:
            return DiscoveredTargets()
        found = discovery.discover(self.config.targets, self.config.shard)
        self._context.metrics.discovery.views = discovery.views
        return DiscoveredTargets(found, discovery.session_for) if discovery is self.discovery else None

    def reconfigure(self, config: Config) -> bool:
        """New organizations or AWS settings: a new discovery, run at once (the discovered set is kept until it
        has run); new explicit targets: run at once, so an account they now watch is not discovered too."""
        old, self.config = self.config, config
        rediscover = (config.organizations, config.aws) != (old.organizations, old.aws)
        explicit_changed = {t.credentials for t in config.targets} != {t.credentials for t in old.targets}
        if rediscover:
            if self.discovery is not None:
                self.discovery.close()
            self.discovery = self._build(config)
            if self.discovery is None:
                self._context.metrics.discovery.views = ()
                self._standing = DiscoveredTargets()
        return (rediscover or explicit_changed) and self.discovery is not None

    def standing_output(self) -> DiscoveredTargets | None:
        standing, self._standing = self._standing, None
        return standing

    def holds(self) -> tuple[object, ...]:
        return (self.discovery,)

    def close(self) -> None:
        if self.discovery is not None:
            self.discovery.close()
