"""trend(): one column per scenario, four windows, oldest first."""

import numpy as np
import pytest
from scipy import special

from gridgov.whistles.stats import (
    DIMINISHING,
    INTENSIFYING,
    NEW,
    NO_TREND,
    PERSISTENT,
    SPORADIC,
    Hotspots,
    classify,
    trend,
)


def window(z):
    z = np.asarray(z, dtype=float)
    p = 2 * special.ndtr(-np.abs(z))
    return Hotspots(z, p, classify(z, p, fdr=False))


SCENARIOS = {
    # label: z in windows 1..4 (4 = current); 1.65 is the 90 % line
    "new": ([0.5, 0.8, 1.0, 3.0], NEW),
    "new, lone window": ([0.2, -0.5, 0.4, 1.8], NEW),
    "intensifying": ([2.0, 2.5, 3.2, 4.0], INTENSIFYING),
    "intensifying after a blip": ([1.0, 2.0, 1.2, 3.0], INTENSIFYING),
    "persistent": ([3.0, 3.2, 2.9, 3.1], PERSISTENT),
    "persistent with a gap": ([2.6, 1.2, 2.7, 2.4], PERSISTENT),
    "diminishing, still hot": ([5.0, 4.0, 3.0, 2.0], DIMINISHING),
    "diminishing, gone": ([3.0, 3.0, 2.8, 0.5], DIMINISHING),
    "sporadic": ([2.5, 0.5, 0.2, 2.4], SPORADIC),
    "never": ([0.1, -0.2, 0.3, 0.0], NO_TREND),
    "ended long ago": ([3.0, 0.2, 0.1, 0.0], NO_TREND),
    "cold spot": ([-3.0, -3.1, -2.9, -3.0], NO_TREND),
}


def run(scenarios, **kw):
    z = np.array([zs for zs, _ in scenarios.values()]).T  # windows × units
    windows = [window(row) for row in z]
    return trend(windows[-1], windows[:-1], **kw)


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_label(name):
    labels = run(SCENARIOS)
    assert labels[list(SCENARIOS).index(name)] == SCENARIOS[name][1]


def test_cold_spots_follow_the_same_rules_when_asked():
    mirrored = {name: ([-z for z in zs], label) for name, (zs, label) in SCENARIOS.items() if name != "cold spot"}
    labels = run(mirrored, hot=False)
    assert labels.tolist() == [label for _, label in mirrored.values()]


def test_steady_sets_what_counts_as_rising():
    units = {"slow rise": ([2.4, 2.6, 2.8, 3.0], None)}  # slope 0.2 per window
    assert run(units).tolist() == [PERSISTENT]
    assert run(units, steady=0.1).tolist() == [INTENSIFYING]


def test_without_earlier_windows_every_hotspot_is_new():
    now = window([3.0, 0.1, -3.0])
    assert trend(now, []).tolist() == [NEW, NO_TREND, NO_TREND]


def test_windows_must_cover_the_same_units():
    with pytest.raises(ValueError):
        trend(window([3.0, 0.1]), [window([3.0, 0.1, 0.0])])
