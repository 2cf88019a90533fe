"""What an AWS failure means and what to do about it. Each kind an operator can fix (no credentials, expired
credentials, a refused IAM action, an unreachable endpoint, throttling) gets a short reason and one next step,
written once here and shown alike in the log line, the status page and ``diagnose`` (``aws.describe_error``).

Every string taken from the error is AWS's (or a proxy's) text: redacted, flattened to one line and bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from exporter.untrusted import redact

STS = "sts"  # the results' source for an account's credentials and identity (AssumeRole, GetCallerIdentity)
STS_OPERATIONS = frozenset({"AssumeRole", "GetCallerIdentity"})

THROTTLE_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "LimitExceededException",
    }
)
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"})
INVALID_CREDENTIAL_CODES = frozenset(
    {"AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
)

# Where the IAM policy is written out (its section "Least-privilege IAM policy").
POLICY = "the least-privilege IAM policy in docs/configuration.md"
SET_CREDENTIALS = (
    "give the exporter credentials: AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an instance or "
    "pod role (EC2 instance profile, EKS Pod Identity or IRSA); an account reached through a role also needs its "
    "target's role_arn"
)

# botocore's service name (the client's signing name) -> the IAM action prefix, where they differ
_IAM_PREFIX = {"monitoring": "cloudwatch"}
# The exporter's operations, for an error whose service was not noted (see ``aws.SERVICE_KEY``)
KNOWN_OPERATIONS = {
    "DescribeVpnConnections": "ec2",
    "DescribeCustomerGateways": "ec2",
    "DescribeRegions": "ec2",
    "GetVpnTunnelReplacementStatus": "ec2",
    "GetActiveVpnTunnelStatus": "ec2",
    "FilterLogEvents": "logs",
    "GetMetricData": "cloudwatch",
    "AssumeRole": "sts",
    "GetCallerIdentity": "sts",
    "ListAccounts": "organizations",
}

MAX_ERROR_MESSAGE = 240  # characters of AWS's own message kept in a description
MAX_ERROR_CODE = 100  # AWS's codes are identifiers of a few dozen characters; a longer one is cut here
MAX_ENDPOINT = 200  # an endpoint URL (from the configuration or the environment) kept in a description
MAX_DESCRIPTION = 800  # the whole description, reason and next step: a log line, a cell of the status page

ENDPOINT_KEY = "EndpointUrl"  # added to an error response by the client, so a description says where it went
SERVICE_KEY = "ServiceName"  # likewise the client's service, so a refused call is named as its IAM action


class Described(RuntimeError):
    """A failure the exporter words itself (a source turned off after AWS refused it, and why): its text is shown as
    it is, where another exception's would be reduced to its type's name."""


def _one_line(text: object, limit: int) -> str:
    return " ".join(redact(str(text or "")).split())[:limit]


def iam_action(operation: str, service: str | None = None) -> str:
    """``ec2:DescribeVpnConnections``: the IAM action a call needs."""
    prefix = _IAM_PREFIX.get(service or "", service) or KNOWN_OPERATIONS.get(operation)
    return f"{prefix}:{operation}" if prefix else f"the IAM action for {operation}"


def _endpoint_host(endpoint: str) -> str:
    try:
        return urlsplit(endpoint).hostname or endpoint
    except ValueError:
        return endpoint


def explain(err: BaseException) -> tuple[str, str]:
    """(what failed, what to do): the reason names AWS's code, the operation, the endpoint and AWS's message
    (``AccessDenied: DescribeVpnConnections at https://ec2.eu-west-1.amazonaws.com: User ... is not authorized``);
    the next step is empty for a failure nobody here can act on (AWS's own 500s)."""
    if isinstance(err, ClientError):
        return _explain_client_error(err)
    if isinstance(err, Described):
        return _one_line(err, MAX_DESCRIPTION), ""
    if isinstance(err, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return f"no AWS credentials ({type(err).__name__})", SET_CREDENTIALS
    endpoint = getattr(err, "kwargs", {}).get("endpoint_url") or ""
    if not endpoint:
        return type(err).__name__, ""
    endpoint = _one_line(endpoint, MAX_ENDPOINT)
    reason = f"{type(err).__name__} at {endpoint}"
    host = _one_line(_endpoint_host(endpoint), MAX_ENDPOINT)
    if isinstance(err, (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError)):
        return reason, (
            f"check that this host reaches {host} (DNS, proxy, firewall, VPC endpoint); if AWS_ENDPOINT_URL or "
            "AWS_ENDPOINT_URL_<SERVICE> is set, check it names a reachable endpoint"
        )
    if isinstance(err, ReadTimeoutError):
        return (
            reason,
            f"{host} accepted the call but did not answer within aws.read_timeout; it is tried again next poll",
        )
    return reason, ""


def _explain_client_error(err: ClientError) -> tuple[str, str]:
    error = err.response.get("Error", {})
    code = _one_line(error.get("Code") or "Unknown", MAX_ERROR_CODE)
    message = _one_line(error.get("Message"), MAX_ERROR_MESSAGE)
    endpoint = _one_line(err.response.get(ENDPOINT_KEY), MAX_ENDPOINT)
    operation = err.operation_name
    reason = f"{code}: {operation}" + (f" at {endpoint}" if endpoint else "") + (f": {message}" if message else "")
    return reason, _client_error_action(code, operation, err.response.get(SERVICE_KEY))


def _client_error_action(code: str, operation: str, service: Any) -> str:
    if code in EXPIRED_CODES:
        return (
            "the credentials have expired: renew them (a new session token, `aws sso login`), or use credentials the "
            "exporter refreshes itself (an instance or pod role, or a target's role_arn)"
            + (
                "; RequestExpired can also mean this host's clock is wrong (check NTP)"
                if code == "RequestExpired"
                else ""
            )
        )
    if code in INVALID_CREDENTIAL_CODES:
        return "AWS does not accept these credentials (unknown key id or wrong secret): " + SET_CREDENTIALS
    if code in DENIED_CODES:
        action = iam_action(operation, service if isinstance(service, str) else None)
        if operation == "AssumeRole":
            return (
                f"allow {action} on the target's role_arn to the exporter's identity, and make the role trust it "
                f"(with the target's external_id, if set); see {POLICY}"
            )
        return f"allow {action} to the identity the exporter uses in this account; see {POLICY}"
    if code in THROTTLE_CODES:
        return (
            "AWS throttled the account: the call is retried with backoff; if it persists, lower max_concurrency or "
            "raise the intervals (poll_interval, the source's interval), as the account's other tools share the limit"
        )
    return ""


def describe(err: BaseException) -> str:
    """The reason and the next step on one bounded line."""
    reason, action = explain(err)
    return (f"{reason}; to fix: {action}" if action else reason)[:MAX_DESCRIPTION]


_FAILED_SOURCE = "_exporter_failed_source"  # set on an exception raised by the credentials step


@contextmanager
def sts_step() -> Iterator[None]:
    """Marks what fails inside as the account's credentials or identity failing (the ``sts`` source): an endpoint
    that cannot be reached says neither its service nor its operation."""
    try:
        yield
    except Exception as err:
        setattr(err, _FAILED_SOURCE, STS)
        raise


def failed_source(err: BaseException) -> str | None:
    """``sts`` when the failure is the account's credentials or identity (so reported as the ``sts`` source, not as
    the source whose call needed them), else None."""
    if getattr(err, _FAILED_SOURCE, None) == STS:
        return STS
    if isinstance(err, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return STS
    if isinstance(err, ClientError) and err.operation_name in STS_OPERATIONS:
        return STS
    return None
