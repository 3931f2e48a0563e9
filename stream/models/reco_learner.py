"""The trainer's recommender: river's ``reco.BiasedMF`` on implicit feedback with sampled negatives, bounded, evaluated progressively.

River's rankers learn a reward per ``(user, item)`` pair (``learn_one(user, item, y)``)
and rank by ``predict_one``; they know nothing of implicit feedback. So each
interaction (:mod:`stream.models.reco`) teaches, per product, the event's weight as
the reward (view 1 < add-to-cart 3 < purchase 5 by default) and, as reward 0,
``negatives`` items drawn uniformly from the catalogue that the customer never
interacted with — without them every reward is positive and the model would rate
every item alike. Uniform draws make popular items rank higher than under
popularity-weighted draws; that popularity bias is welcome in a shop.

**Progressive quality**: before learning a purchase, the customer's catalogue is
ranked as the API would serve it from a snapshot taken now (bought products left
out; popular items for a customer without an embedding) and its top ``k`` is scored
against the products bought (:mod:`stream.models.reco_quality`); the popularity
ranking is scored alongside as the baseline the model must beat.

**Bounds** (so the trainer state and the snapshot stay small): the ``items`` most
recently interacted products (popularity: their summed weights since they entered)
and the ``customers`` most recently active customers; an evicted item or customer
loses its embedding and starts afresh when it comes back. Per customer the last
:data:`SEEN_MAX` products interacted with (not drawn as negatives) and
:data:`BOUGHT_MAX` bought (never recommended) are remembered.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
from river import optim, reco

from stream.models.config import RecommendationsSpec
from stream.models.reco import Recommender, stack
from stream.models.reco_quality import RankingQuality
from stream.models.records import TrainingRecord

#: SGD learning rate of the biases and the latent factors.
LEARNING_RATE = 0.05
#: L2 regularisation of the biases and the latent factors.
L2 = 0.01
SEED = 42
#: Products remembered per customer as interacted with, and as bought.
SEEN_MAX = 500
BOUGHT_MAX = 200
#: How many of the most popular items the report lists.
TOP_ITEMS = 5


def new_model(factors: int) -> reco.BiasedMF:
    """A fresh, seeded ``reco.BiasedMF`` with ``factors`` latent factors."""
    sgd = optim.SGD(LEARNING_RATE)
    return reco.BiasedMF(
        n_factors=factors,
        bias_optimizer=sgd,
        latent_optimizer=sgd,
        l2_bias=L2,
        l2_latent=L2,
        latent_initializer=optim.initializers.Normal(mu=0.0, sigma=0.1, seed=SEED),
        seed=SEED,
    )


class Catalogue:
    """The kept items, least recently interacted first, with category and popularity; uniform draws in O(1)."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.recent: OrderedDict[str, None] = OrderedDict()
        self.category: dict[str, str | None] = {}
        self.popularity: dict[str, float] = {}
        self._items: list[str] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        """The item ids, least recently interacted first."""
        return iter(self.recent)

    def touch(self, item: str, category: str | None, weight: float) -> str | None:
        """Count an interaction of ``weight`` with ``item``; returns the item evicted to stay within the bound, if any."""
        if item in self.recent:
            self.recent.move_to_end(item)
        else:
            self.recent[item] = None
            self._index[item] = len(self._items)
            self._items.append(item)
        if category is not None or item not in self.category:
            self.category[item] = category
        self.popularity[item] = self.popularity.get(item, 0.0) + weight
        if len(self.recent) <= self.bound:
            return None
        evicted, _ = self.recent.popitem(last=False)
        last = self._items.pop()
        if last != evicted:
            self._items[self._index[evicted]] = last
            self._index[last] = self._index[evicted]
        del self._index[evicted], self.category[evicted], self.popularity[evicted]
        return evicted

    def draw(self, rng: random.Random) -> str:
        """An item drawn uniformly (the catalogue must not be empty)."""
        return self._items[rng.randrange(len(self._items))]


class Shopper:
    """What the trainer remembers of one customer: products interacted with and bought, oldest first."""

    __slots__ = ("seen", "bought")

    def __init__(self) -> None:
        self.seen: dict[str, None] = {}
        self.bought: dict[str, None] = {}

    def remember(self, item: str, purchase: bool) -> None:
        """Note an interaction with ``item`` (and a purchase), forgetting the oldest beyond the bounds."""
        for kept, bound, due in ((self.seen, SEEN_MAX, True), (self.bought, BOUGHT_MAX, purchase)):
            if due:
                kept.pop(item, None)
                kept[item] = None
                if len(kept) > bound:
                    del kept[next(iter(kept))]


class RecoLearner:
    """Learns interactions in topic order (progressive validation on purchases) and makes :class:`Recommender` snapshots."""

    def __init__(self, spec: RecommendationsSpec) -> None:
        self.spec = spec
        self.model = new_model(spec.factors)
        self.rng = random.Random(SEED)
        self.catalogue = Catalogue(spec.items)
        self.shoppers: OrderedDict[str, Shopper] = OrderedDict()
        self.interactions = 0
        self.quality = RankingQuality(spec.k)
        self.baseline = RankingQuality(spec.k)

    def learn(self, record: TrainingRecord) -> None:
        """Evaluate on (if a purchase), then learn, one interaction record."""
        customer, weight = record.customer_id, float(record.y or 0.0)
        purchase = record.x.get("purchase", 0.0) >= 0.5
        shopper = self._shopper(customer)
        relevant = {item for item, _ in record.items}
        if purchase:
            self._evaluate(customer, relevant)
        for item, category in record.items:
            evicted = self.catalogue.touch(item, category, weight)
            if evicted is not None:
                self.model.i_latents.pop(evicted, None)
                self.model.i_biases.pop(evicted, None)
            self.model.learn_one(customer, item, weight)
            for negative in self._negatives(shopper, relevant):
                self.model.learn_one(customer, negative, 0.0)
            shopper.remember(item, purchase)
        self.interactions += 1

    def _shopper(self, customer: str) -> Shopper:
        shopper = self.shoppers.pop(customer, None) or Shopper()
        self.shoppers[customer] = shopper
        if len(self.shoppers) > self.spec.customers:
            evicted, _ = self.shoppers.popitem(last=False)
            self.model.u_latents.pop(evicted, None)
            self.model.u_biases.pop(evicted, None)
        return shopper

    def _negatives(self, shopper: Shopper, relevant: set[str]) -> list[str]:
        """Up to ``negatives`` distinct catalogue items the customer never interacted with."""
        wanted = self.spec.negatives
        found: dict[str, None] = {}
        for _ in range(3 * wanted if len(self.catalogue) > 1 else 0):
            item = self.catalogue.draw(self.rng)
            if item not in relevant and item not in shopper.seen:
                found[item] = None
                if len(found) == wanted:
                    break
        return list(found)

    def _evaluate(self, customer: str, relevant: set[str]) -> None:
        if not len(self.catalogue):
            return
        now = self.recommender(self.interactions, [customer])
        k = self.spec.k
        self.quality.update([item for item, _, _ in now.rank(customer, k).items], relevant)
        bought = frozenset(now.bought.get(customer, ()))
        self.baseline.update([item for item, _, _ in now.rank(None, k, bought).items], relevant)

    def recommender(self, version: int, customers: list[str] | None = None) -> Recommender:
        """A snapshot of the catalogue and of ``customers`` (default: every customer kept) with an embedding."""
        model, factors = self.model, self.spec.factors
        items = list(self.catalogue)
        wanted = self.shoppers if customers is None else customers
        known = [c for c in wanted if c in model.u_latents]
        return Recommender(
            version=version,
            items=tuple(items),
            categories=tuple(self.catalogue.category[item] for item in items),
            popularity=np.array([self.catalogue.popularity[item] for item in items], dtype=np.float32),
            mean=float(model.global_mean.get()),
            item_bias=np.array([model.i_biases.get(item, 0.0) for item in items], dtype=np.float32),
            item_factors=stack([model.i_latents.get(item, np.zeros(factors)) for item in items], factors),
            customers={c: row for row, c in enumerate(known)},
            customer_bias=np.array([model.u_biases.get(c, 0.0) for c in known], dtype=np.float32),
            customer_factors=stack([model.u_latents[c] for c in known], factors),
            bought={c: tuple(shopper.bought) for c in wanted if (shopper := self.shoppers.get(c)) is not None and shopper.bought},
        )

    def report(self) -> dict[str, Any]:
        """JSON-ready: interactions learned, purchases evaluated, precision/MAP/hit rate at k of the model and of popularity."""
        popular = sorted(self.catalogue.popularity.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_ITEMS]
        return {
            "interactions": self.interactions,
            "purchases_evaluated": self.quality.n,
            "k": self.spec.k,
            "items": len(self.catalogue),
            "customers": len(self.shoppers),
            "model": self.quality.report(),
            "popular": self.baseline.report(),
            "top_items": [{"product_id": item, "category": self.catalogue.category[item], "popularity": w} for item, w in popular],
        }
