"""EC2's request rate limit in the simulated AWS: moto 5.2 answers any number of requests, AWS does not.

EC2 throttles each account and region with token buckets (EC2 API reference, *Request throttling*): the
non-mutating actions (``Describe*``, ``Get*``) share one of 100 tokens, refilled at 20 a second. A request
that finds the bucket empty fails with HTTP 503 and ``RequestLimitExceeded`` ("Request limit exceeded.")
and takes no token. ``install()`` puts that bucket in front of moto's EC2 (process-wide, idempotent), so the
exporter meets the limit it shares with the customer's other tools; tests lower ``capacity`` and ``refill``
on ``buckets`` to reach it quickly; ``reset()`` and moto's own reset refill every bucket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from exporter.demo import moto_patch

CAPACITY, REFILL_PER_SECOND = 100, 20.0  # EC2's non-mutating actions, per account and region
THROTTLED_ACTIONS = ("Describe", "Get")
THROTTLED_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded'
    "</Code><Message>Request limit exceeded.</Message></Error></Errors>"
    "<RequestID>{request_id}</RequestID></Response>"
)


class TokenBuckets:
    """One token bucket per key (account, region): full at first, refilled continuously."""

    def __init__(
        self, capacity: float = CAPACITY, refill: float = REFILL_PER_SECOND, clock: Callable[[], float] = time.monotonic
    ):
        self.capacity, self.refill, self.clock = capacity, refill, clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (tokens, when counted)
        self.throttled = 0  # requests refused, for the tests

    def take(self, key: tuple[str, str]) -> bool:
        """A token for one request, or False (throttled) when the bucket is empty."""
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.refill)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                self.throttled += 1
                return False
            self._buckets[key] = (tokens - 1, now)
            return True

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self.throttled = 0


buckets = TokenBuckets()
_installed = False


def install() -> None:
    """Throttle moto's EC2 Describe*/Get* requests as EC2 does, per account and region."""
    global _installed
    if _installed:
        return
    from moto.ec2.responses import EC2Response

    answer = EC2Response.call_action

    def call_action(self):
        action = self._get_action() or ""
        if action.startswith(THROTTLED_ACTIONS) and not buckets.take((self.current_account, self.region)):
            return 503, {"Content-Type": "text/xml"}, THROTTLED_BODY.format(request_id=f"throttled-{buckets.throttled}")
        return answer(self)

    moto_patch.patch(EC2Response, "call_action", call_action)
    from moto.moto_api._internal.models import MotoAPIBackend

    reset_moto = MotoAPIBackend.reset

    def reset(self) -> None:  # a reset AWS (each test's) starts with full buckets, as a new account does
        reset_moto(self)
        buckets.reset()

    moto_patch.patch(MotoAPIBackend, "reset", reset)
    _installed = True
