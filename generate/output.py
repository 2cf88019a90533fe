"""Writing what the generators built, all or nothing: every file goes to a temporary name beside its target
first, and only when all are staged is each renamed over its target (``os.replace``), so a failure while
building or staging leaves the tree as it was rather than half-regenerated."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What a generator returns: each file's path (relative to the directory it is written into) and its text.
Files = Mapping[str, str]


def write(directory: Path, files: Files) -> list[Path]:
    """Write ``files`` under ``directory``; a file keeps its mode (a new one gets 0644)."""
    staged: list[tuple[Path, Path]] = []
    try:
        for name, text in files.items():
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            descriptor, staging = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            staged.append((Path(staging), target))
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
                file.write(text)
            os.chmod(staging, target.stat().st_mode & 0o777 if target.exists() else 0o644)
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise
    for temporary, target in staged:
        os.replace(temporary, target)
    return [target for _, target in staged]


def report(written: list[Path], root: Path = ROOT) -> None:
    for path in written:
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        print(f"wrote {shown}", file=sys.stderr)
