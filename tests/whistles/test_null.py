"""Calibration: no hotspot in, (almost) no hotspot out; a planted hotspot is found."""

import numpy as np
import pytest

from gridgov.whistles.stats import classify, hotspots, weights_matrix

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
