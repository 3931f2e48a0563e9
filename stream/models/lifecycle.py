"""What one customer step does with learned models: label, sample, score, and say when to wake up.

:func:`stream.worker.step.advance` calls a :class:`Modelling` around each event::

    training += m.before_event(profile, record, ts)    # windows over and sampling points before ts, then labels ts decides
    apply_event(...); points = rules.points_at(profile, now)
    m.score(profile, now, points)                       # before the rules read the scores
    training += m.after_event(profile, ts, points)      # the first sampling point of a (new) grid
    ...
    training += m.expire(profile, now)
    profile.deadline = min(rules' deadline, m.deadline(profile, now))

Labels are learned whether or not a snapshot exists yet; scoring starts with the
first snapshot the worker receives (it replaces :attr:`Modelling.snapshot`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from stream.models import labels, reco
from stream.models.config import ModelsConfig
from stream.models.features import features, rfm_values
from stream.models.records import TrainingRecord
from stream.state.profile import Profile

if TYPE_CHECKING:  # only Snapshot.score is called; loading snapshots is the worker's business
    from stream.models.snapshot import Snapshot


class Modelling:
    """The worker side of the models under one ``models:`` config, scoring with the newest :attr:`snapshot`."""

    def __init__(
        self,
        config: ModelsConfig,
        snapshot: Snapshot | None = None,
        points_at: Callable[[Profile, int], Mapping[str, float]] = lambda profile, t: {},
    ) -> None:
        self.config = config
        self.snapshot = snapshot
        self.points_at = points_at  # the declared scores' values at a time (the rule set's points_at)
        # customer id -> when its RFM recency score changes, from its latest score() until deadline() reads it
        self._rfm_changes: dict[str, int] = {}

    def before_event(self, profile: Profile, record: dict[str, Any], ts: int) -> list[TrainingRecord]:
        """Records due before the event ``record`` at ``ts`` is applied: windows over, a sampling point, labels it decides, its products."""
        if self._withdrawn(profile):
            return []
        out = labels.expire(profile, ts)
        if profile.sampled_at is not None and labels.next_sample(profile, self.config) is None:
            profile.sampled_at = None  # silent too long: this event starts a new grid (after_event)
        out += self._sample_due(profile, ts)
        out += labels.resolve(profile, record, ts, self.config)
        return out + reco.interaction(profile.customer_id, record, ts, self.config)

    def after_event(self, profile: Profile, ts: int, points: Mapping[str, float]) -> list[TrainingRecord]:
        """The first sampling point of a grid, at the (applied) event at ``ts``."""
        if profile.sampled_at is not None or self._withdrawn(profile):
            return []
        return labels.sample(profile, ts, features(profile, ts, self.config, points), self.config)

    def _sample_due(self, profile: Profile, until: int) -> list[TrainingRecord]:
        t = labels.next_sample(profile, self.config)
        if t is None or t > until:
            return []
        return labels.sample(profile, t, features(profile, t, self.config, self.points_at(profile, t)), self.config)

    def score(self, profile: Profile, now: int, points: Mapping[str, float]) -> None:
        """Replace ``profile.scores`` with the snapshot's scores at ``now`` (nothing without a snapshot or consent),
        and ``profile.imputed`` with the values missing traits are read as (see ``ModelsConfig.imputation``)."""
        medians = self.snapshot.medians if self.snapshot is not None else {}
        imputed = {**self.config.constants(), **{t: medians[t] for t in self.config.median_traits() if t in medians}}
        if imputed != profile.imputed:
            profile.imputed = imputed
        if self._withdrawn(profile):
            profile.scores = {}
            return
        if self.snapshot is None:
            return
        x = features(profile, now, self.config, points)
        scores, changes = self.snapshot.score(x, rfm_values(profile, self.config), now)
        profile.scores = {**scores, **reco.category_score(self.snapshot, profile, self.config)}
        if changes is None:
            self._rfm_changes.pop(profile.customer_id, None)
        else:
            self._rfm_changes[profile.customer_id] = changes

    def expire(self, profile: Profile, now: int) -> list[TrainingRecord]:
        """Labels of the examples whose window is over at ``now``, and a sampling point due by then."""
        if self._withdrawn(profile):
            return []
        return labels.expire(profile, now) + self._sample_due(profile, now)

    def _withdrawn(self, profile: Profile) -> bool:
        """Whether the customer denied the models' consent purpose; if so, forget its open examples and grid."""
        purpose = self.config.purpose
        if purpose is None or profile.consent.get(purpose.lower()) is not False:
            return False
        profile.examples.clear()
        profile.sampled_at = None
        return True

    def deadline(self, profile: Profile, now: int) -> int | None:
        """When the customer next needs a step (> ``now``): an example's window ends, a sampling point, its RFM recency changes, or a rescore.

        The RFM change is the one the latest :meth:`score` of this customer returned; reading it forgets it.
        """
        candidates = [
            labels.next_expiry(profile),
            labels.next_sample(profile, self.config),
            self._rfm_changes.pop(profile.customer_id, None),
        ]
        if self.snapshot is not None and profile.scores:
            candidates.append(now + self.config.rescore_every)
        due = [t for t in candidates if t is not None]
        return max(min(due), now + 1) if due else None
