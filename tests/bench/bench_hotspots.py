"""Hotspot statistics on a 100 × 100 lattice (10,000 grids) with 1,000,000 appeals.

Times, warm and as the median of several runs, our gi_star + FDR + classify (from neighbour
lists, and from weights built once as a daily job over many windows would) against esda's
G_Local(star=True, permutations=0) on the same counts and queen weights, and checks that
the z-scores agree. Target for our side: well under 10 s. No database needed.

    .venv/bin/python -m tests.bench.bench_hotspots
"""

import os
import statistics
import time
import warnings

import numpy as np

SIDE = int(os.environ.get("BENCH_SIDE", 100))
APPEALS = int(os.environ.get("BENCH_APPEALS", 1_000_000))
RUNS = int(os.environ.get("BENCH_RUNS", 7))


def median_seconds(fn, runs):
    fn()  # warm: imports, caches, first allocations
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def simulated_counts(side, appeals, seed=7):
    """Appeals spread over the lattice by a smooth background plus three hotspots."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:side, 0:side] / side
    intensity = 1.0 + 0.5 * r  # denser towards the south
    for cr, cc, height in ((0.2, 0.3, 3.0), (0.7, 0.7, 2.0), (0.5, 0.1, 1.5)):
        intensity += height * np.exp(-((r - cr) ** 2 + (c - cc) ** 2) / (2 * 0.03**2))
    return rng.multinomial(appeals, (intensity / intensity.sum()).ravel())


def main():
    import esda
    import libpysal

    from gridgov.whistles.stats import BIN_NAMES, hotspots, weights_matrix

    n = SIDE * SIDE
    print(f"\n=== hotspots: {SIDE}×{SIDE} lattice, {n:,} units, {APPEALS:,} appeals, median of {RUNS} ===", flush=True)
    t0 = time.perf_counter()
    w = libpysal.weights.lat2W(SIDE, SIDE, rook=False)
    w.transform = "B"
    m = w.sparse.tocsr()
    neighbours = np.split(m.indices, m.indptr[1:-1])
    counts = simulated_counts(SIDE, APPEALS)
    print(f"  {'set-up (libpysal queen, multinomial counts)':<56} {time.perf_counter() - t0:8.3f} s")

    ours_lists = median_seconds(lambda: hotspots(counts, neighbours), RUNS)
    prebuilt = weights_matrix(neighbours)
    ours_prebuilt = median_seconds(lambda: hotspots(counts, prebuilt), RUNS)

    def run_esda():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return esda.G_Local(counts, w, transform="B", star=True, permutations=0)

    theirs = median_seconds(run_esda, max(3, RUNS // 2))

    result = hotspots(counts, neighbours)
    diff = np.abs(result.z - run_esda().Zs).max()
    bins = {BIN_NAMES[b]: int((result.bins == b).sum()) for b in sorted(BIN_NAMES, reverse=True)}
    for label, value in (
        ("ours: gi_star + FDR + classify, from neighbour lists", f"{ours_lists:8.4f} s"),
        ("ours: the same, weights built once", f"{ours_prebuilt:8.4f} s"),
        ("esda: G_Local(star=True, permutations=0), z only", f"{theirs:8.4f} s"),
        ("esda / ours (from lists)", f"{theirs / ours_lists:8.1f} ×"),
        ("max |z - esda z|", f"{diff:8.1e}"),
    ):
        print(f"  {label:<56} {value}")
    print(f"  bins: {bins}")


if __name__ == "__main__":
    main()
