"""Makes the simulated AWS as strict as the real one where moto is lenient and the exporter depends on it.

moto 5.2's ``FilterLogEvents`` differs from CloudWatch Logs in three ways that hide real failures:

- It ignores names in ``logStreamNames`` that do not exist. AWS fails the whole request with
  ``ResourceNotFoundException: The specified log stream does not exist.`` (percona/rds_exporter works
  around exactly this in ``enhanced/scraper.go``, issue #81; AWS's FilterLogEvents API reference). A stream exists
  only after its first event, so a tunnel that has not logged yet has none.
- It accepts ``logStreamNames`` together with ``logStreamNamePrefix``; AWS rejects that with
  ``InvalidParameterException`` (the API reference: "you cannot specify both"). It also ignores the prefix.
- It concatenates streams unless asked to interleave; AWS has ignored ``interleaved`` since 2019 and always
  interleaves the events of all streams by time (the API reference's note on ``interleaved``).

moto 5.2 serves neither ``GetVpnTunnelReplacementStatus`` nor ``GetActiveVpnTunnelStatus`` (it answers
HTTP 500). ``install()`` adds both, shaped as botocore's EC2 model defines them, from what the demo sets on a
connection's backend object (``tunnel_status[outside_ip] = {"maintenance": {...}, "active": {...}}``). As on
AWS, an unknown connection is ``InvalidVpnConnectionID.NotFound`` and an address that is not one of its
tunnels ``InvalidParameterValue``.

``install()`` replaces or adds moto's response handlers in the moto process, so boto3 still talks real
HTTP and the demo, the tests and the benchmarks all meet AWS's behaviour.
"""

from __future__ import annotations

import json
import threading

_lock = threading.Lock()
_installed = False
rejected_missing_streams = 0  # requests refused for naming a missing stream; tests assert on it


def install() -> None:
    """Make moto's CloudWatch Logs ``FilterLogEvents`` behave as AWS does (idempotent, process-wide)."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.logs.exceptions import InvalidParameterException, ResourceNotFoundException
        from moto.logs.responses import LogsResponse

        def filter_log_events(self) -> str:
            global rejected_missing_streams
            group_name = self._get_param("logGroupName")
            names = self._get_param("logStreamNames") or []
            prefix = self._get_param("logStreamNamePrefix")
            if names and prefix:
                raise InvalidParameterException("logStreamNames and logStreamNamePrefix are mutually exclusive")
            group = self.logs_backend.groups.get(group_name)
            if group is None:
                raise ResourceNotFoundException()
            if any(name not in group.streams for name in names):
                with _lock:
                    rejected_missing_streams += 1
                raise ResourceNotFoundException("The specified log stream does not exist.")
            if prefix:
                names = [name for name in group.streams if name.startswith(prefix)]
                if not names:
                    return json.dumps({"events": [], "searchedLogStreams": []})
            events, next_token, searched = self.logs_backend.filter_log_events(
                group_name, names, self._get_param("startTime"), self._get_param("endTime"),
                self._get_param("limit"), self._get_param("nextToken"), self._get_param("filterPattern"),
                True)
            return json.dumps({"events": events, "nextToken": next_token, "searchedLogStreams": searched})

        LogsResponse.filter_log_events = filter_log_events
        _serve_tunnel_status()
        _installed = True


def _serve_tunnel_status() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.vpn_connections import VPNConnections

    def tunnel(response) -> tuple[str, str, dict]:
        vpn_id, address = response._get_param("VpnConnectionId"), response._get_param("VpnTunnelOutsideIpAddress")
        connection = response.ec2_backend.vpn_connections.get(vpn_id)
        if connection is None or connection.state == "deleted":
            raise EC2ClientError("InvalidVpnConnectionID.NotFound", f"The vpnConnection ID '{vpn_id}' does not exist")
        known = {entry.get("OutsideIpAddress") for entry in (connection.options or {}).get("TunnelOptions", [])}
        if address not in known:
            raise EC2ClientError("InvalidParameterValue", f"{address} is not a tunnel of {vpn_id}")
        return vpn_id, address, (getattr(connection, "tunnel_status", None) or {}).get(address, {})

    def get_vpn_tunnel_replacement_status(self) -> ActionResult:
        vpn_id, address, status = tunnel(self)
        return ActionResult({"VpnConnectionId": vpn_id, "VpnTunnelOutsideIpAddress": address,
                             "MaintenanceDetails": status.get("maintenance", {})})

    def get_active_vpn_tunnel_status(self) -> ActionResult:
        _, _, status = tunnel(self)
        return ActionResult({"ActiveVpnTunnelStatus": status.get("active", {"ProvisioningStatus": "available"})})

    VPNConnections.get_vpn_tunnel_replacement_status = get_vpn_tunnel_replacement_status
    VPNConnections.get_active_vpn_tunnel_status = get_active_vpn_tunnel_status
