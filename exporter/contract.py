"""The metric contract: every metric the exporter exposes, defined once: name, type, help, label names
(and the unit its name carries). The snapshot renderer and the live registry build their families from it;
docs/metrics.md (generated from METRIC_DOCS), the golden exposition and the alert and dashboard generators are checked
against it (tests/test_contract.py). Adding a metric: a definition here, the line that fills it from the
model, and a golden update.
"""

from __future__ import annotations

from dataclasses import dataclass

TUNNEL_LABELS = ("account_id", "region", "vpn_connection_id", "tunnel")
SOURCE_LABELS = ("account_id", "region", "source")
CONNECTION_INFO_LABELS = (
    "account_id",
    "region",
    "vpn_connection_id",
    "name",
    "state",
    "routing",
    "gateway_type",
    "gateway_id",
    "customer_gateway_id",
    "accelerated",
)
CACHED = " Cached from the latest poll; /metrics never calls AWS."

PREFIX = "aws_vpn"
CONNECTION_INFO = "aws_vpn_connection_info"
TUNNEL_INFO = "aws_vpn_tunnel_info"
TUNNEL_UP = "aws_vpn_tunnel_up"
TUNNEL_IPSEC_UP = "aws_vpn_tunnel_ipsec_up"
TUNNEL_BGP_UP = "aws_vpn_tunnel_bgp_up"
TUNNEL_ACCEPTED_ROUTES = "aws_vpn_tunnel_accepted_routes"
TUNNEL_ACCEPTED_ROUTES_QUOTA_RATIO = "aws_vpn_tunnel_accepted_routes_quota_ratio"
TUNNEL_LAST_STATUS_CHANGE = "aws_vpn_tunnel_last_status_change_timestamp_seconds"
TUNNEL_LOG_ENABLED = "aws_vpn_tunnel_log_enabled"
CUSTOMER_GATEWAY_INFO = "aws_vpn_customer_gateway_info"
TUNNEL_LOG_EVENTS = "aws_vpn_tunnel_log_events_total"
TUNNEL_SELECTOR_MISMATCH = "aws_vpn_tunnel_selector_mismatch"
TUNNEL_SELECTOR_INFO = "aws_vpn_tunnel_traffic_selector_info"
TUNNEL_NAT_T = "aws_vpn_tunnel_nat_t_detected"
TUNNEL_DPD = "aws_vpn_tunnel_dpd_enabled"
TUNNEL_IKE_PHASE_STATE = "aws_vpn_tunnel_ike_phase_state"
TUNNEL_LOG_LAST_EVENT = "aws_vpn_tunnel_log_last_event_timestamp_seconds"
TUNNEL_LOG_HAS_EVENTS = "aws_vpn_tunnel_log_has_events"
TUNNEL_BGP_SESSION_STATE = "aws_vpn_tunnel_bgp_session_state"
TUNNEL_BGP_LAST_ERROR = "aws_vpn_tunnel_bgp_last_error_timestamp_seconds"
TUNNEL_FINDING = "aws_vpn_tunnel_finding"
FINDING_INFO = "aws_vpn_finding_info"
TUNNEL_OPTIONS_INFO = "aws_vpn_tunnel_options_info"
TUNNEL_DPD_TIMEOUT = "aws_vpn_tunnel_dpd_timeout_seconds"
TUNNEL_IKE_LIFETIME = "aws_vpn_tunnel_ike_lifetime_seconds"
CONNECTION_OPTIONS_INFO = "aws_vpn_connection_options_info"
CONNECTION_STATIC_ROUTES = "aws_vpn_connection_static_routes"
TUNNEL_MAINTENANCE_PENDING = "aws_vpn_tunnel_maintenance_pending"
TUNNEL_MAINTENANCE_AUTO_APPLY = "aws_vpn_tunnel_maintenance_auto_apply_timestamp_seconds"
TUNNEL_LAST_MAINTENANCE = "aws_vpn_tunnel_last_maintenance_timestamp_seconds"
TUNNEL_PROVISIONING_STATUS = "aws_vpn_tunnel_provisioning_status"
TUNNEL_NEGOTIATED_INFO = "aws_vpn_tunnel_negotiated_info"
TUNNEL_RECEIVED_BYTES = "aws_vpn_tunnel_received_bytes_total"
TUNNEL_SENT_BYTES = "aws_vpn_tunnel_sent_bytes_total"
TUNNEL_TRAFFIC_COUNTED_UNTIL = "aws_vpn_tunnel_traffic_counted_until_timestamp_seconds"
TUNNEL_LAST_TRAFFIC = "aws_vpn_tunnel_last_traffic_timestamp_seconds"
TRAFFIC_METRICS_REQUESTED = "aws_vpn_exporter_cloudwatch_metrics_requested_total"
TRAFFIC_MONTHLY_COST = "aws_vpn_exporter_traffic_estimated_monthly_cost_usd"
TRAFFIC_UNATTRIBUTABLE = "aws_vpn_exporter_traffic_unattributable_tunnels"
CONNECTION_LABELS = ("account_id", "region", "vpn_connection_id")
TUNNEL_STATE_CHANGES = "aws_vpn_tunnel_state_changes_total"
TUNNEL_DOWN_SECONDS = "aws_vpn_tunnel_down_seconds_total"
TUNNEL_BGP_DOWN_SECONDS = "aws_vpn_tunnel_bgp_down_seconds_total"
CONNECTION_UNAVAILABLE_SECONDS = "aws_vpn_connection_unavailable_seconds_total"
CONNECTION_UNREDUNDANT_SECONDS = "aws_vpn_connection_unredundant_seconds_total"
CONNECTION_OBSERVED_SECONDS = "aws_vpn_connection_observed_seconds_total"
COLLECTION_SUCCESS = "aws_vpn_exporter_collection_success"
COLLECTION_DURATION = "aws_vpn_exporter_collection_duration_seconds"
COLLECTION_LAST_SUCCESS = "aws_vpn_exporter_last_success_timestamp_seconds"
POLL_TIMESTAMP = "aws_vpn_exporter_poll_timestamp_seconds"
SNAPSHOT_AGE = "aws_vpn_exporter_snapshot_age_seconds"
API_CALLS = "aws_vpn_exporter_aws_api_calls_total"
UNRECOGNIZED_VALUES = "aws_vpn_exporter_unrecognized_values_total"
BUILD_INFO = "aws_vpn_exporter_build_info"
LOG_INGESTION_LAG = "aws_vpn_exporter_log_ingestion_lag_seconds"
LOG_EVENTS_INGESTED = "aws_vpn_exporter_log_events_ingested_total"
LOG_EVENTS_DUPLICATE = "aws_vpn_exporter_log_events_duplicate_total"
LOG_PARSE_ERRORS = "aws_vpn_exporter_log_parse_errors_total"
LOG_EVENTS_UNATTRIBUTED = "aws_vpn_exporter_log_events_unattributed_total"
LOG_EVENTS_FUTURE_DATED = "aws_vpn_exporter_log_events_future_dated_total"
STATE_FILE_ERRORS = "aws_vpn_exporter_state_file_errors_total"
STATE_FILE_WRITABLE = "aws_vpn_exporter_state_file_writable"
DIAGNOSIS_ERRORS = "aws_vpn_exporter_diagnosis_errors_total"
RENDER_ERRORS = "aws_vpn_exporter_render_errors_total"
DUPLICATE_SERIES_DROPPED = "aws_vpn_exporter_duplicate_series_dropped_total"
SHARDS = "aws_vpn_exporter_shards"
CONFIG_RELOAD_SUCCESSFUL = "aws_vpn_exporter_config_last_reload_successful"
CONFIG_RELOAD_TIMESTAMP = "aws_vpn_exporter_config_last_reload_success_timestamp_seconds"
DISCOVERY_SUCCESS = "aws_vpn_exporter_discovery_success"
DISCOVERY_LAST_SUCCESS = "aws_vpn_exporter_discovery_last_success_timestamp_seconds"
DISCOVERED_TARGETS = "aws_vpn_exporter_discovered_targets"
DISCOVERED_ACCOUNTS = "aws_vpn_exporter_discovered_accounts"
DISCOVERY_ACCOUNT_SUCCESS = "aws_vpn_exporter_discovery_account_success"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # gauge | counter, as the TYPE line says (an _info metric is a gauge of 1)
    help: str  # as the HELP line says it (snapshot metrics add CACHED unless ``cached`` is False)
    labels: tuple[str, ...] = ()
    cached: bool = True  # snapshot metrics: the HELP says the value comes from the latest poll
    live: bool = False  # in the exporter's own registry, updated between polls, not in the snapshot

    @property
    def unit(self) -> str:
        """The base unit the name ends with (Prometheus naming), or "" for a count, ratio or state."""
        return next((unit for unit in ("seconds", "bytes") if self.name.removesuffix("_total").endswith(unit)), "")

    @property
    def help_text(self) -> str:
        return self.help + (CACHED if self.cached and not self.live else "")


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric(CONNECTION_INFO, "gauge", "VPN connection metadata; always 1.", CONNECTION_INFO_LABELS),
        Metric(
            TUNNEL_INFO,
            "gauge",
            "Tunnel metadata; always 1. status_message is AWS's StatusMessage classified.",
            TUNNEL_LABELS + ("inside_cidr", "status", "status_message"),
        ),
        Metric(TUNNEL_UP, "gauge", "AWS's reported tunnel status (VgwTelemetry Status): 1 UP, 0 DOWN.", TUNNEL_LABELS),
        Metric(
            TUNNEL_IPSEC_UP,
            "gauge",
            "1 when IPsec is established: Status UP, or DOWN with StatusMessage IPSEC IS UP.",
            TUNNEL_LABELS,
        ),
        Metric(
            TUNNEL_BGP_UP, "gauge", "1 when the BGP session is established (dynamic connections only).", TUNNEL_LABELS
        ),
        Metric(
            TUNNEL_ACCEPTED_ROUTES,
            "gauge",
            "Routes AWS accepted from the customer gateway (AcceptedRouteCount).",
            TUNNEL_LABELS,
        ),
        Metric(
            TUNNEL_ACCEPTED_ROUTES_QUOTA_RATIO,
            "gauge",
            "Accepted routes over AWS's quota of dynamic routes from the customer gateway for the connection's "
            "gateway type (100 on a virtual private gateway, 1,000 on a transit gateway); past 1 AWS resets the BGP "
            "session. Dynamic connections on a gateway of documented quota only.",
            TUNNEL_LABELS,
        ),
        Metric(
            TUNNEL_LAST_STATUS_CHANGE,
            "gauge",
            "When the tunnel's IKE, IPsec or BGP state last changed (LastStatusChange).",
            TUNNEL_LABELS,
        ),
        Metric(
            TUNNEL_LOG_ENABLED,
            "gauge",
            "1 when the tunnel's log (ike or bgp) is delivered to CloudWatch Logs.",
            TUNNEL_LABELS + ("log",),
        ),
        Metric(
            CUSTOMER_GATEWAY_INFO,
            "gauge",
            "Customer gateway metadata; always 1.",
            ("account_id", "region", "customer_gateway_id", "name", "bgp_asn", "ip_address"),
        ),
        Metric(
            TUNNEL_OPTIONS_INFO,
            "gauge",
            "The tunnel's options (DescribeVpnConnections TunnelOptions); always 1. Lists are comma-joined in a "
            "stable order; empty where AWS omits the option.",
            TUNNEL_LABELS
            + (
                "startup_action",
                "dpd_timeout_action",
                "lifecycle_control",
                "ike_versions",
                "phase1_encryption",
                "phase1_integrity",
                "phase1_dh_groups",
                "phase2_encryption",
                "phase2_integrity",
                "phase2_dh_groups",
                "authentication",
            ),
        ),
        Metric(
            TUNNEL_DPD_TIMEOUT, "gauge", "Dead peer detection timeout of the tunnel (DpdTimeoutSeconds).", TUNNEL_LABELS
        ),
        Metric(
            TUNNEL_IKE_LIFETIME,
            "gauge",
            "Configured lifetime of the tunnel's IKE phase 1 or phase 2 SA (Phase1/2LifetimeSeconds).",
            TUNNEL_LABELS + ("phase",),
        ),
        Metric(
            CONNECTION_OPTIONS_INFO,
            "gauge",
            "The connection's options and gateway association; always 1. Empty where AWS omits one.",
            (
                "account_id",
                "region",
                "vpn_connection_id",
                "tunnel_bandwidth",
                "outside_ip_address_type",
                "tunnel_inside_ip_version",
                "gateway_association_state",
            ),
        ),
        Metric(
            CONNECTION_STATIC_ROUTES,
            "gauge",
            "The connection's static routes by state (pending, available, deleting, deleted).",
            ("account_id", "region", "vpn_connection_id", "state"),
        ),
        Metric(
            TUNNEL_MAINTENANCE_PENDING,
            "gauge",
            "1 while AWS has an endpoint replacement pending for the tunnel (GetVpnTunnelReplacementStatus).",
            TUNNEL_LABELS,
        ),
        Metric(
            TUNNEL_MAINTENANCE_AUTO_APPLY,
            "gauge",
            "When AWS applies the pending endpoint replacement by itself (MaintenanceAutoAppliedAfter).",
            TUNNEL_LABELS,
        ),
        Metric(
            TUNNEL_LAST_MAINTENANCE,
            "gauge",
            "When AWS last replaced the tunnel's endpoint (LastMaintenanceApplied).",
            TUNNEL_LABELS,
        ),
        Metric(
            TUNNEL_PROVISIONING_STATUS,
            "gauge",
            "The tunnel's provisioning status (GetActiveVpnTunnelStatus): one series, for the current status "
            "(available, pending, failed, other), = 1.",
            TUNNEL_LABELS + ("status",),
        ),
        Metric(
            TUNNEL_NEGOTIATED_INFO,
            "gauge",
            "The IKE version, algorithms and DH groups the tunnel negotiated (GetActiveVpnTunnelStatus); always 1.",
            TUNNEL_LABELS
            + (
                "ike_version",
                "phase1_encryption",
                "phase1_integrity",
                "phase1_dh_group",
                "phase2_encryption",
                "phase2_integrity",
                "phase2_dh_group",
            ),
        ),
        Metric(
            TUNNEL_RECEIVED_BYTES,
            "counter",
            "Bytes AWS received through the tunnel from the customer gateway, after decryption (CloudWatch "
            "AWS/VPN TunnelDataIn), counted from a traffic.window before the tunnel was first seen (kept across "
            "restarts in state_dir), up to the counted_until time. Reported even while the tunnel is down: not a "
            "sign of liveness.",
            TUNNEL_LABELS,
        ),
        Metric(
            TUNNEL_SENT_BYTES,
            "counter",
            "Bytes AWS sent through the tunnel to the customer gateway, before encryption (CloudWatch AWS/VPN "
            "TunnelDataOut), counted like aws_vpn_tunnel_received_bytes_total.",
            TUNNEL_LABELS,
        ),
        Metric(
            TUNNEL_TRAFFIC_COUNTED_UNTIL,
            "gauge",
            "The end of the newest CloudWatch period counted into the tunnel's byte counters (CloudWatch "
            "publishes a period minutes after it ends).",
            TUNNEL_LABELS,
        ),
        Metric(
            TUNNEL_LAST_TRAFFIC,
            "gauge",
            "The end of the newest period in which more than keepalives (10 kB in 5 minutes) crossed the tunnel "
            "either way; absent when none did as far back as CloudWatch has data points (traffic.idle_after).",
            TUNNEL_LABELS,
        ),
        Metric(
            TRAFFIC_METRICS_REQUESTED,
            "counter",
            "CloudWatch metrics requested with GetMetricData for tunnel traffic, the unit AWS bills.",
            ("account_id", "region"),
        ),
        Metric(
            TRAFFIC_MONTHLY_COST,
            "gauge",
            "Estimated GetMetricData cost of tunnel traffic collection for 30 days at the current tunnel count "
            "and traffic.interval, in US dollars (traffic.price_per_1000_metrics).",
            ("account_id", "region"),
        ),
        Metric(
            TRAFFIC_UNATTRIBUTABLE,
            "gauge",
            "Tunnels whose traffic is not collected because another tunnel of the account and region has the "
            "same outside IP (CloudWatch's TunnelIpAddress cannot tell them apart).",
            ("account_id", "region"),
        ),
        Metric(
            TUNNEL_STATE_CHANGES,
            "counter",
            "State changes of the tunnel, counted exactly and kept across restarts in state_dir: each advance of "
            "EC2's LastStatusChange counts at least 1 (2 when status and status message are unchanged: away and "
            "back within one poll), a change made while the exporter was stopped is counted on restart, and the "
            "BGP log's session transitions count instead when there are more of them.",
            TUNNEL_LABELS,
        ),
        Metric(
            TUNNEL_DOWN_SECONDS,
            "counter",
            "Seconds the tunnel was DOWN, integrated from AWS's LastStatusChange edges (not poll times), by cause: "
            "maintenance from an endpoint replacement (LastMaintenanceApplied) until the tunnel is next UP, "
            "other otherwise. With tunnel_status on, counted once the status pass has checked the tunnel after them.",
            TUNNEL_LABELS + ("cause",),
        ),
        Metric(
            TUNNEL_BGP_DOWN_SECONDS,
            "counter",
            "Seconds the tunnel had IPsec up and BGP down (dynamic routing only; part of its DOWN seconds), by cause "
            "as for aws_vpn_tunnel_down_seconds_total.",
            TUNNEL_LABELS + ("cause",),
        ),
        Metric(
            CONNECTION_UNAVAILABLE_SECONDS,
            "counter",
            "Seconds no tunnel of the connection was UP (the SLA's unavailability), by cause: maintenance when a "
            "tunnel of it was in an endpoint replacement, other otherwise; counted like "
            "aws_vpn_tunnel_down_seconds_total.",
            CONNECTION_LABELS + ("cause",),
        ),
        Metric(
            CONNECTION_UNREDUNDANT_SECONDS,
            "counter",
            "Seconds some tunnel of the connection was DOWN while another was UP (no redundancy).",
            CONNECTION_LABELS,
        ),
        Metric(
            CONNECTION_OBSERVED_SECONDS,
            "counter",
            "Seconds the connection's history covers, the SLA's denominator: a gap while the exporter was stopped "
            "is filled from LastStatusChange on restart; time a tunnel's status was unknown and none was UP is left "
            "out.",
            CONNECTION_LABELS,
        ),
        Metric(
            TUNNEL_LOG_EVENTS,
            "counter",
            "Tunnel log events by type, each counted once (kept across restarts in state_dir).",
            TUNNEL_LABELS + ("event",),
        ),
        Metric(
            TUNNEL_SELECTOR_MISMATCH,
            "gauge",
            "1 when the latest Phase 2 traffic selectors do not fit the connection (CIDR options, or "
            "the inside CIDR BGP needs).",
            TUNNEL_LABELS,
        ),
        Metric(
            TUNNEL_SELECTOR_INFO,
            "gauge",
            "Traffic selectors of the latest Phase 2 SA; always 1.",
            TUNNEL_LABELS + ("aws_side", "cgw_side"),
        ),
        Metric(
            TUNNEL_NAT_T, "gauge", "1 when the latest IKE log event saw NAT-T on the customer gateway.", TUNNEL_LABELS
        ),
        Metric(TUNNEL_DPD, "gauge", "1 when the latest IKE log event had dead peer detection enabled.", TUNNEL_LABELS),
        Metric(
            TUNNEL_IKE_PHASE_STATE,
            "gauge",
            "IKE phase 1 and 2 state from the latest IKE log event: one series, for the current state, = 1.",
            TUNNEL_LABELS + ("phase", "state"),
        ),
        Metric(
            TUNNEL_LOG_LAST_EVENT,
            "gauge",
            "Time of the newest event in the tunnel's log (ike or bgp).",
            TUNNEL_LABELS + ("log",),
        ),
        Metric(
            TUNNEL_LOG_HAS_EVENTS,
            "gauge",
            "For a log (ike or bgp) delivered to CloudWatch Logs: 1 once an event of it has been read,"
            " 0 while none has (normal for a tunnel that has not logged yet: AWS creates the stream "
            "with the first event).",
            TUNNEL_LABELS + ("log",),
        ),
        Metric(
            TUNNEL_BGP_SESSION_STATE,
            "gauge",
            "BGP session state from the latest BGP log transition: one series, for the current state, = 1.",
            TUNNEL_LABELS + ("state",),
        ),
        Metric(
            TUNNEL_BGP_LAST_ERROR,
            "gauge",
            "Time of the latest BGP error in the BGP log, labelled with its kind.",
            TUNNEL_LABELS + ("error",),
        ),
        Metric(
            LOG_INGESTION_LAG,
            "gauge",
            "How far behind the log reader was when this snapshot was made: snapshot time minus the "
            "time up to which the group has been read.",
            ("account_id", "region", "log_group"),
        ),
        Metric(
            TUNNEL_FINDING,
            "gauge",
            "1 while a diagnosis finding is active; codes and remedies in docs/diagnosis.md (tunnel is empty "
            "for connection-level findings).",
            TUNNEL_LABELS + ("finding", "severity"),
        ),
        Metric(
            FINDING_INFO,
            "gauge",
            "The diagnosis findings this exporter knows, with their summary, fix and the alert that "
            "stands for each; always 1.",
            ("finding", "severity", "alert", "summary", "remedy"),
        ),
        Metric(COLLECTION_SUCCESS, "gauge", "1 when the latest collection of this source succeeded.", SOURCE_LABELS),
        Metric(COLLECTION_DURATION, "gauge", "How long the latest collection of this source took.", SOURCE_LABELS),
        Metric(
            COLLECTION_LAST_SUCCESS,
            "gauge",
            "When this source last collected successfully; older data is served unchanged while it fails.",
            SOURCE_LABELS,
        ),
        Metric(POLL_TIMESTAMP, "gauge", "When the poll that produced the served snapshot completed.", (), cached=False),
        Metric(BUILD_INFO, "gauge", "The exporter's version; always 1.", ("version", "python_version"), live=True),
        Metric(
            API_CALLS,
            "counter",
            "AWS API attempts (each retry counts) by operation and outcome: ok, throttled or error.",
            ("account_id", "region", "operation", "outcome"),
            live=True,
        ),
        Metric(
            UNRECOGNIZED_VALUES,
            "counter",
            "Values from AWS that the exporter did not recognise (per poll and occurrence), by field.",
            ("field",),
            live=True,
        ),
        Metric(
            LOG_EVENTS_INGESTED,
            "counter",
            "Tunnel log events read and parsed, by log (ike, bgp).",
            ("account_id", "region", "log"),
            live=True,
        ),
        Metric(
            LOG_EVENTS_DUPLICATE,
            "counter",
            "Log events seen again in the overlap window and dropped.",
            ("account_id", "region"),
            live=True,
        ),
        Metric(
            LOG_PARSE_ERRORS,
            "counter",
            "Malformed log events, counted and skipped, by reason.",
            ("log", "reason"),
            live=True,
        ),
        Metric(
            LOG_EVENTS_UNATTRIBUTED,
            "counter",
            "Events in a tunnel log group that no watched tunnel claims by stream name or resource_id "
            "(another shard's, a deleted connection's, another writer's); counted and skipped.",
            ("account_id", "region"),
            live=True,
        ),
        Metric(
            LOG_EVENTS_FUTURE_DATED,
            "counter",
            "Log events whose own time lies more than 5 minutes after CloudWatch's time for them (a "
            "wrong clock); counted, and their facts dated by CloudWatch's time instead.",
            ("account_id", "region"),
            live=True,
        ),
        Metric(
            STATE_FILE_ERRORS,
            "counter",
            "Unreadable or corrupt state files (moved aside) and loads that dropped invalid entries.",
            (),
            live=True,
        ),
        Metric(
            SHARDS,
            "gauge",
            "How many shards the configuration divides the accounts and regions into (shard.count), labelled "
            "with this replica's shard.index: a rule counts the indexes that report.",
            ("shard_index",),
            live=True,
        ),
        Metric(
            CONFIG_RELOAD_SUCCESSFUL,
            "gauge",
            "1 when the latest config reload (SIGHUP, POST /-/reload) succeeded.",
            (),
            live=True,
        ),
        Metric(CONFIG_RELOAD_TIMESTAMP, "gauge", "When the config was last loaded successfully.", (), live=True),
        Metric(
            DIAGNOSIS_ERRORS,
            "counter",
            "Connections whose diagnosis failed on a snapshot (their findings are left out; the rest publish).",
            (),
            live=True,
        ),
        Metric(
            RENDER_ERRORS,
            "counter",
            "Tunnels, connections or findings left out of a snapshot's exposition because a value "
            "could not be rendered (the rest publish).",
            (),
            live=True,
        ),
        Metric(
            DUPLICATE_SERIES_DROPPED,
            "counter",
            "Series a snapshot's exposition had twice (same metric and labels): the first is kept, the others "
            "dropped, as Prometheus rejects a scrape's samples for a duplicate. Any is a bug; it is logged once.",
            ("metric",),
            live=True,
        ),
        Metric(
            STATE_FILE_WRITABLE,
            "gauge",
            "1 when the latest save of every state file in use (log state, traffic counters) succeeded, or none "
            "is in use; 0 when the disk refused any (full, read-only, permissions): counts still grow, but would "
            "not survive a restart.",
            (),
            live=True,
        ),
        Metric(
            DISCOVERY_SUCCESS,
            "gauge",
            "1 when the latest organizations:ListAccounts of an organization target succeeded (account_id: where it "
            "is called); on failure the last good set of accounts and regions is kept.",
            ("account_id",),
            live=True,
        ),
        Metric(
            DISCOVERY_LAST_SUCCESS,
            "gauge",
            "When that organization's accounts and regions were last discovered successfully.",
            ("account_id",),
            live=True,
        ),
        Metric(
            DISCOVERED_TARGETS,
            "gauge",
            "Account and region pairs found by the organization's discovery that this replica polls (its shard).",
            ("account_id",),
            live=True,
        ),
        Metric(
            DISCOVERED_ACCOUNTS,
            "gauge",
            "The organization's accounts by what discovery did with them: watched, failed (its last regions kept), "
            "inactive, excluded, management_skipped, elsewhere (another target watches it).",
            ("account_id", "state"),
            live=True,
        ),
        Metric(
            DISCOVERY_ACCOUNT_SUCCESS,
            "gauge",
            "Per discovered account: 1 when its role was assumed and its enabled regions read (DescribeRegions) on "
            "the latest discovery.",
            ("account_id",),
            live=True,
        ),
        Metric(
            SNAPSHOT_AGE,
            "gauge",
            "Seconds since the served snapshot was completed, on the monotonic clock (a step of the wall clock "
            "changes nothing); NaN before the first poll.",
            (),
            live=True,
        ),
    )
}


# What each metric means, for a person, and the table of docs/metrics.md that lists it: "ec2" (EC2's
# telemetry and the exporter's own), "logs", "traffic" or "history". scripts/generate writes that page from here.
METRIC_DOCS: dict[str, tuple[str, str]] = {
    "aws_vpn_connection_info": (
        "ec2",
        "1; labels `account_id, region, vpn_connection_id, name` (Name tag), `state`, `routing` "
        "(`dynamic`|`static`|`unknown`), `gateway_type` (`vgw`|`tgw`|`cloudwan`|`none`), `gateway_id`, "
        "`customer_gateway_id`, `accelerated` (`true`|`false`), plus `tag_<key>` for each key of "
        "`connection_tags`",
    ),
    "aws_vpn_tunnel_info": (
        "ec2",
        "1; tunnel labels plus `inside_cidr`, `status` (`up`|`down`|`unknown`), `status_message` "
        "(`ipsec_up`|`ipsec_down`|`bgp_routes`|`empty`|`other`|`missing`)",
    ),
    "aws_vpn_tunnel_up": (
        "ec2",
        "AWS's Status: 1 UP, 0 DOWN; absent when the status is unknown",
    ),
    "aws_vpn_tunnel_ipsec_up": (
        "ec2",
        "1 when IPsec is established: UP, or DOWN with StatusMessage `IPSEC IS UP`",
    ),
    "aws_vpn_tunnel_bgp_up": (
        "ec2",
        "dynamic connections only: 1 when AWS reports the tunnel UP",
    ),
    "aws_vpn_tunnel_accepted_routes": (
        "ec2",
        "AcceptedRouteCount",
    ),
    "aws_vpn_tunnel_accepted_routes_quota_ratio": (
        "ec2",
        "AcceptedRouteCount over AWS's quota of dynamic routes from the customer gateway for the connection's "
        "gateway type: 100 on a virtual private gateway, 1,000 on a transit gateway (Site-to-Site VPN User "
        'Guide, "Site-to-Site VPN quotas"); past 1 AWS resets the BGP session. No series for a static '
        "connection, nor for Cloud WAN or a connection without a gateway, for which the quotas page gives no "
        "figure",
    ),
    "aws_vpn_tunnel_last_status_change_timestamp_seconds": (
        "ec2",
        "LastStatusChange",
    ),
    "aws_vpn_tunnel_log_enabled": (
        "ec2",
        "1 when the tunnel's `log` (`ike`|`bgp`) goes to CloudWatch Logs",
    ),
    "aws_vpn_customer_gateway_info": (
        "ec2",
        "1; `customer_gateway_id, name, bgp_asn, ip_address`",
    ),
    "aws_vpn_tunnel_options_info": (
        "ec2",
        "1; tunnel labels plus the options `DescribeVpnConnections` already returns (no extra call): "
        "`startup_action` (`add`|`start`), `dpd_timeout_action` (`clear`|`none`|`restart`), "
        "`lifecycle_control`, `ike_versions`, `phase1_encryption`, `phase1_integrity`, `phase1_dh_groups`, "
        "`phase2_encryption`, `phase2_integrity`, `phase2_dh_groups` (lists comma-joined, sorted; values "
        "outside AWS's documented set read `other` and are counted), `authentication` (`psk`|`certificate`)",
    ),
    "aws_vpn_tunnel_dpd_timeout_seconds": (
        "ec2",
        "the tunnel's `DpdTimeoutSeconds`",
    ),
    "aws_vpn_tunnel_ike_lifetime_seconds": (
        "ec2",
        "`Phase1LifetimeSeconds` and `Phase2LifetimeSeconds`, by `phase`",
    ),
    "aws_vpn_connection_options_info": (
        "ec2",
        "1; `tunnel_bandwidth`, `outside_ip_address_type`, `tunnel_inside_ip_version`, `gateway_association_state`",
    ),
    "aws_vpn_connection_static_routes": (
        "ec2",
        "the connection's static routes by `state` (`pending`, `available`, `deleting`, `deleted`)",
    ),
    "aws_vpn_tunnel_maintenance_pending": (
        "ec2",
        "1 while AWS has an endpoint replacement pending for the tunnel (`GetVpnTunnelReplacementStatus`)",
    ),
    "aws_vpn_tunnel_maintenance_auto_apply_timestamp_seconds": (
        "ec2",
        "when AWS applies it by itself (`MaintenanceAutoAppliedAfter`)",
    ),
    "aws_vpn_tunnel_last_maintenance_timestamp_seconds": (
        "ec2",
        "when AWS last replaced the tunnel's endpoint",
    ),
    "aws_vpn_tunnel_provisioning_status": (
        "ec2",
        "one series, for the current `status` (`available`, `pending`, `failed`, `other`), = 1 "
        "(`GetActiveVpnTunnelStatus`)",
    ),
    "aws_vpn_tunnel_negotiated_info": (
        "ec2",
        "1; the negotiated `ike_version`, `phase1_encryption`, `phase1_integrity`, `phase1_dh_group` and "
        "phase 2 likewise",
    ),
    "aws_vpn_exporter_collection_success": (
        "ec2",
        "per `account_id, region, source` (`ec2`, `logs`, `tunnel_status`, `traffic`, and `sts` for each region of "
        "an account whose credentials fail: AssumeRole, GetCallerIdentity or none at all, in place of `ec2`): 1 when "
        "the latest collection succeeded",
    ),
    "aws_vpn_exporter_collection_duration_seconds": (
        "ec2",
        "how long that collection took",
    ),
    "aws_vpn_exporter_last_success_timestamp_seconds": (
        "ec2",
        "when that source last succeeded; a failing region keeps serving its last data, and this says how old it is",
    ),
    "aws_vpn_exporter_poll_timestamp_seconds": (
        "ec2",
        "when the served snapshot was completed",
    ),
    "aws_vpn_exporter_snapshot_age_seconds": (
        "ec2",
        "seconds since then, computed at scrape time on the monotonic clock (a step of the wall clock neither "
        "hides a stall nor fakes one)",
    ),
    "aws_vpn_exporter_aws_api_calls_total": (
        "ec2",
        "AWS API attempts (retries count) by `account_id, region, operation, outcome` (`ok`|`throttled`|`error`)",
    ),
    "aws_vpn_exporter_unrecognized_values_total": (
        "ec2",
        "values AWS sent that the exporter did not recognise, by `field` (`status`, `status_message`, `routing`, ...)",
    ),
    "aws_vpn_exporter_build_info": (
        "ec2",
        "1; `version`, `python_version`",
    ),
    "aws_vpn_exporter_log_ingestion_lag_seconds": (
        "ec2",
        "per `account_id, region, log_group`: snapshot time minus how far the group has been read",
    ),
    "aws_vpn_exporter_log_events_ingested_total": (
        "ec2",
        "log events read and parsed, by `account_id, region, log` (`ike`|`bgp`)",
    ),
    "aws_vpn_exporter_log_events_duplicate_total": (
        "ec2",
        "events seen again in the overlap window and dropped",
    ),
    "aws_vpn_exporter_log_parse_errors_total": (
        "ec2",
        "malformed events, counted and skipped, by `log, reason` (`invalid_json`, `wrong_type`, `too_large`, "
        "`binary`, `empty`, `unmatched_event`)",
    ),
    "aws_vpn_exporter_log_events_unattributed_total": (
        "ec2",
        "events in a tunnel log group that no watched tunnel claims by stream name or `resource_id` (another "
        "shard's, a deleted connection's, another writer's), by `account_id, region`; counted and skipped",
    ),
    "aws_vpn_exporter_state_file_errors_total": (
        "ec2",
        "unreadable state files (moved aside) and loads that dropped invalid entries",
    ),
    "aws_vpn_exporter_state_file_writable": (
        "ec2",
        "1 when the latest save of every state file in use (log state, traffic counters) succeeded or none is "
        "in use, 0 when the disk refused any",
    ),
    "aws_vpn_exporter_log_events_future_dated_total": (
        "ec2",
        "events whose own time is more than 5 min after CloudWatch's; dated by CloudWatch's time instead",
    ),
    "aws_vpn_exporter_shards": (
        "ec2",
        "this replica's `shard.count`, labelled with its `shard_index`: `VpnExporterShardMissing` counts the "
        "indexes that report",
    ),
    "aws_vpn_exporter_config_last_reload_successful": (
        "ec2",
        "1 when the latest config reload (SIGHUP, `POST /-/reload`) succeeded",
    ),
    "aws_vpn_exporter_config_last_reload_success_timestamp_seconds": (
        "ec2",
        "when the config was last loaded successfully",
    ),
    "aws_vpn_exporter_diagnosis_errors_total": (
        "ec2",
        "connections whose diagnosis failed on a snapshot (their findings left out, the rest published)",
    ),
    "aws_vpn_exporter_render_errors_total": (
        "ec2",
        "tunnels, connections or findings left out of a snapshot's exposition because a value could not be "
        "rendered (the rest published)",
    ),
    "aws_vpn_exporter_duplicate_series_dropped_total": (
        "ec2",
        "series a snapshot's exposition had twice, by `metric`: the first is kept, the rest dropped "
        "(Prometheus would reject the scrape's samples); any is a bug, logged once",
    ),
    "aws_vpn_exporter_discovery_success": (
        "ec2",
        "per organization target, `account_id` where `ListAccounts` is called: 1 when the latest discovery "
        "listed the accounts; 0 keeps the last good set (see [Organisation "
        "discovery](configuration.md#organisation-discovery))",
    ),
    "aws_vpn_exporter_discovery_last_success_timestamp_seconds": (
        "ec2",
        "when that organization was last discovered",
    ),
    "aws_vpn_exporter_discovered_targets": (
        "ec2",
        "the account × region pairs it found that this replica polls (its shard)",
    ),
    "aws_vpn_exporter_discovered_accounts": (
        "ec2",
        "its accounts by `state`: `watched`, `failed` (its role or `DescribeRegions` refused; its last "
        "regions kept, read again within minutes), `pending` (no answer within the run's budget; its last "
        "regions kept, read again a minute later), `inactive` (not ACTIVE), `excluded`, `management_skipped`, "
        "`elsewhere` (another target watches it), `other_shard` (regions listed, and another replica owns "
        "every pair)",
    ),
    "aws_vpn_exporter_discovery_account_success": (
        "ec2",
        "per discovered `account_id`: 1 when its role was assumed and its enabled regions read on the latest discovery",
    ),
    "aws_vpn_tunnel_log_events_total": (
        "logs",
        "events by `event`: IKE `phase1_established`, `phase2_established`, `phase1_deleted`, "
        "`phase2_deleted`, `phase1_timeout`, `phase2_failed`, `dpd`, `dpd_timeout`, `peer_dead`, "
        "`psk_mismatch`, `authentication_failed`, `no_proposal_chosen`, `traffic_selector_unacceptable`, "
        "`rekey_collision`, `child_sa_exchange`, `other`; BGP `bgp_established`, `bgp_session_down`, "
        "`bgp_state_change`, `bgp_hold_timer_expired`, `bgp_open_error`, `bgp_open_sent`, "
        "`bgp_open_received`, `bgp_notification_sent`, `bgp_notification_received`, `bgp_max_prefix_warning`, "
        "`bgp_max_prefix_exceeded`, `bgp_end_of_rib`, `bgp_route_advertised`, `bgp_route_updated`, "
        "`bgp_route_withdrawn`, `bgp_route_denied`, `bgp_connect_attempt`, `bgp_update_received`, "
        "`bgp_other`. Each event is counted once, and counts survive restarts (`state_dir`)",
    ),
    "aws_vpn_tunnel_traffic_selector_info": (
        "logs",
        "1; `aws_side`, `cgw_side`: the selectors of the latest Phase 2 SA",
    ),
    "aws_vpn_tunnel_selector_mismatch": (
        "logs",
        "1 when those selectors do not fit: AWS side must equal `RemoteIpv4NetworkCidr`, CGW side "
        "`LocalIpv4NetworkCidr` (both default 0.0.0.0/0), and on a dynamic connection both must cover the "
        "tunnel inside CIDR that BGP uses",
    ),
    "aws_vpn_tunnel_nat_t_detected": (
        "logs",
        "`nat_t_detected` of the latest IKE event",
    ),
    "aws_vpn_tunnel_dpd_enabled": (
        "logs",
        "`dpd_enabled` of the latest IKE event",
    ),
    "aws_vpn_tunnel_ike_phase_state": (
        "logs",
        "per `phase` (`1`|`2`), one series for the current `state` (`established`, `rekeying`, `negotiating`, "
        "`down`, `unknown`) = 1",
    ),
    "aws_vpn_tunnel_bgp_session_state": (
        "logs",
        "one series for the current `state` (`idle`, `connect`, `active`, `opensent`, `openconfirm`, "
        "`established`, `unknown`) = 1 (not a full stateset: 7 series per tunnel would dominate the "
        "exposition at 10,000 tunnels)",
    ),
    "aws_vpn_tunnel_bgp_last_error_timestamp_seconds": (
        "logs",
        "time of the latest BGP error, labelled `error` (`hold_timer_expired`, `open_message_error`, "
        "`notification_sent`, `notification_received`, `max_prefix_exceeded`, `route_denied`, `session_down`)",
    ),
    "aws_vpn_tunnel_log_last_event_timestamp_seconds": (
        "logs",
        "time of the newest event, by `log`",
    ),
    "aws_vpn_tunnel_log_has_events": (
        "logs",
        "for each `log` with delivery on: 1 once an event of it has been read, 0 while none has (normal for a "
        "tunnel that has not logged yet: AWS creates its stream with the first event); absent while its "
        "region's log read fails",
    ),
    "aws_vpn_tunnel_finding": (
        "logs",
        "1 while a diagnosis finding is active; labels `finding` (code) and `severity` (see "
        "[Diagnosis](diagnosis.md#diagnosis))",
    ),
    "aws_vpn_finding_info": (
        "logs",
        "the findings catalogue, one series per `finding` code with its `severity`, `alert`, `summary` and "
        "`remedy`; always 1 (alert templates join it to put the cause and fix in the page)",
    ),
    "aws_vpn_tunnel_received_bytes_total": (
        "traffic",
        "`TunnelDataIn`: bytes AWS received from the customer gateway (after decryption), from a "
        "`traffic.window` before the tunnel was first seen; kept across restarts (`state_dir`)",
    ),
    "aws_vpn_tunnel_sent_bytes_total": (
        "traffic",
        "`TunnelDataOut`: bytes AWS sent to the customer gateway (before encryption)",
    ),
    "aws_vpn_tunnel_traffic_counted_until_timestamp_seconds": (
        "traffic",
        "the end of the newest 5-minute period counted (CloudWatch publishes late: this lags by `traffic.delay`)",
    ),
    "aws_vpn_tunnel_last_traffic_timestamp_seconds": (
        "traffic",
        "the end of the newest period with more than keepalives (10 kB in 5 minutes) either way; absent when "
        "none as far back as CloudWatch has data points (`traffic.idle_after`; at day resolution before the "
        "tunnel was first seen)",
    ),
    "aws_vpn_exporter_cloudwatch_metrics_requested_total": (
        "traffic",
        "metrics requested with `GetMetricData`, by `account_id, region`: the unit AWS bills",
    ),
    "aws_vpn_exporter_traffic_estimated_monthly_cost_usd": (
        "traffic",
        "what 30 days of passes cost at the current tunnel count, `traffic.interval` and "
        "`traffic.price_per_1000_metrics`",
    ),
    "aws_vpn_exporter_traffic_unattributable_tunnels": (
        "traffic",
        "tunnels left out because another tunnel of their account and region has the same outside IP",
    ),
    "aws_vpn_tunnel_state_changes_total": (
        "history",
        "state changes: each advance of `LastStatusChange` counts 1, or 2 when status and status message are "
        "unchanged (away and back within one poll); a change while the exporter was stopped is counted on "
        "restart; the BGP log's session transitions count instead when there are more",
    ),
    "aws_vpn_tunnel_down_seconds_total": (
        "history",
        "seconds DOWN, integrated from AWS's `LastStatusChange` edges (not poll times), by `cause`: "
        "`maintenance` (from an endpoint replacement's `LastMaintenanceApplied` until the tunnel is next UP) "
        "or `other`",
    ),
    "aws_vpn_tunnel_bgp_down_seconds_total": (
        "history",
        "seconds with IPsec up and BGP down (dynamic routing; part of the DOWN seconds), by `cause`",
    ),
    "aws_vpn_connection_unavailable_seconds_total": (
        "history",
        "seconds no tunnel of the connection was UP, by `cause` (`maintenance` while a tunnel of it was in a "
        "replacement)",
    ),
    "aws_vpn_connection_unredundant_seconds_total": (
        "history",
        "seconds some tunnel was DOWN while another was UP",
    ),
    "aws_vpn_connection_observed_seconds_total": (
        "history",
        "seconds the history covers: the SLA's denominator (a stop's gap is filled from `LastStatusChange` on restart)",
    ),
}
