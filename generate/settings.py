"""The operators' settings files of the generators (``alerts/settings.yml``, ``deploy/kubernetes/settings.yml``):
read with the exporter's own strict YAML reader, every mistake a ``FILE: KEY: REASON`` exit before anything is
written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporter.config import ConfigError, Reader, read_yaml_lines


def load(
    path: Path,
    types: dict[str, type],
    check: Callable[[str, Any], str | None] = lambda key, value: None,
    defaults: dict | None = None,
) -> dict:
    """The settings of ``path``: each key of ``types`` with a value of that type (an int where a float is asked),
    accepted by ``check`` (which returns a reason to refuse, or None). With ``defaults`` a key left out keeps its
    default and the file may be absent; without, every key is required. Every problem of the file is reported at
    once, one ``FILE: KEY: REASON`` line each."""
    if defaults is not None and not path.exists():
        return dict(defaults)
    try:
        return _read(path, types, check, defaults or {})
    except ConfigError as err:
        raise SystemExit(str(err)) from None


def _read(path: Path, types: dict[str, type], check: Callable[[str, Any], str | None], defaults: dict) -> dict:
    data, lines = read_yaml_lines(path)
    reader = Reader(str(path))
    if data is not None and not isinstance(data, dict):
        raise ConfigError(str(path), "", "expected a mapping of settings")
    data = reader.mapping(data, "", set(types))
    for key, value in data.items():
        expected = types[key]
        if type(value) is not expected and not (expected is float and type(value) is int):
            reader.report(key, f"expected {expected.__name__}, got {value!r}")
            continue
        reason = check(key, value)
        if reason:
            reader.report(key, reason)
    for key in types:
        if key not in data and key not in defaults:
            reader.report(key, "missing")
    reader.check(lines)
    return {**defaults, **data}
