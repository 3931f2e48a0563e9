"""Product recommendations: interactions workers publish, the ranking the snapshot serves, the rule score.

**What is learned.** A track event named in ``models.recommendations.weights`` that
carries products — ``properties.product_id`` (with ``category``), or Segment's
``properties.products[]`` list of them (orders) — is an *interaction*: a training
record (:data:`~stream.models.records.INTERACTION`) with the products and the event's
implicit-feedback weight (default view 1 < add-to-cart 3 < purchase 5). A purchase is
an event of ``models.purchase_events``. The trainer learns them with river's
``reco.BiasedMF`` (:mod:`stream.models.reco_learner`).

**What is served.** The snapshot holds a :class:`Recommender`: plain numpy arrays
of the kept items (biases, factors, categories, popularity) and of the most recently
active customers (biases, factors, the products they bought). A customer's score for
an item is river's ``predict_one`` — ``mean + b_u + b_i + <v_u, v_i>`` — computed for
every item at once; a customer without an embedding (new, evicted, or who denied the
models' consent purpose) gets the most popular items (``"source": "popular"``).
Items the customer bought are never recommended: those in its profile history
(kept inside the rules' longest window, at least 30 days, as ``product_id`` of
purchase events) and those the trainer saw it buy (as of the snapshot).

**In rules.** ``{score: recommended_category, eq: premium}`` reads the category of
the customer's top personal recommendation (no value for a cold-start customer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

from stream.models.config import RECOMMENDED_CATEGORY, ModelsConfig
from stream.models.records import INTERACTION, TrainingRecord
from stream.state.profile import Profile, event_props, history_name

if TYPE_CHECKING:  # snapshot.py imports this module
    from stream.models.snapshot import Snapshot

#: Most products one event (an order) contributes to an interaction.
MAX_ITEMS_PER_EVENT = 50
#: Ranking sources in answers: the customer's embedding, or popularity (cold start).
PERSONAL, POPULAR = "personal", "popular"
#: How many items one request may ask for, and how many when it does not say.
DEFAULT_COUNT, MAX_COUNT = 10, 100
#: Why ``GET /v1/customers/{id}/recommendations`` answers 404 before a recommender is served.
NOT_READY = (
    "no recommendations yet: the rules' models: section needs a 'recommendations:' key, and the trainer serves them "
    "once it learned models.min_examples product interactions"
)

Item = tuple[str, str | None]


def products(props: Mapping[str, Any]) -> tuple[Item, ...]:
    """The ``(product id, category)`` pairs an event's properties name: ``product_id``, then ``products[]``, deduplicated.

    >>> products({"product_id": 7, "category": "premium", "products": [{"product_id": "8"}, {"sku": "x"}]})
    (('7', 'premium'), ('8', None))
    """
    listed = props.get("products")
    found: dict[str, str | None] = {}
    for entry in chain((props,), listed if isinstance(listed, list) else ()):
        item = _id(entry.get("product_id")) if isinstance(entry, Mapping) else None
        if item is not None and item not in found:
            found[item] = _id(entry.get("category"))
            if len(found) == MAX_ITEMS_PER_EVENT:
                break
    return tuple(found.items())


def _id(value: Any) -> str | None:
    """A product id or category as text: a non-empty string or an integer; anything else is none."""
    if isinstance(value, str):
        return value or None
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def interaction(customer_id: str, record: dict[str, Any], ts: int, config: ModelsConfig) -> list[TrainingRecord]:
    """The interaction record of the events-topic ``record`` at ``ts``, if it is a weighted product event (else none)."""
    spec = config.recommender()
    if spec is None or record["type"] != "track":
        return []
    name = history_name(record)
    weight = spec.weights.get(name)
    items = products(event_props(record)) if weight is not None else ()
    if not items:
        return []
    purchase = 1.0 if name in config.purchase_events else 0.0
    return [TrainingRecord(customer_id, INTERACTION, ts, {"purchase": purchase}, y=weight, items=items)]


def bought(profile: Profile, config: ModelsConfig) -> set[str]:
    """Products the customer bought according to its profile history (a window: see the module docstring)."""
    names = frozenset(config.purchase_events)
    return {item for event in profile.history if event.name in names for item, _ in products(event.props)}


def withdrawn(profile: Profile, config: ModelsConfig) -> bool:
    """Whether the customer denied the models' consent purpose (then nothing personal is served)."""
    return config.purpose is not None and profile.consent.get(config.purpose.lower()) is False


@dataclass(frozen=True, slots=True)
class Ranked:
    """A ranking for one customer: ``(item, category, score)`` best first, and whether it is personal or popular."""

    items: list[tuple[str, str | None, float]]
    source: str


@dataclass(frozen=True, slots=True)
class Recommender:
    """What the snapshot serves recommendations with (see the module docstring); ``version`` = interactions learned."""

    version: int
    items: tuple[str, ...]
    categories: tuple[str | None, ...]
    popularity: np.ndarray
    mean: float
    item_bias: np.ndarray
    item_factors: np.ndarray
    customers: dict[str, int]
    customer_bias: np.ndarray
    customer_factors: np.ndarray
    bought: dict[str, tuple[str, ...]]

    def scores(self, customer_id: str) -> np.ndarray | None:
        """The customer's predicted preference for every item (river's BiasedMF equation), ``None`` without an embedding."""
        row = self.customers.get(customer_id)
        if row is None:
            return None
        return self.mean + self.customer_bias[row] + self.item_bias + self.item_factors @ self.customer_factors[row]

    def rank(self, customer_id: str | None, n: int, exclude: Set[str] = frozenset()) -> Ranked:
        """The ``n`` best items for the customer (``None``: popular only) leaving out ``exclude`` and what it bought."""
        scores = self.scores(customer_id) if customer_id is not None else None
        source = PERSONAL if scores is not None else POPULAR
        values = scores if scores is not None else self.popularity
        left_out = exclude | frozenset(self.bought.get(customer_id, ())) if customer_id is not None else exclude
        ranked: list[tuple[str, str | None, float]] = []
        for index in _best(values, n + len(left_out)):
            item = self.items[index]
            if item not in left_out:
                ranked.append((item, self.categories[index], float(values[index])))
                if len(ranked) == n:
                    break
        return Ranked(ranked, source)


def _best(values: np.ndarray, m: int) -> np.ndarray:
    """Indices of the ``m`` largest ``values``, largest first (ties: lower index first)."""
    if m < len(values):
        candidates = np.argpartition(-values, m - 1)[:m]
        return candidates[np.lexsort((candidates, -values[candidates]))]
    return np.argsort(-values, kind="stable")


def recommender_of(snapshot: Snapshot | None) -> Recommender | None:
    """The snapshot's recommender; ``None`` for a snapshot pickled before recommendations existed (it lacks the field)."""
    return getattr(snapshot, "recommender", None)


def category_score(snapshot: Snapshot | None, profile: Profile, config: ModelsConfig) -> dict[str, dict[str, Any]]:
    """``{"recommended_category": {"v": category, "m": version}}`` for a customer whose top personal recommendation has a category, else ``{}``."""
    recommender = recommender_of(snapshot) if config.recommender() is not None else None
    if recommender is None or profile.customer_id not in recommender.customers or withdrawn(profile, config):
        return {}
    top = recommender.rank(profile.customer_id, 1, bought(profile, config)).items
    if not top or top[0][1] is None:
        return {}
    return {RECOMMENDED_CATEGORY: {"v": top[0][1], "m": recommender.version}}


def answer(recommender: Recommender, profile: Profile, n: int, config: ModelsConfig) -> dict[str, Any]:
    """The body of ``GET /v1/customers/{id}/recommendations``: the top ``n`` items not bought, their source and the model version."""
    exclude = bought(profile, config)
    ranked = recommender.rank(None if withdrawn(profile, config) else profile.customer_id, n, exclude)
    return {
        "customer_id": profile.customer_id,
        "source": ranked.source,
        "model_version": recommender.version,
        "items": [{"product_id": item, "category": category, "score": score} for item, category, score in ranked.items],
    }


def stack(vectors: Sequence[np.ndarray], factors: int) -> np.ndarray:
    """Vectors as the rows of one float32 matrix (``(0, factors)`` when there are none)."""
    return np.array(vectors, dtype=np.float32).reshape(len(vectors), factors)


def count(raw: str | None) -> int:
    """The ``n`` query parameter (1..:data:`MAX_COUNT`, default :data:`DEFAULT_COUNT`); ``ValueError`` saying what is expected."""
    if raw is None:
        return DEFAULT_COUNT
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_COUNT:
        return int(raw)
    raise ValueError(f"query parameter 'n' must be an integer from 1 to {MAX_COUNT}, got {raw!r}")
