"""Words a marketer reads for a behavioural cluster's centroid ("frequent, low basket, price-sensitive").

A centroid is in standardized units (z-scores of :data:`~stream.models.features.CLUSTER_FEATURES`).
Each feature far enough from average (``|z| >= 0.5``) contributes its high or low word,
strongest first, at most three; a centroid near average everywhere is "average".

>>> describe({"purchases": 1.2, "aov": -0.8, "discount_share": 0.9, "views_30d": 0.1})
'frequent, price-sensitive, low basket'
>>> describe({"purchases": 0.2})
'average'
"""

from __future__ import annotations

from collections.abc import Mapping

#: Per cluster feature, the word for a high value and the word for a low one.
WORDS: dict[str, tuple[str, str]] = {
    "purchases": ("frequent", "rare buyers"),
    "aov": ("high basket", "low basket"),
    "discount_share": ("price-sensitive", "full-price"),
    "views_30d": ("heavy browsers", "light browsers"),
    "days_since_purchase": ("lapsed", "recent buyers"),
}
#: The smallest distance from average (in standard deviations) worth a word.
MIN_Z = 0.5
#: The most words in one description.
MAX_WORDS = 3


def describe(centroid: Mapping[str, float]) -> str:
    """A few words for ``centroid`` (feature -> z-score); a feature missing from :data:`WORDS` reads "high/low <name>"."""
    strong = sorted(((abs(z), name, z) for name, z in centroid.items() if abs(z) >= MIN_Z), reverse=True)
    words = [_word(name, z) for _, name, z in strong[:MAX_WORDS]]
    return ", ".join(words) if words else "average"


def _word(name: str, z: float) -> str:
    high, low = WORDS.get(name, (f"high {name}", f"low {name}"))
    return high if z > 0 else low
