"""The one way the simulation replaces (or adds) a method on one of moto's classes.

The strict layer and the request buckets change moto's handlers at run time, which a type checker cannot
follow: an assignment to a method is an error to it. Every patch goes through ``patch`` instead, so each reads
the same and the checker still checks everything else about the replacement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def patch(owner: type, name: str, function: Callable[..., Any]) -> None:
    """``owner.name`` becomes ``function`` (a plain function: it receives the instance as ``self``)."""
    setattr(owner, name, function)
