"""AWS region names checked against botocore's own partition data (``endpoints.json``: every partition's regions
and its ``regionRegex``), read through botocore's loader so the list is the installed botocore's, never a copy.

A name botocore lists is accepted. A name it does not list is accepted (with a warning) only when it looks like a
region AWS could have added since this botocore: it matches a partition's ``regionRegex`` and is made of words
known regions use (``eu``, ``west``, ``gov``...), as ``eu-south-3`` is. Anything else (``eu-wset-1``,
``moon-central-1``) is refused, with the closest known region as a suggestion.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Partitions:
    botocore_version: str
    listed: dict[str, str]  # region -> its partition (aws, aws-cn, aws-us-gov, aws-iso...)
    patterns: tuple[tuple[str, re.Pattern[str]], ...]  # (partition, regionRegex)
    words: frozenset[str]  # every word of a listed region's name but its number: us, gov, east, northwest...


@functools.cache
def partitions() -> Partitions:
    """The installed botocore's partitions, read once."""
    import botocore
    from botocore.loaders import create_loader

    data = create_loader().load_data("endpoints")
    listed = {region: p["partition"] for p in data["partitions"] for region in p.get("regions", {})}
    patterns = tuple((p["partition"], re.compile(p["regionRegex"])) for p in data["partitions"] if "regionRegex" in p)
    words = frozenset(word for region in listed for word in region.split("-")[:-1])
    return Partitions(botocore.__version__, listed, patterns, words)


def partition_of(region: str) -> str | None:
    """The partition a region belongs to: the one listing it, else the first whose pattern it matches."""
    known = partitions()
    if region in known.listed:
        return known.listed[region]
    return next((name for name, pattern in known.patterns if pattern.match(region)), None)


def refusal(region: Any) -> str | None:
    """Why ``region`` is not an AWS region name (with a suggestion when one is close), or None."""
    if not isinstance(region, str):
        return f"not an AWS region name: {region!r}"
    known = partitions()
    if region in known.listed or is_plausible_new(region):
        return None
    close = difflib.get_close_matches(region, sorted(known.listed), n=3)
    # difflib scores two swapped letters low (us-esat-2 is nearer us-west-2): the same letters swapped come first
    close.sort(key=lambda name: sorted(name) != sorted(region))
    suggestion = f" (did you mean {close[0]}?)" if close else ""
    return f"not an AWS region name: {region!r}{suggestion}"


def is_listed(region: str) -> bool:
    return region in partitions().listed


def is_plausible_new(region: str) -> bool:
    """Not listed, but a partition's pattern matches it and every word of it is one known regions use."""
    known = partitions()
    *words, number = region.split("-")
    return (
        region not in known.listed
        and number.isdigit()
        and all(word in known.words for word in words)
        and partition_of(region) is not None
    )


def unlisted_warning(region: str) -> str:
    known = partitions()
    return (
        f"region {region} is not listed by botocore {known.botocore_version}; accepted as a region of the "
        f"{partition_of(region)} partition newer than botocore (check the spelling, or upgrade botocore)"
    )
