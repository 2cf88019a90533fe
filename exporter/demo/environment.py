"""A simulated AWS for the demo and the tests: moto's server, seeded from the scenarios.

The exporter reaches it through the ordinary boto3 path (``AWS_ENDPOINT_URL``). moto's
DescribeVpnConnections serialises whatever telemetry and options are set on its backend objects,
so ``apply`` writes what AWS would report for each tunnel's current state.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import boto3

from exporter.config import Organization, Target
from exporter.demo import strict_aws, tunnel_traffic
from exporter.demo.scenario import ConnectionScenario, Scenarios, TunnelScenario, load_scenarios
from exporter.demo.tunnel_logs import heartbeat, stream_name, transition

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "123456789012"  # moto's account for the default credentials: the organization's management
SEEDER_ROLE = "demo-seeder"  # how the demo itself acts in the member accounts
CLOSED_ACCOUNT = "345678901234"  # a suspended member: discovery skips it
IKE_LOG_GROUP = "/aws/vpn/tunnel-activity"
BGP_LOG_GROUP = "/aws/vpn/bgp"
HEARTBEAT_SECONDS = 60
LOGGED_CHANGES = 32  # the changes one apply logs at most: a clock jumped by days (a test's) logs its latest ones
APPLIED_BEFORE_START = 600  # aws_status maintenance: applied, without a schedule: this long before the demo started


# What AWS reports for each demo state: (Status, StatusMessage) by routing.
_TELEMETRY = {
    ("healthy", "dynamic"): ("UP", "{routes} BGP ROUTES"),
    ("healthy", "static"): ("UP", ""),
    ("ipsec_up_bgp_down", "dynamic"): ("DOWN", "IPSEC IS UP"),
    ("ipsec_up_bgp_down", "static"): ("UP", ""),
    ("down", "dynamic"): ("DOWN", "IPSEC IS DOWN"),
    ("down", "static"): ("DOWN", ""),
}


def simulated_aws_environment(endpoint_url: str) -> dict[str, str]:
    """The environment that points boto3 (any process) at a simulated AWS, and never at a real one."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "demo-access-key",
        "AWS_SECRET_ACCESS_KEY": "demo-secret-key",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _maintenance(scenario: TunnelScenario, now: float, started_at: float) -> dict[str, str | datetime]:
    """GetVpnTunnelReplacementStatus's MaintenanceDetails. A tunnel replaced on its schedule (a ``maintenance`` step
    of its cycle) shows the replacement pending until it starts, auto-applied at its start, and applied since (the
    time it went down for it); ``aws_status`` says what holds without a schedule."""
    configured, elapsed = dict(scenario.aws_status)["maintenance"], now - started_at
    maintenance: dict[str, str | datetime] = {
        "PendingMaintenance": strict_aws.NO_MAINTENANCE
    }  # the API's words, not the console's "None"
    scheduled, applied = scenario.next_replacement(elapsed), scenario.last_replacement(elapsed)
    if configured == "pending" and (scheduled is not None or not scenario.replacements):
        due = started_at + scheduled if scheduled is not None else int(now) // 3600 * 3600 + 3 * 86400
        maintenance = {
            "PendingMaintenance": "Available",
            "MaintenanceAutoAppliedAfter": datetime.fromtimestamp(int(due), tz=timezone.utc),
        }
    if applied is not None:
        maintenance["LastMaintenanceApplied"] = datetime.fromtimestamp(int(started_at + applied), tz=timezone.utc)
    elif configured == "applied":
        maintenance["LastMaintenanceApplied"] = datetime.fromtimestamp(
            int(started_at) - APPLIED_BEFORE_START, tz=timezone.utc
        )
    return maintenance


def _aws_status(scenario: TunnelScenario, state: str, now: float, started_at: float) -> dict[str, dict]:
    """What GetVpnTunnelReplacementStatus and GetActiveVpnTunnelStatus answer for a tunnel in this state."""
    status = dict(scenario.aws_status)
    maintenance = _maintenance(scenario, now, started_at)
    active: dict = {"ProvisioningStatus": status["provisioning"]}
    if status["provisioning"] == "failed":
        active["ProvisioningStatusReason"] = "The tunnel inside CIDR conflicts with another tunnel of the gateway"
    elif state != "down":  # what an established tunnel negotiated
        weak = status["negotiated"] == "weak"
        active.update(
            {
                "IkeVersion": "ikev1" if weak else "ikev2",
                "Phase1EncryptionAlgorithm": "AES128" if weak else "AES256-GCM-16",
                "Phase2EncryptionAlgorithm": "AES128" if weak else "AES256-GCM-16",
                "Phase1IntegrityAlgorithm": "SHA1" if weak else "SHA2-256",
                "Phase2IntegrityAlgorithm": "SHA1" if weak else "SHA2-256",
                "Phase1DHGroup": 2 if weak else 20,
                "Phase2DHGroup": 2 if weak else 20,
            }
        )
    return {"maintenance": maintenance, "active": active}


def _share(data: list[tuple[str, str, dict]], share: float) -> list[tuple[str, str, dict]]:
    """The same data points with part of their value: what AWS publishes of a period at once, or late."""
    return [(account, region, {**item, "Value": item["Value"] * share}) for account, region, item in data]


@dataclass
class _LiveTunnel:
    scenario: TunnelScenario
    pre_shared_key: str
    state: str = ""
    changed_at: float = 0.0
    heartbeat_at: float = 0.0
    override: str | None = None  # a state forced by a test or an operator, until cleared
    applied_until: float = 0.0  # seconds after the start the telemetry was last written for
    streams: set = field(default_factory=set)  # (group, stream) created so far: AWS creates one on first event


@dataclass
class _LiveConnection:
    scenario: ConnectionScenario
    vpn_connection_id: str
    tunnels: list[_LiveTunnel] = field(default_factory=list)


class DemoEnvironment:
    """Starts moto on 127.0.0.1, creates the scenario's resources, and keeps telemetry current."""

    def __init__(self, scenarios: Scenarios | None = None, port: int = 0, endpoint_url: str | None = None):
        """With ``endpoint_url``, seed an already running moto server (its backends are process-wide)."""
        from moto.server import ThreadedMotoServer  # the demo extra; imported only when used

        strict_aws.install()

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.scenarios = scenarios or load_scenarios()
        self._server = None if endpoint_url else ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()
        self._started_at = time.time()
        self.connections: list[_LiveConnection] = []
        self.endpoint_url = endpoint_url or ""
        self._traffic_next = 0.0  # the start of the next CloudWatch period to publish
        self._traffic_late: list[tuple[str, str, dict]] = []  # (account, region, datum) due one period late

    def start(self) -> DemoEnvironment:
        if self._server is not None:
            self._server.start()
            host, port = self._server.get_host_and_port()
            self.endpoint_url = f"http://{host}:{port}"
        self._organize()
        for scenario in self.scenarios.connections:
            self.connections.append(self._create(scenario))
        self._publish_traffic_history(self._started_at)
        self.apply(self._started_at)
        log.info("demo AWS started endpoint=%s connections=%d", self.endpoint_url, len(self.connections))
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def aws_environment(self) -> dict[str, str]:
        return simulated_aws_environment(self.endpoint_url)

    def targets(self) -> tuple[Target, ...]:
        """The exporter targets that watch every account and region of the scenarios."""
        result = []
        for account, role in self.scenarios.accounts.items():
            regions = self.scenarios.regions_of(account)
            if regions:
                role_arn = f"arn:aws:iam::{account}:role/{role}" if role else None
                result.append(Target(regions=regions, role_arn=role_arn))
        return tuple(result)

    def organization(self) -> Organization:
        """The organization target that discovers every scenario account (what ``--demo`` watches): the
        default credentials list the accounts and watch the management account itself; the members are reached
        through their role."""
        roles = {role for role in self.scenarios.accounts.values() if role}
        if len(roles) > 1:
            raise ValueError(f"the demo's member accounts use several roles ({sorted(roles)}); discovery needs one")
        return Organization(
            role_name=roles.pop() if roles else "vpn-exporter", management_account="discovery_credentials"
        )

    def _organize(self) -> None:
        """The scenario accounts as one AWS Organization, managed by the default account: the members with the
        exporter's role (as a StackSet deploys it, trusting the management account) and the seeder's, and a
        suspended account that discovery skips."""
        self._client("organizations", DEFAULT_ACCOUNT, "us-east-1").create_organization(FeatureSet="ALL")
        for account, role in self.scenarios.accounts.items():
            if account == DEFAULT_ACCOUNT:
                continue
            strict_aws.join_organization(DEFAULT_ACCOUNT, account, f"member-{account}")
            for name in {name for name in (SEEDER_ROLE, role) if name is not None}:
                strict_aws.create_role(account, name, DEFAULT_ACCOUNT)
        strict_aws.join_organization(DEFAULT_ACCOUNT, CLOSED_ACCOUNT, "closed-sandbox", state="SUSPENDED")

    def pre_shared_keys(self) -> list[str]:
        """The keys set on the simulated tunnels, for leak tests."""
        return [t.pre_shared_key for c in self.connections for t in c.tunnels]

    # --- seeding -------------------------------------------------------------------------------

    def _client(self, service: str, account: str, region: str) -> Any:
        """A client acting in ``account``: moto keys its backends on the caller's account."""
        key = (service, account, region)
        if key not in self._clients:
            self._clients[key] = self._new_client(service, account, region)
        return self._clients[key]

    def _new_client(self, service: str, account: str, region: str) -> Any:
        common = {"endpoint_url": self.endpoint_url, "region_name": region}
        keys = {"aws_access_key_id": "demo-seed", "aws_secret_access_key": "demo-seed"}
        if account != DEFAULT_ACCOUNT:
            sts = boto3.client("sts", **common, **keys)
            credentials = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/{SEEDER_ROLE}", RoleSessionName="demo-seeder"
            )["Credentials"]
            keys = {
                "aws_access_key_id": credentials["AccessKeyId"],
                "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"],
            }
        return boto3.client(service, **common, **keys)

    def _create(self, scenario: ConnectionScenario) -> _LiveConnection:
        ec2 = self._client("ec2", scenario.account, scenario.region)
        cgw = ec2.create_customer_gateway(
            Type="ipsec.1",
            PublicIp=scenario.customer_gateway_ip,
            BgpAsn=scenario.customer_gateway_asn,
            TagSpecifications=[
                {"ResourceType": "customer-gateway", "Tags": [{"Key": "Name", "Value": f"{scenario.name}-cgw"}]}
            ],
        )["CustomerGateway"]["CustomerGatewayId"]
        gateway: dict[str, str] = {}
        if scenario.gateway == "tgw":
            gateway["TransitGatewayId"] = ec2.create_transit_gateway()["TransitGateway"]["TransitGatewayId"]
        else:
            gateway["VpnGatewayId"] = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
        vpn_id = ec2.create_vpn_connection(
            Type="ipsec.1",
            CustomerGatewayId=cgw,
            **gateway,
            TagSpecifications=[{"ResourceType": "vpn-connection", "Tags": [{"Key": "Name", "Value": scenario.name}]}],
        )["VpnConnection"]["VpnConnectionId"]
        live = _LiveConnection(scenario, vpn_id)
        for tunnel in scenario.tunnels:
            live.tunnels.append(_LiveTunnel(tunnel, pre_shared_key="demo-psk-" + secrets.token_hex(12)))
        backend = self._backend_connection(live)
        backend.options = self._options(live)
        # moto serialises these attributes when set, though it never sets them itself
        backend.gateway_association_state = live.scenario.gateway_association_state
        backend.routes = [
            {"DestinationCidrBlock": cidr, "Source": "Static", "State": state}
            for cidr, state in live.scenario.static_routes
        ] or None
        self._create_log_groups(live)
        return live

    def _create_log_groups(self, live: _LiveConnection) -> None:
        """The groups only: as on AWS, a tunnel's stream appears with its first event (``_write_logs``)."""
        logs = self._client("logs", live.scenario.account, live.scenario.region)
        existing = {g["logGroupName"] for g in logs.describe_log_groups().get("logGroups", [])}
        for tunnel in live.tunnels:
            for kind, group in (("ike", IKE_LOG_GROUP), ("bgp", BGP_LOG_GROUP)):
                if getattr(tunnel.scenario, f"{kind}_log") != "off" and group not in existing:
                    logs.create_log_group(logGroupName=group)
                    existing.add(group)

    def _write_logs(self, live: _LiveConnection, tunnel: _LiveTunnel, lines) -> None:
        logs = self._client("logs", live.scenario.account, live.scenario.region)
        for kind, group in (("ike", IKE_LOG_GROUP), ("bgp", BGP_LOG_GROUP)):
            events = [{"timestamp": line.timestamp_ms, "message": line.message} for line in lines if line.log == kind]
            if not events:
                continue
            stream = stream_name(live.vpn_connection_id, tunnel.scenario.outside_ip, kind)
            if (group, stream) not in tunnel.streams:
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                tunnel.streams.add((group, stream))
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def _options(self, live: _LiveConnection) -> dict[str, Any]:
        scenario = live.scenario
        arn = "arn:aws:logs:{region}:{account}:log-group:{group}"

        def log_options(tunnel: TunnelScenario) -> dict[str, Any]:
            options: dict[str, Any] = {"LogEnabled": tunnel.ike_log != "off", "BgpLogEnabled": tunnel.bgp_log != "off"}
            if tunnel.ike_log != "off":
                options["LogGroupArn"] = arn.format(
                    region=scenario.region, account=scenario.account, group=IKE_LOG_GROUP
                )
                options["LogOutputFormat"] = tunnel.ike_log
            if tunnel.bgp_log != "off":
                options["BgpLogGroupArn"] = arn.format(
                    region=scenario.region, account=scenario.account, group=BGP_LOG_GROUP
                )
                options["BgpLogOutputFormat"] = tunnel.bgp_log
            return {"CloudWatchLogOptions": options}

        return {
            "EnableAcceleration": scenario.accelerated,
            "StaticRoutesOnly": scenario.routing == "static",
            "LocalIpv4NetworkCidr": scenario.local_cidr,
            "RemoteIpv4NetworkCidr": scenario.remote_cidr,
            "OutsideIpAddressType": "PublicIpv4",
            "TunnelBandwidth": "standard",
            "TunnelInsideIpVersion": "ipv4",
            "TunnelOptions": [
                {
                    "OutsideIpAddress": t.scenario.outside_ip,
                    "TunnelInsideCidr": t.scenario.inside_cidr,
                    "PreSharedKey": t.pre_shared_key,
                    **dict(t.scenario.options),
                    "LogOptions": log_options(t.scenario),
                }
                for t in live.tunnels
            ],
        }

    def _backend_connection(self, live: _LiveConnection) -> Any:
        from moto.ec2.models import ec2_backends

        backend = ec2_backends[live.scenario.account][live.scenario.region]
        return backend.vpn_connections[live.vpn_connection_id]

    # --- behaviour over time --------------------------------------------------------------------

    def apply(self, now: float | None = None) -> None:
        """Write each tunnel's telemetry for its state at ``now``; LastStatusChange moves on change."""
        now = time.time() if now is None else now
        with self._lock:
            for live in self.connections:
                telemetry = []
                for tunnel in live.tunnels:
                    changes = self._changes(tunnel, now)
                    for index, (at, before, state) in enumerate(changes):
                        if index >= len(changes) - LOGGED_CHANGES:
                            lines = transition(tunnel.scenario, live.vpn_connection_id, before, state, at)
                            self._write_logs(live, tunnel, lines)
                        # the first state has held a while when the demo starts, as on a real account
                        tunnel.changed_at = at - tunnel_traffic.SETTLED_FOR if not before else at
                        tunnel.state, tunnel.heartbeat_at = state, now
                    state = tunnel.state
                    if not changes and now - tunnel.heartbeat_at >= HEARTBEAT_SECONDS:
                        tunnel.heartbeat_at = now
                        self._write_logs(live, tunnel, heartbeat(tunnel.scenario, live.vpn_connection_id, state, now))
                    status, message = _TELEMETRY[(state, live.scenario.routing)]
                    up_dynamic = status == "UP" and live.scenario.routing == "dynamic"
                    telemetry.append(
                        {
                            "OutsideIpAddress": tunnel.scenario.outside_ip,
                            "Status": status,
                            "StatusMessage": message.format(routes=tunnel.scenario.routes),
                            "AcceptedRouteCount": tunnel.scenario.routes if up_dynamic else 0,
                            "LastStatusChange": datetime.fromtimestamp(int(tunnel.changed_at), tz=timezone.utc),
                        }
                    )
                backend = self._backend_connection(live)
                backend.vgw_telemetry = telemetry
                backend.tunnel_status = {
                    t.scenario.outside_ip: _aws_status(t.scenario, t.state, now, self._started_at) for t in live.tunnels
                }
            self._publish_traffic(now)

    def _changes(self, tunnel: _LiveTunnel, now: float) -> list[tuple[float, str, str]]:
        """The tunnel's state changes since the telemetry was last written, each at its own time: every change its
        schedule made in between, two within one poll included. A forced state (``set_state``), the first write,
        or a clock that went back changes the state at ``now``."""
        elapsed = now - self._started_at
        on_schedule = tunnel.state and tunnel.state == tunnel.scenario.state_at(tunnel.applied_until)
        if tunnel.override is None and on_schedule and elapsed >= tunnel.applied_until:
            scheduled = tunnel.scenario.changes(tunnel.applied_until, elapsed)
            changes = [(self._started_at + at, before, after) for at, before, after in scheduled]
        else:
            state = tunnel.override or tunnel.scenario.state_at(elapsed)
            changes = [] if state == tunnel.state else [(now, tunnel.state, state)]
        tunnel.applied_until = elapsed
        return changes

    # --- CloudWatch tunnel traffic (AWS/VPN), published as AWS does: per period, some minutes late -----------

    def _publish_traffic_history(self, now: float) -> None:
        """Nine days of history: the tunnels healthy (idle connections silent) until SETTLED_FOR before the
        start, hourly (CloudWatch's Sum over a day is the same), then every period in the first state."""
        period = tunnel_traffic.PERIOD
        latest = (int(now) - tunnel_traffic.PUBLISHED_AFTER) // period * period - period  # the newest published
        settled = (int(now) - tunnel_traffic.SETTLED_FOR) // period * period
        data = []
        for hour in range(int(now) - tunnel_traffic.HISTORY_SECONDS, settled, 3600):
            data += self._traffic_data(hour, lambda tunnel: "healthy", scale=3600 / period)
        for start in range(settled, latest + 1, period):
            data += self._traffic_data(start, lambda tunnel: tunnel.scenario.state_at(0))
        self._put_traffic(data)
        self._traffic_next = latest + period

    def _publish_traffic(self, now: float) -> None:
        """Each period that ended PUBLISHED_AFTER ago: most of its bytes now, the rest a period later."""
        period = tunnel_traffic.PERIOD
        while self._traffic_next + period + tunnel_traffic.PUBLISHED_AFTER <= now:
            data = self._traffic_data(self._traffic_next, lambda tunnel: tunnel.state)
            self._put_traffic(self._traffic_late + _share(data, 1 - tunnel_traffic.LATE_SHARE))
            self._traffic_late = _share(data, tunnel_traffic.LATE_SHARE)
            self._traffic_next += period

    def _traffic_data(self, start: float, state_of, scale: float = 1.0) -> list[tuple[str, str, dict]]:
        data = []
        for live in self.connections:
            if live.scenario.traffic == "new" and start < self._started_at:
                continue  # no data point before the connection existed
            for tunnel in live.tunnels:
                received, sent = tunnel_traffic.bytes_in_period(live.scenario, tunnel.scenario, state_of(tunnel), start)
                for name, value in (("TunnelDataIn", received), ("TunnelDataOut", sent)):
                    data.append(
                        (
                            live.scenario.account,
                            live.scenario.region,
                            tunnel_traffic.datum(name, tunnel.scenario.outside_ip, start + 1, value * scale),
                        )
                    )
        return data

    @staticmethod
    def _put_traffic(data: list[tuple[str, str, dict]]) -> None:
        """AWS publishes into its own namespace (clients may not write to AWS/ ones): straight to the backend."""
        from moto.cloudwatch.models import cloudwatch_backends

        by_region: dict[tuple[str, str], list[dict]] = {}
        for account, region, item in data:
            by_region.setdefault((account, region), []).append(item)
        for (account, region), items in by_region.items():
            cloudwatch_backends[account][region].put_metric_data("AWS/VPN", items)

    def set_state(self, connection_name: str, tunnel_index: int, state: str | None) -> None:
        """Force a tunnel into a state (None returns it to its scenario), and apply at once."""
        with self._lock:
            live = next(c for c in self.connections if c.scenario.name == connection_name)
            live.tunnels[tunnel_index].override = state
        self.apply()

    def connection_id(self, name: str) -> str:
        return next(c.vpn_connection_id for c in self.connections if c.scenario.name == name)
