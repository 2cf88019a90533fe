"""The cyclic garbage collector against the long-lived heap.

After each publish what is live is frozen (``gc.freeze``): the automatic collections then never walk the
snapshot and the AWS clients, so no full collection stalls a scrape (benchmarks/scrape.py). But a frozen
object is never collected, even once unreachable, and an AWS session is a web of reference cycles (boto3's
clients, event hooks and credential providers): each one dropped by a reload or by discovery (an account
suspended) stayed for ever, +36 MiB a reload at 100 accounts x 2 regions. So when the objects that own
sessions change, the heap is unfrozen and collected once, then frozen again. That full collection holds the
GIL for as long as the automatic ones the freeze avoids (0.4-1.5 s at 100 accounts x 2 regions on a loaded
2-core VM: 420,000 objects, most of them botocore's clients), so it runs only then: after a reload or a
discovery run that changed the discovered accounts, never on an ordinary poll or an unchanged discovery
(benchmarks/churn.py). Garbage a change leaves unseen (a session discovery drops without changing its
targets) waits for the next change, whose collection frees all of it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)


class FrozenHeap:
    """Freezes the heap after each publish, collecting it first when the owners of reference cycles changed."""

    def __init__(self):
        self._lock = threading.Lock()
        self._owners: tuple[object, ...] | None = None  # held, so that identities stay unique
        self.full_collections = 0
        self.last_pause = 0.0  # seconds the last full collection held the GIL (benchmarks print it)

    def freeze(self, owners: Sequence[object]) -> bool:
        """Freeze what is live now; first unfreeze and collect everything if this is the first call or any of
        ``owners`` (objects that hold AWS sessions, compared by identity) differs from the last call's: what
        they dropped may have been frozen while it was live. True if it collected."""
        owners = tuple(owners)
        with self._lock:
            previous, self._owners = self._owners, owners
            changed = (
                previous is None
                or len(previous) != len(owners)
                or any(old is not new for old, new in zip(previous, owners, strict=False))
            )
            del previous  # the old owners must not be kept alive through the collection
            if changed:
                started = time.perf_counter()
                gc.unfreeze()
                unreachable = gc.collect()
                self.full_collections += 1
                self.last_pause = time.perf_counter() - started
                log.debug(
                    "owners of AWS sessions changed; full collection unreachable=%d pause_ms=%.0f",
                    unreachable,
                    self.last_pause * 1000,
                )
            gc.freeze()
            return changed
