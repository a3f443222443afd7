"""The rules that decide claims (adcore.claims): hand-computed statistics, and each rule passing, failing and not
testable on made-up frames."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from adcore import claims


def frame(a, b, classes=None, seeds=None):
    """Runs of methods A and B on units (class, seed), AUCs as given, paired by position."""
    n = len(a)
    classes = classes or list(range(n))
    seeds = seeds or [0] * n
    rows = [dict(method=m, normal_class=c, seed=s, auc=v)
            for m, vals in (("A", a), ("B", b)) for c, s, v in zip(classes, seeds, vals)]
    return pd.DataFrame(rows)


A, B = {"method": "A"}, {"method": "B"}


def test_paired_difference_by_hand():
    df = frame([80, 82, 84, 79], [78, 81, 80, 79])  # differences 2, 1, 4, 0
    p = claims.diff(df, A, B)
    assert p.n == 4 and p.mean == pytest.approx(1.75)
    sd = np.std([2, 1, 4, 0], ddof=1)
    assert p.se == pytest.approx(sd / 2)
    assert p.p_above(0) == pytest.approx(stats.ttest_1samp([2, 1, 4, 0], 0, alternative="greater").pvalue)
    assert p.detectable() == pytest.approx((stats.t.ppf(0.95, 3) + stats.t.ppf(0.8, 3)) * sd / 2)
    assert "+1.8 (SE 0.9, n = 4)" in p.text()


def test_units_pair_on_class_and_seed_and_average_repeats():
    df = frame([80, 70, 60], [70, 70, 50], classes=[1, 1, 2], seeds=[0, 1, 0])
    df = pd.concat([df, pd.DataFrame([dict(method="A", normal_class=2, seed=0, auc=62)])])  # a repeat: mean 61
    p = claims.diff(df, A, B)
    assert sorted(p.values.tolist()) == [0.0, 10.0, 11.0]
    lonely = pd.concat([df, pd.DataFrame([dict(method="A", normal_class=9, seed=0, auc=99)])])
    assert claims.diff(lonely, A, B).n == 3  # a unit without its pair is left out


def test_contrast_weights_and_float_selectors():
    df = pd.DataFrame([dict(blur=b, normal_class=c, seed=0, auc=v)
                       for c in (0, 1) for b, v in ((0.0, 90 + c), (2.0, 80), (32.0, 70))])
    p = claims.contrast(df, [(1.0, {"blur": 0.0}), (-1.0, {"blur": 2.0}), (-0.5, {"blur": 0.0}), (0.5, {"blur": 32})],
                        "early drop - half")
    assert p.values.tolist() == pytest.approx([10 - 10, 11 - 10.5])


def test_greater_passes_fails_and_is_not_testable():
    ahead = frame([80, 82, 84, 81, 83], [75, 76, 79, 76, 77])
    assert claims.greater(claims.diff(ahead, A, B), effect=3).verdict == "reproduced"
    behind = frame([75, 76, 79, 76, 77], [80, 82, 84, 81, 83])
    assert claims.greater(claims.diff(behind, A, B), effect=3).verdict == "not reproduced"
    noisy = frame([80, 60, 90, 55, 85], [70, 75, 70, 72, 78])  # mean +1, SE about 7
    d = claims.greater(claims.diff(noisy, A, B), effect=3)
    assert d.verdict == "not testable" and "lacks power" in str(d)
    missing = claims.greater(claims.diff(ahead, A, {"method": "C"}))
    assert str(missing) == "not testable (C not run in this build)" and missing.absent
    one = claims.greater(claims.diff(frame([80], [70]), A, B))
    assert one.verdict == "not testable" and "no standard error" in one.because


def test_equal_gets_harder_with_noise():
    quiet = frame([80.0, 81.0, 79.5, 80.5, 80.0, 79.0], [80.2, 80.5, 80.0, 80.0, 80.4, 79.5])
    assert claims.equal(claims.diff(quiet, A, B)).verdict == "reproduced"
    apart = frame([85.0, 86.0, 84.5, 85.5, 85.0, 84.0], [80.2, 80.5, 80.0, 80.0, 80.4, 79.5])
    assert claims.equal(claims.diff(apart, A, B)).verdict == "not reproduced"
    # the same mean difference (about 0) with much more noise: it cannot be shown equal
    noisy = frame([80.0, 90.0, 70.0, 85.0, 75.0, 80.0], [80.2, 80.5, 80.0, 80.0, 80.4, 79.5])
    d = claims.equal(claims.diff(noisy, A, B))
    assert d.verdict == "not testable" and "half-width" in d.because


def test_at_least_is_non_inferiority():
    slightly_behind = frame([79.0, 80.0, 78.5, 79.5, 79.0], [80.0, 80.5, 79.5, 80.0, 80.0])  # -0.8, tight
    assert claims.at_least(claims.diff(slightly_behind, A, B)).verdict == "reproduced"
    far_behind = frame([74.0, 75.0, 73.5, 74.5, 74.0], [80.0, 80.5, 79.5, 80.0, 80.0])
    assert claims.at_least(claims.diff(far_behind, A, B)).verdict == "not reproduced"


def test_welch_ordering():
    big = claims.diff(frame([90, 91, 92, 93], [80, 80, 81, 82]), A, B)
    none = claims.diff(frame([80, 81, 80, 79], [80, 80.5, 80.5, 79.5]), A, B)
    assert claims.welch_greater(big, none).verdict == "reproduced"
    assert claims.welch_greater(none, big).verdict == "not reproduced"
    se = math.hypot(big.se, none.se)
    assert f"SE {se:.1f}" in claims.welch_greater(big, none).because


def test_combine_and_rows():
    r, n, t = (claims.Decision("reproduced", "x"), claims.Decision("not reproduced", "y"),
               claims.Decision("not testable", "lacks power"))
    gone = claims.Decision("not testable", "GEO not run in this build", absent=True)
    assert claims.combine(r, r).verdict == "reproduced"
    assert claims.combine(r, n).verdict == "partly" and claims.combine(r, t).verdict == "partly"
    assert claims.combine(n, n).verdict == "not reproduced" and claims.combine(t, t).verdict == "not testable"
    assert str(claims.combine(r, gone)) == "not testable (GEO not run in this build)"
    row = claims.row("a claim", "§1", "96.1", "A − B: +1.0", "A − B > 0", r)
    assert row["verdict"] == "reproduced" and row["this build"] == "A − B: +1.0; x"
    with pytest.raises(ValueError, match="unknown verdict"):
        claims.row("a claim", "§1", "", "", "", "holds")
    assert list(claims.table([row]).columns) == ["claim", "where", "paper", "this build", "rule", "verdict"]


def test_data_against_the_claim_is_not_reproduced_even_without_power():
    """A clearly opposite result is "not reproduced", however small the paper's effect the test could not see."""
    far_behind = frame([70.0, 60.0, 72.0, 65.0], [80.0, 79.0, 81.0, 78.0])  # about -10, SE about 2.5
    d = claims.diff(far_behind, A, B)
    assert d.detectable() > 2 and d.p_above(-2) > 0.95
    assert claims.at_least(d).verdict == "not reproduced"
    assert claims.greater(d, effect=0.5).verdict == "not reproduced"
    outside = frame([90.0, 88.0, 95.0, 85.0], [70.0, 71.0, 70.5, 69.0])  # +19, wide but far outside ± 2
    assert claims.equal(claims.diff(outside, A, B)).verdict == "not reproduced"
