"""Hotspot statistics: Getis-Ord Gi*, Benjamini-Hochberg FDR, hot/cold bins, trend labels.

Plain arrays in, plain arrays out: no ORM and no Django, so each step is testable alone and a
whole city (10,000 grids) takes milliseconds. Units are the positions 0..n-1 of the arrays;
the caller keeps the mapping to grid ids (`neighbours.grid_neighbours` returns it).

    ids, nbrs = grid_neighbours(connection)
    now = hotspots(counts_now, nbrs)                  # Gi* z, p (count_p) and bins -3..3
    labels = trend(now, [hotspots(c, nbrs) for c in earlier_counts])

`gi_star` reproduces esda's `G_Local(y, w, transform=..., star=True).Zs` (the tests compare
them to 1e-6); esda itself is a test-only dependency and is never imported here. The p-values
`hotspots` classifies are count_p's by default: Gi*'s neighbourhood sums against a negative
binomial of the other units, valid for the few appeals a grid has per category group and
window, where the normal tail of z flags hotspots in data that has none.
"""

from typing import NamedTuple

import numpy as np
from scipy import sparse, special

BINARY = "B"
ROW_STANDARDISED = "R"

# Confidence levels as analysts know them from ArcGIS: bin, two-sided alpha.
LEVELS = ((3, 0.01), (2, 0.05), (1, 0.10))
BIN_NAMES = {
    3: "hot_99",
    2: "hot_95",
    1: "hot_90",
    0: "not_significant",
    -1: "cold_90",
    -2: "cold_95",
    -3: "cold_99",
}

NEW = "new"
INTENSIFYING = "intensifying"
PERSISTENT = "persistent"
DIMINISHING = "diminishing"
SPORADIC = "sporadic"
NO_TREND = ""
TREND_LABELS = (NEW, INTENSIFYING, PERSISTENT, DIMINISHING, SPORADIC, NO_TREND)


class GiStar(NamedTuple):
    z: np.ndarray  # standardised Gi*, one per unit; > 0 means more appeals around the unit than expected
    p: np.ndarray  # two-sided normal p-value of z


class FdrResult(NamedTuple):
    reject: np.ndarray  # bool: significant at the FDR rate alpha
    adjusted: np.ndarray  # Benjamini-Hochberg adjusted p-values (scipy's false_discovery_control)


class Hotspots(NamedTuple):
    """One time window's result: what `trend` compares across windows."""

    z: np.ndarray
    p: np.ndarray
    bins: np.ndarray  # int8, -3..3, see BIN_NAMES


def weights_matrix(neighbours, n=None):
    """Binary Gi* weights as a CSR matrix: 1 for each neighbour and 1 on the diagonal.

    `neighbours[i]` lists the indices of unit i's neighbours; i itself and repeats are
    ignored, an empty list makes i an island (its own only neighbour). Lists are used as
    given, not symmetrised: PostGIS contiguity is symmetric already. Build it once and pass
    it to `gi_star` for every time window over the same grids."""
    n = len(neighbours) if n is None else n
    if len(neighbours) != n:
        raise ValueError(f"{len(neighbours)} neighbour lists for {n} units")
    lengths = np.fromiter((len(nb) for nb in neighbours), dtype=np.int64, count=n)
    cols = np.concatenate([np.asarray(nb, dtype=np.int64).ravel() for nb in neighbours] + [np.arange(n)])
    if cols.size and (cols.min() < 0 or cols.max() >= n):
        raise ValueError("neighbour index out of range")
    rows = np.concatenate([np.repeat(np.arange(n), lengths), np.arange(n)])
    w = sparse.csr_array((np.ones(cols.size), (rows, cols)), shape=(n, n))
    w.sum_duplicates()
    w.data[:] = 1.0
    return w


def _star_weights(neighbours, n):
    if not sparse.issparse(neighbours):
        return weights_matrix(neighbours, n)
    if neighbours.shape != (n, n):
        raise ValueError(f"weights of shape {neighbours.shape} for {n} units")
    # A matrix from weights_matrix (binary, self-weights, no repeats) is used as it is: the
    # conversion below costs more than the statistics, once per window and category group.
    if (
        neighbours.format == "csr"
        and neighbours.has_canonical_format
        and (neighbours.data == 1).all()
        and (neighbours.diagonal() == 1).all()
    ):
        return neighbours
    # Any sparse pattern counts as binary contiguity; the self-weight is always 1 (Gi*).
    w = sparse.csr_array(abs(neighbours) + sparse.eye_array(n, format="csr"))
    w.sum_duplicates()
    w.eliminate_zeros()
    w.data[:] = 1.0
    return w


def _counts(counts):
    y = np.asarray(counts, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError("counts must be one-dimensional")
    if not np.isfinite(y).all() or (y < 0).any():
        raise ValueError("counts must be finite and non-negative")
    return y


def gi_star(counts, neighbours, *, transform=BINARY):
    """Getis-Ord Gi* of `counts` (one per unit) over contiguity `neighbours`.

    `neighbours` is a list of neighbour index lists or a matrix from `weights_matrix`. Each
    unit is its own neighbour with weight 1 (star). transform 'B' keeps the weights binary,
    'R' row-standardises them (1 / (k_i + 1) for a unit with k_i neighbours), as esda's
    `G_Local(y, w, transform, star=True)` does.

    esda's formula, with S_i = sum_j w_ij y_j, T = sum y, N = n, c_i = sum_j w_ij (k_i + 1 for
    'B', 1 for 'R' because esda takes the row sum after standardising), ybar = T / N and
    s^2 = mean(y^2) - ybar^2 (the population variance):

        G_i = S_i / T,  E[G_i] = c_i / N,
        Var[G_i] = c_i (N - c_i) / (N - 1) / N^2 * s^2 / ybar^2,
        z_i = (G_i - E[G_i]) / sqrt(Var[G_i]) = (S_i - c_i ybar) / (s sqrt(c_i (N - c_i) / (N - 1)))

    The last form is computed (same value, fewer divisions). For 'B' it is the textbook
    Getis-Ord (1995) Gi* that ArcGIS reports: use it for hotspot bins. 'R' is here for
    parity with esda; its z is (mean of the neighbourhood - ybar) / s, the variance of one
    unit rather than of a mean of k_i + 1 units, so it runs about sqrt(k_i + 1) times
    smaller than 'B' (a third, for queen neighbours on a lattice) and rarely reaches 90 %.
    p is two-sided, 2 * Phi(-|z|); esda's `p_norm` is the one-sided Phi(-|z|), so
    p == 2 * p_norm.

    Where esda returns NaN (all counts equal, including all zero, so no variance; or a unit
    neighbouring every unit) z is 0 and p is 1: no evidence of a hotspot, not an error. An
    island is compared with the city mean alone, so a lone grid with many appeals can still
    be a (one-grid) hotspot, as in esda and ArcGIS.
    """
    y = _counts(counts)
    if transform not in (BINARY, ROW_STANDARDISED):
        raise ValueError(f"transform must be 'B' or 'R', not {transform!r}")
    return _gi_star(y, _star_weights(neighbours, y.size), transform)


def _gi_star(y, w, transform=BINARY):
    n = y.size
    lag = w @ y
    card = np.diff(w.indptr).astype(np.float64)  # every stored weight is 1
    if transform == ROW_STANDARDISED:
        lag /= card
        card = np.ones(n)
    if n == 0:
        return GiStar(np.zeros(0), np.ones(0))
    mean = y.mean()
    sd = y.std()
    denom = sd * np.sqrt(card * (n - card) / max(n - 1, 1))
    num = lag - card * mean
    z = np.zeros(n)
    ok = denom > 0
    z[ok] = num[ok] / denom[ok]
    return GiStar(z, 2.0 * special.ndtr(-np.abs(z)))


def fdr_bh(pvalues, alpha=0.05):
    """Benjamini-Hochberg step-up at false discovery rate `alpha`.

    With p sorted ascending, p_(1) <= ... <= p_(m), reject the k smallest where k is the
    largest i with p_(i) <= i * alpha / m. Equivalently reject where the adjusted p-value
    min_{j >= i} (m p_(j) / j), capped at 1, is <= alpha; `adjusted` equals scipy's
    `stats.false_discovery_control(p, method='bh')`. Valid under independence and under the
    positive dependence of neighbouring Gi* statistics (Benjamini & Yekutieli 2001)."""
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("p-values must be one-dimensional")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return FdrResult(adjusted <= alpha, adjusted)


def classify(z, p, fdr=True):
    """Hot and cold spot bins as ArcGIS's Hot Spot Analysis reports them (its Gi_Bin):

        3 / 2 / 1    Hot Spot with 99 / 95 / 90 % confidence (z > 0)
        0            not significant
        -1 / -2 / -3 Cold Spot with 90 / 95 / 99 % confidence (z < 0)

    A unit takes the highest level whose two-sided alpha (0.01, 0.05, 0.10) its p-value
    meets. With `fdr`, the test at each level is Benjamini-Hochberg at that level's alpha
    over all units, hot and cold together, as ArcGIS's "Apply False Discovery Rate
    Correction" does; since BH-adjusted p-values are monotone this is one adjustment
    compared with each alpha. Without `fdr`, raw p-values are compared: expect about 10 %
    of units flagged at 90 % on data with no hotspot at all."""
    z = np.asarray(z, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if z.shape != p.shape or z.ndim != 1:
        raise ValueError("z and p must be one-dimensional and of the same length")
    q = fdr_bh(p).adjusted if fdr else p
    level = np.zeros(z.size, dtype=np.int8)
    for bin_, alpha in reversed(LEVELS):  # 90 % first, so the strictest level met wins
        level[q <= alpha] = bin_
    return np.where(z > 0, level, np.where(z < 0, -level, 0)).astype(np.int8)


def count_p(counts, neighbours):
    """Two-sided p-values for Gi*'s binary neighbourhood sums S_i = sum_j w_ij y_j of counts,
    from a count distribution rather than the normal tail of z.

    Each S_i is compared with the sum of c_i counts drawn like the units outside i's
    neighbourhood: a negative binomial of mean c_i m_i and variance c_i v_i, where m_i and
    v_i are the mean and variance of the counts of the N - c_i other units (a Poisson of that
    mean where v_i <= m_i). p is twice the tail on the side of S_i (P(S >= S_i) when S_i is
    at least the mean, else P(S <= S_i)), capped at 1.

    Why not the normal p of z: a category group has a few appeals per grid and week, often
    well under one, and such counts are skewed; the normal tail understates p by orders of
    magnitude (no hotspot at all, 0.2 appeals a grid, 600 grids: some grid flagged at 90 % in
    over half of the windows, where FDR promises 10 %; tests/whistles/test_null.py). Why the
    other units only: a hot grid's own appeals would otherwise inflate the variance it is
    judged against: the z of one hot grid tends to sqrt((N - c_i) / c_i) however many appeals
    it has, 2.4 for a grid with 8 neighbours among 60, which FDR over 60 grids never passes.
    With no hotspot the other units are independent of S_i and drawn alike, so the test is
    close to exact; with large counts it agrees with z's p. Non-integer counts keep the
    normal p."""
    y = _counts(counts)
    return _count_p(y, _star_weights(neighbours, y.size))


def _count_p(y, w, normal_p=None):
    n = y.size
    if n == 0 or not np.array_equal(y, np.round(y)):
        return _gi_star(y, w).p if normal_p is None else normal_p
    s_i = w @ y
    card = np.diff(w.indptr).astype(np.float64)
    rest = n - card
    with np.errstate(divide="ignore", invalid="ignore"):
        m = (y.sum() - s_i) / rest
        v = ((y * y).sum() - w @ (y * y)) / rest - m * m
    mean, var, k = card * m, card * v, np.rint(s_i)
    p = np.ones(n)
    ok = (rest > 0) & (mean > 0)
    over = var > mean * (1 + 1e-9)
    up = k >= mean
    # One tail per unit: the two add up to at least 1, so only the one on S_i's side can be
    # under 1/2 (and a p of 1 needs no tail at all). No appeal around a unit (most units, for
    # most groups): P(S <= 0) = P(S = 0), in closed form.
    zero = ok & ~up & (k == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p0 = np.where(over, (mean / var) ** (mean * mean / (var - mean)), np.exp(-mean))
    p[zero] = np.minimum(1.0, 2.0 * p0[zero])
    # Near the mean no tail is small: up to 1.5 standard deviations above it the upper tail of a
    # Poisson, or of a negative binomial of size 1 or more, is above 0.068; up to one below it
    # the lower tail (size 2 or more) above 0.11 (both checked for means up to 3,000). p is then
    # above 0.13, beyond every level, and the normal tail of the same moments (also above 0.13)
    # stands in, sparing most units the incomplete beta function.
    sd = np.sqrt(np.where(over, var, mean))
    with np.errstate(divide="ignore", invalid="ignore"):
        size = np.where(over, mean * mean / (var - mean), np.inf)
        near = ok & (k > 0) & np.where(up, (k - mean <= 1.5 * sd) & (size >= 1), (mean - k <= sd) & (size >= 2))
        p[near] = 2.0 * special.ndtr(-np.abs(k[near] - mean[near]) / sd[near])
    exact = ok & (k > 0) & ~near
    for sel, upper, poisson in (
        (exact & ~over & up, True, True),
        (exact & ~over & ~up, False, True),
        (exact & over & up, True, False),
        (exact & over & ~up, False, False),
    ):
        if not sel.any():
            continue
        mu, kk = mean[sel], k[sel]
        if poisson:
            tail = special.pdtrc(kk - 1, mu) if upper else special.pdtr(kk, mu)
        else:
            r, prob = size[sel], mu / var[sel]
            tail = special.betainc(kk, r, 1.0 - prob) if upper else special.betainc(r, kk + 1, prob)
        p[sel] = np.minimum(1.0, 2.0 * tail)
    return p


COUNT = "count"
NORMAL = "normal"


def hotspots(counts, neighbours, *, transform=BINARY, fdr=True, pvalues=COUNT):
    """gi_star then classify: one time window's Hotspots. `pvalues` COUNT (binary weights
    only) takes p from count_p, NORMAL from the normal tail of z as esda and ArcGIS do."""
    if transform not in (BINARY, ROW_STANDARDISED):
        raise ValueError(f"transform must be 'B' or 'R', not {transform!r}")
    if pvalues not in (COUNT, NORMAL):
        raise ValueError(f"pvalues must be {COUNT!r} or {NORMAL!r}, not {pvalues!r}")
    if pvalues == COUNT and transform != BINARY:
        raise ValueError("count p-values need binary weights (transform 'B')")
    y = _counts(counts)
    w = _star_weights(neighbours, y.size)
    g = _gi_star(y, w, transform)
    p = _count_p(y, w, g.p) if pvalues == COUNT else g.p
    return Hotspots(g.z, p, classify(g.z, p, fdr=fdr))


def trend(current, previous_windows, *, steady=0.25, hot=True):
    """Label each unit by how its hotspot has developed: an array of TREND_LABELS.

    `current` and each of `previous_windows` (oldest first, equal-length windows such as
    consecutive weeks) are `Hotspots` (anything with `.z` and `.bins`) over the same units
    in the same order; align grids across boundary versions before calling. A unit is
    significant in a window when its bin is a hot spot at any level (bin > 0, after FDR if
    the bins were made with it). With `hot=False` the same rules apply to cold spots (bin < 0,
    z mirrored).

    `slope` is the least-squares slope of z against the window number over all T + 1
    windows, in z units per window; it counts as steady within +/- `steady`. The first rule
    that holds gives the label:

        new           significant now, and in no earlier window (every significant unit
                      when there are no earlier windows);
        intensifying  significant now and slope > steady;
        diminishing   significant now and slope < -steady, or not significant now but
                      significant in the window just before: it is fading or has gone;
        persistent    significant now, steady, and significant in more than half of all
                      T + 1 windows;
        sporadic      significant now and before, steady, but in half the windows or fewer;
        ""            otherwise: not significant now nor in the window just before (a
                      hotspot that ended earlier was reported as diminishing then).
    """
    windows = [*previous_windows, current]
    n = np.asarray(current.z).size
    if any(np.asarray(w.z).shape != (n,) or np.asarray(w.bins).shape != (n,) for w in windows):
        raise ValueError("every window must cover the same units")
    z = np.vstack([np.asarray(w.z, dtype=np.float64) for w in windows])
    bins = np.vstack([np.asarray(w.bins) for w in windows])
    if not hot:
        z, bins = -z, -bins
    sig = bins > 0
    t_count = z.shape[0]
    now = sig[-1]
    before = sig[:-1]
    ever_before = before.any(axis=0)
    just_before = before[-1] if t_count > 1 else np.zeros_like(now)
    t = np.arange(t_count) - (t_count - 1) / 2
    slope = (t @ z) / (t @ t) if t_count > 1 else np.zeros(z.shape[1])
    most = 2 * sig.sum(axis=0) > t_count
    return np.select(
        [
            now & ~ever_before,
            now & (slope > steady),
            (now & (slope < -steady)) | (~now & just_before),
            now & most,
            now,
        ],
        [NEW, INTENSIFYING, DIMINISHING, PERSISTENT, SPORADIC],
        default=NO_TREND,
    )
