"""What the logs have told us, per tunnel and per log group, and how it survives a restart.

Tunnel state keeps, for each fact (IKE phase states, NAT-T, DPD, selectors, BGP session state and
error), the value from the newest event by the event's own time, so late and out-of-order delivery
cannot roll it back. Event counts and read cursors are saved together in one file, atomically, so
after a crash or restart nothing is lost and nothing counted twice.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.logparse import LogEvent

log = logging.getLogger(__name__)

STATE_VERSION = 1
_FACTS = ("phase1", "phase2", "nat_t", "dpd", "selectors", "bgp_state", "bgp_error", "bgp_error_detail", "ike_error")


@dataclass(frozen=True, slots=True)
class TunnelKey:
    account_id: str
    region: str
    vpn_connection_id: str
    outside_ip: str

    def encode(self) -> str:
        return "|".join((self.account_id, self.region, self.vpn_connection_id, self.outside_ip))

    @classmethod
    def decode(cls, text: str) -> "TunnelKey":
        account_id, region, vpn_connection_id, outside_ip = text.split("|")
        return cls(account_id, region, vpn_connection_id, outside_ip)


@dataclass(frozen=True, slots=True)
class TunnelLogView:
    """An immutable copy of a tunnel's log state, for a snapshot."""

    counts: tuple[tuple[str, int], ...] = ()
    last_event: tuple[tuple[str, float], ...] = ()  # (log, epoch seconds)
    facts: tuple[tuple[str, Any, float], ...] = ()  # (fact, value, observed at)

    def fact(self, name: str) -> Any:
        return next((value for fact, value, _ in self.facts if fact == name), None)

    def fact_time(self, name: str) -> float | None:
        return next((at for fact, _, at in self.facts if fact == name), None)


@dataclass
class TunnelLogState:
    counts: dict[str, int] = field(default_factory=dict)
    last_event: dict[str, float] = field(default_factory=dict)
    facts: dict[str, tuple[Any, float]] = field(default_factory=dict)

    def apply(self, log_kind: str, event: LogEvent, received_at: float) -> None:
        """Count one event and keep any fact it carries, unless a newer observation exists."""
        self.counts[event.event] = self.counts.get(event.event, 0) + 1
        at = event.timestamp if event.timestamp is not None else received_at
        if at >= self.last_event.get(log_kind, float("-inf")):
            self.last_event[log_kind] = at
        for name in _FACTS:
            value = getattr(event, name)
            if value is not None and at >= self.facts.get(name, (None, float("-inf")))[1]:
                self.facts[name] = (value, at)

    def view(self) -> TunnelLogView:
        return TunnelLogView(
            counts=tuple(sorted(self.counts.items())),
            last_event=tuple(sorted(self.last_event.items())),
            facts=tuple(sorted((name, value, at) for name, (value, at) in self.facts.items())),
        )

    def encode(self) -> dict:
        return {"counts": self.counts, "last_event": self.last_event,
                "facts": {name: [list(value) if isinstance(value, tuple) else value, at]
                          for name, (value, at) in self.facts.items()}}

    @classmethod
    def decode(cls, data: dict) -> "TunnelLogState":
        facts = {}
        for name, (value, at) in data["facts"].items():
            if name not in _FACTS:
                continue
            facts[name] = (tuple(value) if isinstance(value, list) else value, float(at))
        return cls(counts={str(k): int(v) for k, v in data["counts"].items()},
                   last_event={str(k): float(v) for k, v in data["last_event"].items()}, facts=facts)


@dataclass
class GroupCursor:
    """How far one log group has been read.

    After a complete pass the next starts at ``read_until_ms - overlap`` (late events); after a pass
    cut short by its page budget it resumes at ``resume_ms``, the newest event read, so a backlog
    larger than one budget still makes progress. Ids in ``seen`` drop what is read twice.
    """

    read_until_ms: int
    seen: dict[str, int] = field(default_factory=dict)  # event id -> event timestamp (ms), for dedup
    resume_ms: int | None = None

    def start_ms(self, overlap_ms: int) -> int:
        return self.resume_ms if self.resume_ms is not None else max(0, self.read_until_ms - overlap_ms)

    def prune(self, keep_from_ms: int) -> None:
        """Forget ids older than any read can return again."""
        self.seen = {event_id: ts for event_id, ts in self.seen.items() if ts >= keep_from_ms}


@dataclass
class LogState:
    cursors: dict[str, GroupCursor] = field(default_factory=dict)
    tunnels: dict[TunnelKey, TunnelLogState] = field(default_factory=dict)


class StateFile:
    """The log state on disk: written atomically (temp file, fsync, rename), read tolerantly."""

    def __init__(self, state_dir: Path, on_corrupt=lambda: None):
        self.path = Path(state_dir) / "logs-state.json"
        self._on_corrupt = on_corrupt

    def load(self) -> LogState:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return LogState()
        except OSError as err:
            log.error("cannot read state file path=%s error=%r; starting empty", self.path, err.strerror)
            self._on_corrupt()
            return LogState()
        try:
            data = json.loads(text)
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"unsupported version {data.get('version')!r}")
            return LogState(
                cursors={group: GroupCursor(int(c["read_until_ms"]), {str(k): int(v) for k, v in c["seen"].items()},
                                            None if c.get("resume_ms") is None else int(c["resume_ms"]))
                         for group, c in data["cursors"].items()},
                tunnels={TunnelKey.decode(key): TunnelLogState.decode(value) for key, value in data["tunnels"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            moved = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            os.replace(self.path, moved)
            log.error("state file is corrupt path=%s error=%r; moved aside to %s and starting empty",
                      self.path, str(err)[:200], moved.name)
            self._on_corrupt()
            return LogState()

    def save(self, state: LogState) -> None:
        data = {
            "version": STATE_VERSION,
            "cursors": {group: {"read_until_ms": c.read_until_ms, "seen": c.seen, "resume_ms": c.resume_ms}
                        for group, c in state.cursors.items()},
            "tunnels": {key.encode(): value.encode() for key, value in state.tunnels.items()},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".logs-state.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out, separators=(",", ":"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
