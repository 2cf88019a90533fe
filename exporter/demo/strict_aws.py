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

moto 5.2's CloudWatch ``GetMetricData`` takes any number of queries and any id, never paginates, and scans every
data point for every query and period. ``install()`` replaces it with one that answers as the API reference
says: at most 500 queries (``ValidationError``), ids that start with a lower-case letter and are unique, a period
that is a multiple of 60, the data points of the periods in [StartTime, EndTime) only (moto also answers the
period that starts at EndTime), ``Unit`` honoured, newest first unless ``ScanBy`` says otherwise, and at most
``MaxDatapoints`` (100,800 by default) a page, the rest behind ``NextToken`` with ``StatusCode`` ``PartialData``
(``metric_data_page_datapoints`` lowers that page size for the tests).

``install()`` replaces or adds moto's response handlers in the moto process, so boto3 still talks real
HTTP and the demo, the tests and the benchmarks all meet AWS's behaviour.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from datetime import datetime, timedelta, timezone

_lock = threading.Lock()
_installed = False
rejected_missing_streams = 0  # requests refused for naming a missing stream; tests assert on it
metric_data_page_datapoints = 100_800  # GetMetricData's default MaxDatapoints; tests lower it to paginate
MAX_METRIC_DATA_QUERIES = 500
_QUERY_ID = re.compile(r"[a-z][a-zA-Z0-9_]*")


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
        _serve_metric_data()
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


def _utc(moment: datetime) -> datetime:
    """moto keeps what it was given, naive or not: compare in UTC."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _statistic(stat: str, values: list[float]) -> float:
    return {"Sum": sum, "Maximum": max, "Minimum": min, "SampleCount": len,
            "Average": lambda v: sum(v) / len(v)}[stat](values)


def _serve_metric_data() -> None:
    from moto.cloudwatch.exceptions import ValidationError
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    def get_metric_data(self) -> ActionResult:
        params = self._get_params()
        queries = params.get("MetricDataQueries") or []
        if len(queries) > MAX_METRIC_DATA_QUERIES:
            raise ValidationError(f"The collection MetricDataQueries must not have a size greater than "
                                  f"{MAX_METRIC_DATA_QUERIES}.")
        ids = [query.get("Id") or "" for query in queries]
        for query_id in ids:
            if not _QUERY_ID.fullmatch(query_id):
                raise ValidationError(f"Invalid metric data query id {query_id!r}: it must start with a lower-case "
                                      "letter and hold only letters, digits and underscores.")
        if len(set(ids)) != len(ids):
            raise ValidationError("The values of MetricDataQueries.member.N.Id must be unique.")
        start, end = _utc(params["StartTime"]), _utc(params["EndTime"])
        if start >= end:
            raise ValidationError("The parameter StartTime must be less than the parameter EndTime.")
        index = defaultdict(list)  # one walk over the stored data, not one per query and period as moto's
        for datum in self.cloudwatch_backend.metric_data:
            if hasattr(datum, "value") and start <= _utc(datum.timestamp) < end:
                key = (datum.namespace, datum.name, frozenset((d.name, d.value) for d in datum.dimensions))
                index[key].append(datum)
        series = []
        for query in queries:
            stat = query.get("MetricStat")
            if stat is None:
                raise ValidationError("The simulated AWS answers MetricStat queries only.")
            period = int(stat["Period"])
            if period < 60 or period % 60:
                raise ValidationError("The parameter MetricDataQueries.member.N.MetricStat.Period must be a multiple "
                                      "of 60.")
            metric = stat["Metric"]
            key = (metric["Namespace"], metric["MetricName"],
                   frozenset((d["Name"], d["Value"]) for d in metric.get("Dimensions") or ()))
            buckets = defaultdict(list)
            for datum in index.get(key, ()):
                if stat.get("Unit") and datum.unit != stat["Unit"]:
                    continue
                buckets[int((_utc(datum.timestamp) - start).total_seconds()) // period].append(datum.value)
            points = sorted(((start + timedelta(seconds=bucket * period), _statistic(stat["Stat"], values))
                             for bucket, values in buckets.items()),
                            reverse=(params.get("ScanBy") or "TimestampDescending") == "TimestampDescending")
            series.append((query["Id"], query.get("Label") or f"{metric['MetricName']} {stat['Stat']}", points))
        page_size = min(int(params.get("MaxDatapoints") or 100_800), metric_data_page_datapoints)
        offset = int(params.get("NextToken") or 0)
        results, position = [], 0
        for query_id, label, points in series:  # the flattened data points, a page of them from ``offset``
            first, last = max(offset - position, 0), min(offset + page_size - position, len(points))
            if (points and first < last) or (not points and offset == 0):
                results.append({"Id": query_id, "Label": label,
                                "Timestamps": [stamp for stamp, _ in points[first:last]],
                                "Values": [value for _, value in points[first:last]],
                                "StatusCode": "PartialData" if last < len(points) else "Complete"})
            position += len(points)
        answer = {"MetricDataResults": results, "Messages": []}
        if offset + page_size < position:
            answer["NextToken"] = str(offset + page_size)
        return ActionResult(answer)

    CloudWatchResponse.get_metric_data = get_metric_data
