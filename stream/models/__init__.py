"""Scores learned online: churn, purchase propensity, lifetime value, RFM and behavioural clusters.

The parts, pure unless noted:

* :mod:`.config` — the ``models:`` section of the rule files (horizons, purchase events, k…).
* :mod:`.features` — the one feature function: a profile at a time -> named floats.
* :mod:`.records` — the records on the training topic: observations and labelled examples.
* :mod:`.labels` — per customer, opening examples at sampling points and resolving their
  delayed labels from later events or from timers.
* :mod:`.snapshot` — what workers score with: a versioned, picklable bundle of the models,
  the RFM quantile cut points and the cluster centroids.
* :mod:`.learner` — the trainer's state: river models learning with progressive validation
  (predict, then learn), streaming quantiles, online k-means, quality metrics.
* :mod:`.reco` — product recommendations: interactions from events, the snapshot's
  :class:`~stream.models.reco.Recommender`, the API answer and the ``recommended_category`` score;
  :mod:`.reco_learner` learns them (river ``reco.BiasedMF``), :mod:`.reco_quality` measures them.
* :mod:`.lifecycle` — the worker-side glue one customer step calls (labels + scoring).
* :mod:`.trainer` (I/O) — the process that reads the training topic and stores snapshots in Redis.
* :mod:`.backtest` — replay a history with an in-process learner and report quality.
"""
