"""gi_star against esda's G_Local(star=True) on the same counts and weights."""

import warnings

import esda
import libpysal
import numpy as np
import pytest
from scipy import stats

from gridgov.whistles.stats import gi_star, weights_matrix

from .geometry import lattice_queen, neighbours_of, shapely_queen, voronoi_cells

TOLERANCE = 1e-6


def esda_gi_star(y, w, transform):
    # A binary W ("B") makes esda put 1 on the diagonal for both transforms, without the
    # warning it gives when it must guess the self-weight of an "O" W.
    w.transform = "B"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"Gi\* requested")
        warnings.filterwarnings("ignore", message="The weights matrix is not fully connected")
        return esda.G_Local(y, w, transform=transform, star=True, permutations=0)


def planted_lattice_counts(seed):
    rng = np.random.default_rng(seed)
    rate = np.full((20, 20), 4.0)
    rate[3:7, 12:16] = 12.0  # the planted cluster
    rate[15:18, 2:5] = 0.5  # and a quiet corner
    return rng.poisson(rate).ravel()


@pytest.mark.parametrize("transform", ["B", "R"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lattice_matches_esda(transform, seed):
    y = planted_lattice_counts(seed)
    w = libpysal.weights.lat2W(20, 20, rook=False)
    ours = gi_star(y, neighbours_of(w), transform=transform)
    theirs = esda_gi_star(y, w, transform)
    assert np.abs(ours.z - theirs.Zs).max() < TOLERANCE
    # esda's p_norm is one-sided (its docs: double it for a two-sided test)
    np.testing.assert_allclose(ours.p, 2 * theirs.p_norm, rtol=1e-9, atol=1e-12)
    assert ours.z.reshape(20, 20)[4:6, 13:15].min() > 2


def test_our_lattice_queen_is_libpysals():
    w = libpysal.weights.lat2W(20, 20, rook=False)
    ours = lattice_queen(20, 20)
    assert all(np.array_equal(a, np.sort(b)) for a, b in zip(ours, neighbours_of(w), strict=True))


@pytest.mark.parametrize("transform", ["B", "R"])
@pytest.mark.parametrize("seed", [3, 4])
def test_voronoi_polygons_match_esda(transform, seed):
    cells, points = voronoi_cells(150, seed)
    nbrs = shapely_queen(cells)
    # the same contiguity as libpysal's vertex-based Queen on these polygons
    queen = libpysal.weights.Queen.from_iterable(cells)
    assert all(set(nbrs[i]) == set(queen.neighbors[i]) for i in range(len(cells)))

    rng = np.random.default_rng(seed)
    near = np.hypot(*(points - [0.3, 0.7]).T) < 0.2
    y = rng.poisson(np.where(near, 15.0, 5.0))
    w = libpysal.weights.W({i: list(map(int, nb)) for i, nb in enumerate(nbrs)}, silence_warnings=True)
    ours = gi_star(y, nbrs, transform=transform)
    theirs = esda_gi_star(y, w, transform)
    assert np.abs(ours.z - theirs.Zs).max() < TOLERANCE
    np.testing.assert_allclose(ours.p, 2 * theirs.p_norm, rtol=1e-9, atol=1e-12)
    assert ours.z[near].mean() > 1


@pytest.mark.parametrize("transform", ["B", "R"])
def test_islands_and_uneven_neighbourhoods_match_esda(transform):
    nbrs = {0: [1, 2], 1: [0], 2: [0, 3, 4], 3: [2], 4: [2], 5: [], 6: [7], 7: [6]}
    y = np.array([3, 9, 4, 0, 7, 12, 1, 2])
    w = libpysal.weights.W(nbrs, silence_warnings=True)
    ours = gi_star(y, [nbrs[i] for i in range(8)], transform=transform)
    assert np.abs(ours.z - esda_gi_star(y, w, transform).Zs).max() < TOLERANCE


def test_weights_from_lists_or_matrix_agree():
    y = planted_lattice_counts(7)
    nbrs = lattice_queen(20, 20)
    w = weights_matrix(nbrs)
    assert w.shape == (400, 400) and (w.diagonal() == 1).all() and w.nnz == 400 + sum(map(len, nbrs))
    # self-references and repeats in the lists change nothing
    messy = [np.concatenate([nb, nb[:1], [i]]) for i, nb in enumerate(nbrs)]
    for transform in "BR":
        z = gi_star(y, nbrs, transform=transform).z
        np.testing.assert_array_equal(gi_star(y, w, transform=transform).z, z)
        np.testing.assert_array_equal(gi_star(y, messy, transform=transform).z, z)


def test_textbook_gi_star_by_hand():
    # Getis & Ord (1995), binary weights, self included, written out one unit at a time.
    y = np.array([1.0, 5, 2, 8, 3, 0, 4])
    nbrs = [[1], [0, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5]]
    n, mean, s = len(y), y.mean(), np.sqrt((y**2).mean() - y.mean() ** 2)
    expected = []
    for i, nb in enumerate(nbrs):
        ids = [i, *nb]
        wsum = len(ids)
        expected.append((y[ids].sum() - mean * wsum) / (s * np.sqrt((n * wsum - wsum**2) / (n - 1))))
    g = gi_star(y, nbrs)
    np.testing.assert_allclose(g.z, expected, rtol=1e-12)
    np.testing.assert_allclose(g.p, 2 * stats.norm.sf(np.abs(expected)), rtol=1e-12)


@pytest.mark.parametrize("y", [np.zeros(9), np.full(9, 4.0)])
def test_no_variance_means_no_evidence(y):
    g = gi_star(y, lattice_queen(3, 3))
    assert (g.z == 0).all() and (g.p == 1).all()


def test_bad_input_is_refused():
    nbrs = lattice_queen(2, 2)
    with pytest.raises(ValueError):
        gi_star([1, 2, -1, 3], nbrs)
    with pytest.raises(ValueError):
        gi_star([1, 2, np.nan, 3], nbrs)
    with pytest.raises(ValueError):
        gi_star([1, 2, 3], nbrs)
    with pytest.raises(ValueError):
        gi_star([1, 2, 3, 4], [[1], [0], [5], []])
    with pytest.raises(ValueError):
        gi_star([1, 2, 3, 4], nbrs, transform="V")
