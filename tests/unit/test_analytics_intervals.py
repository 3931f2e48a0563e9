"""Confidence intervals against published values and scipy's own implementations."""

from __future__ import annotations

import pytest
from scipy import stats

from stream.analytics.intervals import newcombe, welch, wilson, z_value


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (81, 263), (56, 70), (48, 80), (10, 10), (3, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_equals_scipy(k: int, n: int, confidence: float) -> None:
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert wilson(k, n, confidence) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_wilson_without_observations_is_none() -> None:
    assert wilson(0, 0) is None


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [  # Newcombe (1998), "Interval estimation for the difference between independent proportions", Table II, method 10
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
    ],
)
def test_newcombe_reproduces_the_published_table(x1: int, n1: int, x2: int, n2: int, low: float, high: float) -> None:
    interval = newcombe(x1, n1, x2, n2)
    assert interval is not None
    assert interval == pytest.approx((low, high), abs=5e-5)


def test_newcombe_needs_both_arms() -> None:
    assert newcombe(1, 10, 0, 0) is None


@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_welch_equals_scipy(confidence: float) -> None:
    treated = [0.0, 0.0, 12.5, 40.0, 0.0, 7.25, 99.0, 0.0, 3.0]
    control = [0.0, 5.0, 0.0, 0.0, 18.0, 1.0]
    expected = stats.ttest_ind(treated, control, equal_var=False).confidence_interval(confidence)
    assert welch(treated, control, confidence) == pytest.approx((expected.low, expected.high), rel=1e-9)


def test_welch_edge_cases() -> None:
    assert welch([1.0], [1.0, 2.0]) is None
    assert welch([3.0, 3.0], [1.0, 1.0, 1.0]) == (2.0, 2.0)


def test_z_value() -> None:
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        z_value(95)
