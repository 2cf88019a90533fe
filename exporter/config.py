"""The exporter's YAML configuration, decoded strictly.

Every mistake is reported at start-up as ``FILE: KEY: REASON`` so that a typo never turns into a
silently unmonitored account.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from exporter.durable import RETENTION

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ROLE_NAME = re.compile(r"^(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")  # IAM: a name, optionally after a path


class ConfigError(Exception):
    """A configuration problem, phrased as ``source: key: reason``."""

    def __init__(self, source: str, key: str, reason: str):
        self.source, self.key, self.reason = source, key, reason
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {reason}")


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


class _Reader:
    """Walks a decoded YAML mapping, naming the dotted key of each error."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.source, key, reason)

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key or "(top level)", f"expected a mapping, got {_kind(value)}")
        for name in value:
            if name not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(_join(key, str(name)), f"unknown key (known keys: {known})")
        return value

    def duration(self, data: dict, key: str, prefix: str, default: float, minimum: float) -> float:
        if key not in data:
            return default
        full = _join(prefix, key)
        try:
            seconds = parse_duration(data[key])
        except ValueError as err:
            raise self.fail(full, str(err)) from None
        if seconds < minimum:
            raise self.fail(full, f"must be at least {minimum:g}s, got {data[key]!r}")
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
            raise self.fail(_join(prefix, key), f"expected {name}, got {_kind(value)}")
        problem = check(value)
        if problem:
            raise self.fail(_join(prefix, key), problem)
        return value


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _targets(reader: _Reader, value: Any) -> tuple[tuple[Target, ...], tuple[Organization, ...]]:
    """The explicit targets and the organizations to discover, from one list."""
    if not isinstance(value, list) or not value:
        raise reader.fail("targets", "expected a non-empty list of targets")
    targets, organizations, positions = [], [], []  # positions: each explicit target's index in the list
    for index, item in enumerate(value):
        prefix = f"targets[{index}]"
        if isinstance(item, dict) and "organization" in item:
            organizations.append(_organization(reader, item, prefix))
            continue
        positions.append(index)
        data = reader.mapping(item, prefix, {"regions", "role_arn", "external_id", "organization"})
        if data.get("regions") == "all":
            raise reader.fail(
                f"{prefix}.regions", "'all' needs an organization target (explicit targets list their regions)"
            )
        regions = _regions(reader, data.get("regions"), f"{prefix}.regions")
        role_arn = reader.typed(
            data, "role_arn", prefix, None, str, lambda v: None if _ROLE_ARN.match(v) else f"not an IAM role ARN: {v!r}"
        )
        external_id = reader.typed(data, "external_id", prefix, None, str)
        targets.append(Target(regions, role_arn, external_id))
    owner: dict[tuple[str, str], int] = {}  # (account, or the credentials where unknown; region) -> its target
    for index, target in zip(positions, targets, strict=False):
        for region in target.regions:
            first = owner.setdefault((_account_of(target.role_arn), region), index)
            if first == index:
                continue
            other = targets[positions.index(first)].role_arn
            if other == target.role_arn:
                raise reader.fail(f"targets[{index}]", f"region {region} is already watched with the same credentials")
            raise reader.fail(
                f"targets[{index}].role_arn",
                f"account {_account_of(other)} in region {region} is "
                f"already watched by targets[{first}] ({other}): one role "
                "per account and region, or every series is exported twice",
            )
    lister = Counter(_account_of(organization.role_arn) for organization in organizations)
    twice = next((account for account, count in lister.items() if count > 1), None)
    if twice is not None:
        reason = "the same credentials" if twice == "default" else f"roles in the same account ({twice})"
        raise reader.fail(
            "targets",
            f"two organization targets list accounts with {reason}: make them one "
            "(include_accounts or exclude_accounts choose the accounts)",
        )
    return tuple(targets), tuple(organizations)


def _account_of(role_arn: str | None) -> str:
    """The account a role ARN names (``default`` for the default credentials): what one target owns."""
    match = _ROLE_ARN.match(role_arn or "")
    return match.group(1) if match else role_arn or "default"


def _regions(reader: _Reader, regions: Any, key: str, all_allowed: bool = False) -> tuple[str, ...]:
    if not isinstance(regions, list) or not regions:
        raise reader.fail(
            key,
            "expected "
            + ("all (every region each account has enabled), or " if all_allowed else "")
            + f"a non-empty list of region names, got {regions!r}",
        )
    for position, region in enumerate(regions):
        if not isinstance(region, str) or not _REGION.match(region):
            raise reader.fail(f"{key}[{position}]", f"not an AWS region name: {region!r}")
    if len(set(regions)) != len(regions):
        raise reader.fail(key, "lists a region twice")
    return tuple(regions)


def _organization(reader: _Reader, item: dict, prefix: str) -> Organization:
    data = reader.mapping(item, prefix, {"organization", "regions", "role_arn", "external_id"})
    for key in ("role_arn", "external_id"):
        if key in data:
            raise reader.fail(
                f"{prefix}.{key}",
                "an organization target's credentials go inside organization "
                "(organization.role_arn lists the accounts, organization.role_name "
                "reaches each)",
            )
    if "regions" not in data:
        raise reader.fail(f"{prefix}.regions", "missing: all (every region each account has enabled) or a list")
    regions = (
        None if data["regions"] == "all" else _regions(reader, data["regions"], f"{prefix}.regions", all_allowed=True)
    )
    where = f"{prefix}.organization"
    org = reader.mapping(
        data["organization"],
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
        raise reader.fail(f"{where}.role_name", "missing: the role to assume in each account (e.g. vpn-exporter)")
    role_name = reader.typed(
        org, "role_name", where, None, str, lambda v: None if _ROLE_NAME.match(v) else f"not an IAM role name: {v!r}"
    )
    if "include_accounts" in org and "exclude_accounts" in org:
        raise reader.fail(
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
            lambda v: None if _REGION.match(v) else f"not an AWS region name: {v!r}",
        ),
    )


def _account_ids(reader: _Reader, data: dict, key: str, prefix: str) -> tuple[str, ...]:
    if key not in data:
        return ()
    ids = data[key]
    if not isinstance(ids, list) or not ids:
        raise reader.fail(f"{prefix}.{key}", "expected a non-empty list of 12-digit account ids")
    for position, account in enumerate(ids):
        if isinstance(account, int) and not isinstance(account, bool):
            raise reader.fail(
                f"{prefix}.{key}[{position}]",
                f"quote the account id: {account} is read as a number "
                "(YAML drops leading zeros or reads them as octal)",
            )
        if not isinstance(account, str) or not _ACCOUNT_ID.match(account):
            raise reader.fail(f"{prefix}.{key}[{position}]", f"not a 12-digit account id: {account!r}")
    if len(set(ids)) != len(ids):
        raise reader.fail(f"{prefix}.{key}", "lists an account twice")
    return tuple(ids)


def _logs(reader: _Reader, value: Any) -> LogsConfig:
    data = reader.mapping(value, "logs", {"enabled", "lookback", "poll_interval", "overlap", "retention"})
    default = LogsConfig()
    return LogsConfig(
        enabled=reader.typed(data, "enabled", "logs", default.enabled, bool),
        lookback=reader.duration(data, "lookback", "logs", default.lookback, 0),
        poll_interval=reader.duration(data, "poll_interval", "logs", default.poll_interval, 1),
        overlap=reader.duration(data, "overlap", "logs", default.overlap, 0),
        retention=reader.duration(data, "retention", "logs", default.retention, 3600),
    )


def _tunnel_status(reader: _Reader, value: Any) -> TunnelStatusConfig:
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


def _traffic(reader: _Reader, value: Any) -> TrafficConfig:
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
        raise reader.fail("traffic.window", "at most 1d (a pass catches up at most a day)")
    if traffic.idle_after > 60 * 86400:
        raise reader.fail("traffic.idle_after", "at most 60d (CloudWatch keeps 5-minute data 63 days)")
    return traffic


MAX_CONNECTION_TAGS = 10  # each adds a label to every connection's info series: keep the set small


def tag_label(key: str) -> str:
    """The label a tag key becomes: ``tag_`` and the key in lower case, anything but [a-z0-9_] as ``_``."""
    return "tag_" + re.sub(r"[^a-z0-9_]", "_", key.lower())


def _connection_tags(reader: _Reader, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(key, str) and 0 < len(key) <= 128 for key in value):
        raise reader.fail("connection_tags", "expected a list of tag keys (1 to 128 characters each)")
    if len(value) > MAX_CONNECTION_TAGS:
        raise reader.fail(
            "connection_tags", f"at most {MAX_CONNECTION_TAGS} tags (each is a label on every connection)"
        )
    labels = [tag_label(key) for key in value]
    clash = next((key for key, label in zip(value, labels, strict=False) if labels.count(label) > 1), None)
    if clash is not None:
        raise reader.fail("connection_tags", f"{clash!r} and another key become the same label {tag_label(clash)}")
    return tuple(value)


def _default(cls: type[DataclassInstance], name: str) -> Any:
    """A setting's default as its dataclass declares it: the one place defaults live."""
    return cls.__dataclass_fields__[name].default


def parse_config(data: Any, source: str) -> Config:
    """Build a Config from decoded YAML, or raise ConfigError naming the key."""
    reader = _Reader(source)
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
    }
    data = reader.mapping(data, "", allowed)
    if "targets" not in data:
        raise reader.fail("targets", "missing: list the accounts (credentials) and regions to watch")
    poll_interval = reader.duration(data, "poll_interval", "", _default(Config, "poll_interval"), 1)
    poll_timeout = reader.duration(data, "poll_timeout", "", min(_default(Config, "poll_timeout"), poll_interval), 1)
    if poll_timeout > poll_interval:
        raise reader.fail("poll_timeout", "must not exceed poll_interval")
    targets, organizations = _targets(reader, data["targets"])
    if "discovery_interval" in data and not organizations:
        raise reader.fail("discovery_interval", "no organization target to discover")
    return Config(
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
        source=source,
    )


def _aws(reader: _Reader, value: Any) -> AwsSettings:
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


def _shard(reader: _Reader, value: Any) -> Shard:
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
        lambda v: None if 0 <= v < count else f"must be between 0 and count - 1 ({count - 1})",
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
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(source, "", f"cannot read file: {getattr(err, 'strerror', None) or err}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, "", f"invalid YAML: {where}{getattr(err, 'problem', None) or err}") from None


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; every failure names the file."""
    return parse_config(read_yaml(path), str(path))
