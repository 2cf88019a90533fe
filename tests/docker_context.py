"""What a Dockerfile's build stage sees of the build context, without a Docker engine (none on the CI machines).

Reads the stage that runs ``pip install`` (the multi-stage build's ``build`` stage), follows its WORKDIR and
its COPY/ADD lines from the context (``--chown``/``--chmod``/``--link`` ignored, ``--from`` copies from
another stage, not the context), honours ``.dockerignore``, and lays the copied files out in a directory as
the stage's filesystem would hold them. Docker's rules kept: a directory source copies its contents, several
sources or a destination ending in ``/`` make the destination a directory, a relative destination is under
WORKDIR, and a source the context does not hold (missing or ignored) fails the build.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path


class BuildFails(Exception):
    """What ``docker build`` would refuse (a COPY source missing from the context)."""


@dataclass
class Copy:
    sources: list[str]
    destination: str  # absolute, WORKDIR applied


@dataclass
class Stage:
    name: str
    copies: list[Copy] = field(default_factory=list)
    install_directory: str | None = None  # the WORKDIR of the stage's `pip install`


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comments dropped, backslash continuations joined."""
    joined, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    if pending.strip():
        joined.append(pending)
    result = []
    for line in joined:
        keyword, _, arguments = line.strip().partition(" ")
        result.append((keyword.upper(), arguments.strip()))
    return result


def _words(arguments: str) -> list[str]:
    """A COPY's words, in either form: JSON array or shell-like."""
    flags = []
    rest = arguments
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.lstrip()
    words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    return flags + words


def stages(dockerfile: str) -> list[Stage]:
    found: list[Stage] = []
    workdir = "/"
    for keyword, arguments in instructions(dockerfile):
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(found))
            found.append(Stage(name))
            workdir = "/"
        elif not found:
            continue  # ARG before the first FROM
        elif keyword == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, arguments.strip()))
        elif keyword in ("COPY", "ADD"):
            words = _words(arguments)
            if any(word.startswith("--from") for word in words):
                continue
            paths = [word for word in words if not word.startswith("--")]
            *sources, destination = paths
            absolute = posixpath.normpath(posixpath.join(workdir, destination))
            if len(sources) > 1 or destination.endswith("/"):
                absolute += "/"  # a directory, as Docker makes it
            found[-1].copies.append(Copy(sources, absolute))
        elif keyword == "RUN" and re.search(r"\bpip3?\b.*\binstall\b", arguments):
            found[-1].install_directory = workdir
    return found


def install_stage(dockerfile: str) -> Stage:
    """The stage that installs the package (exactly one)."""
    installing = [stage for stage in stages(dockerfile) if stage.install_directory]
    assert len(installing) == 1, f"expected one stage running pip install, found {[s.name for s in installing]}"
    return installing[0]


def _pattern(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (Go's filepath.Match plus ``**``) as a regex on a context-relative path."""
    out, index = "", 0
    pattern = posixpath.normpath(pattern.strip().lstrip("/"))
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out, index = out + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            out, index = out + ".*", index + 2
        elif pattern[index] == "*":
            out, index = out + "[^/]*", index + 1
        elif pattern[index] == "?":
            out, index = out + "[^/]", index + 1
        else:
            out, index = out + re.escape(pattern[index]), index + 1
    return re.compile(out + "(?:/.*)?")  # a directory's pattern takes what is under it


def ignore_rules(context: Path) -> list[tuple[bool, re.Pattern]]:
    """(is an exception ``!``, pattern) per line of the context's .dockerignore, in order."""
    ignore_file = context / ".dockerignore"
    lines = (raw.strip() for raw in ignore_file.read_text().splitlines()) if ignore_file.exists() else ()
    return [(line.startswith("!"), _pattern(line.removeprefix("!"))) for line in lines if line and line[0] != "#"]


def ignored(relative: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """Whether .dockerignore keeps a context-relative path out of the context (the last matching line wins)."""
    excluded = False
    for negated, rule in rules:
        if rule.fullmatch(relative):
            excluded = not negated
    return excluded


def _files_under(context: Path, source: str, rules: list[tuple[bool, re.Pattern]]) -> list[str]:
    """The context's files a COPY source names (globs allowed), relative to the context."""
    matched = sorted(context.glob(source.lstrip("/"))) if any(c in source for c in "*?[") else [context / source]
    files = []
    for path in matched:
        if not path.exists():
            continue
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files += [
            relative
            for relative in (candidate.relative_to(context).as_posix() for candidate in candidates)
            if not ignored(relative, rules)
        ]
    if not files:
        raise BuildFails(f"COPY {source}: not in the build context (missing, or left out by .dockerignore)")
    return files


def lay_out(context: Path, stage: Stage, root: Path) -> Path:
    """Copy what the stage's COPY lines take from ``context`` into ``root`` (the stage's /); returns where
    its ``pip install`` runs."""
    rules = ignore_rules(context)
    for copy in stage.copies:
        for source in copy.sources:
            base = context / source
            for relative in _files_under(context, source, rules):
                if base.is_dir():  # a directory's contents go into the destination
                    inside = (context / relative).relative_to(base).as_posix()
                    target = posixpath.join(copy.destination, inside)
                elif copy.destination.endswith("/") or len(copy.sources) > 1 or base != context / relative:
                    target = posixpath.join(copy.destination, posixpath.basename(relative))
                else:
                    target = copy.destination
                destination = root / target.lstrip("/")
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(context / relative, destination)
    assert stage.install_directory is not None
    return root / stage.install_directory.lstrip("/")


@dataclass
class Image:
    """What the Dockerfile's final stage gives a container that does not override it (exec form only)."""

    entrypoint: list[str]
    command: list[str]
    healthcheck: list[str] | None


def image_defaults(dockerfile: str) -> Image:
    final: dict[str, list[str] | None] = {"ENTRYPOINT": [], "CMD": [], "HEALTHCHECK": None}
    for keyword, arguments in instructions(dockerfile):
        if keyword == "FROM":
            final = {"ENTRYPOINT": [], "CMD": [], "HEALTHCHECK": None}
        elif keyword in ("ENTRYPOINT", "CMD"):
            assert arguments.startswith("["), f"{keyword} in shell form: its arguments are not known here"
            final[keyword] = json.loads(arguments)
        elif keyword == "HEALTHCHECK":
            _, found, probe = arguments.partition("CMD ")
            final[keyword] = json.loads(probe) if found else None  # HEALTHCHECK NONE
    return Image(final["ENTRYPOINT"] or [], final["CMD"] or [], final["HEALTHCHECK"])
