"""The demo's scenarios, as data: which connections exist and how each tunnel behaves over time.

A tunnel either holds one ``state`` or runs through a ``cycle`` of states (a flapping tunnel); a step of the cycle
may be an AWS endpoint replacement (``maintenance: true``). States are the cases of AWS's knowledge-center article,
expressed as the telemetry AWS would report. The schedule is a function of the time since the demo started, so the
simulated AWS knows every change, however close together, and when it happened (``changes``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exporter.config import ConfigError, parse_duration

SCENARIOS = Path(__file__).with_name("scenarios.yaml")
STATES = ("healthy", "ipsec_up_bgp_down", "down")
LOG_FORMATS = ("json", "text", "off")
BGP_CAUSES = ("", "asn_mismatch")
IKE_CAUSES = ("", "psk_mismatch", "no_proposal")
TRAFFIC = ("", "normal", "idle", "new")
AWS_STATUS = {
    "maintenance": ("", "pending", "applied"),
    "provisioning": ("available", "pending", "failed"),
    "negotiated": ("strong", "weak"),
}  # what GetVpnTunnelReplacementStatus / GetActiveVpnTunnelStatus say


def _values(*values) -> list[dict]:
    return [{"Value": value} for value in values]


# A tunnel's options as AWS reports them. "hardened" is what a careful operator sets: AWS brings the
# tunnel back itself, IKEv2 only, SHA2, DH groups 14 and up. Scenarios use it unless they say otherwise.
HARDENED_TUNNEL = {
    "StartupAction": "start",
    "DpdTimeoutAction": "restart",
    "DpdTimeoutSeconds": 40,
    "EnableTunnelLifecycleControl": False,
    "IkeVersions": _values("ikev2"),
    "Phase1EncryptionAlgorithms": _values("AES256", "AES256-GCM-16"),
    "Phase2EncryptionAlgorithms": _values("AES256", "AES256-GCM-16"),
    "Phase1IntegrityAlgorithms": _values("SHA2-256", "SHA2-384"),
    "Phase2IntegrityAlgorithms": _values("SHA2-256", "SHA2-384"),
    "Phase1DHGroupNumbers": _values(*range(14, 25)),
    "Phase2DHGroupNumbers": _values(*range(14, 25)),
    "Phase1LifetimeSeconds": 28800,
    "Phase2LifetimeSeconds": 3600,
}
# What AWS answers for a tunnel created with its defaults (the EC2 API reference's defaults).
AWS_DEFAULT_TUNNEL = {
    "StartupAction": "add",
    "DpdTimeoutAction": "clear",
    "DpdTimeoutSeconds": 40,
    "EnableTunnelLifecycleControl": False,
    "IkeVersions": _values("ikev1", "ikev2"),
    "Phase1EncryptionAlgorithms": _values("AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"),
    "Phase2EncryptionAlgorithms": _values("AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16"),
    "Phase1IntegrityAlgorithms": _values("SHA1", "SHA2-256", "SHA2-384", "SHA2-512"),
    "Phase2IntegrityAlgorithms": _values("SHA1", "SHA2-256", "SHA2-384", "SHA2-512"),
    "Phase1DHGroupNumbers": _values(2, *range(14, 25)),
    "Phase2DHGroupNumbers": _values(2, 5, *range(14, 25)),
    "Phase1LifetimeSeconds": 28800,
    "Phase2LifetimeSeconds": 3600,
}
PRESETS = {"hardened": HARDENED_TUNNEL, "aws-defaults": AWS_DEFAULT_TUNNEL}


@dataclass(frozen=True)
class TunnelScenario:
    outside_ip: str
    inside_cidr: str
    cycle: tuple[tuple[str, float], ...]  # (state, seconds); one entry with 0 s for a steady state
    routes: int
    ike_log: str  # json | text | off
    bgp_log: str
    nat_t: bool = False  # does the customer gateway use NAT traversal (accelerated connections need it)
    aws_selector: str = "0.0.0.0/0"  # the traffic selectors the customer gateway negotiates
    cgw_selector: str = "0.0.0.0/0"
    bgp_cause: str = ""  # why BGP stays down in ipsec_up_bgp_down: "" (never opens) | asn_mismatch
    ike_cause: str = ""  # why IPsec stays down in down: "" (the peer does not answer) | psk_mismatch | no_proposal
    quiet: bool = False  # logging on, nothing logged yet: AWS has created no stream for this tunnel
    options: tuple[tuple[str, Any], ...] = ()  # TunnelOptions as AWS names them (see PRESETS)
    aws_status: tuple[tuple[str, str], ...] = ()  # maintenance, provisioning, negotiated (see AWS_STATUS)
    replacements: tuple[int, ...] = ()  # the cycle's steps that are AWS endpoint replacements (maintenance: true)

    @property
    def period(self) -> float:
        return sum(seconds for _, seconds in self.cycle)

    def state_at(self, elapsed: float) -> str:
        """The state this tunnel is in ``elapsed`` seconds after the demo started."""
        period = self.period
        if period <= 0:
            return self.cycle[0][0]
        position = elapsed % period
        for state, seconds in self.cycle:
            if position < seconds:
                return state
            position -= seconds
        return self.cycle[-1][0]

    def _steps(self, after: float, until: float) -> Iterator[tuple[float, int]]:
        """(start, index) of every step of the cycle that starts in (after, until], in order."""
        period = self.period
        if period <= 0 or until <= after:
            return
        offsets = [sum(seconds for _, seconds in self.cycle[:index]) for index in range(len(self.cycle))]
        for turn in range(math.floor(after / period), math.floor(until / period) + 1):
            for index, offset in enumerate(offsets):
                start = turn * period + offset
                if after < start <= until:
                    yield start, index

    def changes(self, after: float, until: float) -> list[tuple[float, str, str]]:
        """The state changes in (after, until] seconds after the start, as (elapsed, before, after): each moves AWS's
        LastStatusChange, so a tunnel down and up again between two polls shows as a later LastStatusChange with
        the same status."""
        found = []
        for start, index in self._steps(after, until):
            before, state = self.cycle[index - 1][0], self.cycle[index][0]
            if before != state:
                found.append((start, before, state))
        return found

    def last_replacement(self, elapsed: float) -> float | None:
        """When (seconds after the start) AWS last replaced this tunnel's endpoint on its schedule, if it has."""
        since = max(elapsed - self.period, -1.0)  # the latest turn holds the latest one; none before the start
        starts = [start for start, index in self._steps(since, elapsed) if index in self.replacements and start >= 0]
        return starts[-1] if starts else None

    def next_replacement(self, elapsed: float) -> float | None:
        """When the next scheduled replacement starts, if it starts within the current turn of the cycle (AWS
        announces it as pending maintenance until then)."""
        position = elapsed % self.period if self.period > 0 else 0.0
        ahead = [
            start
            for start, index in self._steps(elapsed, elapsed - position + self.period)
            if index in self.replacements
        ]
        return ahead[0] if ahead else None


@dataclass(frozen=True)
class ConnectionScenario:
    name: str
    account: str
    region: str
    routing: str  # dynamic | static
    gateway: str  # vgw | tgw
    accelerated: bool
    customer_gateway_ip: str
    customer_gateway_asn: int
    local_cidr: str
    remote_cidr: str
    tunnels: tuple[TunnelScenario, ...]
    description: str = ""
    static_routes: tuple[tuple[str, str], ...] = ()  # (destination CIDR, state)
    gateway_association_state: str = "associated"
    # normal (by the tunnels' states) | idle (no byte either way in the whole history) | new (created as the demo
    # starts: CloudWatch has no data point of it before)
    traffic: str = "normal"


@dataclass(frozen=True)
class Scenarios:
    accounts: dict[str, str | None]  # account id -> role name to assume (None: the default credentials)
    connections: tuple[ConnectionScenario, ...]

    def regions_of(self, account: str) -> tuple[str, ...]:
        return tuple(sorted({c.region for c in self.connections if c.account == account}))


def _require(data: dict, key: str, where: str, source: str) -> Any:
    if key not in data:
        raise ConfigError(source, f"{where}.{key}", "missing")
    return data[key]


def _tunnel(data: Any, where: str, source: str) -> TunnelScenario:
    if not isinstance(data, dict):
        raise ConfigError(source, where, "expected a mapping")
    replacements = []
    if "cycle" in data:
        cycle = []
        for index, step in enumerate(data["cycle"]):
            state, duration = step.get("state"), step.get("for")
            if state not in STATES:
                raise ConfigError(source, f"{where}.cycle[{index}].state", f"expected one of {STATES}")
            try:
                cycle.append((state, parse_duration(duration)))
            except ValueError as err:
                raise ConfigError(source, f"{where}.cycle[{index}].for", str(err)) from None
            if step.get("maintenance", False) is not False:
                if step["maintenance"] is not True or state != "down":
                    raise ConfigError(
                        source, f"{where}.cycle[{index}].maintenance", "true only on a down step (a replacement)"
                    )
                replacements.append(index)
    else:
        state = data.get("state", "healthy")
        if state not in STATES:
            raise ConfigError(source, f"{where}.state", f"expected one of {STATES}")
        cycle = [(state, 0.0)]
    logs = data.get("logs", {})
    logs = {"ike": "off", "bgp": "off"} if logs in (False, "off") else logs  # YAML reads a bare off as false
    ike, bgp = ("off" if logs.get(k) is False else logs.get(k, "json") for k in ("ike", "bgp"))
    for kind, value in (("ike", ike), ("bgp", bgp)):
        if value not in LOG_FORMATS:
            raise ConfigError(source, f"{where}.logs.{kind}", f"expected one of {LOG_FORMATS}")
    return TunnelScenario(
        outside_ip=_require(data, "outside_ip", where, source),
        inside_cidr=_require(data, "inside_cidr", where, source),
        cycle=tuple(cycle),
        routes=int(data.get("routes", 0)),
        ike_log=ike,
        bgp_log=bgp,
        nat_t=bool(data.get("nat_t", False)),
        aws_selector=str(data.get("selectors", {}).get("aws", "0.0.0.0/0")),
        cgw_selector=str(data.get("selectors", {}).get("cgw", "0.0.0.0/0")),
        bgp_cause=_choice(data, "bgp_cause", BGP_CAUSES, where, source),
        ike_cause=_choice(data, "ike_cause", IKE_CAUSES, where, source),
        quiet=bool(data.get("quiet", False)),
        options=_tunnel_options(data, where, source),
        aws_status=_aws_status(data, where, source),
        replacements=tuple(replacements),
    )


def _tunnel_options(data: dict, where: str, source: str) -> tuple[tuple[str, Any], ...]:
    """``options``: a preset's name, or TunnelOptions keys over the hardened preset."""
    value = data.get("options", "hardened")
    if isinstance(value, str):
        if value not in PRESETS:
            raise ConfigError(source, f"{where}.options", f"expected a mapping or one of {sorted(PRESETS)}")
        return tuple(PRESETS[value].items())
    return tuple({**HARDENED_TUNNEL, **_mapping(data, "options", where, source)}.items())


def _aws_status(data: dict, where: str, source: str) -> tuple[tuple[str, str], ...]:
    given = _mapping(data, "aws_status", where, source)
    for key, value in given.items():
        if value not in AWS_STATUS.get(key, ()):
            raise ConfigError(source, f"{where}.aws_status.{key}", f"expected one of {AWS_STATUS.get(key, ())}")
    return tuple((key, given.get(key, choices[0])) for key, choices in AWS_STATUS.items())


def _mapping(data: dict, key: str, where: str, source: str) -> dict:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(source, f"{where}.{key}", "expected a mapping")
    return value


def _choice(data: dict, key: str, choices: tuple[str, ...], where: str, source: str) -> str:
    value = data.get(key, "")
    if value not in choices:
        raise ConfigError(source, f"{where}.{key}", f"expected one of {choices}")
    return value


def load_scenarios(path: Path = SCENARIOS) -> Scenarios:
    """Read and check a scenario file; errors name the file and key, as for the config."""
    source = str(path)
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    accounts = {str(k): (v or {}).get("role") for k, v in _require(data, "accounts", "", source).items()}
    connections = []
    for index, item in enumerate(_require(data, "connections", "", source)):
        where = f"connections[{index}]"
        account = str(_require(item, "account", where, source))
        if account not in accounts:
            raise ConfigError(source, f"{where}.account", f"not listed under accounts: {account}")
        routing = item.get("routing", "dynamic")
        gateway = item.get("gateway", "vgw")
        if routing not in ("dynamic", "static"):
            raise ConfigError(source, f"{where}.routing", "expected dynamic or static")
        if gateway not in ("vgw", "tgw"):
            raise ConfigError(source, f"{where}.gateway", "expected vgw or tgw")
        accelerated = bool(item.get("accelerated", False))
        if accelerated and gateway != "tgw":
            raise ConfigError(source, f"{where}.accelerated", "acceleration needs a transit gateway (gateway: tgw)")
        cgw = _require(item, "customer_gateway", where, source)
        tunnels = tuple(
            _tunnel(t, f"{where}.tunnels[{i}]", source) for i, t in enumerate(_require(item, "tunnels", where, source))
        )
        connections.append(
            ConnectionScenario(
                name=_require(item, "name", where, source),
                account=account,
                region=_require(item, "region", where, source),
                routing=routing,
                gateway=gateway,
                accelerated=accelerated,
                customer_gateway_ip=_require(cgw, "ip", f"{where}.customer_gateway", source),
                customer_gateway_asn=int(cgw.get("asn", 65000)),
                local_cidr=item.get("local_cidr", "0.0.0.0/0"),
                remote_cidr=item.get("remote_cidr", "0.0.0.0/0"),
                tunnels=tunnels,
                description=item.get("description", ""),
                static_routes=tuple(
                    (str(cidr), str(state)) for cidr, state in _mapping(item, "static_routes", where, source).items()
                ),
                gateway_association_state=str(item.get("gateway_association_state", "associated")),
                traffic=_choice(item, "traffic", TRAFFIC, where, source) or "normal",
            )
        )
    return Scenarios(accounts, tuple(connections))
