"""Amplitude normalisation to a maximal voluntary contraction (%MVC)."""

from __future__ import annotations

import numpy as np

from dsp._validate import samples_2d


def percent_mvc(x: np.ndarray, reference) -> tuple[np.ndarray, np.ndarray]:
    """Express amplitudes as % of a per-channel MVC reference, keeping and flagging values above 100 %.

    Parameters
    ----------
    x : ndarray, shape (n_samples, n_channels) or (n_samples,), float
        Amplitude (e.g. RMS envelope), same units as ``reference``.
    reference : float or array_like, shape (n_channels,)
        MVC amplitude per channel (> 0, finite).

    Returns
    -------
    pct : ndarray, shape (n_samples, n_channels), float64
        100 x x / reference. Not clipped: a submaximal MVC shows as values above 100.
    above_100 : ndarray, shape (n_samples, n_channels), bool
        Where ``pct`` > 100.
    """
    x = samples_2d("x", x)
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    if ref.shape != (x.shape[1],):
        raise ValueError(f"reference must hold one value per channel ({x.shape[1]}), got shape {ref.shape}")
    if not np.all(np.isfinite(ref) & (ref > 0)):
        raise ValueError(f"reference must be finite and > 0, got {ref}")
    pct = 100.0 * x.astype(np.float64) / ref
    return pct, pct > 100.0
