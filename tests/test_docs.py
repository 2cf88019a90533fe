"""The pages a person reads hold true: every relative link leads to a file and heading that exist, and every command
shown in a ``sh`` block runs as shown (its flags exist and parse; the quick, offline ones are run for real)."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exporter import cli
from exporter.report import command as report_command
from exporter.web.server import parse_listen_address
from tests.docs import FENCE, ROOT, pages

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
SH_BLOCK = re.compile(rf"^{FENCE}sh\n(.*?)^{FENCE}", re.M | re.S)
PARSERS: dict[str | None, Callable[[], argparse.ArgumentParser]] = {
    None: cli.build_parser,
    "diagnose": cli.build_diagnose_parser,
    "report": report_command.build_parser,
}
DOCKER_OPTIONS_WITH_A_VALUE = {"-p", "-v", "-e", "--name", "--env", "--volume", "--publish", "--network"}


def prose(text: str) -> str:
    """The text outside code blocks and inline code, where a link is a link."""
    outside = re.sub(rf"^{FENCE}.*?^{FENCE}", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", outside)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in re.findall(
        r"^#{1,6} (.+)$", re.sub(rf"^{FENCE}.*?^{FENCE}", "", path.read_text(), flags=re.M | re.S), re.M
    ):
        base = slug(heading)
        anchor, n = base, 0
        while anchor in found:  # a repeated heading gets -1, -2, ...
            n += 1
            anchor = f"{base}-{n}"
        found.add(anchor)
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        name, _, anchor = target.partition("#")
        linked = (page.parent / name).resolve() if name else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no such heading in {linked.name}")
    return broken


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page):
    assert broken_links(page) == []


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## A heading: with `code`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#a-heading-with-code) [self](#page) `[not a link](nowhere.md)`\n"
        "[gone](missing.md) [no anchor](other.md#nowhere) [no self anchor](#nowhere)\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nowhere: no such heading in other.md",
        "#nowhere: no such heading in page.md",
    ]


def shell_commands(text: str) -> Iterator[list[str]]:
    """Each command of the page's ``sh`` blocks, as words, its continuation lines joined and comments dropped."""
    for block in SH_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                yield words


def exporter_arguments(words: list[str]) -> list[str] | None:
    """The arguments a shown command gives the exporter, or None when it does not run the exporter."""
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words = words[1:]
    if not words:
        return None
    if os.path.basename(words[0]) == "aws-vpn-exporter":
        return words[1:]
    if os.path.basename(words[0]).startswith("python") and words[1:3] == ["-m", "exporter"]:
        return words[3:]
    if "--" in words:  # kubectl exec ... -- aws-vpn-exporter ...
        return exporter_arguments(words[words.index("--") + 1 :])
    if words[:2] == ["docker", "run"]:
        rest = iter(words[2:])
        for word in rest:
            if word in DOCKER_OPTIONS_WITH_A_VALUE:
                next(rest, None)
            elif not word.startswith("-"):
                return list(rest) if word == "aws-vpn-exporter" else None
    return None


def shown_commands() -> list[tuple[str, list[str]]]:
    return [(str(page.relative_to(ROOT)), words) for page in pages() for words in shell_commands(page.read_text())]


def exporter_commands() -> list[tuple[str, list[str]]]:
    found = []
    for page, words in shown_commands():
        arguments = exporter_arguments(words)
        if arguments is not None:
            found.append((page, arguments))
    return found


def parse_error(arguments: list[str]) -> str | None:
    """What the exporter's own parser says of these arguments (None: they parse)."""
    subcommand = arguments[0] if arguments[:1] and not arguments[0].startswith("-") else None
    if subcommand not in PARSERS:
        return f"no such command: {subcommand}"
    parser = PARSERS[subcommand]()
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            parsed = parser.parse_args(arguments[1:] if subcommand else arguments)
    except SystemExit as exit:
        return errors.getvalue().strip() or None if exit.code else None
    if subcommand is None:  # the listen address is checked after parsing, as the exporter does at start-up
        try:
            parse_listen_address(parsed.listen)
        except ValueError as err:
            return f"--web.listen-address: {err}"
    return None


def test_the_docs_show_exporter_commands_and_scripts():
    """The collection finds what the pages show, so the tests below cannot pass on nothing."""
    commands = [" ".join(arguments) for _, arguments in exporter_commands()]
    assert "--version" in commands and "diagnose --demo" in commands
    assert "--config /etc/aws-vpn-exporter/config.yaml --web.listen-address 0.0.0.0:9798" in commands  # docker run
    assert "diagnose --config /etc/aws-vpn-exporter/config.yml" in commands  # kubectl exec
    assert ["scripts/demo"] in [words for _, words in shown_commands()]


@pytest.mark.parametrize(
    ("page", "arguments"), exporter_commands(), ids=lambda value: " ".join(value) if isinstance(value, list) else value
)
def test_every_exporter_command_shown_parses(page, arguments):
    assert parse_error(arguments) is None, f"{page}: aws-vpn-exporter {' '.join(arguments)}"


def test_a_command_that_no_longer_parses_is_found():
    assert parse_error(["diagnose", "--demo", "--no-such-flag"]) is not None
    assert parse_error(["--log.level", "loud"]) is not None
    assert parse_error(["--web.listen-address", "0.0.0.0"]) is not None  # no port
    assert parse_error(["diagnoze", "--demo"]) == "no such command: diagnoze"
    assert parse_error(["diagnose", "--demo", "--output", "json"]) is None


def test_every_script_shown_exists_with_the_flags_shown():
    for page, words in shown_commands():
        if not words[0].startswith("scripts/"):
            continue
        script = ROOT / words[0]
        assert script.is_file() and os.access(script, os.X_OK), f"{page}: {words[0]} is not an executable script"
        for flag in (word.split("=")[0] for word in words[1:] if word.startswith("--")):
            assert flag in script.read_text(), f"{page}: {words[0]} has no {flag}"


def config_shown(page: str) -> str | None:
    """The page's ``# config.yaml`` example, which its commands read as ``config.yaml``."""
    found = re.search(rf"^{FENCE}yaml\n(# config\.yaml\n.*?)^{FENCE}", (ROOT / page).read_text(), re.M | re.S)
    return found.group(1) if found else None


def runs_offline(arguments: list[str]) -> bool:
    """Quick and without AWS: the version, a config check, and the diagnosis of the demo."""
    return (
        "--version" in arguments
        or "--config.check" in arguments
        or arguments[:1] == ["diagnose"]
        and "--demo" in arguments
    )


def offline_commands() -> list[tuple[str, list[str]]]:
    """Each offline command once (a command shown on two pages runs the same), but a config check per page: each
    checks its own page's config."""
    seen: dict[tuple[str, ...], tuple[str, list[str]]] = {}
    for page, arguments in exporter_commands():
        if runs_offline(arguments):
            seen.setdefault((*arguments, page if "config.yaml" in arguments else ""), (page, arguments))
    return list(seen.values())


@pytest.mark.slow  # runs the command: the demo's diagnosis takes seconds
@pytest.mark.parametrize(
    ("page", "arguments"),
    offline_commands(),
    ids=lambda value: " ".join(value) if isinstance(value, list) else value,
)
def test_every_offline_command_shown_runs_as_shown(page, arguments, tmp_path):
    if "config.yaml" in arguments:
        config = config_shown(page)
        assert config, f"{page} runs config.yaml but shows none"
        (tmp_path / "config.yaml").write_text(config)
    result = subprocess.run(
        [sys.executable, "-m", "exporter", *arguments],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    # 3: the demo has critical findings, as diagnose's exit status says; anything else shown must succeed.
    expected = 3 if arguments[:1] == ["diagnose"] else 0
    assert result.returncode == expected, f"{page}: {' '.join(arguments)}\n{result.stdout}{result.stderr}"
    assert "error" not in result.stderr.lower(), result.stderr
