"""app.analysis.stats against analytic answers and scipy."""

import math

import numpy as np
import pytest
from scipy import stats

from app.analysis.stats import (activation_ratio, limb_symmetry_index, sem_from_repeats, smallest_real_difference,
                                summarise, symmetry_index)


def test_symmetry_fixture_clinical_md():
    # clinical.md section 8: A = 30 %, U = 40 % MVIC -> SI -28.6 %, LSI 75 %
    assert symmetry_index(30.0, 40.0) == pytest.approx(-28.5714, abs=1e-3)
    assert limb_symmetry_index(30.0, 40.0) == pytest.approx(75.0)


def test_ratio_fixture_and_guards():
    assert activation_ratio(36.0, 31.0) == pytest.approx(36 / 31)
    assert math.isnan(activation_ratio(10.0, 2.0))  # TFL barely active: ratio withheld
    assert activation_ratio(10.0, 5.0) == 2.0 and math.isnan(activation_ratio(10.0, 4.99))  # guard at 5 %MVIC
    assert math.isnan(activation_ratio(float("nan"), 30.0))
    assert math.isnan(symmetry_index(2.0, 3.0))
    assert symmetry_index(4.0, 6.0) == pytest.approx(-40.0)  # mean exactly 5 %MVIC: still compared
    assert math.isnan(symmetry_index(4.0, 5.98))
    assert math.isnan(limb_symmetry_index(30.0, 1.0))
    assert limb_symmetry_index(3.0, 5.0) == pytest.approx(60.0)
    assert math.isnan(symmetry_index(float("nan"), 30.0))


def test_summary_matches_scipy_t_interval():
    x = np.array([0.9, 1.3, 1.1, 1.25, 0.95, np.nan])
    s = summarise(x)
    v = x[:5]
    lo, hi = stats.t.interval(0.95, 4, loc=v.mean(), scale=stats.sem(v))
    assert (s.n, s.mean, s.sd) == (5, pytest.approx(v.mean()), pytest.approx(v.std(ddof=1)))
    assert (s.ci95_low, s.ci95_high) == (pytest.approx(lo), pytest.approx(hi))
    one = summarise([2.0])
    assert one.n == 1 and one.mean == 2.0 and math.isnan(one.sd)
    assert summarise([]).n == 0


def test_sem_and_srd():
    # two occasions with known within-group scatter: pooled variance = (sum of squares) / (n - groups)
    groups = [[10.0, 12.0, 14.0], [20.0, 21.0, 22.0, 23.0]]
    ss = 8.0 + 5.0
    sem = sem_from_repeats(groups)
    assert sem == pytest.approx(math.sqrt(ss / 5))
    # clinical.md section 11: CV 5.64 % read as SEM -> SRD 15.6 %
    assert smallest_real_difference(5.64) == pytest.approx(15.63, abs=0.01)
    assert math.isnan(sem_from_repeats([[1.0]]))


def test_slope_se_from_residuals_matches_scipy():
    from app.analysis.measures import slope_pct_per_s

    rng = np.random.default_rng(5)
    t = np.arange(40) * 0.5
    for v in (80.0 - 0.2 * t + rng.normal(0, 1.5, t.size),  # a fatiguing MDF series
              80.0 + 0.05 * (t - t.mean()) ** 2):  # symmetric in time: slope exactly 0, residuals not
        pct, raw, r, se = slope_pct_per_s(t, v)
        ref = stats.linregress(t, v)
        initial = ref.intercept + ref.slope * t[0]
        assert raw == pytest.approx(ref.slope, abs=1e-12)  # 0 for the second series (the old r-based SE: NaN)
        assert pct == pytest.approx(100 * ref.slope / initial, abs=1e-10)
        assert se == pytest.approx(100 * ref.stderr / initial, rel=1e-9)
        assert math.isfinite(se) and se > 0
