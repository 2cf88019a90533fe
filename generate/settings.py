"""The operators' settings files of the generators (``alerts/settings.yml``, ``deploy/kubernetes/settings.yml``):
read with the exporter's own strict YAML reader, every mistake a ``FILE: KEY: REASON`` exit before anything is
written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporter.config import ConfigError, read_yaml


def load(
    path: Path,
    types: dict[str, type],
    check: Callable[[str, Any], str | None] = lambda key, value: None,
    defaults: dict | None = None,
) -> dict:
    """The settings of ``path``: each key of ``types`` with a value of that type (an int where a float is asked),
    accepted by ``check`` (which returns a reason to refuse, or None). With ``defaults`` a key left out keeps its
    default and the file may be absent; without, every key is required."""
    if defaults is not None and not path.exists():
        return dict(defaults)
    try:
        data = read_yaml(path) or {}
    except ConfigError as err:
        raise SystemExit(str(err)) from None
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a mapping of settings")
    for key, value in data.items():
        if key not in types:
            raise SystemExit(f"{path}: unknown key {key!r} (known: {', '.join(sorted(types))})")
        expected = types[key]
        if type(value) is not expected and not (expected is float and type(value) is int):
            raise SystemExit(f"{path}: {key}: expected {expected.__name__}, got {value!r}")
        reason = check(key, value)
        if reason:
            raise SystemExit(f"{path}: {key}: {reason}")
    missing = [key for key in types if key not in data and key not in (defaults or {})]
    if missing:
        raise SystemExit(f"{path}: missing {', '.join(missing)}")
    return {**(defaults or {}), **data}
