"""Segment analytics: how segments overlap, and how their treatment and holdout members perform.

* :mod:`~stream.analytics.overlap` — Jaccard matrix and warnings (near-duplicates, subsets,
  too small, empty) from sizes and intersections; pure.
* :mod:`~stream.analytics.intersections` — those sizes and intersections read from the
  member sets in Redis.
* :mod:`~stream.analytics.intervals` — Wilson, Newcombe and Welch confidence intervals; pure.
* :mod:`~stream.analytics.outcomes` — per-entrant outcomes (goal, emails, revenue) and the
  comparison of the treatment and holdout arms; pure.
* :mod:`~stream.analytics.performance` — entries and outcomes from replaying an events source.
* :mod:`~stream.analytics.tables` — the CLI's tables; :mod:`~stream.analytics.http` — the API handler.
"""
