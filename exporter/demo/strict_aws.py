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
tunnels ``InvalidParameterValue``. A tunnel with nothing pending says ``PendingMaintenance: "None Available"``,
the wording quoted from the API (AWS documents only the console's "None"), so a reader that takes any word
but "None" as pending fails here as it would on AWS.

moto 5.2's CloudWatch ``GetMetricData`` takes any number of queries and any id, never paginates, and scans every
data point for every query and period. ``install()`` replaces it with one that answers as the API reference
says: at most 500 queries (``ValidationError``), ids that start with a lower-case letter and are unique, a period
that is a multiple of 60, the data points of the periods in [StartTime, EndTime) only (moto also answers the
period that starts at EndTime), ``Unit`` honoured, newest first unless ``ScanBy`` says otherwise, and at most
``MaxDatapoints`` (100,800 by default) a page, the rest behind ``NextToken`` with ``StatusCode`` ``PartialData``
(``metric_data_page_datapoints`` lowers that page size for the tests).

Organisation discovery meets four more places where moto 5.2 is lenient (``_strict_organizations``,
``_strict_regions``, ``_strict_assume_role``):

- ``ListAccounts`` called from an account that is not the management account answers an empty list (each
  account has a backend of its own, and only the management's holds the organization). AWS answers only the
  management account or a delegated administrator ("You can only call this operation from the management
  account or a member account that is a delegated administrator", API reference): any other member gets
  ``AccessDeniedException``, an account in no organization ``AWSOrganizationsNotInUseException``. moto also
  pages 100 accounts at a time and accepts any ``MaxResults``; AWS's range is 1 to 20 (``InvalidInputException``
  MAX_VALUE_EXCEEDED beyond), and it "can occasionally return an empty set of results even when more results
  are available" (API reference): here the second page is always empty, with a NextToken.
- ``CloseAccount`` makes an account SUSPENDED at once; AWS first moves it to PENDING_CLOSURE (the CloseAccount
  API reference, and the account state guide: PENDING_CLOSURE, then SUSPENDED, then CLOSED).
- ``DescribeRegions`` answers every region of every partition (GovCloud and China included) as enabled for
  every account, whatever ``AllRegions`` says, and marks opt-in regions such as af-south-1 and eu-south-1 as
  enabled. AWS answers the caller's partition only ("you can't describe or access the Regions of one type of
  account from another", AWS Regions guide), and with AllRegions false only the regions enabled for the
  calling account: the regions launched before 20 March 2019 (enabled by default, and they cannot be
  disabled: Account Management guide, *Enable or disable AWS Regions*) and the opt-in regions that account
  enabled (``enable_region`` here, as account:EnableRegion does). OptInStatus is opt-in-not-required, opted-in
  or not-opted-in.
- ``AssumeRole`` succeeds for any role ARN, even a role that does not exist, in any account (its docstring says
  so). AWS refuses with ``AccessDenied`` ("User: ... is not authorized to perform: sts:AssumeRole on resource:
  ...") unless the role exists and its trust policy allows the caller (IAM User Guide, *Roles terms and
  concepts*: the trust policy names the principals that may assume it). Here the trust policy is read: Allow
  statements for sts:AssumeRole whose principal is ``*``, the caller's account (id or ``:root``), the caller's
  ARN or, for an assumed-role caller, its role; a ``StringEquals`` on ``sts:ExternalId`` is checked, any other
  condition is taken as not met (and counted in ``unplaced_conditions``). A matching Deny wins.

moto also answers any number of EC2 requests; AWS throttles ``Describe*``/``Get*`` with a token bucket per
account and region (100, refilled at 20 a second): ``request_bucket`` adds it.

``install()`` replaces or adds moto's response handlers in the moto process, so boto3 still talks real
HTTP and the demo, the tests and the benchmarks all meet AWS's behaviour. ``join_organization``,
``create_role`` and ``enable_region`` seed what the API cannot (fixed account ids, as invited accounts have).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from exporter.demo import moto_patch, request_bucket

_lock = threading.Lock()
_installed = False
rejected_missing_streams = 0  # requests refused for naming a missing stream; tests assert on it
metric_data_page_datapoints = 100_800  # GetMetricData's default MaxDatapoints; tests lower it to paginate
MAX_METRIC_DATA_QUERIES = 500
_QUERY_ID = re.compile(r"[a-z][a-zA-Z0-9_]*")
NO_MAINTENANCE = "None Available"  # GetVpnTunnelReplacementStatus's PendingMaintenance when nothing is pending
unplaced_conditions = 0  # trust policy conditions this simulation cannot evaluate (taken as not met)

# Regions enabled by default in every standard account: those launched before 20 March 2019 (AWS Account
# Management guide). Every other region of the aws partition is an opt-in region, disabled until enabled.
DEFAULT_REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ca-central-1",
        "eu-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-north-1",
        "sa-east-1",
    }
)
LIST_ACCOUNTS_MAX = 20  # ListAccounts' MaxResults range is 1 to 20


def install() -> None:
    """Make moto's CloudWatch Logs ``FilterLogEvents`` behave as AWS does (idempotent, process-wide)."""
    global _installed
    with _lock:
        if _installed:
            return
        # Nothing here launches instances: without moto's default AMIs, an account and region's EC2 backend costs
        # 0.1 MiB and 4 ms instead of 4 MiB and 60 ms, which matters once discovery watches every region.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
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
                group_name,
                names,
                self._get_param("startTime"),
                self._get_param("endTime"),
                self._get_param("limit"),
                self._get_param("nextToken"),
                self._get_param("filterPattern"),
                True,
            )
            return json.dumps({"events": events, "nextToken": next_token, "searchedLogStreams": searched})

        moto_patch.patch(LogsResponse, "filter_log_events", filter_log_events)
        _serve_tunnel_status()
        request_bucket.install()  # EC2's Describe*/Get* token bucket per account and region (request_bucket.py)
        _serve_metric_data()
        _strict_organizations()
        _strict_regions()
        _strict_assume_role()
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
        return ActionResult(
            {
                "VpnConnectionId": vpn_id,
                "VpnTunnelOutsideIpAddress": address,
                "MaintenanceDetails": status.get("maintenance", {"PendingMaintenance": NO_MAINTENANCE}),
            }
        )

    def get_active_vpn_tunnel_status(self) -> ActionResult:
        _, _, status = tunnel(self)
        return ActionResult({"ActiveVpnTunnelStatus": status.get("active", {"ProvisioningStatus": "available"})})

    moto_patch.patch(VPNConnections, "get_vpn_tunnel_replacement_status", get_vpn_tunnel_replacement_status)
    moto_patch.patch(VPNConnections, "get_active_vpn_tunnel_status", get_active_vpn_tunnel_status)


def _utc(moment: datetime) -> datetime:
    """moto keeps what it was given, naive or not: compare in UTC."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


_STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Sum": sum,
    "Maximum": max,
    "Minimum": min,
    "SampleCount": len,
    "Average": lambda v: sum(v) / len(v),
}


def _statistic(stat: str, values: list[float]) -> float:
    return _STATISTICS[stat](values)


def _serve_metric_data() -> None:
    from moto.cloudwatch.exceptions import ValidationError
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    def get_metric_data(self) -> ActionResult:
        params = self._get_params()
        queries = params.get("MetricDataQueries") or []
        if len(queries) > MAX_METRIC_DATA_QUERIES:
            raise ValidationError(
                f"The collection MetricDataQueries must not have a size greater than {MAX_METRIC_DATA_QUERIES}."
            )
        ids = [query.get("Id") or "" for query in queries]
        for query_id in ids:
            if not _QUERY_ID.fullmatch(query_id):
                raise ValidationError(
                    f"Invalid metric data query id {query_id!r}: it must start with a lower-case "
                    "letter and hold only letters, digits and underscores."
                )
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
                raise ValidationError(
                    "The parameter MetricDataQueries.member.N.MetricStat.Period must be a multiple of 60."
                )
            metric = stat["Metric"]
            key = (
                metric["Namespace"],
                metric["MetricName"],
                frozenset((d["Name"], d["Value"]) for d in metric.get("Dimensions") or ()),
            )
            buckets = defaultdict(list)
            for datum in index.get(key, ()):
                if stat.get("Unit") and datum.unit != stat["Unit"]:
                    continue
                buckets[int((_utc(datum.timestamp) - start).total_seconds()) // period].append(datum.value)
            points = sorted(
                (
                    (start + timedelta(seconds=bucket * period), _statistic(stat["Stat"], values))
                    for bucket, values in buckets.items()
                ),
                reverse=(params.get("ScanBy") or "TimestampDescending") == "TimestampDescending",
            )
            series.append((query["Id"], query.get("Label") or f"{metric['MetricName']} {stat['Stat']}", points))
        page_size = min(int(params.get("MaxDatapoints") or 100_800), metric_data_page_datapoints)
        offset = int(params.get("NextToken") or 0)
        results, position = [], 0
        for query_id, label, points in series:  # the flattened data points, a page of them from ``offset``
            first, last = max(offset - position, 0), min(offset + page_size - position, len(points))
            if (points and first < last) or (not points and offset == 0):
                results.append(
                    {
                        "Id": query_id,
                        "Label": label,
                        "Timestamps": [stamp for stamp, _ in points[first:last]],
                        "Values": [value for _, value in points[first:last]],
                        "StatusCode": "PartialData" if last < len(points) else "Complete",
                    }
                )
            position += len(points)
        answer: dict[str, Any] = {"MetricDataResults": results, "Messages": []}
        if offset + page_size < position:
            answer["NextToken"] = str(offset + page_size)
        return ActionResult(answer)

    moto_patch.patch(CloudWatchResponse, "get_metric_data", get_metric_data)


# --- Organizations -------------------------------------------------------------------------------------


def _organization_of(account_id: str, partition: str = "aws"):
    """The organizations backend of the management account whose organization holds ``account_id``."""
    from moto.organizations.models import organizations_backends

    for management in list(organizations_backends):
        backend = organizations_backends[management][partition]
        if backend.org is not None and any(account.id == account_id for account in backend.accounts):
            return backend
    return None


def _organizations_error(code: str, message: str, reason: str | None = None) -> Exception:
    from moto.organizations.exceptions import OrganizationsClientError

    class OrganizationsClientErrorWithReason(OrganizationsClientError):
        """moto's serializer writes the attributes the error's shape names: ``Reason`` for the input errors."""

        Reason: str

    error = OrganizationsClientErrorWithReason(code, message)
    if reason:
        error.Reason = reason
    return error


def _strict_organizations() -> None:
    from moto.organizations.exceptions import AccountAlreadyClosedException, AWSOrganizationsNotInUseException
    from moto.organizations.models import FakeAccount
    from moto.organizations.responses import OrganizationsResponse

    def list_accounts(self) -> str:
        caller = self.current_account
        backend = _organization_of(caller, self.partition)
        if backend is None:
            raise AWSOrganizationsNotInUseException
        if caller != backend.account_id and not any(admin.account.id == caller for admin in backend.admins):
            raise _organizations_error("AccessDeniedException", "You don't have permissions to access this resource.")
        size = self._get_param("MaxResults")
        if size is not None and not (isinstance(size, int) and 1 <= size <= LIST_ACCOUNTS_MAX):
            raise _organizations_error(
                "InvalidInputException",
                "You provided a numeric parameter that has a larger value than allowed.",
                "MAX_VALUE_EXCEEDED",
            )
        size = size or LIST_ACCOUNTS_MAX
        offset, empty_served = _read_token(self._get_param("NextToken"), backend.org.id)
        accounts = sorted(backend.accounts, key=lambda account: (account.create_time, account.id))
        if offset == size and not empty_served and offset < len(accounts):  # AWS: "occasionally" an empty page
            return json.dumps({"Accounts": [], "NextToken": _token(backend.org.id, offset, True)})
        page = accounts[offset : offset + size]
        following = offset + len(page)
        body: dict[str, Any] = {"Accounts": [_describe_account(account) for account in page]}
        if following < len(accounts):
            body["NextToken"] = _token(backend.org.id, following, empty_served)
        return json.dumps(body)

    def close(self) -> None:
        if self.state in ("PENDING_CLOSURE", "SUSPENDED", "CLOSED"):
            raise AccountAlreadyClosedException
        self.status = self.state = "PENDING_CLOSURE"

    moto_patch.patch(OrganizationsResponse, "list_accounts", list_accounts)
    moto_patch.patch(FakeAccount, "close", close)


def _token(organization_id: str, offset: int, empty_served: bool) -> str:
    return base64.b64encode(json.dumps([organization_id, offset, empty_served]).encode()).decode()


def _read_token(token: str | None, organization_id: str) -> tuple[int, bool]:
    if not token:
        return 0, False
    try:
        owner, offset, empty_served = json.loads(base64.b64decode(token))
        if owner == organization_id and isinstance(offset, int) and offset >= 0:
            return offset, bool(empty_served)
    except (ValueError, TypeError):
        pass
    raise _organizations_error(
        "InvalidInputException", "The pagination token is not valid.", "INVALID_PAGINATION_TOKEN"
    )


def _describe_account(account) -> dict:
    """An account as ListAccounts answers it; a field set to None is left out (AWS retires Status in 2026)."""
    return {key: value for key, value in account.describe().items() if value is not None}


def join_organization(
    management_account: str, account_id: str, name: str, state: str = "ACTIVE", status: str | None = "same"
) -> None:
    """Add an account with a fixed id to ``management_account``'s organization, as an invited account joins
    (``create_account`` picks random ids). ``status`` "same" reports the deprecated Status as State does (it has
    fewer values: PENDING_ACTIVATION and CLOSED have none); None leaves it out, as AWS will from 9 September 2026."""
    from moto.organizations.models import FakeAccount, organizations_backends

    organization = organizations_backends[management_account]["aws"].org
    if organization is None:
        raise ValueError(f"account {management_account} has no organization to join")
    # FakeAccount() would create a role in a random account. moto annotates __new__ as returning its base class.
    account = cast(FakeAccount, FakeAccount.__new__(FakeAccount))
    account.__dict__.update(
        type="ACCOUNT",
        region=organization.region,
        organization_id=organization.id,
        master_account_id=organization.master_account_id,
        id=account_id,
        name=name,
        email=f"{name}@example.com",
        create_time=_now(),
        joined_method="INVITED",
        parent_id=organization.root_id,
        attached_policies=[],
        tags={},
        create_account_status_id=f"car-{account_id}",
    )
    set_account_state(account, state, status)
    organizations_backends[management_account]["aws"].accounts.append(account)
    organizations_backends.master_accounts[account_id] = (management_account, "aws")


def set_account_state(account, state: str, status: str | None = "same") -> None:
    account.state = state
    account.status = (
        (state if state in ("ACTIVE", "SUSPENDED", "PENDING_CLOSURE") else None) if status == "same" else status
    )


def _now():
    from moto.core.utils import utcnow

    return utcnow()


def organization_account(management_account: str, account_id: str):
    """The account object of an organization (to change its state in a test)."""
    from moto.organizations.models import organizations_backends

    return next(a for a in organizations_backends[management_account]["aws"].accounts if a.id == account_id)


# --- IAM roles and AssumeRole --------------------------------------------------------------------------


def create_role(account_id: str, role_name: str, trusted: str, external_id: str | None = None) -> str:
    """A role in ``account_id`` that ``trusted`` (an account id, or a principal ARN) may assume, as a StackSet
    would deploy it; returns its ARN."""
    from moto.iam.models import iam_backends

    principal = f"arn:aws:iam::{trusted}:root" if re.fullmatch(r"\d{12}", trusted) else trusted
    statement: dict = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    role = iam_backends[account_id]["aws"].create_role(
        role_name=role_name,
        assume_role_policy_document=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        path="/",
        permissions_boundary=None,
        description="",
        tags=[],
        max_session_duration="3600",
    )
    return role.arn


_ROLE_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)$")
_ASSUMED_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:sts::(\d{12}):assumed-role/([^/]+)/")


def _strict_assume_role() -> None:
    from moto.core.errors import COMMON_ERROR_CODES
    from moto.sts.exceptions import STSClientError
    from moto.sts.responses import TokenResponse

    # AccessDenied is one of AWS's common errors, so botocore's STS model has no shape for it: without this
    # moto would warn on every refusal.
    if "AccessDenied" not in COMMON_ERROR_CODES:
        COMMON_ERROR_CODES.append("AccessDenied")
    original = TokenResponse.assume_role

    def assume_role(self):
        role_arn = self._get_param("RoleArn") or ""
        _, caller_arn, caller_account = self.backend.get_caller_identity(self.get_access_key(), self.region)
        if not _may_assume(role_arn, caller_arn, caller_account, self._get_param("ExternalId")):
            raise STSClientError(
                "AccessDenied",
                f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            )
        return original(self)

    moto_patch.patch(TokenResponse, "assume_role", assume_role)


def _may_assume(role_arn: str, caller_arn: str, caller_account: str, external_id: str | None) -> bool:
    from moto.iam.models import iam_backends

    match = _ROLE_ARN.match(role_arn)
    if match is None:
        return False
    partition, account_id, _ = match.groups()
    try:
        role = iam_backends[account_id][partition].get_role_by_arn(role_arn)
    except Exception:  # no such role: AWS says AccessDenied, not NoSuchEntity
        return False
    document = role.assume_role_policy_document
    policy = json.loads(document) if isinstance(document, str) else document
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    applying = [s for s in statements if _applies(s, caller_arn, caller_account, external_id)]
    return any(s.get("Effect") == "Allow" for s in applying) and not any(s.get("Effect") == "Deny" for s in applying)


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _applies(statement: dict, caller_arn: str, caller_account: str, external_id: str | None) -> bool:
    global unplaced_conditions
    if not any(action in ("sts:AssumeRole", "sts:*", "*") for action in _listed(statement.get("Action", []))):
        return False
    principal = statement.get("Principal", {})
    names = ["*"] if principal == "*" else _listed(principal.get("AWS", [])) if isinstance(principal, dict) else []
    assumed = _ASSUMED_ROLE_ARN.match(caller_arn)
    accepted = {"*", caller_account, f"arn:aws:iam::{caller_account}:root", caller_arn}
    if not any(
        name in accepted
        or (
            assumed
            and re.fullmatch(
                rf"arn:aws[a-z-]*:iam::{assumed.group(1)}:role/(?:.*/)?{re.escape(assumed.group(2))}", name
            )
        )
        for name in names
    ):
        return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, values in keys.items():
            if operator == "StringEquals" and key.lower() == "sts:externalid":
                if external_id not in _listed(values):
                    return False
            else:
                with _lock:
                    unplaced_conditions += 1
                return False
    return True


# --- DescribeRegions -----------------------------------------------------------------------------------


def enable_region(account_id: str, region: str) -> None:
    """Opt ``account_id`` in to an opt-in region, as account:EnableRegion does (once it has finished)."""
    _opted_in(account_id).add(region)


def _opted_in(account_id: str) -> set[str]:
    from moto.account.models import account_backends

    backend = account_backends[account_id]["aws"]  # kept in the backend's own attributes: reset with it
    opted_in: set[str] = backend.__dict__.setdefault("opted_in_regions", set())
    return opted_in


@functools.cache
def regions_of(partition: str) -> tuple[str, ...]:
    """The partition's EC2 regions, as botocore's endpoint data lists them."""
    import boto3

    return tuple(sorted(boto3.session.Session().get_available_regions("ec2", partition_name=partition)))


def region_opt_in_status(account_id: str, region: str, partition: str = "aws") -> str:
    if partition != "aws" or region in DEFAULT_REGIONS:
        return "opt-in-not-required"  # the default regions, and every region of GovCloud and China
    return "opted-in" if region in _opted_in(account_id) else "not-opted-in"


def _strict_regions() -> None:
    from moto.ec2.responses.availability_zones_and_regions import AvailabilityZonesAndRegions
    from moto.utilities.utils import get_partition

    def describe_regions(self):
        from moto.core.responses import ActionResult

        self.error_on_dryrun()
        account = self.current_account
        partition = get_partition(self.region)
        suffix = ".amazonaws.com.cn" if partition == "aws-cn" else ".amazonaws.com"
        regions = [
            {
                "RegionName": name,
                "Endpoint": f"ec2.{name}{suffix}",
                "OptInStatus": region_opt_in_status(account, name, partition),
            }
            for name in regions_of(partition)
        ]
        names = self._get_param("RegionNames", [])
        all_regions = str(self._get_param("AllRegions", False)).lower() == "true"
        if names:  # "You can specify any Regions, whether they are enabled and disabled for your account."
            regions = [r for r in regions if r["RegionName"] in names]
        elif not all_regions:
            regions = [r for r in regions if r["OptInStatus"] != "not-opted-in"]
        fields = {"region-name": "RegionName", "opt-in-status": "OptInStatus", "endpoint": "Endpoint"}
        for name, values in self._filters_from_querystring().items():
            if name not in fields:
                from moto.ec2.exceptions import EC2ClientError

                raise EC2ClientError("InvalidParameterValue", f"The filter '{name}' is invalid")
            regions = [r for r in regions if r[fields[name]] in values]
        return ActionResult({"Regions": regions})

    moto_patch.patch(AvailabilityZonesAndRegions, "describe_regions", describe_regions)
