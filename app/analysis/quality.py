"""Signal quality per channel and trial, and whether spectral indices may be shown for it."""

from __future__ import annotations

import math

import numpy as np

from app.analysis.config import AnalysisConfig
from app.analysis.data import EmgChannel
from sensors.stream import ChannelKind


def rms(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else math.nan


def mains_ratio(raw: np.ndarray, rate_hz: float, band_hz: tuple[float, float], mains_hz: float | None) -> float:
    """Fraction of the band's power that mains lines add above the local spectral floor.

    Welch PSD of the raw trial with ~1 Hz bins; at the mains frequency and its 2nd and 3rd harmonics the bins
    within +-2 bins are compared with the median of the bins 4-12 bins away, and only the excess counts. 0 for a
    clean signal, near 1 when hum dominates. With ``mains_hz`` None both 50 and 60 Hz are tried and the larger
    ratio is reported.
    """
    from scipy.signal import welch

    x = np.asarray(raw, dtype=np.float64)
    x = x[np.isfinite(x)]
    nperseg = int(min(x.size, 2 ** int(np.ceil(np.log2(rate_hz)))))
    if nperseg < 64:
        return math.nan
    f, p = welch(x - x.mean(), fs=rate_hz, nperseg=nperseg)
    df = f[1] - f[0]
    top = min(band_hz[1], rate_hz / 2)
    total = p[(f >= band_hz[0]) & (f <= top)].sum()
    if not total > 0:
        return math.nan
    best = 0.0
    for base in ([mains_hz] if mains_hz else [50.0, 60.0]):
        excess = 0.0
        for h in (base, 2 * base, 3 * base):
            if h > top:
                break
            d = np.abs(f - h)
            line = d <= 2.0 * df  # the Hann main lobe spans +-2 bins
            floor = np.median(p[(d >= 4.0 * df) & (d <= 12.0 * df)])
            excess += float(np.clip(p[line] - floor, 0, None).sum())
        best = max(best, excess / total)
    return float(best)


def saturation_pct(ch: EmgChannel, i0: int, i1: int) -> float:
    """% of the trial's received samples at the converter's limits (clipping).

    The limits are the channel's declared ADC range (e.g. 0 and 1023 for a 10-bit BITalino channel stored in
    int16), else the integer dtype's; NaN for a float-coded stream without a declared range or without counts.
    Lost samples (gaps) are left out.
    """
    counts = ch.stream.counts
    limits = ch.stream.info.count_range(ch.column)
    if counts is None or limits is None:
        return math.nan
    c = counts[i0:i1, ch.column]
    received = np.isfinite(ch.values()[i0:i1])
    if not received.any():
        return math.nan
    lo, hi = limits
    return float(np.mean(((c <= lo) | (c >= hi))[received]) * 100.0)


def packet_loss_pct(ch: EmgChannel, i0: int, i1: int) -> float:
    """% of the trial's samples that never arrived (recorded gaps, read as NaN)."""
    seg = ch.values()[i0:i1]
    return float(np.mean(~np.isfinite(seg)) * 100.0) if seg.size else math.nan


def snr_db(active_rms: float, rest_rms: float) -> float:
    """Contraction-to-rest SNR, 20 log10(active RMS / rest RMS), both on the band-passed signal."""
    if not (active_rms > 0 and rest_rms > 0):
        return math.nan
    return 20.0 * math.log10(active_rms / rest_rms)


def spectral_withheld(ch: EmgChannel, snr: float, cfg: AnalysisConfig) -> list[str]:
    """Reasons spectral indices (MDF, MNF, FInsm5) must not be shown for this channel/trial; empty if fine."""
    reasons = []
    if ch.info.kind is ChannelKind.ENVELOPE:
        reasons.append("channel is an on-board envelope, not raw EMG")
    if not ch.stream.info.spectral_ok:
        reasons.append(ch.stream.info.note or "the device stream cannot support spectral indices")
    if ch.rate_hz < cfg.min_spectral_rate_hz:
        reasons.append(f"sampling rate {ch.rate_hz:g} Hz is below {cfg.min_spectral_rate_hz:g} Hz")
    if not math.isfinite(snr):
        reasons.append("no rest recording to measure the signal-to-noise ratio")
    elif snr < cfg.min_snr_db:
        reasons.append(f"contraction-to-rest SNR {snr:.1f} dB is below {cfg.min_snr_db:g} dB")
    return reasons
