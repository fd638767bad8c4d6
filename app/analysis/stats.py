"""Spread, side comparison and change-against-noise statistics (formulas and sources in docs/analysis.md).

`symmetry_index`, `limb_symmetry_index` and `activation_ratio` are the one definition of SI, LSI and the
GMed:TFL ratio with their guards, for the session analysis and the live view alike (so both show the same
numbers). They take %MVIC values and return NaN when the value is withheld.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_ACTIVATION_PCT", "Summary", "activation_ratio", "limb_symmetry_index", "sem_from_repeats",
           "smallest_real_difference", "summarise", "symmetry_index"]

#: Below this denominator (in %MVIC) a symmetry or ratio index is withheld: a side or muscle that is barely
#: active above baseline makes SI/LSI/ratios explode (clinical.md section 8).
MIN_ACTIVATION_PCT = 5.0


@dataclass(frozen=True)
class Summary:
    """Mean, SD (ddof 1) and two-sided 95 % t confidence interval of the mean over ``n`` values.

    With one value the SD and CI are NaN: one repetition says nothing about spread.
    """

    n: int
    mean: float
    sd: float
    ci95_low: float
    ci95_high: float

    def to_dict(self, unit: str) -> dict:
        return {"n": self.n, f"mean_{unit}": self.mean, f"sd_{unit}": self.sd,
                f"ci95_low_{unit}": self.ci95_low, f"ci95_high_{unit}": self.ci95_high}


def summarise(values) -> Summary:
    """Summary over the finite entries of ``values`` (NaN entries are repetitions where a measure was withheld)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


def symmetry_index(affected: float, unaffected: float, min_activation: float = MIN_ACTIVATION_PCT) -> float:
    """SI = (A - U) / (0.5 (A + U)) x 100 % of affected and unaffected %MVIC; negative when the affected side is
    lower. NaN when either is not finite or the mean 0.5 (A + U) is below ``min_activation``."""
    if not (np.isfinite(affected) and np.isfinite(unaffected)) or 0.5 * (affected + unaffected) < min_activation:
        return math.nan
    return (affected - unaffected) / (0.5 * (affected + unaffected)) * 100.0


def limb_symmetry_index(affected: float, unaffected: float, min_activation: float = MIN_ACTIVATION_PCT) -> float:
    """LSI = A / U x 100 %. NaN if U is below ``min_activation``."""
    if not (np.isfinite(affected) and np.isfinite(unaffected)) or unaffected < min_activation:
        return math.nan
    return affected / unaffected * 100.0


def activation_ratio(numerator_pct: float, denominator_pct: float,
                     min_denominator_pct: float = MIN_ACTIVATION_PCT) -> float:
    """Ratio of two activations in %MVIC, e.g. GMed:TFL = activation_ratio(gmed_pct, tfl_pct).

    NaN when either is not finite or the denominator is below ``min_denominator_pct`` (a barely active muscle
    would make the ratio explode).
    """
    if not (np.isfinite(numerator_pct) and np.isfinite(denominator_pct)) or denominator_pct < min_denominator_pct:
        return math.nan
    return numerator_pct / denominator_pct


def sem_from_repeats(groups) -> float:
    """Within-subject SEM from repeated measurements: sqrt of the pooled within-group variance.

    ``groups`` is a sequence of arrays, each the repeated values of one occasion (e.g. one trial's
    repetitions, or one session's value of several baseline sessions). This is the within-subject SD of
    Weir 2005 (the square root of the mean square error), used when no ICC is available.
    """
    ss, dof = 0.0, 0
    for g in groups:
        g = np.asarray(g, dtype=np.float64)
        g = g[np.isfinite(g)]
        if g.size >= 2:
            ss += float(((g - g.mean()) ** 2).sum())
            dof += g.size - 1
    return math.sqrt(ss / dof) if dof else math.nan


def smallest_real_difference(sem: float) -> float:
    """SRD = MDC95 = 1.96 sqrt(2) SEM (Beckerman et al. 2001): a change beyond it is unlikely to be noise."""
    return 1.96 * math.sqrt(2.0) * sem
