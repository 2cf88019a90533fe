"""The documentation the tests hold to what the code does: the README, and the reference pages in docs/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = "`" * 3


def doc(name: str) -> str:
    """The text of ``docs/NAME`` (``"metrics.md"``), or of the README for ``"README.md"``."""
    path = ROOT / name if name == "README.md" else DOCS / name
    return path.read_text(encoding="utf-8")


def pages() -> list[Path]:
    """Every page a person reads: the README and docs/*.md."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def section(text: str, heading: str) -> str:
    """From ``heading`` (a whole heading line, ``"## Metrics"``) to the next heading of its level or above, not
    counting lines in code blocks (a ``# comment`` in a shell example is no heading)."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.rstrip("\n") == heading)
    fenced = False
    for end in range(start + 1, len(lines)):
        line = lines[end]
        if line.startswith(FENCE):
            fenced = not fenced
        elif not fenced and line.lstrip("#").startswith(" ") and 0 < len(line) - len(line.lstrip("#")) <= level:
            return "".join(lines[start:end])
    return "".join(lines[start:])
