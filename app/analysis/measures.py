"""Per-repetition and per-hold measures on envelopes and band-passed EMG (formulas in docs/analysis.md)."""

from __future__ import annotations

import math

import numpy as np

from app.analysis.config import AnalysisConfig


def pct_mvic(envelope: np.ndarray, reference: float) -> np.ndarray:
    """Envelope as % of the MVIC reference (same units, same RMS window)."""
    return np.asarray(envelope, dtype=np.float64) / reference * 100.0


def coactivation_index(a_pct: np.ndarray, b_pct: np.ndarray) -> float:
    """Falconer & Winter (1985) co-activation: 2 * sum(min(a, b)) / (sum(a) + sum(b)) * 100 %.

    ``a_pct`` and ``b_pct`` are the two muscles' normalised envelopes over the same samples. 100 % means the
    two curves coincide; 0 % means they never overlap. NaN when both are silent.
    """
    a = np.asarray(a_pct, dtype=np.float64)
    b = np.asarray(b_pct, dtype=np.float64)
    total = a.sum() + b.sum()
    if not total > 0:
        return math.nan
    return 2.0 * np.minimum(a, b).sum() / total * 100.0


def first_onset_s(filtered: np.ndarray, rate_hz: float, rest: np.ndarray, search: tuple[int, int],
                  cfg: AnalysisConfig) -> float:
    """First activation onset inside ``search`` (sample slice of the band-passed signal), in seconds from
    ``search[0]``; NaN if none.

    dsp.onset's Hodges & Bui detector (moving average of |EMG| against rest mean + k SD of the same test
    function) runs on the rest stretch followed by the search window, the rest stretch declared as baseline.
    """
    from dsp.onset import onsets_threshold

    seg = filtered[search[0]: search[1]]
    if rest.size < int(0.5 * rate_hz) or seg.size == 0:
        return math.nan
    rest_s = rest.size / rate_hz
    found = onsets_threshold(np.concatenate([rest, seg]), rate_hz, rest=(0.0, rest_s), k_sd=cfg.onset_k_sd,
                             min_duration_s=cfg.onset_min_duration_s, window_s=cfg.onset_window_s)
    for onset_s, _ in found:
        if onset_s >= rest_s:
            return onset_s - rest_s
    return math.nan


def spectral_series(x: np.ndarray, rate_hz: float, cfg: AnalysisConfig, window_s: float | None = None,
                    hop_s: float | None = None):
    """dsp.spectral indices of one band-passed channel (1-D), windows of ``window_s`` every ``hop_s``."""
    from dsp.spectral import spectral_indices

    high = min(cfg.band_hz[1], 0.45 * rate_hz)
    return spectral_indices(np.asarray(x, dtype=np.float64)[:, None], rate_hz, window_s=window_s or cfg.fatigue_window_s,
                            hop_s=hop_s or cfg.fatigue_hop_s, band_hz=(cfg.band_hz[0], high))


def slope_pct_per_s(time_s: np.ndarray, values: np.ndarray) -> tuple[float, float, float, float]:
    """Regression slope normalised to its initial fitted value (%/s), the raw slope (units/s), r, and the
    normalised slope's standard error (%/s); NaNs if < 3 points.

    The SE is the ordinary least-squares one from the residuals, sqrt(SSR / (n - 2) / Stt), scaled like the
    slope (100 / initial value). It stays finite when the slope is exactly 0 (a flat series), where a form
    derived from r (0/0) would not.
    """
    from dsp.spectral import normalised_slope

    t = np.asarray(time_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(v)
    n = int(ok.sum())
    if n < 3:
        return math.nan, math.nan, math.nan, math.nan
    t, v = t[ok], v[ok]
    fit = normalised_slope(t, v)
    residuals = v - (fit.intercept + fit.slope_per_s * t)
    stt = float(np.sum((t - t.mean()) ** 2))
    se_raw = math.sqrt(float(np.sum(residuals**2)) / (n - 2) / stt)
    se = 100.0 * se_raw / abs(float(fit.initial)) if fit.initial else math.nan
    return float(fit.slope_pct_per_s), float(fit.slope_per_s), float(fit.r), se


def endurance_time_s(tilt_deg: np.ndarray, rate_hz: float, drop_frac: float) -> float:
    """Hold time: from reaching the hold (tilt above half its peak) until the tilt stays below ``drop_frac``
    of its initial plateau (median of the first 3 s of the hold) for 0.5 s; the whole hold if it never does."""
    tilt = np.asarray(tilt_deg, dtype=np.float64)
    if tilt.size == 0 or not np.nanmax(tilt) > 0:
        return math.nan
    up = np.flatnonzero(tilt > 0.5 * np.nanmax(tilt))
    start = int(up[0])
    plateau = float(np.nanmedian(tilt[start: start + int(3 * rate_hz)]))
    below = tilt[start:] < drop_frac * plateau
    need = max(1, int(0.5 * rate_hz))
    run = 0
    for i, b in enumerate(below):
        run = run + 1 if b else 0
        if run >= need:
            return (i - need + 1) / rate_hz
    return (tilt.size - start) / rate_hz
