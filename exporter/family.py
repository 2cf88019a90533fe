"""A metric family as the snapshot renderer builds it: rows of (label values, value) for one metric of the contract,
rendered in the text format 0.0.4; ``Families``, a source's families by name; and ``Isolated``, which keeps one
tunnel's bad value from costing the others their series.

A lean one of its own: at 10,000 tunnels (200,000 samples) prometheus-client's objects cost seconds of GIL and
~100 MB; rows of label tuples that share the model's strings cost little. The format (escaping, float spelling)
follows prometheus-client's, and promtool checks it in the tests. It sits below the sources, which build their own
families (tests/test_layers.py), and imports only the contract.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from typing import TypeVar

from prometheus_client.utils import floatToGoString

from exporter.contract import METRICS

T = TypeVar("T")


class Family:
    """One metric family: its rows are (label values, value), rendered in the text format 0.0.4."""

    __slots__ = ("name", "kind", "documentation", "labels", "rows")

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = (), kind: str = "gauge"):
        self.name, self.kind, self.documentation, self.labels = name, kind, documentation, tuple(labels)
        self.rows: list[tuple[Sequence[str], float]] = []

    @classmethod
    def of(cls, name: str) -> Family:
        """An empty family as the contract defines it."""
        metric = METRICS[name]
        return cls(name, metric.help_text, metric.labels, metric.kind)

    def add_metric(self, values: Sequence[str], value: float) -> None:
        """Checked here, so a bad value fails inside its tunnel's isolation rather than in ``render``."""
        if len(values) != len(self.labels) or not isinstance("".join(values), str):
            raise ValueError(f"{self.name}: {len(values)} label values for {len(self.labels)} labels")
        self.rows.append((values, float(value)))

    def render(self, dropped: Counter | None = None) -> str:
        """The family's lines; a series whose labels an earlier row already had is left out (Prometheus would
        reject the scrape's samples for it) and counted in ``dropped`` by metric name: the one guard that holds
        whatever a source or a family builder got wrong. Checking costs one C-level set of the label strings."""
        help_text = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
        lines = [f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.kind}\n"]
        names = self.labels
        keys = (
            [
                ",".join(f'{name}="{_escape(v)}"' for name, v in zip(names, values, strict=True))
                for values, _ in self.rows
            ]
            if names
            else [""] * len(self.rows)
        )
        rows: Iterable[tuple[str, float]] = zip(keys, map(itemgetter(1), self.rows), strict=False)
        if len(set(keys)) != len(keys):  # a bug upstream: keep each series' first row
            first: dict[str, float] = {}
            for pairs, value in rows:
                first.setdefault(pairs, value)
            rows = list(first.items())
            if dropped is not None:
                dropped[self.name] += len(keys) - len(rows)
        if names:
            lines.extend(f"{self.name}{{{pairs}}} {floatToGoString(value)}\n" for pairs, value in rows)
        else:
            lines.extend(f"{self.name} {floatToGoString(value)}\n" for _, value in rows)
        return "".join(lines)


class Isolated:
    """Rows added inside ``with isolated(unit):`` are kept only if the block completes: a value no code path
    expected drops that one tunnel's (or connection's) series and is reported, never the whole publish."""

    __slots__ = ("families", "failed", "unit", "_marks")

    def __init__(self, families: Sequence[Family], failed: list[str]):
        self.families, self.failed = families, failed

    def __call__(self, unit: str) -> Isolated:
        self.unit = unit
        return self

    def __enter__(self) -> None:
        self._marks = [len(family.rows) for family in self.families]

    def __exit__(self, kind, err, traceback) -> bool:
        if err is None:
            return False
        if not isinstance(err, Exception):
            return False  # KeyboardInterrupt and the like are not a bad value
        for family, mark in zip(self.families, self._marks, strict=False):
            del family.rows[mark:]
        self.failed.append(f"{self.unit} ({type(err).__name__})")
        return True


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def flag(value: bool) -> float:
    return 1.0 if value else 0.0


class Families:
    """Empty families of the contract's metrics, looked up by name (never by position: a family added in the middle
    cannot send rows to another), and yielded in the order named."""

    __slots__ = ("_by_name",)

    def __init__(self, *names: str):
        self._by_name = {name: Family.of(name) for name in names}

    def __getitem__(self, name: str) -> Family:
        return self._by_name[name]

    def __iter__(self) -> Iterator[Family]:
        return iter(self._by_name.values())

    def replace(self, family: Family) -> None:
        """Use ``family`` for its name (e.g. one with the operator's extra labels), in the same place."""
        self._by_name[family.name] = family

    def isolated(self, failed: list[str]) -> Isolated:
        """A guard over every one of these families (see ``Isolated``)."""
        return Isolated(tuple(self), failed)


def current_state(family: Family, labels: list[str], states: tuple[str, ...], current: str) -> None:
    """One series, for the current state, = 1 (``unknown`` when AWS said something else). A full stateset
    would cost 5-7 series per tunnel and phase; at 10,000 tunnels that is most of the exposition."""
    family.add_metric(labels + [current if current in states else "unknown"], 1.0)


YIELD_EVERY = 200  # items between yields of the GIL while rendering, so scrapes are served meanwhile


def yielding(items: Iterable[T]) -> Iterator[T]:
    """The items, letting the HTTP threads run every ``YIELD_EVERY``: a render loop is pure Python for a second at
    10,000 tunnels."""
    for count, item in enumerate(items):
        if count % YIELD_EVERY == 0:
            time.sleep(0)
        yield item
