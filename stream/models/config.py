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
      recommendations:                     # product recommendations (off unless this key is present)
        weights: {Product Viewed: 1, Product Added: 3, Order Completed: 5}   # implicit feedback per event
        factors: 10                        # latent factors of the matrix factorisation
        negatives: 3                       # unseen items sampled as negatives per interaction
        items: 1000                        # most recently interacted items kept (the catalogue served)
        customers: 10000                   # most recently active customers with an embedding
        k: 10                              # precision@k / MAP@k on next purchases
      imputation:                          # how rules and features read a missing trait
        age: median                        #   the population's median (streaming quantile)
        country: {constant: US}            #   a constant
        income: missing                    #   the default: never matches

Every key is optional. Without a ``models:`` section in any rule file nothing is
learned or scored; an empty ``models: {}`` turns everything on with these defaults,
but recommendations, which are on only when ``recommendations:`` is present (they
add a training record per product event).
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
#: The category of a customer's top recommendation (see :mod:`stream.models.reco`).
RECOMMENDED_CATEGORY = "recommended_category"
#: Every score name the models produce (rules read them with ``{score: <name>, ...}``).
SCORES = (*KINDS, *RFM_SCORES, "cluster", RECOMMENDED_CATEGORY)
#: Model scores whose value is text (``rfm`` is three digits such as ``"545"``); every other score is a number.
TEXT_SCORES = frozenset({"rfm", RECOMMENDED_CATEGORY})
#: Implicit-feedback weight of each product event when ``recommendations.weights`` is not set.
DEFAULT_WEIGHTS = {"Product Viewed": 1.0, "Product Added": 3.0, "Order Completed": 5.0}


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


class RecommendationsSpec(RuleModel):
    """Product recommendations (:mod:`stream.models.reco`): event weights, model size and the bounds of what is kept."""

    enabled: bool = True
    weights: Annotated[dict[str, Annotated[float, Field(gt=0)]], Field(min_length=1)] = DEFAULT_WEIGHTS
    factors: Annotated[int, Field(ge=1, le=64)] = 10
    negatives: Annotated[int, Field(ge=0, le=20)] = 3
    items: Annotated[int, Field(ge=2, le=100_000)] = 1000
    customers: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    k: Annotated[int, Field(ge=1, le=100)] = 10


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
    recommendations: RecommendationsSpec | None = None
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

    def recommender(self) -> RecommendationsSpec | None:
        """The recommendations spec when they are on (the key is present and not ``enabled: false``)."""
        spec = self.recommendations
        return spec if spec is not None and spec.enabled else None

    def enabled(self) -> list[str]:
        """The model kinds that are on, in :data:`KINDS` order."""
        return [kind for kind in KINDS if self.spec(kind).enabled]
