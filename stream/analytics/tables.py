"""Readable text tables of the overlap and performance reports, for ``segstream analytics``; pure."""

from __future__ import annotations

from typing import Any

#: Pairs shown by :func:`overlap_table` (the JSON output has them all).
MAX_PAIRS_SHOWN = 30
_METRICS = (("conversion", "conversion"), ("email_open", "email open rate"), ("email_click", "email click rate"))


def overlap_table(report: dict[str, Any]) -> str:
    """Sizes, the most overlapping pairs (Jaccard, common members) and the warnings."""
    sizes = report["sizes"]
    width = max([len(n) for n in sizes] + [7])
    lines = [f"{'segment':<{width}}  {'members':>9}"] + [f"{name:<{width}}  {size:>9,}" for name, size in sizes.items()]
    matrix, shared = report["matrix"], report["intersections"]
    pairs = [(a, b) for i, a in enumerate(sizes) for b in list(sizes)[i + 1 :] if shared[a][b]]
    pairs.sort(key=lambda p: -(matrix[p[0]][p[1]] or 0))
    if pairs:
        lines += ["", f"{'pair':<{2 * width + 3}}  {'common':>9}  {'jaccard':>7}"]
        for a, b in pairs[:MAX_PAIRS_SHOWN]:
            lines.append(f"{a + ' & ' + b:<{2 * width + 3}}  {shared[a][b]:>9,}  {matrix[a][b]:>7.3f}")
        if len(pairs) > MAX_PAIRS_SHOWN:
            lines.append(f"... {len(pairs) - MAX_PAIRS_SHOWN} more overlapping pairs (--json shows every pair)")
    else:
        lines += ["", "no two segments share a member"]
    lines += ["", "warnings:" if report["warnings"] else "no warnings"]
    lines += [f"  {w['kind']:<15} {w['message']}" for w in report["warnings"]]
    return "\n".join(lines)


def sizes_table(segment: str, points: list[dict[str, Any]]) -> str:
    """A segment's size over time: one line per step (its time, last sample, min..max) with a bar scaled to the maximum.

    >>> print(sizes_table("s", [{"at": "t1", "members": 2, "min": 0, "max": 2}, {"at": "t2", "members": 4, "min": 4, "max": 4}]))
    s: 2 points, 0..4 members
    t1  2  (0..2)  ████
    t2  4  (4..4)  ████████
    """
    if not points:
        return f"{segment}: no samples in this range (the API samples sizes while it runs; SEGSTREAM_SIZES_EVERY)"
    top = max(p["max"] for p in points) or 1
    lines = [f"{segment}: {len(points)} points, {min(p['min'] for p in points)}..{max(p['max'] for p in points)} members"]
    width = max(len(f"{p['members']:,}") for p in points)
    for p in points:
        full = round(8 * p["members"] / top)
        lines.append(f"{p['at']}  {p['members']:>{width},}  ({p['min']:,}..{p['max']:,})  {'█' * full}")
    return "\n".join(lines)


def performance_table(report: dict[str, Any]) -> str:
    """Per segment: entrants, then per metric each arm's figure, the difference with its interval, and the lift."""
    level = f"{report['confidence']:.0%}"
    head = f"goal {report['goal']!r} within {report['within']} of entering; {level} intervals; data up to {report['observed_until']}"
    blocks = [head]
    for seg in report["segments"]:
        holdout = f" (holdout {seg['holdout']:g}%)" if seg["holdout"] else ""
        lines = [
            "",
            f"{seg['segment']}{holdout}: {seg['entrants']:,} entered, {seg['measured']:,} measured, "
            f"{seg['censored']:,} too recent (window not over)",
        ]
        arms = list(seg["conversion"]["arms"])
        lines.append(f"  {'metric':<18}" + "".join(f"{arm:>24}" for arm in arms) + (f"  {'difference [' + level + ' CI]':>30}  {'lift':>8}" if len(arms) > 1 else ""))
        for key, label in _METRICS:
            metric = seg[key]
            cells = "".join(f"{_rate(metric['arms'][arm]):>24}" for arm in arms)
            lines.append(f"  {label:<18}{cells}{_comparison(metric, percent=True)}")
        revenue = seg["revenue_per_member"]
        cells = "".join(f"{_mean(revenue['arms'][arm]):>24}" for arm in arms)
        lines.append(f"  {'revenue / member':<18}{cells}{_comparison(revenue, percent=False)}")
        if seg["email_base"] == "members":
            lines.append("  (no Email Delivered / Email Sent events: email rates are per entrant)")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _rate(arm: dict[str, Any]) -> str:
    if arm["rate"] is None:
        return "n/a (0)"
    return f"{arm['rate']:.1%} ({arm['count']:,}/{arm['n']:,})"


def _mean(arm: dict[str, Any]) -> str:
    return "n/a (0)" if arm["mean"] is None else f"{arm['mean']:,.2f} (n {arm['n']:,})"


def _comparison(metric: dict[str, Any], percent: bool) -> str:
    """The difference, its interval and the lift; empty without a treatment and a control arm."""
    if "difference" not in metric:
        return ""
    scale, unit = (100, " pts") if percent else (1, "")
    if metric["difference"] is None:
        text = "n/a"
    else:
        ci = metric["difference_ci"]
        interval = f" [{ci[0] * scale:+.1f}, {ci[1] * scale:+.1f}]" if ci is not None else " [n/a]"
        text = f"{metric['difference'] * scale:+.1f}{unit}{interval}"
    lift = "n/a" if metric["lift"] is None else f"{metric['lift']:+.1%}"
    return f"  {text:>30}  {lift:>8}"
