"""Duplicate detection: quality on a generated set it was not tuned on, and throughput.

Quality: precision / recall / F1 over pairs, on make_duplicate_benchmark with a seed that no
parameter was tuned on (the defaults were tuned on seed 1, the tests assert on seed 2), plus
where the false positives come from.

Throughput: incoming appeals checked per second against 200 candidates each, (a) as intake
sees them, the 200 open appeals received closest in time (most fail the time or radius gate
cheaply), and (b) worst case, 200 candidates all inside the window and the radius, so every
one gets the full text comparison. "cold" clears the per-text feature cache first.
Run: python -m tests.bench.bench_duplicates
"""

import os
import random
import time
from dataclasses import replace

from fixtures.duplicates_eval import evaluate_detail, make_duplicate_benchmark
from gridgov.appeals.intake.duplicates import DuplicateParams, features_cache_clear, find_duplicates
from tests.bench.common import header

SEED = int(os.environ.get("BENCH_SEED", 20260314))
PROBLEMS = int(os.environ.get("BENCH_PROBLEMS", 600))
CANDIDATES = 200
CHECKS = int(os.environ.get("BENCH_CHECKS", 2000))


def quality(params):
    header(f"quality: seed {SEED}, {PROBLEMS} problems (tuned on seed 1)")
    t0 = time.perf_counter()
    result = evaluate_detail(params, seed=SEED, n_problems=PROBLEMS)
    dt = time.perf_counter() - t0
    p, r, f1 = result.scores
    print(f"  appeals {result.appeals:,}, true pairs {result.true_positives + result.false_negatives:,}")
    print(f"  precision {p:.3f}   recall {r:.3f}   F1 {f1:.3f}")
    print(f"  TP {result.true_positives}  FP {result.false_positives}  FN {result.false_negatives}")
    print(f"  false positives by role: {dict(sorted(result.false_positives_by_role.items()))}")
    print(f"  (whole evaluation, every appeal against all earlier ones in 72 h: {dt:.2f} s)")
    for threshold in (0.5, 0.55, 0.6, 0.65, 0.7):
        s = evaluate_detail(replace(params, threshold=threshold), seed=SEED, n_problems=PROBLEMS).scores
        mark = "  <- default" if threshold == params.threshold else ""
        print(f"  threshold {threshold:.2f}: P {s.precision:.3f}  R {s.recall:.3f}  F1 {s.f1:.3f}{mark}")


def run(pairs, params, cold):
    if cold:
        features_cache_clear()
    t0 = time.perf_counter()
    found = sum(len(find_duplicates(appeal, cands, params=params)) for appeal, cands in pairs)
    return time.perf_counter() - t0, found


def throughput(params):
    header(f"throughput: {CHECKS:,} appeals × {CANDIDATES} candidates")
    rng = random.Random(SEED)
    sketches = [a.sketch for a in make_duplicate_benchmark(SEED + 1, 1500).appeals]
    nearest_in_time = []
    for _ in range(CHECKS):
        i = rng.randrange(len(sketches))
        lo = max(0, min(i - CANDIDATES // 2, len(sketches) - CANDIDATES - 1))
        nearest_in_time.append((sketches[i], [s for s in sketches[lo : lo + CANDIDATES + 1] if s is not sketches[i]]))
    # Worst case: the same candidates moved onto the appeal's spot and time, so none is
    # excluded before the text comparison.
    all_close = [
        (appeal, [replace(c, lng=appeal.lng, lat=appeal.lat, received_at=appeal.received_at) for c in cands])
        for appeal, cands in nearest_in_time
        if appeal.has_position
    ]
    for label, pairs in (("closest 200 in time", nearest_in_time), ("all 200 in window+radius", all_close)):
        for cold in (True, False):
            dt, found = run(pairs, params, cold)
            print(
                f"  {label:<26} {'cold' if cold else 'warm'}: {len(pairs) / dt:8,.0f} appeals/s"
                f"  ({dt / len(pairs) * 1000:.2f} ms each, {found / len(pairs):.2f} matches/appeal)",
                flush=True,
            )


if __name__ == "__main__":
    params = DuplicateParams()
    print(f"  params: {params}")
    quality(params)
    throughput(params)
