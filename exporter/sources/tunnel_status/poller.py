"""What AWS says about each tunnel beyond its telemetry: endpoint maintenance and provisioning.

``GetVpnTunnelReplacementStatus`` (pending maintenance, when AWS applies it by itself, when it last did) and
``GetActiveVpnTunnelStatus`` (provisioning status and reason, the negotiated IKE version, algorithms and DH
groups) are per-tunnel calls on the EC2 request token bucket that the account's other tools share (100
requests, refilled at 20 per second, per account and region). So they run on their own slow schedule,
one account and region at a time per thread, at most ``max_calls_per_second`` in each, a pass waits out the
account and region's throttling pause (``AwsAccount.backoff``) before each tunnel, and a pass ends a
region at its first failure. AccessDenied (or an API a region does not offer) turns this source off for
that account and region, said once, without touching the EC2 collection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from exporter.durable import RETENTION
from exporter.model import RegionTelemetry, TunnelKey, TunnelStatus, TunnelStatusCollection
from exporter.sources.aws import AwsAccount, describe_error
from exporter.sources.source import Results

log = logging.getLogger(__name__)
SOURCE = "tunnel_status"
CALLS_PER_TUNNEL = 2
# Errors that will not go away by retrying next pass: the source is off for that account and region.
REFUSED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "InvalidAction",
        "UnsupportedOperation",
        "OptInRequired",
    }
)
PROVISIONING_STATES = ("available", "pending", "failed")
# PendingMaintenance is free text. AWS documents only the console's words, "Available" and "None"; the API has
# been quoted saying "None Available" for nothing pending. Only "Available" says pending; any other text is
# counted as unrecognised and read as not pending, so an unknown wording can never raise an alert.
MAINTENANCE_PENDING = "available"
MAINTENANCE_NONE = frozenset({"", "none", "none available"})


def _epoch(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _text(value: Any, limit: int = 64) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    return " ".join(str(value).split())[:limit]


def maintenance_pending(maintenance: Mapping, now: float, odd: Counter) -> bool | None:
    """Pending only on what AWS documents: PendingMaintenance "Available" (any case or spacing), or an
    auto-apply date still ahead. "None", "None Available" and "" are not pending; other text is counted in
    ``odd`` and not pending. None when the response says nothing about maintenance."""
    said = _text(maintenance.get("PendingMaintenance")).lower()
    if said != MAINTENANCE_PENDING and said not in MAINTENANCE_NONE:
        odd["pending_maintenance"] += 1
    auto_apply = _epoch(maintenance.get("MaintenanceAutoAppliedAfter"))
    if said == MAINTENANCE_PENDING or (auto_apply is not None and auto_apply > now):
        return True
    return False if "PendingMaintenance" in maintenance else None


def read_status(
    maintenance: Mapping, active: Mapping, now: float, previous: TunnelStatus | None, odd: Counter | None = None
) -> TunnelStatus:
    """The two responses of one tunnel in the model; unknown values are kept short and counted by field in
    ``odd`` (for ``aws_vpn_exporter_unrecognized_values_total``), never raised."""
    odd = Counter() if odd is None else odd
    provisioning = _text(active.get("ProvisioningStatus")).lower()
    if provisioning and provisioning not in PROVISIONING_STATES:
        provisioning = "other"
        odd["provisioning_status"] += 1
    pending_since = None
    if provisioning == "pending":
        pending_since = previous.pending_since if previous and previous.pending_since else now
    return TunnelStatus(
        checked_at=now,
        pending_maintenance=maintenance_pending(maintenance, now, odd),
        maintenance_auto_applied_after=_epoch(maintenance.get("MaintenanceAutoAppliedAfter")),
        last_maintenance_applied=_epoch(maintenance.get("LastMaintenanceApplied")),
        provisioning_status=provisioning,
        provisioning_reason=_text(active.get("ProvisioningStatusReason"), 200),
        pending_since=pending_since,
        ike_version=_text(active.get("IkeVersion")),
        phase1_encryption=_text(active.get("Phase1EncryptionAlgorithm")),
        phase2_encryption=_text(active.get("Phase2EncryptionAlgorithm")),
        phase1_integrity=_text(active.get("Phase1IntegrityAlgorithm")),
        phase2_integrity=_text(active.get("Phase2IntegrityAlgorithm")),
        phase1_dh_group=_text(active.get("Phase1DHGroup")),
        phase2_dh_group=_text(active.get("Phase2DHGroup")),
    )


class TunnelStatusPoller:
    """One pass over every tunnel EC2 last reported, rate-limited per account and region."""

    def __init__(
        self,
        max_calls_per_second: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
        workers: int = 4,
    ):
        self.max_calls_per_second = max_calls_per_second
        self._closed = threading.Event()  # close() ends a pass at its next call, however long it had to go
        self._clock, self._sleep = clock, sleep or self._closed.wait
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=SOURCE)
        self._statuses: dict[TunnelKey, TunnelStatus] = {}
        self._seen: dict[TunnelKey, float] = {}  # when EC2 last reported each tunnel (kept for RETENTION)
        self._refused: dict[tuple[str, str], str] = {}  # (account, region) -> why this source is off there
        self._results = Results(SOURCE, self._clock)
        self._odd: Counter = Counter()  # unrecognised values read, by field, until poll() hands them on
        self._lock = threading.Lock()
        self.calls = 0  # every call made, for the benchmark

    def poll(
        self, regions: tuple[RegionTelemetry, ...], accounts: Mapping[str, AwsAccount], within: float | None = None
    ) -> TunnelStatusCollection:
        """One pass; ``within`` seconds at most (a region not done by then keeps what it read and fails)."""
        deadline = None if within is None else time.monotonic() + within
        try:
            jobs = {
                (region.account_id, region.region): self._executor.submit(
                    self._pass, region, accounts[region.account_id], deadline
                )
                for region in regions
                if region.account_id in accounts and region.connections
            }
        except RuntimeError:  # closed meanwhile (shutdown): nothing to ask
            return TunnelStatusCollection(dict(self._statuses), ())
        results = []
        for (account_id, region_name), job in sorted(jobs.items()):
            try:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                ok, duration, error = job.result(timeout=remaining)
            except FutureTimeout:  # a call still hanging: the pass goes on in the background, bounded by close()
                ok, duration, error = False, within or 0.0, f"timeout: no answer within {within:g}s"
            except CancelledError:
                ok, duration, error = False, 0.0, "stopped: the exporter is shutting down"
            results.append(self._results.result((account_id, region_name), ok, duration, error))
        live = {TunnelKey.of(r, c, t) for r in regions for c in r.connections for t in c.tunnels}
        with self._lock:  # a refused region's last answers are not kept: they would never be refreshed
            # a tunnel EC2 did not report this time (one odd answer) keeps its status for the retention the log
            # and traffic state use: when it is back, so are its maintenance and the time it went pending
            now = self._clock()
            self._seen.update(dict.fromkeys(live, now))
            self._seen = {key: at for key, at in self._seen.items() if at >= now - RETENTION}
            self._statuses = {
                key: status
                for key, status in self._statuses.items()
                if key in self._seen and (key.account_id, key.region) not in self._refused
            }
            odd, self._odd = dict(self._odd), Counter()
            return TunnelStatusCollection(dict(self._statuses), tuple(results), odd)

    def reconfigure(self, max_calls_per_second: float) -> None:
        """A config reload: the new ceiling, and another try where the calls were refused."""
        self.max_calls_per_second = max_calls_per_second
        self._refused.clear()

    def close(self) -> None:
        self._closed.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _pass(self, region: RegionTelemetry, account: AwsAccount, deadline: float | None) -> tuple[bool, float, str]:
        where, started = (region.account_id, region.region), time.monotonic()
        if where in self._refused:
            return False, 0.0, f"off: {self._refused[where]}"
        client = account.client("ec2", region.region)
        gap = 1.0 / self.max_calls_per_second
        try:
            for connection in region.connections:
                for tunnel in connection.tunnels:
                    # the next tunnel's calls, their spacing and any throttling pause must fit: the ceiling holds
                    pause = account.backoff.remaining(region.region)
                    if deadline is not None and time.monotonic() + pause + CALLS_PER_TUNNEL * gap > deadline:
                        return False, time.monotonic() - started, "timeout: the pass did not finish in time"
                    if pause:  # another source of this account and region was throttled: wait here, interruptibly
                        self._sleep(pause)
                    if self._closed.is_set():
                        return False, time.monotonic() - started, "stopped: the exporter is shutting down"
                    arguments = {
                        "VpnConnectionId": connection.vpn_connection_id,
                        "VpnTunnelOutsideIpAddress": tunnel.outside_ip,
                    }
                    maintenance = client.get_vpn_tunnel_replacement_status(**arguments).get("MaintenanceDetails") or {}
                    self._sleep(gap)
                    active = client.get_active_vpn_tunnel_status(**arguments).get("ActiveVpnTunnelStatus") or {}
                    self._sleep(gap)
                    key = TunnelKey.of(region, connection, tunnel)
                    with self._lock:
                        self.calls += CALLS_PER_TUNNEL
                        self._statuses[key] = read_status(
                            maintenance, active, self._clock(), self._statuses.get(key), self._odd
                        )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in REFUSED:
                self._refused[where] = describe_error(err)
                log.warning(
                    "source turned off account=%s region=%s source=%s error=%r; EC2 collection is "
                    "unaffected; a config reload tries again",
                    *where,
                    SOURCE,
                    self._refused[where],
                )
            return False, time.monotonic() - started, describe_error(err)
        except Exception as err:  # one region's failure stays with it
            return False, time.monotonic() - started, describe_error(err)
        return True, time.monotonic() - started, ""
