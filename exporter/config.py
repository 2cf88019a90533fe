"""The exporter's YAML configuration, decoded strictly.

Every mistake is reported at start-up as ``FILE: KEY: REASON`` so that a typo never turns into a
silently unmonitored account.
"""

from __future__ import annotations

import difflib
import logging
import re
import zlib
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from exporter import regions as aws_regions
from exporter.durable import RETENTION

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

log = logging.getLogger(__name__)
# Where the runbooks live: the status page's, diagnose's and (alerts/settings.yml) the alerts' links. Point all of
# them at your own wiki with the config's runbook_base and the settings' runbook_base.
RUNBOOK_BASE = "https://github.com/aws-vpn-exporter/aws-vpn-exporter/blob/main/docs/runbooks.md"

_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ROLE_NAME = re.compile(r"^(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")  # IAM: a name, optionally after a path


@dataclass(frozen=True)
class Problem:
    """One mistake in a configuration file: ``source: key: reason``."""

    source: str
    key: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.key else self.source
        return f"{where}: {self.reason}"


class ConfigError(Exception):
    """Every problem of a configuration file, one per line (``source: key: reason``); ``source``, ``key`` and
    ``reason`` are the first problem's."""

    def __init__(self, source: str, key: str, reason: str, *more: Problem):
        self.problems = (Problem(source, key, reason), *more)
        self.source, self.key, self.reason = source, key, reason
        super().__init__("\n".join(str(problem) for problem in self.problems))

    @classmethod
    def of(cls, problems: list[Problem] | tuple[Problem, ...]) -> ConfigError:
        first, *more = problems
        return cls(first.source, first.key, first.reason, *more)

    def in_file_order(self, lines: dict[str, int]) -> ConfigError:
        """The same problems sorted by where their key is in the file (``lines``: key -> line, from
        ``read_yaml_lines``); a key the file lacks sorts with its closest parent, ties keep their order."""
        return ConfigError.of(sorted(self.problems, key=lambda problem: _line_of(problem.key, lines)))


def _line_of(key: str, lines: dict[str, int]) -> int:
    while key and key not in lines:
        key = key[: max(key.rfind("."), key.rfind("["), 0)]
    return lines.get(key, 0)


@dataclass(frozen=True)
class Target:
    """One set of credentials (an account) and the regions to watch with it."""

    regions: tuple[str, ...]
    role_arn: str | None = None
    external_id: str | None = None
    sts_region: str | None = None  # where STS is asked (AssumeRole, GetCallerIdentity); None: the first region

    @property
    def account_id_from_role(self) -> str | None:
        """The account is known from the role ARN without asking STS."""
        match = _ROLE_ARN.match(self.role_arn or "")
        return match.group(1) if match else None

    @property
    def credentials(self) -> str:
        """What tells one set of credentials from another: its role, or ``default``."""
        return self.role_arn or "default"


MANAGEMENT_ACCOUNT_MODES = ("member_role", "skip", "discovery_credentials")


@dataclass(frozen=True)
class Organization:
    """Every active account of an AWS Organization, found with ListAccounts and reached through a role of
    the same name in each (as a StackSet deploys it). See exporter/sources/discovery.py."""

    role_name: str
    regions: tuple[str, ...] | None = None  # None: every region the account has enabled (ec2:DescribeRegions)
    external_id: str | None = None  # for the member roles' trust policy
    include_accounts: tuple[str, ...] = ()  # only these (exclusive with exclude_accounts)
    exclude_accounts: tuple[str, ...] = ()
    role_arn: str | None = None  # assumed to call ListAccounts (management or delegated admin); None: own credentials
    # How the management account is reached. StackSets with service-managed permissions never deploy to it,
    # so the member role is usually missing there: member_role (try it, and fail visibly), skip, or
    # discovery_credentials (the credentials that list the accounts, when they are the management account's).
    management_account: str = "member_role"
    home_region: str = "us-east-1"  # where Organizations, STS and DescribeRegions are asked (enabled everywhere)

    @property
    def credentials(self) -> str:
        return self.role_arn or "default"


@dataclass(frozen=True)
class LogsConfig:
    enabled: bool = True
    lookback: float = 3600.0
    poll_interval: float = 60.0
    overlap: float = 300.0
    retention: float = RETENTION  # forget a tunnel's log state this long after EC2 last reported it


@dataclass(frozen=True)
class TunnelStatusConfig:
    """AWS's per-tunnel maintenance and provisioning status: two calls per tunnel, on a slow schedule."""

    enabled: bool = True
    interval: float = 900.0  # a pass over every tunnel at most this often
    max_calls_per_second: float = 5.0  # per account and region, on EC2's shared token bucket (20/s refill)


@dataclass(frozen=True)
class TrafficConfig:
    """Tunnel traffic from CloudWatch (AWS/VPN TunnelDataIn/Out): off by default, GetMetricData is billed per
    metric requested (two per tunnel and pass)."""

    enabled: bool = False
    interval: float = 300.0  # the metrics' resolution: a pass more often finds nothing new
    delay: float = 600.0  # CloudWatch publishes a period minutes after it ends: read periods this old or older
    window: float = 3600.0  # each pass re-reads this much, so a late data point still counts (once)
    silent_after: float = 1800.0  # IPsec up and no byte received for this long: ipsec_up_no_traffic
    idle_after: float = 7 * 86400.0  # no byte either way for this long: connection_idle (a cost)
    price_per_1000_metrics: float = 0.01  # USD, GetMetricData in us-east-1 (for the cost estimate)


@dataclass(frozen=True)
class AwsSettings:
    """How hard to try each AWS call: bounded retries (adaptive mode) and timeouts that fit a poll."""

    max_attempts: int = 4
    connect_timeout: float = 5.0
    read_timeout: float = 15.0


@dataclass(frozen=True)
class Shard:
    """This replica's share of the (credentials, region) pairs: those whose hash mod count is index."""

    index: int = 0
    count: int = 1

    def owns(self, target: Target, region: str) -> bool:
        key = f"{target.credentials}|{region}".encode()
        return zlib.crc32(key) % self.count == self.index

    def select(self, targets: tuple[Target, ...]) -> tuple[Target, ...]:
        """The targets with only this shard's regions (targets left with none are dropped)."""
        kept = []
        for target in targets:
            regions = tuple(r for r in target.regions if self.owns(target, r))
            if regions:
                kept.append(replace(target, regions=regions))
        return tuple(kept)


@dataclass(frozen=True)
class Config:
    targets: tuple[Target, ...]
    poll_interval: float = 30.0
    poll_timeout: float = 25.0
    max_concurrency: int = 16
    logs: LogsConfig = field(default_factory=LogsConfig)
    tunnel_status: TunnelStatusConfig = field(default_factory=TunnelStatusConfig)
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    connection_tags: tuple[str, ...] = ()  # tag keys exported as tag_<key> labels on aws_vpn_connection_info
    state_dir: Path = Path("./state")
    shard: Shard = field(default_factory=Shard)
    aws: AwsSettings = field(default_factory=AwsSettings)
    organizations: tuple[Organization, ...] = ()  # targets found by discovery, besides the explicit ones
    discovery_interval: float = 3600.0  # how often the organizations' accounts and regions are listed again
    empty_region_interval: float = 300.0  # a region whose last poll found no connection is polled this often
    runbook_base: str = RUNBOOK_BASE  # the runbooks the status page and diagnose link to (anchor: the alert's name)
    source: str = "<built-in>"

    def sharded_targets(self) -> tuple[Target, ...]:
        """The explicit targets with only this shard's regions (targets left with none are dropped)."""
        return self.shard.select(self.targets)


def parse_duration(text: Any) -> float:
    """Parse a Prometheus-style duration (``30s``, ``5m``, ``1h30m``) into seconds."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {text!r}")
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += int(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(text):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {text!r}")
    return total


class Reader:
    """Walks a decoded YAML mapping, collecting every problem with the dotted key it is at: a value that is wrong
    is reported and left out (its default used), so the rest of the file is still checked."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[Problem] = []

    def report(self, key: str, reason: str) -> None:
        self.problems.append(Problem(self.source, key, reason))

    def ok(self, *keys: str) -> bool:
        """None of ``keys`` (nor anything under them) has a problem: a check across keys is worth making."""
        return not any(_within(problem.key, key) for problem in self.problems for key in keys)

    def check(self, lines: dict[str, int] | None = None) -> None:
        """Raise every problem found, if any, as one ConfigError (in file order, given ``read_yaml_lines``' lines)."""
        if self.problems:
            error = ConfigError.of(self.problems)
            raise error.in_file_order(lines) if lines is not None else error

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        """The known keys of a mapping; each unknown one reported (with the closest known key as a suggestion)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.report(key or "(top level)", f"expected a mapping, got {_kind(value)}")
            return {}
        for name in value:
            if name not in allowed:
                self.report(_join(key, str(name)), unknown_key(str(name), allowed))
        return {name: item for name, item in value.items() if name in allowed}

    def duration(self, data: dict, key: str, prefix: str, default: float, minimum: float) -> float:
        if key not in data:
            return default
        full = _join(prefix, key)
        try:
            seconds = parse_duration(data[key])
        except ValueError as err:
            self.report(full, str(err))
            return default
        if seconds < minimum:
            self.report(full, f"must be at least {minimum:g}s, got {data[key]!r}")
            return default
        return seconds

    def typed(
        self,
        data: dict,
        key: str,
        prefix: str,
        default: Any,
        kind: type | tuple[type, ...],
        check: Callable[[Any], str | None] = lambda v: None,
    ) -> Any:
        if key not in data:
            return default
        value = data[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            name = kind.__name__ if isinstance(kind, type) else "number"
            self.report(_join(prefix, key), f"expected {name}, got {_kind(value)}")
            return default
        problem = check(value)
        if problem:
            self.report(_join(prefix, key), problem)
            return default
        return value


def unknown_key(name: str, known: set[str] | list[str]) -> str:
    """Why a key is refused: unknown, with the closest known key when one is close (``poll_intervall``)."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    suggestion = f", did you mean {close[0]}?" if close else ""
    return f"unknown key{suggestion} (known keys: {', '.join(sorted(known))})"


def _within(key: str, parent: str) -> bool:
    return key == parent or key.startswith((parent + ".", parent + "["))


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _targets(reader: Reader, value: Any) -> tuple[tuple[Target, ...], tuple[Organization, ...]]:
    """The explicit targets and the organizations to discover, from one list."""
    if not isinstance(value, list) or not value:
        reader.report("targets", "expected a non-empty list of targets")
        return (), ()
    targets, organizations, positions = [], [], []  # positions: each explicit target's index in the list
    for index, item in enumerate(value):
        prefix = f"targets[{index}]"
        if isinstance(item, dict) and "organization" in item:
            organizations.append(_organization(reader, item, prefix))
            continue
        positions.append(index)
        data = reader.mapping(item, prefix, {"regions", "role_arn", "external_id", "organization"})
        if data.get("regions") == "all":
            reader.report(
                f"{prefix}.regions", "'all' needs an organization target (explicit targets list their regions)"
            )
            regions: tuple[str, ...] = ()
        else:
            regions = _regions(reader, data.get("regions"), f"{prefix}.regions")
        role_arn = reader.typed(
            data, "role_arn", prefix, None, str, lambda v: None if _ROLE_ARN.match(v) else f"not an IAM role ARN: {v!r}"
        )
        external_id = reader.typed(data, "external_id", prefix, None, str)
        targets.append(Target(regions, role_arn, external_id))
    owner: dict[tuple[str, str], int] = {}  # (account, or the credentials where unknown; region) -> its target
    for index, target in zip(positions, targets, strict=False):
        if not reader.ok(f"targets[{index}].role_arn"):
            continue  # whose account it is is unknown
        for region in target.regions:
            first = owner.setdefault((_account_of(target.role_arn), region), index)
            if first == index:
                continue
            other = targets[positions.index(first)].role_arn
            if other == target.role_arn:
                reader.report(f"targets[{index}]", f"region {region} is already watched with the same credentials")
            else:
                reader.report(
                    f"targets[{index}].role_arn",
                    f"account {_account_of(other)} in region {region} is "
                    f"already watched by targets[{first}] ({other}): one role "
                    "per account and region, or every series is exported twice",
                )
            break  # one problem per target
    lister = Counter(_account_of(organization.role_arn) for organization in organizations)
    twice = next((account for account, count in lister.items() if count > 1), None)
    if twice is not None:
        reason = "the same credentials" if twice == "default" else f"roles in the same account ({twice})"
        reader.report(
            "targets",
            f"two organization targets list accounts with {reason}: make them one "
            "(include_accounts or exclude_accounts choose the accounts)",
        )
    return tuple(targets), tuple(organizations)


def _account_of(role_arn: str | None) -> str:
    """The account a role ARN names (``default`` for the default credentials): what one target owns."""
    match = _ROLE_ARN.match(role_arn or "")
    return match.group(1) if match else role_arn or "default"


def _region_refusal(reader: Reader, key: str, region: Any) -> str | None:
    """Why ``region`` is refused (botocore's partitions), or None; a region newer than botocore is logged."""
    refusal = aws_regions.refusal(region)
    if refusal is None and not aws_regions.is_listed(region):
        log.warning("%s: %s: %s", reader.source, key, aws_regions.unlisted_warning(region))
    return refusal


def _regions(reader: Reader, regions: Any, key: str, all_allowed: bool = False) -> tuple[str, ...]:
    """The valid regions of a list; each invalid one reported."""
    if not isinstance(regions, list) or not regions:
        reader.report(
            key,
            "expected "
            + ("all (every region each account has enabled), or " if all_allowed else "")
            + f"a non-empty list of region names, got {regions!r}",
        )
        return ()
    valid = []
    for position, region in enumerate(regions):
        refusal = _region_refusal(reader, f"{key}[{position}]", region)
        if refusal:
            reader.report(f"{key}[{position}]", refusal)
        else:
            valid.append(region)
    if len(set(valid)) != len(valid):
        reader.report(key, "lists a region twice")
        valid = list(dict.fromkeys(valid))
    return tuple(valid)


def _organization(reader: Reader, item: dict, prefix: str) -> Organization:
    data = reader.mapping(item, prefix, {"organization", "regions", "role_arn", "external_id"})
    for key in ("role_arn", "external_id"):
        if key in data:
            reader.report(
                f"{prefix}.{key}",
                "an organization target's credentials go inside organization "
                "(organization.role_arn lists the accounts, organization.role_name "
                "reaches each)",
            )
    regions: tuple[str, ...] | None = None
    if "regions" not in data:
        reader.report(f"{prefix}.regions", "missing: all (every region each account has enabled) or a list")
    elif data["regions"] != "all":
        regions = _regions(reader, data["regions"], f"{prefix}.regions", all_allowed=True)
    where = f"{prefix}.organization"
    org = reader.mapping(
        data.get("organization"),
        where,
        {
            "role_name",
            "external_id",
            "include_accounts",
            "exclude_accounts",
            "role_arn",
            "management_account",
            "home_region",
        },
    )
    if "role_name" not in org:
        reader.report(f"{where}.role_name", "missing: the role to assume in each account (e.g. vpn-exporter)")
    role_name = reader.typed(
        org, "role_name", where, "", str, lambda v: None if _ROLE_NAME.match(v) else f"not an IAM role name: {v!r}"
    )
    if "include_accounts" in org and "exclude_accounts" in org:
        reader.report(
            where,
            "include_accounts and exclude_accounts exclude each other: list the accounts to "
            "watch, or those to leave out",
        )
    default = Organization(role_name)
    return Organization(
        role_name=role_name,
        regions=regions,
        external_id=reader.typed(org, "external_id", where, None, str),
        include_accounts=_account_ids(reader, org, "include_accounts", where),
        exclude_accounts=_account_ids(reader, org, "exclude_accounts", where),
        role_arn=reader.typed(
            org, "role_arn", where, None, str, lambda v: None if _ROLE_ARN.match(v) else f"not an IAM role ARN: {v!r}"
        ),
        management_account=reader.typed(
            org,
            "management_account",
            where,
            default.management_account,
            str,
            lambda v: (
                None if v in MANAGEMENT_ACCOUNT_MODES else f"expected one of {', '.join(MANAGEMENT_ACCOUNT_MODES)}"
            ),
        ),
        home_region=reader.typed(
            org,
            "home_region",
            where,
            default.home_region,
            str,
            lambda v: _region_refusal(reader, f"{where}.home_region", v),
        ),
    )


def _account_ids(reader: Reader, data: dict, key: str, prefix: str) -> tuple[str, ...]:
    """The valid account ids of a list; each invalid one reported."""
    if key not in data:
        return ()
    ids = data[key]
    if not isinstance(ids, list) or not ids:
        reader.report(f"{prefix}.{key}", "expected a non-empty list of 12-digit account ids")
        return ()
    valid = []
    for position, account in enumerate(ids):
        if isinstance(account, int) and not isinstance(account, bool):
            reader.report(
                f"{prefix}.{key}[{position}]",
                f"quote the account id: {account} is read as a number "
                "(YAML drops leading zeros or reads them as octal)",
            )
        elif not isinstance(account, str) or not _ACCOUNT_ID.match(account):
            reader.report(f"{prefix}.{key}[{position}]", f"not a 12-digit account id: {account!r}")
        else:
            valid.append(account)
    if len(set(valid)) != len(valid):
        reader.report(f"{prefix}.{key}", "lists an account twice")
    return tuple(dict.fromkeys(valid))


def _logs(reader: Reader, value: Any) -> LogsConfig:
    data = reader.mapping(value, "logs", {"enabled", "lookback", "poll_interval", "overlap", "retention"})
    default = LogsConfig()
    return LogsConfig(
        enabled=reader.typed(data, "enabled", "logs", default.enabled, bool),
        lookback=reader.duration(data, "lookback", "logs", default.lookback, 0),
        poll_interval=reader.duration(data, "poll_interval", "logs", default.poll_interval, 1),
        overlap=reader.duration(data, "overlap", "logs", default.overlap, 0),
        retention=reader.duration(data, "retention", "logs", default.retention, 3600),
    )


def _tunnel_status(reader: Reader, value: Any) -> TunnelStatusConfig:
    data = reader.mapping(value, "tunnel_status", {"enabled", "interval", "max_calls_per_second"})
    default = TunnelStatusConfig()
    return TunnelStatusConfig(
        enabled=reader.typed(data, "enabled", "tunnel_status", default.enabled, bool),
        interval=reader.duration(data, "interval", "tunnel_status", default.interval, 60),
        max_calls_per_second=float(
            reader.typed(
                data,
                "max_calls_per_second",
                "tunnel_status",
                default.max_calls_per_second,
                (int, float),
                lambda v: None if 0.1 <= v <= 20 else "must be between 0.1 and 20 (EC2 refills 20 requests a second)",
            )
        ),
    )


def _traffic(reader: Reader, value: Any) -> TrafficConfig:
    data = reader.mapping(
        value,
        "traffic",
        {"enabled", "interval", "delay", "window", "silent_after", "idle_after", "price_per_1000_metrics"},
    )
    default = TrafficConfig()
    traffic = TrafficConfig(
        enabled=reader.typed(data, "enabled", "traffic", default.enabled, bool),
        interval=reader.duration(data, "interval", "traffic", default.interval, 60),
        delay=reader.duration(data, "delay", "traffic", default.delay, 0),
        window=reader.duration(data, "window", "traffic", default.window, 300),
        silent_after=reader.duration(data, "silent_after", "traffic", default.silent_after, 600),
        idle_after=reader.duration(data, "idle_after", "traffic", default.idle_after, 86400),
        price_per_1000_metrics=float(
            reader.typed(
                data,
                "price_per_1000_metrics",
                "traffic",
                default.price_per_1000_metrics,
                (int, float),
                lambda v: None if 0 <= v <= 10 else "must be between 0 and 10 (USD per 1,000 metrics requested)",
            )
        ),
    )
    if traffic.window > 86400:
        reader.report("traffic.window", "at most 1d (a pass catches up at most a day)")
        traffic = replace(traffic, window=default.window)
    if traffic.idle_after > 60 * 86400:
        reader.report("traffic.idle_after", "at most 60d (CloudWatch keeps 5-minute data 63 days)")
        traffic = replace(traffic, idle_after=default.idle_after)
    return traffic


MAX_CONNECTION_TAGS = 10  # each adds a label to every connection's info series: keep the set small


def tag_label(key: str) -> str:
    """The label a tag key becomes: ``tag_`` and the key in lower case, anything but [a-z0-9_] as ``_``."""
    return "tag_" + re.sub(r"[^a-z0-9_]", "_", key.lower())


def _connection_tags(reader: Reader, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(key, str) and 0 < len(key) <= 128 for key in value):
        reader.report("connection_tags", "expected a list of tag keys (1 to 128 characters each)")
        return ()
    if len(value) > MAX_CONNECTION_TAGS:
        reader.report("connection_tags", f"at most {MAX_CONNECTION_TAGS} tags (each is a label on every connection)")
        return ()
    labels = [tag_label(key) for key in value]
    clash = next((key for key, label in zip(value, labels, strict=False) if labels.count(label) > 1), None)
    if clash is not None:
        reader.report("connection_tags", f"{clash!r} and another key become the same label {tag_label(clash)}")
        return ()
    return tuple(value)


def _default(cls: type[DataclassInstance], name: str) -> Any:
    """A setting's default as its dataclass declares it: the one place defaults live."""
    return cls.__dataclass_fields__[name].default


def parse_config(data: Any, source: str) -> Config:
    """Build a Config from decoded YAML, or raise one ConfigError naming every problem's key."""
    reader = Reader(source)
    allowed = {
        "poll_interval",
        "poll_timeout",
        "max_concurrency",
        "targets",
        "logs",
        "tunnel_status",
        "traffic",
        "state_dir",
        "shard",
        "aws",
        "connection_tags",
        "discovery_interval",
        "empty_region_interval",
        "runbook_base",
    }
    data = reader.mapping(data, "", allowed)
    if "targets" in data:
        targets, organizations = _targets(reader, data["targets"])
    else:
        reader.report("targets", "missing: list the accounts (credentials) and regions to watch")
        targets, organizations = (), ()
    poll_interval = reader.duration(data, "poll_interval", "", _default(Config, "poll_interval"), 1)
    poll_timeout = reader.duration(data, "poll_timeout", "", min(_default(Config, "poll_timeout"), poll_interval), 1)
    if poll_timeout > poll_interval and reader.ok("poll_interval", "poll_timeout"):
        reader.report("poll_timeout", "must not exceed poll_interval")
        poll_timeout = poll_interval
    if "discovery_interval" in data and not organizations and reader.ok("targets"):
        reader.report("discovery_interval", "no organization target to discover")
    config = Config(
        targets=targets,
        organizations=organizations,
        discovery_interval=reader.duration(data, "discovery_interval", "", _default(Config, "discovery_interval"), 60),
        empty_region_interval=reader.duration(
            data, "empty_region_interval", "", _default(Config, "empty_region_interval"), 0
        ),
        poll_interval=poll_interval,
        poll_timeout=poll_timeout,
        max_concurrency=reader.typed(
            data,
            "max_concurrency",
            "",
            _default(Config, "max_concurrency"),
            int,
            lambda v: None if 1 <= v <= 256 else "must be between 1 and 256",
        ),
        logs=_logs(reader, data.get("logs")),
        tunnel_status=_tunnel_status(reader, data.get("tunnel_status")),
        traffic=_traffic(reader, data.get("traffic")),
        connection_tags=_connection_tags(reader, data.get("connection_tags")),
        state_dir=Path(
            reader.typed(
                data,
                "state_dir",
                "",
                str(_default(Config, "state_dir")),
                str,
                lambda v: None if v.strip() else "must not be empty",
            )
        ),
        shard=_shard(reader, data.get("shard")),
        aws=_aws(reader, data.get("aws")),
        runbook_base=reader.typed(
            data,
            "runbook_base",
            "",
            RUNBOOK_BASE,
            str,
            lambda v: (
                None
                if re.fullmatch(r"https?://[^\s\x00-\x1f\x7f<>\"'`]+", v) and len(v) <= 512
                else "must be an http(s) URL (no spaces or quotes, at most 512 characters)"
            ),
        ),
        source=source,
    )
    reader.check()
    return config


def _aws(reader: Reader, value: Any) -> AwsSettings:
    data = reader.mapping(value, "aws", {"max_attempts", "connect_timeout", "read_timeout"})
    default = AwsSettings()
    return AwsSettings(
        max_attempts=reader.typed(
            data,
            "max_attempts",
            "aws",
            default.max_attempts,
            int,
            lambda v: None if 1 <= v <= 10 else "must be between 1 and 10",
        ),
        connect_timeout=reader.duration(data, "connect_timeout", "aws", default.connect_timeout, 0.1),
        read_timeout=reader.duration(data, "read_timeout", "aws", default.read_timeout, 0.1),
    )


def _shard(reader: Reader, value: Any) -> Shard:
    data = reader.mapping(value, "shard", {"index", "count"})
    count = reader.typed(
        data, "count", "shard", _default(Shard, "count"), int, lambda v: None if v >= 1 else "must be at least 1"
    )
    index = reader.typed(
        data,
        "index",
        "shard",
        _default(Shard, "index"),
        int,
        lambda v: (
            None
            if 0 <= v < count or (v >= 0 and not reader.ok("shard.count"))
            else f"must be between 0 and count - 1 ({count - 1})"
        ),
    )
    return Shard(index, count)


class _StrictLoader(yaml.SafeLoader):
    """YAML as safe_load reads it, except that a key given twice is an error, not a silent overwrite."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                break  # a mapping or a list as a key: SafeLoader's own check below says "found unhashable key"
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """A YAML file read strictly (the config, the web config, the alert settings); every failure is a
    ConfigError naming the file, and the line and column when YAML knows them."""
    return read_yaml_lines(path)[0]


def read_yaml_lines(path: str | Path) -> tuple[Any, dict[str, int]]:
    """``read_yaml``, and the line of each dotted key (``targets[0].regions[1]``), to list problems in file order."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(source, "", f"cannot read file: {getattr(err, 'strerror', None) or err}") from None
    try:
        loader = _StrictLoader(text)  # reading starts here: a character YAML forbids fails already
        try:
            node = loader.get_single_node()
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, "", f"invalid YAML: {where}{getattr(err, 'problem', None) or err}") from None
    lines: dict[str, int] = {}
    _note_lines(node, "", lines)
    return data, lines


def _note_lines(node: yaml.Node | None, key: str, lines: dict[str, int]) -> None:
    if node is None:
        return
    lines.setdefault(key, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            name = _join(key, str(key_node.value))
            lines.setdefault(name, key_node.start_mark.line + 1)
            _note_lines(value_node, name, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _note_lines(item, f"{key}[{index}]", lines)


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; every problem names the file, in the order of the file."""
    data, lines = read_yaml_lines(path)
    try:
        return parse_config(data, str(path))
    except ConfigError as err:
        raise err.in_file_order(lines) from None
