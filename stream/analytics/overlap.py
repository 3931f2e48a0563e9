"""Overlap between segments: the Jaccard matrix and warnings about over-segmentation; pure functions.

Given each segment's size and the size of each pair's intersection, :func:`overlap_report`
returns the Jaccard index of every pair (``|A ∩ B| / |A ∪ B|``, ``None`` for two empty
segments) and warnings:

* ``near_duplicate`` — Jaccard ≥ the duplicate threshold: the two segments hold almost the same
  customers; keep one.
* ``subset`` — not a near-duplicate, but at least the subset share of the smaller segment is also
  in the larger one: the smaller adds nothing to target the larger does not reach (expected when
  its rule refers to the larger with ``segment:``).
* ``too_small`` — fewer members than the minimum: too few to act on or measure.
* ``empty`` — no member at all.

>>> report = overlap_report({"a": 100, "b": 95}, {("a", "b"): 95}, OverlapThresholds(min_members=10))
>>> report["matrix"]["a"]["b"], [w["kind"] for w in report["warnings"]]
(0.95, ['near_duplicate'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from stream.analytics.errors import AnalyticsError

Pair = tuple[str, str]


@dataclass(frozen=True)
class OverlapThresholds:
    """When a segment or a pair is flagged (settings ``SEGSTREAM_ANALYTICS_*``)."""

    duplicate_jaccard: float = 0.9
    subset_share: float = 0.95
    min_members: int = 100


def pairs(names: list[str]) -> list[Pair]:
    """Every unordered pair of ``names``, each once, in the order given."""
    return list(combinations(names, 2))


def jaccard(size_a: int, size_b: int, common: int) -> float | None:
    """``common / (size_a + size_b - common)``; ``None`` when both are empty.

    >>> jaccard(3, 3, 3), jaccard(4, 2, 1), jaccard(0, 0, 0)
    (1.0, 0.2, None)
    """
    union = size_a + size_b - common
    return None if union == 0 else common / union


def overlap_report(sizes: Mapping[str, int], common: Mapping[Pair, int], thresholds: OverlapThresholds) -> dict[str, Any]:
    """``{"segments", "sizes", "matrix", "intersections", "warnings"}`` for ``sizes`` (in their order).

    ``common`` holds the intersection size of each pair of :func:`pairs`; ``matrix[a][b]`` is the
    Jaccard index (1.0 on the diagonal unless empty), ``intersections[a][b]`` the common members.
    """
    names = list(sizes)
    matrix: dict[str, dict[str, float | None]] = {a: {} for a in names}
    shared: dict[str, dict[str, int]] = {a: {} for a in names}
    warnings: list[dict[str, Any]] = []
    for name in names:
        matrix[name][name] = jaccard(sizes[name], sizes[name], sizes[name])
        shared[name][name] = sizes[name]
        if sizes[name] == 0:
            warnings.append({"kind": "empty", "segments": [name], "message": f"{name} has no member"})
        elif sizes[name] < thresholds.min_members:
            warnings.append(
                {
                    "kind": "too_small",
                    "segments": [name],
                    "members": sizes[name],
                    "message": f"{name} has {sizes[name]} members, fewer than {thresholds.min_members}: too few to act on or measure",
                }
            )
    for a, b in pairs(names):
        together = common[(a, b)]
        index = jaccard(sizes[a], sizes[b], together)
        matrix[a][b] = matrix[b][a] = index
        shared[a][b] = shared[b][a] = together
        warning = _pair_warning(a, b, sizes, together, index, thresholds)
        if warning is not None:
            warnings.append(warning)
    return {"segments": names, "sizes": dict(sizes), "matrix": matrix, "intersections": shared, "warnings": warnings}


def _pair_warning(
    a: str, b: str, sizes: Mapping[str, int], together: int, index: float | None, thresholds: OverlapThresholds
) -> dict[str, Any] | None:
    """The near-duplicate or subset warning of one pair of non-empty segments, if any."""
    if index is None or together == 0:
        return None
    if index >= thresholds.duplicate_jaccard:
        return {
            "kind": "near_duplicate",
            "segments": [a, b],
            "jaccard": index,
            "message": f"{a} and {b} share {index:.0%} of their combined members (Jaccard {index:.3f}): keep one",
        }
    small, large = (a, b) if sizes[a] <= sizes[b] else (b, a)
    share = together / sizes[small]
    if share >= thresholds.subset_share:
        return {
            "kind": "subset",
            "segments": [small, large],
            "share": share,
            "message": f"{share:.0%} of {small} ({sizes[small]}) is also in {large} ({sizes[large]})",
        }
    return None


def select_segments(requested: list[str] | None, known: list[str], cap: int) -> list[str]:
    """The segments to compare: ``requested`` (all ``known`` when ``None``), checked and at most ``cap``.

    Raises :class:`~stream.analytics.errors.AnalyticsError` naming unknown segments, or asking for
    a shorter list when there are more than ``cap`` (the pairs grow as N²).
    """
    names = list(dict.fromkeys(requested)) if requested is not None else list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise AnalyticsError(f"unknown segments: {', '.join(unknown)}; GET /v1/segments lists them")
    if len(names) < 2 and requested is not None:
        raise AnalyticsError("name at least two segments to compare, e.g. segments=a,b")
    if len(names) > cap:
        raise AnalyticsError(
            f"{len(names)} segments make {len(names) * (len(names) - 1) // 2} pairs; overlap compares at most {cap} segments "
            "at once (SEGSTREAM_ANALYTICS_MAX_SEGMENTS): name the ones to compare, e.g. segments=a,b,c"
        )
    return names
