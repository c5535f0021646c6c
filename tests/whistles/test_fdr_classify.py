import numpy as np
import pytest
from scipy import special, stats

from gridgov.whistles.stats import BIN_NAMES, LEVELS, classify, fdr_bh


def mixed_pvalues(seed, m=500):
    rng = np.random.default_rng(seed)
    signal = rng.uniform(0, 0.0005, size=m // 10)
    return rng.permutation(np.concatenate([signal, rng.uniform(size=m - signal.size)]))


@pytest.mark.parametrize("seed", range(5))
def test_adjusted_pvalues_are_scipys(seed):
    p = mixed_pvalues(seed)
    np.testing.assert_allclose(fdr_bh(p).adjusted, stats.false_discovery_control(p, method="bh"), rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.10])
@pytest.mark.parametrize("seed", range(5))
def test_rejections_follow_the_step_up_rule(seed, alpha):
    p = mixed_pvalues(seed)
    m = p.size
    ranked = np.sort(p)
    passing = np.flatnonzero(ranked <= np.arange(1, m + 1) * alpha / m)
    k = passing[-1] + 1 if passing.size else 0
    expected = p <= ranked[k - 1] if k else np.zeros(m, bool)
    result = fdr_bh(p, alpha)
    np.testing.assert_array_equal(result.reject, expected)
    np.testing.assert_array_equal(result.reject, stats.false_discovery_control(p) <= alpha)
    assert 0 < result.reject.sum() < m


def test_ties_edges_and_bad_input():
    r = fdr_bh([0.01, 0.01, 0.01, 0.5], 0.05)
    assert r.reject.tolist() == [True, True, True, False]
    np.testing.assert_allclose(r.adjusted, stats.false_discovery_control([0.01, 0.01, 0.01, 0.5]))
    assert fdr_bh([1.0, 1.0]).adjusted.tolist() == [1.0, 1.0]
    assert fdr_bh([]).reject.size == 0
    for bad in ([0.1, 1.2], [-0.1], [np.nan], [[0.1]]):
        with pytest.raises(ValueError):
            fdr_bh(bad)


def test_bins_without_fdr_are_the_arcgis_thresholds():
    z = np.array([3.0, 2.2, 1.7, 1.0, 0.0, -1.7, -2.2, -3.0])
    p = 2 * special.ndtr(-np.abs(z))
    assert classify(z, p, fdr=False).tolist() == [3, 2, 1, 0, 0, -1, -2, -3]
    assert [BIN_NAMES[b] for b in classify(z, p, fdr=False)][:2] == ["hot_99", "hot_95"]


def test_fdr_demotes_a_lone_small_pvalue_among_many():
    p = np.full(100, 0.9)
    p[0] = 0.009  # raw 99 %, but 100 tests: adjusted 0.9
    p[1] = 0.0001  # adjusted 0.01: still 99 %
    z = np.where(p < 0.5, 3.0, 0.1)
    assert classify(z, p, fdr=False)[:2].tolist() == [3, 3]
    assert classify(z, p)[:2].tolist() == [0, 3]


@pytest.mark.parametrize("seed", range(5))
def test_fdr_bins_are_bh_run_at_each_confidence_level(seed):
    # ArcGIS's procedure: a BH critical p for each of 90/95/99 %, keep the strictest level met.
    rng = np.random.default_rng(seed)
    z = np.concatenate([rng.normal(size=900), rng.normal(3, 1, size=100) * rng.choice([-1, 1], 100)])
    p = 2 * special.ndtr(-np.abs(z))
    expected = np.zeros(z.size, int)
    for bin_, alpha in sorted(LEVELS, key=lambda level: level[0]):
        expected[fdr_bh(p, alpha).reject] = bin_
    expected = expected * np.sign(z).astype(int)
    bins = classify(z, p)
    np.testing.assert_array_equal(bins, expected)
    assert {-3, 0, 3} <= set(bins.tolist())
    assert bins.dtype == np.int8
