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
  that account; OptInStatus opt-in-not-required or opted-in). Accounts are read concurrently and isolated:
  one refusing AssumeRole or DescribeRegions keeps its last regions and never hides the others.
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
import time
from collections import Counter
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import botocore.session
from botocore.config import Config as BotoConfig

from exporter.config import Organization, Shard, Target
from exporter.sources.aws import ApiCallRecorder, AwsAccount, describe_error
from exporter.sources.isolation import Outcome, run_isolated

log = logging.getLogger(__name__)

DISCOVERY_TIMEOUT = 120.0  # seconds for every account's AssumeRole and DescribeRegions of one run
PAGE_SIZE = 20  # ListAccounts' MaxResults is at most 20 (API reference)
ACTIVE = "ACTIVE"
LIFECYCLE_STATES = frozenset({"PENDING_ACTIVATION", "ACTIVE", "SUSPENDED", "PENDING_CLOSURE", "CLOSED"})  # State ∪ Status
ENABLED_REGION = frozenset({"opt-in-not-required", "opted-in"})  # DescribeRegions' OptInStatus of a usable region
DISABLED_REGION = "not-opted-in"
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ACCOUNT_ARN = re.compile(r"^arn:(aws[a-z-]*):organizations::(\d{12}):account/o-[a-z0-9]{10,32}/(\d{12})$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")

# What became of a listed account: the values of aws_vpn_exporter_discovered_accounts' ``state`` label.
WATCHED = "watched"  # its regions were read; they are polled
FAILED = "failed"  # AssumeRole or DescribeRegions failed this run: its last regions (if any) are still polled
INACTIVE = "inactive"  # not ACTIVE (suspended, pending closure, closed, pending activation, or unknown)
EXCLUDED = "excluded"  # left out by include_accounts / exclude_accounts
MANAGEMENT_SKIPPED = "management_skipped"  # management_account: skip
ELSEWHERE = "elsewhere"  # an explicit target, or an earlier organization target, watches it
STATES = (WATCHED, FAILED, INACTIVE, EXCLUDED, MANAGEMENT_SKIPPED, ELSEWHERE)


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


class OrganizationDiscovery:
    """Discovery for one organization target; keeps its sessions and the last good result between runs."""

    def __init__(self, organization: Organization, record: ApiCallRecorder, boto_config: BotoConfig,
                 executor: Executor, unrecognized: Callable[[str], None], own: botocore.session.Session | None = None):
        self.organization = organization
        self._record, self._boto_config, self._executor, self._own = record, boto_config, executor, own
        self._unrecognized = unrecognized
        self.lister = AwsAccount(Target(regions=(organization.home_region,), role_arn=organization.role_arn,
                                        external_id=organization.external_id), record, boto_config, own)
        self._members: dict[str, AwsAccount] = {}  # account id -> the session that reads its regions
        self._regions: dict[str, tuple[str, ...]] = {}  # account id -> its last good regions
        self.view: OrganizationView | None = None

    def discover(self, claimed: set[str], clock: Callable[[], float] = time.time) -> OrganizationView:
        """One run; ``claimed`` holds the accounts watched elsewhere (this run adds its own to it)."""
        try:
            caller = self.lister.account_id()
            listed = self._list_accounts()
        except Exception as err:  # keep the last good set: an outage of Organizations must not drop accounts
            return self._failed(describe_error(err))
        org = self.organization
        states: Counter = Counter()
        to_read: dict[str, tuple[AwsAccount, str]] = {}  # account id -> (session, partition)
        for entry in listed:
            account_id, state, partition, management = self._classify(entry, claimed)
            if account_id is None:
                continue
            if state is None and management and org.management_account == "skip":
                state = MANAGEMENT_SKIPPED
            if state is not None:
                states[state] += 1
                continue
            if management and org.management_account == "discovery_credentials":
                to_read[account_id] = (self.lister, partition)
            else:
                to_read[account_id] = (self._member(account_id, partition), partition)
        self._members = {a: s for a, (s, _) in to_read.items() if s is not self.lister}
        claimed.update(to_read)
        refused = {account_id: f"management_account is discovery_credentials, but the accounts are listed from "
                               f"{caller} (a delegated administrator), not from the management account"
                   for account_id, (session, _) in to_read.items() if session is self.lister and caller != account_id}
        jobs = {account_id: (lambda s=session: self._enabled_regions(s))
                for account_id, (session, _) in to_read.items() if account_id not in refused}
        outcomes = run_isolated(self._executor, jobs, DISCOVERY_TIMEOUT)
        outcomes.update({account_id: Outcome(False, reason, 0.0) for account_id, reason in refused.items()})
        targets, failures, success = [], [], {}
        for account_id, outcome in sorted(outcomes.items()):
            success[account_id] = outcome.ok
            states[WATCHED if outcome.ok else FAILED] += 1
            if outcome.ok:
                self._regions[account_id] = outcome.value
            else:
                failures.append(f"{account_id}: {outcome.value}")
            regions = self._regions.get(account_id, ())
            if regions:
                session = to_read[account_id][0]
                targets.append(Target(regions=regions, role_arn=session.target.role_arn,
                                      external_id=session.target.external_id, sts_region=org.home_region))
        self._regions = {a: r for a, r in self._regions.items() if a in to_read}  # forget accounts gone from the list
        if failures:
            log.warning("organization discovery could not read %d of %d accounts (AssumeRole or DescribeRegions); "
                        "their last regions are kept errors=%r", len(failures), len(to_read),
                        "; ".join(failures[:5]) + (f"; and {len(failures) - 5} more" if len(failures) > 5 else ""))
        self.view = OrganizationView(caller, True, clock(), "", tuple(targets), dict(states), success)
        return self.view

    def session_for(self, target: Target) -> AwsAccount | None:
        """The session that read this target's account, to be shared with the poller."""
        if (target.role_arn, target.external_id) == (self.lister.target.role_arn, self.lister.target.external_id):
            return self.lister
        session = self._members.get(target.account_id_from_role or "")
        return session if session is not None and session.target.role_arn == target.role_arn else None

    def _failed(self, error: str) -> OrganizationView:
        previous = self.view
        kept = (f"{len(previous.targets)} accounts, {sum(len(t.regions) for t in previous.targets)} regions"
                if previous else "nothing discovered yet")
        log.error("organization discovery failed account=%s error=%r; keeping the last good set (%s)",
                  self.lister.account_label, error, kept)
        self.view = (replace(previous, success=False, error=error) if previous else
                     OrganizationView(self.lister.account_label, False, None, error))
        return self.view

    def _list_accounts(self) -> list[dict]:
        client = self.lister.client("organizations", self.organization.home_region)
        pages = client.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": PAGE_SIZE})
        return [entry for page in pages for entry in page.get("Accounts") or ()]

    def _classify(self, entry: dict, claimed: set[str]) -> tuple[str | None, str | None, str, bool]:
        """(account id or None to skip it, a state if it is not read, its partition, is it the management)."""
        org = self.organization
        account_id = entry.get("Id")
        if not isinstance(account_id, str) or not _ACCOUNT_ID.match(account_id):
            self._unrecognized("account_id")
            return None, None, "", False
        arn = _ACCOUNT_ARN.match(str(entry.get("Arn") or ""))
        if arn is None:
            self._unrecognized("account_arn")  # the management account cannot be told; it is read as a member
        partition = arn.group(1) if arn else partition_of(org.home_region)
        management = bool(arn) and arn.group(2) == account_id
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

    def _member(self, account_id: str, partition: str) -> AwsAccount:
        """The session of a member account's role, kept between runs (its credentials refresh themselves)."""
        role_arn = f"arn:{partition}:iam::{account_id}:role/{self.organization.role_name}"
        session = self._members.get(account_id)
        if session is None or session.target.role_arn != role_arn:
            session = AwsAccount(Target(regions=(self.organization.home_region,), role_arn=role_arn,
                                        external_id=self.organization.external_id), self._record, self._boto_config,
                                 self._own)
        return session

    def _enabled_regions(self, session: AwsAccount) -> tuple[str, ...]:
        response = session.client("ec2", self.organization.home_region).describe_regions(AllRegions=False)
        enabled = set()
        for region in response.get("Regions") or ():
            name, status = region.get("RegionName"), region.get("OptInStatus")
            if not isinstance(name, str) or not _REGION.match(name):
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

    def __init__(self, organizations: tuple[Organization, ...], record: ApiCallRecorder, boto_config: BotoConfig,
                 executor: Executor, unrecognized: Callable[[str], None], own: botocore.session.Session | None = None):
        self._record, self._boto_config = record, boto_config
        self.organizations = [OrganizationDiscovery(o, record, boto_config, executor, unrecognized, own)
                              for o in organizations]
        self._own: AwsAccount | None = None  # the exporter's own credentials, to learn their account once
        self.views: tuple[OrganizationView, ...] = ()

    def discover(self, explicit: tuple[Target, ...], shard: Shard) -> tuple[Target, ...]:
        """Run every organization's discovery; return the targets they found (unsharded, in a stable order),
        with no account an explicit target (or an earlier organization) already watches."""
        claimed = self._explicit_accounts(explicit)
        views = []
        for organization in self.organizations:
            view = organization.discover(claimed)  # adds the accounts it reads to ``claimed``
            views.append(replace(view, owned_pairs=sum(len(t.regions) for t in shard.select(view.targets))))
        self.views = tuple(views)
        return tuple(target for view in views for target in view.targets)

    def session_for(self, target: Target) -> AwsAccount | None:
        return next((s for s in (o.session_for(target) for o in self.organizations) if s is not None), None)

    def _explicit_accounts(self, explicit: tuple[Target, ...]) -> set[str]:
        """The accounts explicit targets watch: from their role ARNs, and (asked once) the default credentials'."""
        accounts = {t.account_id_from_role for t in explicit if t.role_arn}
        if any(not t.role_arn for t in explicit):
            region = self.organizations[0].organization.home_region if self.organizations else "us-east-1"
            if self._own is None:
                self._own = AwsAccount(Target(regions=(region,)), self._record, self._boto_config)
            try:
                accounts.add(self._own.account_id())
            except Exception as err:
                log.warning("could not tell the default credentials' account error=%r; an organization account "
                            "that is also an explicit target may be collected twice", describe_error(err))
        return accounts
