"""AWS sessions the exporter drops are freed although each publish freezes the heap (gc.freeze): a reload that
changes an organization target and discovered accounts suspended then reactivated leave no session behind.
A session is a web of reference cycles, and a frozen object is never collected; RSS under the same churn is
measured by benchmarks/churn.py."""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace

from exporter.config import Target
from exporter.demo import strict_aws
from exporter.frozen_heap import FrozenHeap
from exporter.sources.aws import AwsAccount
from tests.test_discovery import EAST, MANAGEMENT, WEST, A, B, org, organization, polled, vpn


def _sessions(exporter, account_id: str | None = None) -> list[weakref.ref]:
    """Weak references to the AWS accounts and their botocore sessions the exporter polls with."""
    accounts = [
        a for a in exporter.sources["ec2"].accounts if account_id is None or a.target.account_id_from_role == account_id
    ]
    assert accounts
    return [weakref.ref(o) for a in accounts for o in (a, a._session)]


def _make_shared_client_classes() -> None:
    """One client class per service serves the whole process (exporter/sources/aws.py); its methods' docstrings
    hold the event hooks of the session that first made it, so that one session stays, for good and not per
    change: let a session of no exporter be that one."""
    account = AwsAccount(Target(regions=(EAST,)), lambda *_: None)
    for service in ("sts", "ec2", "organizations"):
        account.client(service, EAST)


def _alive(refs: list[weakref.ref]) -> int:
    return sum(ref() is not None for ref in refs)


def _set_state(account_id: str, state: str) -> None:
    from moto.organizations.models import organizations_backends

    account = next(a for a in organizations_backends[MANAGEMENT]["aws"].accounts if a.id == account_id)
    strict_aws.set_account_state(account, state)


def test_a_reload_that_changes_an_organization_target_leaves_no_old_session(aws, make_exporter):
    _make_shared_client_classes()
    organization(A, B)
    for account in (A, B):
        vpn(account, EAST, f"site-{account}")
    exporter = make_exporter([], organizations=(org(),))
    exporter.poll_once()
    exporter.poll("ec2")  # published (and frozen) twice with these sessions
    old = _sessions(exporter) + [weakref.ref(exporter.sources["discovery"].discovery)]
    for regions in ((EAST,), (EAST, WEST), (EAST,)):  # each reload changes the organization target
        exporter.reload_source = lambda r=regions: replace(
            exporter.config, organizations=(org(regions=r),), source="reloaded"
        )
        assert exporter.reload() is None
        exporter.poll("discovery")
        exporter.poll("ec2")
        exporter.poll("ec2")
    assert polled(exporter) == {(MANAGEMENT, EAST), (A, EAST), (B, EAST)}
    assert _alive(old) == 0, f"{_alive(old)} of {len(old)} dropped session objects kept by gc.freeze"


def test_discovered_accounts_suspended_and_reactivated_leave_no_old_session(aws, make_exporter):
    _make_shared_client_classes()
    organization(A, B)
    vpn(A, EAST, "site-a")
    exporter = make_exporter([], organizations=(org(regions=(EAST,)),))
    exporter.poll_once()
    dropped = []
    for _ in range(3):
        dropped += _sessions(exporter, A)
        _set_state(A, "SUSPENDED")
        exporter.poll("discovery")
        exporter.poll("ec2")
        assert (A, EAST) not in polled(exporter)
        _set_state(A, "ACTIVE")
        exporter.poll("discovery")
        exporter.poll("ec2")
        assert (A, EAST) in polled(exporter)
    exporter.poll("ec2")
    assert _alive(dropped) == 0, f"{_alive(dropped)} of {len(dropped)} dropped session objects kept by gc.freeze"


def test_polls_and_discovery_runs_that_change_nothing_freeze_without_a_full_collection(aws, make_exporter):
    """The full collection holds the GIL as long as those the freeze avoids: only a change pays for it."""
    organization(A, B)
    vpn(A, EAST, "site-a")
    exporter = make_exporter([], organizations=(org(regions=(EAST,)),))
    exporter.poll_once()
    exporter.poll("ec2")
    collections = exporter._heap.full_collections
    for _ in range(3):
        exporter.poll("discovery")
        exporter.poll("ec2")
    assert exporter._heap.full_collections == collections
    _set_state(B, "SUSPENDED")
    exporter.poll("discovery")
    exporter.poll("ec2")
    assert exporter._heap.full_collections == collections + 1


class _Cycle:
    def __init__(self):
        self.me = self


def test_the_heap_is_collected_before_freezing_only_when_the_owners_change():
    heap, owner = FrozenHeap(), object()
    assert heap.freeze([owner]) is True  # the first freeze collects what start-up left
    garbage = _Cycle()
    ref = weakref.ref(garbage)
    assert heap.freeze([owner]) is False  # an ordinary publish: frozen, not collected
    del garbage
    assert heap.freeze([owner]) is False
    assert ref() is not None  # frozen while live: kept, until the owners change
    assert heap.freeze([owner, object()]) is True
    assert ref() is None
    gc.unfreeze()  # leave the rest of the suite as it was
