"""Slow, obviously correct references for the dsp kernels (pure Python / plain numpy, no numba).

Each mirrors a definition from design.md / clinical.md directly, so a test comparing a kernel with one of these
checks the kernel against the definition, not against itself.
"""

from __future__ import annotations

import math

import numpy as np


def naive_sosfilt(sos, x):
    """Direct form II transposed, one channel and one sample at a time, float64."""
    x = np.asarray(x, dtype=np.float64)
    x2 = x.reshape(len(x), -1)
    y = np.empty_like(x2)
    for c in range(x2.shape[1]):
        z = [[0.0, 0.0] for _ in range(len(sos))]
        for i in range(x2.shape[0]):
            v = float(x2[i, c])
            for s, (b0, b1, b2, a0, a1, a2) in enumerate(sos):
                out = b0 * v + z[s][0]
                z[s][0] = b1 * v - a1 * out + z[s][1]
                z[s][1] = b2 * v - a2 * out
                v = out
            y[i, c] = v
    return y


def naive_moving_rms(x, window):
    """output[i] = sqrt(mean(x[max(0, i-window+1) : i+1] ** 2)), each window summed afresh in float64."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.empty_like(x)
    for i in range(len(x)):
        seg = x[max(0, i - window + 1) : i + 1]
        y[i] = np.sqrt(np.mean(seg * seg, axis=0))
    return y


def hann_periodic(n):
    """The periodic Hann window scipy.signal.get_window('hann', n) returns."""
    return np.array([0.5 - 0.5 * math.cos(2 * math.pi * k / n) for k in range(n)])


def naive_psd(segment, rate_hz):
    """One-sided Hann periodogram (density) of a 1-D segment by a direct DFT sum, mean removed first."""
    seg = np.asarray(segment, dtype=np.float64)
    n = len(seg)
    seg = seg - seg.mean()
    w = hann_periodic(n)
    k = np.arange(n // 2 + 1)
    t = np.arange(n)
    spectrum = (seg * w) @ np.exp(-2j * np.pi * np.outer(t, k) / n)
    psd = np.abs(spectrum) ** 2 / (rate_hz * np.sum(w * w))
    psd[1 : (n + 1) // 2] *= 2  # one-sided: double all but DC (and Nyquist for even n)
    return k * rate_hz / n, psd


def naive_indices(freqs, psd, band):
    """MDF (first bin where the cumulative power >= half), MNF, FInsm5, band power over bins in [f1, f2]."""
    f1, f2 = band
    sel = [(f, p) for f, p in zip(freqs, psd) if f1 <= f <= f2]
    total = sum(p for _, p in sel)
    acc = 0.0
    mdf = float("nan")
    for f, p in sel:
        acc += p
        if acc >= total / 2:
            mdf = f
            break
    mnf = sum(f * p for f, p in sel) / total
    fi = sum(p / f for f, p in sel) / sum(f**5 * p for f, p in sel)
    df = freqs[1] - freqs[0]
    return mdf, mnf, fi, total * df


def naive_hysteresis(tf, on, off, min_len, min_off_len):
    """Runs that start where tf stays >= on for min_len samples and end where it stays < off for min_off_len."""
    runs, start, i, n = [], None, 0, len(tf)

    def held(j, test, length):
        return all(test(v) for v in tf[j : j + length]) or (j + length > n and all(test(v) for v in tf[j:]))

    while i < n:
        if start is None:
            if tf[i] >= on and held(i, lambda v: v >= on, min_len) and i + min_len <= n:
                start = i
                i += min_len
                continue
        elif tf[i] < off and held(i, lambda v: v < off, min_off_len):
            runs.append((start, i))
            start = None
            i += min_off_len
            continue
        i += 1
    if start is not None:
        runs.append((start, n))
    return runs
