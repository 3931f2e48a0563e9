"""The ``models:`` section of the rule files: which scores are learned and their label horizons.

.. code-block:: yaml

    models:
      purchase_events: [Order Completed]   # what counts as a purchase (RFM, propensity, LTV)
      sample_every: 1d                     # at most one observation per customer per this
      rescore_every: 1d                    # rescore customers with no event at least this often
      min_examples: 50                     # a model scores only after learning this many examples
      churn: {horizon: 30d}                # label 1: no event at all within the horizon
      purchase_propensity: {horizon: 14d}  # label 1: a purchase within the horizon
      ltv: {horizon: 90d}                  # label: revenue within the horizon (regression)
      clusters: {k: 4}                     # behavioural clusters (online k-means)
      imputation:                          # how rules and features read a missing trait
        age: median                        #   the population's median (streaming quantile)
        country: {constant: US}            #   a constant
        income: missing                    #   the default: never matches

Every key is optional. Without a ``models:`` section in any rule file nothing is
learned or scored; an empty ``models: {}`` turns everything on with these defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from stream.rules.durations import UNITS_MS, Duration
from stream.rules.model import RuleModel

DAY_MS = UNITS_MS["d"]
#: The longest window the feature function reads; profiles keep at least this much history when models are on.
FEATURE_WINDOW_MS = 30 * DAY_MS
#: The classifiers, then the regression: the model kinds a trainer learns.
CLASSIFIERS = ("churn", "purchase_propensity")
KINDS = (*CLASSIFIERS, "ltv")
#: Each model's label horizon when the rules do not set one.
DEFAULT_HORIZONS = {"churn": "30d", "purchase_propensity": "14d", "ltv": "90d"}
#: RFM scores: recency, frequency and monetary value, each 1-5; ``rfm`` is the three digits as text ("545").
RFM_SCORES = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm")
#: Every score name the models produce (rules read them with ``{score: <name>, ...}``).
SCORES = (*KINDS, *RFM_SCORES, "cluster")


class ModelSpec(RuleModel):
    """One learned model: whether it is on, and the horizon its label looks ahead."""

    enabled: bool = True
    horizon: Duration


class ClusterSpec(RuleModel):
    """Behavioural clusters: whether they are on and how many."""

    enabled: bool = True
    k: Annotated[int, Field(ge=2, le=12)] = 4


class Constant(RuleModel):
    """Imputation by a constant: ``{constant: US}``."""

    constant: str | int | float | bool


#: How a missing trait is read by rules and features: the population's ``median`` (numbers,
#: from the trainer's streaming quantiles), a ``{constant: ...}``, or ``missing`` (never matches).
Imputation = Literal["median", "missing"] | Constant


class ModelsConfig(RuleModel):
    """How scores are learned; see the module docstring for each key."""

    purchase_events: Annotated[list[str], Field(min_length=1)] = ["Order Completed"]
    #: The consent purpose learning serves (e.g. ``analytics``): customers who denied it are neither sampled nor scored.
    purpose: str | None = None
    sample_every: Duration = DAY_MS
    rescore_every: Duration = DAY_MS
    min_examples: Annotated[int, Field(ge=1)] = 50
    churn: ModelSpec = ModelSpec(horizon=DEFAULT_HORIZONS["churn"])
    purchase_propensity: ModelSpec = ModelSpec(horizon=DEFAULT_HORIZONS["purchase_propensity"])
    ltv: ModelSpec = ModelSpec(horizon=DEFAULT_HORIZONS["ltv"])

    @model_validator(mode="before")
    @classmethod
    def _default_horizons(cls, data: Any) -> Any:
        """A model written without ``horizon`` (``churn: {enabled: false}``) keeps its default one."""
        if isinstance(data, dict):
            data = {
                key: {"horizon": DEFAULT_HORIZONS[key], **value} if key in DEFAULT_HORIZONS and isinstance(value, dict) else value
                for key, value in data.items()
            }
        return data
    clusters: ClusterSpec = ClusterSpec()
    imputation: dict[str, Imputation] = {}

    def spec(self, kind: str) -> ModelSpec:
        """The spec of model ``kind`` (one of :data:`KINDS`)."""
        return getattr(self, kind)

    def median_traits(self) -> tuple[str, ...]:
        """The traits imputed by the population's median."""
        return tuple(sorted(name for name, policy in self.imputation.items() if policy == "median"))

    def constants(self) -> dict[str, Any]:
        """The traits imputed by a constant, with it."""
        return {name: policy.constant for name, policy in self.imputation.items() if isinstance(policy, Constant)}

    def enabled(self) -> list[str]:
        """The model kinds that are on, in :data:`KINDS` order."""
        return [kind for kind in KINDS if self.spec(kind).enabled]
