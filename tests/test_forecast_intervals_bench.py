"""bench/forecast_intervals.py's panel figures: the chance that an exactly calibrated interval
lands within 5 points of nominal, and pooled against mean coverage."""

import importlib.util
from math import comb
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "forecast_intervals.py"
spec = importlib.util.spec_from_file_location("forecast_intervals", BENCH)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_within_probability_sums_the_binomial_pmf_inside_five_points():
    # n = 10, p = 0.8: |k/10 - 0.8| <= 0.05 only for k = 8
    assert bench.within_probability(10, 0.8) == pytest.approx(comb(10, 8) * 0.8**8 * 0.2**2)
    # n = 20, p = 0.95: k = 18 (exactly 5 points off, included), 19 and 20
    by_hand = sum(comb(20, k) * 0.95**k * 0.05 ** (20 - k) for k in (18, 19, 20))
    assert bench.within_probability(20, 0.95) == pytest.approx(by_hand)
    # more values, a narrower spread of k/n: the chance grows towards 1
    assert bench.within_probability(30, 0.8) < bench.within_probability(300, 0.8) < 1
    assert bench.within_probability(3000, 0.8) == pytest.approx(1, abs=1e-9)


def test_panel_coverage_pools_values_and_averages_series():
    # two series (10 and 30 values per seed), two seeds
    hits = [[10, 8], [0, 6]]
    counts = [[10, 10], [30, 30]]
    pooled, mean = bench.panel_coverage(hits, counts)
    # pooled: seed 0 10/40, seed 1 14/40; mean: seed 0 (1 + 0)/2, seed 1 (0.8 + 0.2)/2
    assert pooled == pytest.approx((10 / 40 + 14 / 40) / 2)
    assert mean == pytest.approx((0.5 + 0.5) / 2)
