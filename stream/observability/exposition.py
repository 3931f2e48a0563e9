"""Per-process metrics and the Prometheus text exposition format, hand-written.

Hand-written rather than ``prometheus_client``: segstream already renders its
Redis counters and model gauges as text (``stream.models.report.metrics_lines``),
and three metric kinds of ~100 lines spare a dependency and its global,
multiprocess-mode registry. Every process keeps its own :class:`Registry`;
Prometheus sums counters and histogram buckets over processes (``sum(rate(...))``).

>>> registry = Registry()
>>> seen = registry.counter("segstream_demo_total", "Demo events.", ("kind",))
>>> seen.inc(2, "a")
>>> print(registry.render(), end="")
# HELP segstream_demo_total Demo events.
# TYPE segstream_demo_total counter
segstream_demo_total{kind="a"} 2
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

#: Content type of the Prometheus text exposition format.
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
#: Histogram bounds in seconds for processing latency and timer lateness (10 ms .. 1 min).
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_M = TypeVar("_M", bound="_Metric")


def label_value(value: str) -> str:
    """A Prometheus label value, escaped (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(value: float) -> str:
    """A sample value as Prometheus writes it (``+Inf``, integers without ``.0``)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{label_value(v)}"' for n, v in zip(names, values)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


class _Metric:
    kind = ""

    def __init__(self, name: str, help_: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.label_names = name, help_, tuple(labels)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """A monotonically increasing count per label values (``rate()`` gives per-second)."""

    kind = "counter"

    def __init__(self, name: str, help_: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_, labels)
        self.values: dict[tuple[str, ...], float] = {} if labels else {(): 0}

    def inc(self, amount: float = 1, *labels: str) -> None:
        """Add ``amount`` to the count of ``labels``."""
        self.values[labels] = self.values.get(labels, 0) + amount

    def lines(self) -> list[str]:
        return [f"{self.name}{_labels(self.label_names, k)} {number(v)}" for k, v in sorted(self.values.items())]


class Gauge(_Metric):
    """A value per label values that goes up and down; :meth:`replace` sets all of them at once."""

    kind = "gauge"

    def __init__(self, name: str, help_: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_, labels)
        self.values: dict[tuple[str, ...], float] = {}

    def set(self, value: float, *labels: str) -> None:
        """Set the value of ``labels``."""
        self.values[labels] = value

    def replace(self, values: dict[tuple[str, ...], float]) -> None:
        """Forget every value and set these (label values -> value): partitions that left, segments removed."""
        self.values = dict(values)

    def lines(self) -> list[str]:
        return [f"{self.name}{_labels(self.label_names, k)} {number(v)}" for k, v in sorted(self.values.items())]


class Histogram(_Metric):
    """Observations counted in cumulative buckets (``le``), with their sum and count; no labels.

    >>> h = Histogram("segstream_demo_seconds", "Demo.", (0.1, 1.0))
    >>> h.observe(0.05); h.observe(0.5); h.observe(7)
    >>> h.lines()[:3]
    ['segstream_demo_seconds_bucket{le="0.1"} 1', 'segstream_demo_seconds_bucket{le="1"} 2', 'segstream_demo_seconds_bucket{le="+Inf"} 3']
    """

    kind = "histogram"

    def __init__(self, name: str, help_: str, buckets: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        super().__init__(name, help_)
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)  # per bucket, not cumulative; the last is +Inf
        self.sum = 0.0

    def observe(self, value: float, times: int = 1) -> None:
        """Count ``times`` observations of ``value`` (one list increment and one addition)."""
        self.counts[bisect_left(self.bounds, value)] += times
        self.sum += value * times

    def lines(self) -> list[str]:
        lines, total = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts):
            total += n
            lines.append(f'{self.name}_bucket{{le="{number(bound)}"}} {total}')
        return lines + [f"{self.name}_sum {number(self.sum)}", f"{self.name}_count {total}"]


class Registry:
    """The metrics of one process, rendered in registration order."""

    def __init__(self) -> None:
        self.metrics: list[_Metric] = []

    def counter(self, name: str, help_: str, labels: Sequence[str] = ()) -> Counter:
        """A new counter in this registry."""
        return self._add(Counter(name, help_, labels))

    def gauge(self, name: str, help_: str, labels: Sequence[str] = ()) -> Gauge:
        """A new gauge in this registry."""
        return self._add(Gauge(name, help_, labels))

    def histogram(self, name: str, help_: str, buckets: Sequence[float] = LATENCY_BUCKETS_S) -> Histogram:
        """A new histogram in this registry."""
        return self._add(Histogram(name, help_, buckets))

    def _add(self, metric: _M) -> _M:
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        """The text exposition of every metric (headers even for those with no sample yet)."""
        return render_lines(line for m in self.metrics for line in (*m.header(), *m.lines()))


def counter_family(name: str, help_: str, label: str, values: Mapping[str, float]) -> list[str]:
    """Exposition lines of a counter with one label, from a ``{label value: count}`` mapping.

    >>> counter_family("segstream_x_total", "X.", "kind", {"a": 2})
    ['# HELP segstream_x_total X.', '# TYPE segstream_x_total counter', 'segstream_x_total{kind="a"} 2']
    """
    return _family(Counter(name, help_, (label,)), values)


def gauge_family(name: str, help_: str, label: str, values: Mapping[str, float]) -> list[str]:
    """Exposition lines of a gauge with one label, from a ``{label value: value}`` mapping."""
    return _family(Gauge(name, help_, (label,)), values)


def _family(metric: Counter | Gauge, values: Mapping[str, float]) -> list[str]:
    metric.values = {(key,): value for key, value in values.items()}
    return metric.header() + metric.lines()


def render_lines(lines: Iterable[str]) -> str:
    """Exposition lines joined as one document, ending with a newline."""
    return "\n".join(lines) + "\n"


def parse_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of a text exposition: ``(name, {(label, value)}) -> value`` (for ``segstream status`` and tests).

    >>> parse_samples('# TYPE a counter\\na{p="1"} 3\\nb 0.5\\n')
    {('a', frozenset({('p', '1')})): 3.0, ('b', frozenset()): 0.5}
    """
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels: set[tuple[str, str]] = set()
        rest = rest.rstrip("}")
        while rest:
            key, _, rest = rest.partition('="')
            chars, i = [], 0
            while rest[i] != '"':
                if rest[i] == "\\":
                    i += 1
                    chars.append({"n": "\n"}.get(rest[i], rest[i]))
                else:
                    chars.append(rest[i])
                i += 1
            labels.add((key, "".join(chars)))
            rest = rest[i + 1 :].lstrip(",")
        samples[(name, frozenset(labels))] = float(value)
    return samples
