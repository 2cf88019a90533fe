"""A JSON document in ``state_dir`` that survives a crash: written atomically (a temporary file, fsync, rename,
the directory fsynced), read tolerantly (a file that cannot be read as a whole is moved aside, counted and
logged, and the exporter starts without it). The log state and the traffic counters each keep one, and forget
what EC2 stopped reporting by one rule (``forget_unseen``)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Collection, Hashable, Iterable, MutableMapping
from pathlib import Path
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)

MAX_BYTES = 256 * 1024 * 1024  # far above 10,000 tunnels' state (a few MB): anything bigger is not ours
RETENTION = 7 * 86400.0  # state of a tunnel EC2 stopped reporting is kept this long (logs.retention's default)


class Seen(Protocol):
    seen_at: float  # when EC2 last reported what this state belongs to


Key = TypeVar("Key", bound=Hashable)
Entry = TypeVar("Entry", bound=Seen)


def forget_unseen(entries: MutableMapping[Key, Entry], present: Collection[Key], now: float, retention: float) -> None:
    """Entries EC2 reports now are seen now; those it has not reported for ``retention`` are dropped (deleted
    connections, removed targets). So one odd answer or a failing poll resets nothing, and the state stays
    bounded under churn."""
    for key, entry in entries.items():
        if key in present:
            entry.seen_at = now
    for key in [key for key, entry in entries.items() if entry.seen_at < now - retention]:
        del entries[key]


def all_saved(documents: Iterable[JsonDocument]) -> bool:
    """The one truth of ``state_file_writable``: the latest save of every state file in use succeeded (or none
    was tried, or none is in use)."""
    return all(document.saved for document in documents)


class JsonDocument:
    def __init__(self, path: Path, version: int, on_corrupt: Callable[[], object] = lambda: None):
        self.path, self.version, self._on_corrupt = Path(path), version, on_corrupt
        self.saved = True  # the latest save succeeded (or none was tried yet)

    def load(self) -> dict | None:
        """The saved document, or None: none yet, or unreadable (then moved aside, counted, logged once)."""
        try:
            if self.path.stat().st_size > MAX_BYTES:
                self._move_aside(f"larger than {MAX_BYTES} bytes")
                return None
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as err:
            self._move_aside(getattr(err, "strerror", None) or type(err).__name__)
            return None
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as err:
            self._move_aside(f"not JSON: {str(err)[:100]}")
            return None
        if not isinstance(data, dict) or data.get("version") != self.version:
            self._move_aside(f"not a version {self.version} state document")
            return None
        return data

    def dropped(self, count: int, first_problem: str) -> None:
        """Entries of a loaded document that failed their checks were left out: said once and counted."""
        log.error(
            "state file had invalid entries path=%s dropped=%d first=%r; kept the rest", self.path, count, first_problem
        )
        self._on_corrupt()

    def _move_aside(self, reason: str) -> None:
        moved = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        try:
            os.replace(self.path, moved)
            where = f"moved aside to {moved.name}"
        except OSError as err:
            where = f"could not move it aside ({err.strerror})"
        log.error("state file unreadable path=%s error=%r; %s and starting empty", self.path, reason, where)
        self._on_corrupt()
        return None

    def save(self, data: dict) -> None:
        """Write it, or raise OSError (and ``saved`` is False until a save succeeds)."""
        try:
            self._write(data)
        except OSError:
            self.saved = False
            raise
        self.saved = True

    def _write(self, data: dict) -> None:
        data = {"version": self.version, **data}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.stem}.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                # dumps, not dump: dump's pure-Python encoder leaves reference cycles behind on every save,
                # which the publish's gc.freeze() would keep for ever (and they pin memory arenas).
                out.write(json.dumps(data, separators=(",", ":")))
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
