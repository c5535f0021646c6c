"""Calibration: no hotspot in, (almost) no hotspot out, also for sparse counts; a planted
hotspot is found, also one hot grid among few."""

import numpy as np
import pytest

from gridgov.whistles.stats import NORMAL, classify, hotspots, weights_matrix

from .geometry import lattice_queen

SIDE = 40
SEEDS = range(200)
FDR_RATE = 0.10  # the loosest level, 90 %


@pytest.fixture(scope="module")
def weights():
    return weights_matrix(lattice_queen(SIDE, SIDE))


def test_uniform_rate_flags_almost_nothing_after_fdr(weights):
    flagged, any_flag, raw = [], [], []
    for seed in SEEDS:
        counts = np.random.default_rng(seed).poisson(5.0, SIDE * SIDE)
        h = hotspots(counts, weights)
        flagged.append((h.bins != 0).mean())
        any_flag.append((h.bins != 0).any())
        raw.append((classify(h.z, h.p, fdr=False) != 0).mean())
    # Without correction about 10 % of units are "hot" or "cold" by chance alone: the
    # problem FDR is there to solve, and proof this test would notice it.
    assert 0.08 < np.mean(raw) < 0.12
    # With it the share of flagged units is far below the FDR rate...
    assert np.mean(flagged) < FDR_RATE / 10
    assert max(flagged) < FDR_RATE
    # ...and under a complete null the FDR is the chance of flagging anything at all, which
    # BH holds at the rate for normal z. Gi* of small Poisson counts has a heavier upper tail
    # than the normal (about 0.15 measured at a mean of 5 per unit), hence the slack.
    assert np.mean(any_flag) < 2 * FDR_RATE


def test_planted_hotspot_is_found(weights):
    far = np.ones((SIDE, SIDE), bool)
    far[16:23, 6:13] = False  # the block and two units of margin
    for seed in range(50):
        rate = np.full((SIDE, SIDE), 5.0)
        rate[18:21, 8:11] = 15.0
        counts = np.random.default_rng(seed).poisson(rate).ravel()
        bins = hotspots(counts, weights).bins.reshape(SIDE, SIDE)
        assert bins[19, 9] == 3, seed  # the centre, hot at 99 %
        assert (bins[18:21, 8:11] > 0).sum() >= 5, seed
        assert (bins[far] != 0).mean() < 0.01, seed


@pytest.mark.parametrize("mean", [0.1, 0.3, 1.0])
def test_sparse_counts_flag_almost_nothing(weights, mean):
    """A category group has a few appeals per grid and week, often under one: counts that
    skewed are where the normal tail of z fails, and what count_p is for."""
    flagged, flagged_normal = [], []
    for seed in SEEDS:
        counts = np.random.default_rng(seed).poisson(mean, SIDE * SIDE)
        flagged.append((hotspots(counts, weights).bins != 0).any())
        flagged_normal.append((hotspots(counts, weights, pvalues=NORMAL).bins != 0).any())
    assert np.mean(flagged) <= FDR_RATE
    assert np.mean(flagged_normal) > 3 * FDR_RATE  # what the count p-values fix


def test_one_hot_grid_among_few_is_found():
    """64 grids, one of them with 15 to 64 more appeals of a group that averages 0.3 a grid.
    Its Gi* z tends to sqrt((N - c) / c) however many appeals it has (2.5 for an inner unit of
    an 8 × 8 lattice): the hot unit inflates the variance it is judged against, so the normal p
    rarely makes it a 95 % hotspot. The count p-values judge it against the other units."""
    w = weights_matrix(lattice_queen(8, 8))
    hot = 3 * 8 + 4
    found, found_normal, z = 0, 0, []
    for seed in range(50):
        counts = np.random.default_rng(seed).poisson(0.3, 64)
        counts[hot] += 15 + seed
        found += hotspots(counts, w).bins[hot] >= 2
        normal = hotspots(counts, w, pvalues=NORMAL)
        found_normal += normal.bins[hot] >= 2
        z.append(normal.z[hot])
    assert found == 50
    assert found_normal <= 5 and max(z) < 3.0
