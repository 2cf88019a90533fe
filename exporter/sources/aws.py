"""AWS access for one target: a botocore session (default chain or an assumed role), its clients,
its account id, and a count of every API attempt by outcome.

Endpoints are never set here, so ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>`` keep
working (the demo relies on that). Retries use botocore's adaptive mode, bounded.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

import botocore.client
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.exceptions import NoCredentialsError

from exporter import __version__
from exporter.config import Target
from exporter.sources.failures import ENDPOINT_KEY, SERVICE_KEY, THROTTLE_CODES, describe, sts_step
from exporter.sources.secrets import SECRETS_EVENT, strip_secrets_before_parse

# One attempt's outcome: (account_id, region, operation, outcome) -> recorded by the caller.
ApiCallRecorder = Callable[[str, str, str, str], None]


class Ec2Backoff:
    """EC2's request bucket (Describe*/Get*: 100 requests, refilled at 20 a second) is one per account and region,
    shared by every source here (EC2 polls, tunnel status, discovery's DescribeRegions) and by the account's other
    tools. So when any EC2 call of an account and region is throttled, every EC2 call there first waits out a
    pause, instead of each source hammering on: ``FIRST`` seconds, doubled with each further throttle up to
    ``CAP``; a call that succeeds ends it. One per AwsAccount, shared by its twins (``AwsAccount.sharing``)."""

    FIRST, CAP = 1.0, 16.0  # the cap stays below the default poll_timeout (25 s)

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], object] = time.sleep):
        self.clock, self.sleep = clock, sleep
        self._lock = threading.Lock()
        self._pauses: dict[str, tuple[float, float]] = {}  # region -> (paused until, the pause's length)
        self.waited: dict[str, float] = {}  # seconds waited out, by region

    def throttled(self, region: str) -> None:
        with self._lock:
            until, length = self._pauses.get(region, (0.0, 0.0))
            length = min(self.CAP, length * 2) if length else self.FIRST
            self._pauses[region] = (max(until, self.clock() + length), length)

    def succeeded(self, region: str) -> None:
        if region in self._pauses:  # (unlocked read: the common case, no pause, costs nothing)
            with self._lock:
                self._pauses.pop(region, None)

    def remaining(self, region: str) -> float:
        """Seconds the account and region's EC2 calls still hold back (0 when not throttled)."""
        with self._lock:
            until = self._pauses.get(region, (0.0, 0.0))[0]
            return max(0.0, until - self.clock())

    def wait(self, region: str) -> None:
        """Hold this thread until the region's pause is over (at most ``CAP`` seconds)."""
        left = self.remaining(region)
        if left > 0:
            with self._lock:
                self.waited[region] = self.waited.get(region, 0.0) + left
            self.sleep(left)


def client_config(max_attempts: int = 4, connect_timeout: float = 5, read_timeout: float = 15) -> BotoConfig:
    """Bounded, adaptive retries and timeouts short enough to fit inside a poll."""
    return BotoConfig(
        retries={"mode": "adaptive", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra=f"aws-vpn-exporter/{__version__}",
        max_pool_connections=10,
    )


def attempt_outcome(response: Any, caught_exception: Any) -> str:
    """Classify one HTTP attempt as ok, throttled or error."""
    if caught_exception is not None or response is None:
        return "error"
    http_response, parsed = response
    code = (parsed or {}).get("Error", {}).get("Code", "") if isinstance(parsed, dict) else ""
    if code in THROTTLE_CODES or http_response.status_code == 429:
        return "throttled"
    return "error" if http_response.status_code >= 400 else "ok"


def describe_error(err: BaseException) -> str:
    """A short, secret-free description of an AWS failure for logs, the status page and ``diagnose``: what failed
    (AWS's error code, the operation, the endpoint, AWS's message) and, where someone can act on it, what to do
    (``exporter/sources/failures.py``)."""
    return describe(err)


def _noting_endpoint(client: Any) -> Any:
    """The client, with its endpoint and service written into every error response it raises from."""
    endpoint_url = client.meta.endpoint_url
    service = client.meta.service_model.signing_name

    def note(http_response=None, parsed=None, **_) -> None:
        if http_response is not None and http_response.status_code >= 300 and isinstance(parsed, dict):
            parsed[ENDPOINT_KEY] = endpoint_url
            parsed[SERVICE_KEY] = service

    client.meta.events.register("after-call", note)
    return client


_loader_lock = threading.Lock()
_data_loader = None


def _shared_data_loader(session: botocore.session.Session):
    """One botocore data loader for every session in the process. Each loader caches the service
    models it reads, and EC2's costs about 38 MiB, so one loader per account would cost that much
    per account."""
    global _data_loader
    with _loader_lock:
        if _data_loader is None:
            _data_loader = session.get_component("data_loader")
        return _data_loader


# Clients of these services share one class and one service model per process (boto3 adds nothing to them).
SHARED_CLIENT_SERVICES = frozenset({"ec2", "sts", "logs", "organizations"})


def _share_client_classes() -> None:
    """botocore builds every client's class anew (a method for each of EC2's ~750 operations) and its own
    ServiceModel (which makes an OperationModel of each operation): 1.4 MiB and 16 ms per client. With one
    client per account and region, an organization of 200 accounts x 4 regions cost 1.1 GiB. Every session here
    is made alike, so one class and one model per service serve all its clients: 0.13 MiB and 3.5 ms each
    (tests/test_collection.py checks the sharing holds; if botocore renames these methods, nothing is shared
    and nothing breaks)."""
    creator = botocore.client.ClientCreator
    create_class, load_model = (
        getattr(creator, "_create_client_class", None),
        getattr(creator, "_load_service_model", None),
    )
    if create_class is None or load_model is None or getattr(creator, "_shared_by_exporter", False):
        return
    classes: dict[tuple, type] = {}
    models: dict[tuple, Any] = {}
    lock = threading.Lock()

    def shared_class(self, service_name, service_model):
        if service_name not in SHARED_CLIENT_SERVICES:
            return create_class(self, service_name, service_model)
        key = (service_name, service_model.api_version)
        with lock:
            if key not in classes:
                classes[key] = create_class(self, service_name, service_model)
            return classes[key]

    def shared_model(self, service_name, api_version=None):
        if service_name not in SHARED_CLIENT_SERVICES:
            return load_model(self, service_name, api_version)
        with lock:
            if (service_name, api_version) not in models:
                models[(service_name, api_version)] = load_model(self, service_name, api_version)
            return models[(service_name, api_version)]

    creator._create_client_class, creator._load_service_model = shared_class, shared_model
    creator._shared_by_exporter = True


_share_client_classes()


_builtin_handlers_lock = threading.Lock()
_builtin_handlers = None


def _events_with_builtin_handlers():
    """A copy of botocore's builtin event handlers, registered once per process. A new botocore session registers
    its ~130 handlers one by one, inspecting each one's signature: 20 ms of CPU per session, a minute at 3,000
    discovered accounts (benchmarks/organisation.py). Copying the registered set costs a fraction of that."""
    global _builtin_handlers
    with _builtin_handlers_lock:
        if _builtin_handlers is None:  # (if botocore renames it: None, and each session registers its own)
            _builtin_handlers = getattr(botocore.session.Session(), "_original_handler", None)
        return copy.copy(_builtin_handlers) if _builtin_handlers is not None else None


def own_credentials() -> botocore.session.Session:
    """A session holding the exporter's own credentials (the default chain), from which roles are assumed. One
    serves every role target: a botocore session costs 12 ms to build and resolves the chain again."""
    session = botocore.session.Session()
    session.register_component("data_loader", _shared_data_loader(session))
    return session


class AwsAccount:
    """The credentials of one configured target, and the clients made from them."""

    def __init__(
        self,
        target: Target,
        record: ApiCallRecorder,
        config: BotoConfig | None = None,
        own: botocore.session.Session | None = None,
    ):
        """``own``: the exporter's own credentials (``own_credentials()``), shared by every target that assumes
        a role with them; by default a session of its own."""
        self.target = target
        self._record = record
        self._config = config or client_config()
        self._own = own
        self._account_id = target.account_id_from_role
        self._lock = threading.Lock()
        self._identity_lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self.backoff = Ec2Backoff()  # shared by every source of this account and by its twins
        self._session = self._make_session()

    @property
    def _sts_region(self) -> str:
        return self.target.sts_region or self.target.regions[0]

    @property
    def account_label(self) -> str:
        """The account id once known (from the role ARN or STS), else ``unknown``."""
        return self._account_id or "unknown"

    def _count_attempt(self, response=None, caught_exception=None, operation=None, request_dict=None, **_):
        region = ((request_dict or {}).get("context") or {}).get("client_region") or ""
        name = getattr(operation, "name", "unknown")
        outcome = attempt_outcome(response, caught_exception)
        if getattr(getattr(operation, "service_model", None), "service_name", "") == "ec2":
            if outcome == "throttled":
                self.backoff.throttled(region)
            elif outcome == "ok":
                self.backoff.succeeded(region)
        if self._account_id is None and name == "GetCallerIdentity" and outcome == "ok":
            self._account_id = response[1].get("Account") or None  # so this very call carries the account
        self._record(self.account_label, region, name, outcome)

    def _wait_out_backoff(self, context=None, **_) -> None:
        """Before each EC2 call (not each retry: botocore spaces those itself), the region's pause, if any."""
        self.backoff.wait((context or {}).get("client_region") or "")

    def _botocore_session(self) -> botocore.session.Session:
        """A session that counts every attempt and strips secrets from responses before parsing."""
        events = _events_with_builtin_handlers()
        session = botocore.session.Session(event_hooks=events, include_builtin_handlers=events is None)
        session.register_component("data_loader", _shared_data_loader(session))
        session.register("needs-retry", self._count_attempt)
        session.register("before-call.ec2", self._wait_out_backoff)
        session.register(SECRETS_EVENT, strip_secrets_before_parse)
        return session

    def _make_session(self) -> botocore.session.Session:
        """A botocore session, not boto3's: boto3.Session adds nothing its clients need here, registers handlers
        of its own (inspecting each) and appends its data path to the shared loader once per session."""
        if not self.target.role_arn:
            return self._botocore_session()
        base = self._own or own_credentials()
        extra: dict[str, str] = {"RoleSessionName": "aws-vpn-exporter"}
        if self.target.external_id:
            extra["ExternalId"] = self.target.external_id
        region = self._sts_region

        def create_sts_client(service_name, **kwargs):
            kwargs.setdefault("region_name", region)
            kwargs.setdefault("config", self._config)
            client = _noting_endpoint(base.create_client(service_name, **kwargs))
            client.meta.events.register("needs-retry", self._count_attempt)  # this client only: counted as ours
            return client

        source_credentials = base.get_credentials()
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=create_sts_client,
            source_credentials=source_credentials,
            role_arn=self.target.role_arn,
            extra_args=extra,
        )
        assumed = self._botocore_session()

        def assume_role() -> dict[str, Any]:
            with sts_step():
                if source_credentials is None:  # botocore would fail on None with an AttributeError
                    raise NoCredentialsError()
                return fetcher.fetch_credentials()

        assumed._credentials = DeferredRefreshableCredentials(  # botocore's documented refresh pattern
            method="assume-role", refresh_using=assume_role
        )
        return assumed

    def sharing(self, target: Target) -> AwsAccount:
        """The same credentials for another target (other regions): one session, one set of clients and one
        AssumeRole for both (discovery reads an account's regions with it, the poller polls them)."""
        if (target.role_arn, target.external_id) != (self.target.role_arn, self.target.external_id):
            raise ValueError("a session is shared only by targets with the same credentials")
        twin = copy.copy(self)  # shares the session, the clients and their lock
        twin.target = target
        return twin

    def client(self, service: str, region: str) -> Any:
        """A cached, thread-safe client for a service in a region."""
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = _noting_endpoint(
                    self._session.create_client(service, region_name=region, config=self._config)
                )
            return self._clients[key]

    def account_id(self) -> str:
        """The account id, asking STS once when the credentials do not name it."""
        with self._identity_lock:  # regions poll concurrently; ask once
            if self._account_id is None:
                with sts_step():
                    identity = self.client("sts", self._sts_region).get_caller_identity()
                self._account_id = identity["Account"]
            return self._account_id
