"""Backtest: replay a history with an event-time clock while an in-process learner learns from it.

The very code of the live system runs: the replay (``stream.replay``) decides
segment changes and training records exactly as workers would, and the records
go straight to a :class:`~stream.models.learner.Learner`, which validates each
model progressively (predict, then learn). Every ``snapshot_every`` learned
records the customers are scored with a fresh snapshot, as workers are by the
trainer's snapshots. Examples whose label horizon reaches past the end of the
history are never labelled (censored) and are reported as such.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from stream.models.learner import Learner
from stream.models.lifecycle import Modelling
from stream.models.records import TrainingRecord
from stream.replay import ReplayResult, replay
from stream.rules import RuleError, RuleSet


@dataclass
class Backtest:
    """What a backtest found: the learner's report, the replay, and the training records produced."""

    report: dict[str, Any]
    replay: ReplayResult
    records: Counter[str]
    censored: Counter[str]

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the quality report plus counts of events, customers, records and censored examples."""
        return {
            "customers": len(self.replay.profiles),
            "changes": len(self.replay.changes),
            "rejected": len(self.replay.rejected),
            "training_records": dict(self.records),
            "censored_examples": dict(self.censored),
            "segments": self.replay.summary(),
            "report": self.report,
        }


def backtest(
    records: Iterable[dict[str, Any]],
    ruleset: RuleSet,
    max_events: int,
    snapshot_every: int = 200,
    until: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Backtest:
    """Replay ``records`` under ``ruleset`` (which needs a ``models:`` section), learning as the live trainer would."""
    if ruleset.models is None:
        raise RuleError(["the rules have no 'models:' section, so nothing is learned; add e.g. 'models: {}' to a rule file"])
    learner = Learner(ruleset.models, ruleset.score_thresholds(), ruleset.score_segments())
    modelling = Modelling(ruleset.models, points_at=ruleset.points_at)
    produced: Counter[str] = Counter()
    version = 0

    def learn(record: TrainingRecord) -> None:
        nonlocal version
        learner.learn(record)
        produced[record.kind] += 1
        if sum(produced.values()) % snapshot_every == 0:
            version += 1
            modelling.snapshot = learner.snapshot(version)

    result = replay(records, ruleset, ruleset.policy(max_events), until=until, progress=progress, models=modelling, on_training=learn)
    censored = Counter(kind for profile in result.profiles.values() for kind in profile.examples)
    return Backtest(learner.report(), result, produced, censored)
