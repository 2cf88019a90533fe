"""EC2's VPN telemetry as a source: the targets to poll (the config's and the discovered ones, sharded), their AWS
sessions, and the poller. The other sources read its output (the tunnels, and the sessions that reached them)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from exporter.config import Config, Target
from exporter.model import RegionTelemetry
from exporter.sources.aws import AwsAccount, client_config
from exporter.sources.discovery import DiscoveredTargets, DiscoverySource
from exporter.sources.ec2.families import families as ec2_families
from exporter.sources.ec2.poller import Ec2Collection, Poller
from exporter.sources.source import Context, Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tunnels:
    """What the sources that need EC2 read: its regions (connections and tunnels) and the session per account."""

    regions: tuple[RegionTelemetry, ...]
    accounts: Mapping[str, AwsAccount]

    def only(self, names: frozenset[str]) -> Tunnels:
        """These connections only (ids or Name tags), for a one-shot ``diagnose``."""
        regions = tuple(
            replace(r, connections=tuple(c for c in r.connections if c.vpn_connection_id in names or c.name in names))
            for r in self.regions
        )
        return Tunnels(regions, self.accounts)


def tunnels_of(upstream: Mapping[str, Any], only: frozenset[str] = frozenset()) -> Tunnels | None:
    """The tunnels EC2 last reported (None before its first poll), ``only`` these connections when named."""
    ec2: Ec2Collection | None = upstream.get(Ec2Source.name)
    if ec2 is None:
        return None
    tunnels = Tunnels(ec2.regions, ec2.accounts)
    return tunnels.only(only) if only else tunnels


class Ec2Source(Source):
    """DescribeVpnConnections and DescribeCustomerGateways per account and region, on ``poll_interval``."""

    name = "ec2"
    needs = (DiscoverySource.name,)
    required = True
    quick = True
    families = staticmethod(ec2_families)

    def __init__(self, config: Config, context: Context):
        self.config, self._context = config, context
        self.clock = context.clock  # dates the collections (a benchmark or a test may set its own)
        self.accounts: list[AwsAccount] = []
        self.poller: Poller | None = None
        self._collection: tuple | None = None  # what the running poller was built for (see _apply)
        self._discovered: tuple[Target, ...] = ()  # the organizations' targets, unsharded
        self._session_for = DiscoveredTargets().session_for
        self._reached: tuple[AwsAccount, ...] = ()  # the sessions the latest poll's data came through
        self._apply(config)

    def interval(self, config: Config) -> float:
        return config.poll_interval

    def poll(self, upstream, within=None, only=frozenset()) -> Ec2Collection:
        assert self.poller is not None  # built by __init__ (_apply), only ever replaced
        ec2 = self.poller.poll()
        self._reached = tuple(ec2.accounts.values())
        for field, count in ec2.unrecognized.items():
            self._context.metrics.unrecognized.labels(field).inc(count)
        return ec2

    def follow(self, upstream: Mapping[str, Any]) -> None:
        """A discovery run found a changed set: it applies at once, through the same path as a config reload."""
        found: DiscoveredTargets | None = upstream.get(DiscoverySource.name)
        if found is None:
            return
        self._session_for = found.session_for
        if found.targets != self._discovered:
            before = sum(len(t.regions) for t in self._discovered)
            self._discovered = found.targets
            self._apply(self.config)
            log.info(
                "discovered targets changed accounts=%d regions=%d (were %d regions); applied",
                len(found.targets),
                sum(len(t.regions) for t in found.targets),
                before,
            )

    def reconfigure(self, config: Config) -> bool:
        self.config = config
        self._apply(config)
        return False

    def holds(self) -> tuple[object, ...]:
        return (self._discovered, *self.accounts, *self._reached)

    def _accounts(self, config: Config, targets: tuple[Target, ...]) -> list[AwsAccount]:
        """One AWS session per (sharded) target, with the config's retry and timeout settings. A target the running
        poller already has keeps its session when the AWS settings are unchanged, and a discovered one shares the
        session discovery read it with: no new AssumeRole, no new clients."""
        same_settings = self._collection is not None and self._collection[1] == config.aws
        running = {account.target: account for account in self.accounts} if same_settings else {}
        boto_config = client_config(config.aws.max_attempts, config.aws.connect_timeout, config.aws.read_timeout)

        def session(target: Target) -> AwsAccount:
            if target in running:
                return running[target]
            discovered = self._session_for(target)
            if discovered is not None:  # the session discovery read the account with (made with these settings)
                return discovered.sharing(target)
            return AwsAccount(target, self._context.metrics.record_api_call, boto_config, self._context.own_credentials)

        return [session(target) for target in targets]

    def _watched(self, config: Config) -> tuple[Target, ...]:
        """This shard's targets: the explicit ones, then the discovered ones (a pair both name is the explicit's).
        The order is kept: where an account is known only at run time, the poller gives it to the first."""
        explicit = {(target.credentials, region) for target in config.targets for region in target.regions}
        explicit_accounts = {target.account_id_from_role for target in config.targets if target.role_arn}
        discovered = []
        for target in self._discovered:
            if target.role_arn and target.account_id_from_role in explicit_accounts:
                continue  # an explicit target (perhaps just reloaded) watches this account: never twice
            regions = tuple(r for r in target.regions if (target.credentials, r) not in explicit)
            if regions:
                discovered.append(replace(target, regions=regions))
        return config.shard.select(config.targets + tuple(discovered))

    def _apply(self, config: Config) -> None:
        """Point EC2 collection at the config's and the discovered targets: new sessions where needed and a new
        poller (keeping what the old one knew of the pairs still watched), when anything they depend on changed.
        A config reload and a change in the discovered set both apply here."""
        targets = self._watched(config)
        collection = (
            targets,
            config.aws,
            config.poll_timeout,
            config.poll_interval,
            config.connection_tags,
            config.empty_region_interval,
        )
        if collection == self._collection:
            return
        self.accounts = self._accounts(config, targets)
        self.poller = Poller(config, self.accounts, self._context.executor, clock=self.clock, inherit=self.poller)
        self._collection = collection
