"""Repetition segmentation: thigh tilt from an IMU, hysteresis thresholds, and scoring against known reps.

Pure numerics (numpy/numba), no I/O. The analysis layer picks the signal (IMU tilt first, EMG envelope as a
fallback) and these functions cut it into repetitions.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _tilt_kernel(acc, gyro_rad_s, dt, alpha, g0, out_deg):  # pragma: no cover - compiled
    n = acc.shape[0]
    # gravity direction in the sensor frame, started from the mean of the initial rest
    gx, gy, gz = g0[0], g0[1], g0[2]
    norm = np.sqrt(gx * gx + gy * gy + gz * gz)
    gx, gy, gz = gx / norm, gy / norm, gz / norm
    rx, ry, rz = gx, gy, gz  # reference (rest) direction
    for i in range(n):
        wx, wy, wz = gyro_rad_s[i, 0] * dt, gyro_rad_s[i, 1] * dt, gyro_rad_s[i, 2] * dt
        # a world-fixed vector seen from a frame rotating at w changes as dv = -w x v
        px = gx - (wy * gz - wz * gy)
        py = gy - (wz * gx - wx * gz)
        pz = gz - (wx * gy - wy * gx)
        ax, ay, az = acc[i, 0], acc[i, 1], acc[i, 2]
        an = np.sqrt(ax * ax + ay * ay + az * az)
        if an > 0.0:
            px = alpha * px + (1.0 - alpha) * ax / an
            py = alpha * py + (1.0 - alpha) * ay / an
            pz = alpha * pz + (1.0 - alpha) * az / an
        pn = np.sqrt(px * px + py * py + pz * pz)
        gx, gy, gz = px / pn, py / pn, pz / pn
        c = gx * rx + gy * ry + gz * rz
        if c > 1.0:
            c = 1.0
        elif c < -1.0:
            c = -1.0
        out_deg[i] = np.degrees(np.arccos(c))


def complementary_tilt(
    acc_g: np.ndarray, gyro_dps: np.ndarray, rate_hz: float, tau_s: float = 0.5, rest_s: float = 0.5
) -> np.ndarray:
    """Tilt of a body segment from its starting orientation, by a complementary filter.

    The gravity direction in the sensor frame is propagated with the gyroscope and pulled towards the
    accelerometer's direction with time constant ``tau_s`` (the gyro is trusted at short time scales, the
    accelerometer at long ones). The output is the angle between the current and the initial gravity
    direction: for a thigh sensor during hip abduction (or any rotation about a horizontal axis) this is the
    joint excursion, whatever way the sensor was strapped on.

    Parameters
    ----------
    acc_g : ndarray, shape (n_samples, 3)
        Accelerometer, any unit (only its direction is used); the first ``rest_s`` must be at rest.
    gyro_dps : ndarray, shape (n_samples, 3)
        Gyroscope in deg/s, same axes as ``acc_g``.
    rate_hz : float
        Sampling rate of both.
    tau_s : float
        Crossover time constant in seconds.
    rest_s : float
        Initial stretch, in seconds, whose mean accelerometer direction is the zero of the tilt (averaging
        keeps accelerometer noise out of the reference).

    Returns
    -------
    ndarray, shape (n_samples,), float64
        Tilt in degrees from the initial rest orientation, unsigned.
    """
    acc = np.ascontiguousarray(acc_g, dtype=np.float64)
    gyro = np.ascontiguousarray(gyro_dps, dtype=np.float64)
    if acc.ndim != 2 or acc.shape[1] != 3 or gyro.shape != acc.shape:
        raise ValueError(f"acc and gyro must both be (n, 3); got {acc.shape} and {gyro.shape}")
    if not (rate_hz > 0 and tau_s > 0):
        raise ValueError("rate_hz and tau_s must be positive")
    out = np.empty(acc.shape[0], dtype=np.float64)
    if acc.shape[0] == 0:
        return out
    if not np.all(np.isfinite(acc)) or not np.all(np.isfinite(gyro)):
        raise ValueError("acc/gyro contain NaN or inf; fill or cut gaps before computing the tilt")
    g0 = acc[: max(1, int(round(rest_s * rate_hz)))].mean(axis=0)
    if np.linalg.norm(g0) == 0:
        raise ValueError("the initial accelerometer samples average to zero; cannot find gravity")
    dt = 1.0 / rate_hz
    alpha = tau_s / (tau_s + dt)
    _tilt_kernel(acc, np.radians(gyro), dt, alpha, g0, out)
    return out


def auto_thresholds(x: np.ndarray, high_frac: float = 0.5, low_frac: float = 0.25) -> tuple[float, float, float]:
    """Hysteresis thresholds from the signal's own range.

    Baseline = 5th percentile, peak level = 99th percentile; ``high = base + high_frac (peak - base)`` and
    likewise ``low``. Returns ``(high, low, base)``.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("no finite samples to derive thresholds from")
    if not (0 < low_frac < high_frac < 1):
        raise ValueError("need 0 < low_frac < high_frac < 1")
    base, peak = np.percentile(x, [5.0, 99.0])
    span = peak - base
    return float(base + high_frac * span), float(base + low_frac * span), float(base)


def hysteresis_segments(
    x: np.ndarray,
    rate_hz: float,
    high: float,
    low: float,
    min_duration_s: float = 0.3,
    velocity_frac: float | None = 0.05,
    smooth_s: float = 0.05,
) -> np.ndarray:
    """Cut a 1-D signal into active segments with two thresholds.

    A segment starts where ``x`` rises above ``high`` (its start placed at the preceding crossing of ``low``)
    and ends where it next falls below ``low``, so noise around one threshold cannot split or merge
    repetitions. With ``velocity_frac``, each boundary then moves outwards while the signal is still rising
    (falling) faster than ``velocity_frac`` times the segment's peak rate of change: the usual kinematic
    definition of movement start/end (5 % of peak velocity), independent of any offset in the resting level.
    Boundaries never cross a neighbouring segment. Segments whose threshold crossings lie less than ``min_duration_s`` apart are dropped.
    NaN samples count as below ``low``.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        Tilt (deg), envelope (µV) or any signal that rises during a repetition.
    rate_hz : float
        Sampling rate.
    high, low : float
        Thresholds in the units of ``x``, ``high > low``.
    min_duration_s : float
        Shortest segment kept.
    velocity_frac : float or None
        Fraction of the segment's peak rate of change that still counts as moving; None keeps the threshold
        crossings as boundaries.
    smooth_s : float
        Moving-average length applied before differentiating, in seconds (0: none).

    Returns
    -------
    ndarray, shape (n_segments, 2), int64
        ``[start, stop)`` sample indices.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {x.shape}")
    if not high > low:
        raise ValueError(f"need high > low, got high={high}, low={low}")
    if velocity_frac is not None and not 0 < velocity_frac < 1:
        raise ValueError(f"velocity_frac must lie in (0, 1), got {velocity_frac}")
    finite = np.isfinite(x)
    segs = _hysteresis(np.where(finite, x, -np.inf), float(high), float(low))
    # short blips are judged on their threshold crossings, before widening could stretch them
    segs = segs[(segs[:, 1] - segs[:, 0]) >= max(1, int(round(min_duration_s * rate_hz)))]
    if segs.shape[0] and velocity_frac is not None:
        xf = x.copy()
        if not finite.all():  # bridge gaps so the derivative stays finite
            xf[~finite] = np.interp(np.flatnonzero(~finite), np.flatnonzero(finite), x[finite])
        w = int(round(smooth_s * rate_hz))
        if w > 1:
            xf = np.convolve(xf, np.ones(w) / w, mode="same")
        _widen_by_velocity(np.gradient(xf) * rate_hz, segs, float(velocity_frac))
    return segs


@njit(cache=True, nogil=True)
def _hysteresis(x, high, low):  # pragma: no cover - compiled
    n = x.shape[0]
    out = np.empty((n // 2 + 1, 2), dtype=np.int64)
    k = 0
    active = False
    start = 0
    for i in range(n):
        if not active:
            if x[i] > high:
                # the segment began where x last crossed `low` on the way up
                j = i
                while j > 0 and x[j - 1] >= low and (k == 0 or j - 1 >= out[k - 1, 1]):
                    j -= 1
                start = j
                active = True
        elif x[i] < low:
            out[k, 0] = start
            out[k, 1] = i
            k += 1
            active = False
    if active:
        out[k, 0] = start
        out[k, 1] = n
        k += 1
    return out[:k].copy()


@njit(cache=True, nogil=True)
def _widen_by_velocity(v, segs, frac):  # pragma: no cover - compiled
    n = v.shape[0]
    m = segs.shape[0]
    ends = segs[:, 1].copy()
    for s in range(m):
        peak = 0.0
        for i in range(segs[s, 0], ends[s]):
            if abs(v[i]) > peak:
                peak = abs(v[i])
        thr = frac * peak
        lo = ends[s - 1] if s > 0 else 0
        j = segs[s, 0]
        while j > lo and v[j - 1] > thr:
            j -= 1
        segs[s, 0] = j
        hi = segs[s + 1, 0] if s + 1 < m else n
        j = ends[s]
        while j < hi and v[j] < -thr:
            j += 1
        segs[s, 1] = j


def match_segments(detected_s: np.ndarray, truth_s: np.ndarray) -> dict:
    """Score detected repetitions against known ones.

    A detected and a true repetition match when they overlap by more than half of the shorter one; each is
    used at most once (greedy by overlap). Boundary errors are taken over matched pairs.

    Parameters
    ----------
    detected_s, truth_s : array_like, shape (n, 2)
        ``[start_s, stop_s]`` of each repetition, in seconds.

    Returns
    -------
    dict
        ``tp, fp, fn, precision, recall, f1`` and ``boundary_errors_s`` (ndarray of |start error| and
        |stop error| of every matched pair, concatenated), ``median_boundary_error_s``.
    """
    d = np.asarray(detected_s, dtype=np.float64).reshape(-1, 2)
    t = np.asarray(truth_s, dtype=np.float64).reshape(-1, 2)
    pairs = []
    for i in range(d.shape[0]):
        for j in range(t.shape[0]):
            ov = min(d[i, 1], t[j, 1]) - max(d[i, 0], t[j, 0])
            shorter = min(d[i, 1] - d[i, 0], t[j, 1] - t[j, 0])
            if shorter > 0 and ov > 0.5 * shorter:
                pairs.append((ov, i, j))
    used_d, used_t, errs = set(), set(), []
    for ov, i, j in sorted(pairs, reverse=True):
        if i in used_d or j in used_t:
            continue
        used_d.add(i)
        used_t.add(j)
        errs.extend([abs(d[i, 0] - t[j, 0]), abs(d[i, 1] - t[j, 1])])
    tp = len(used_d)
    fp = d.shape[0] - tp
    fn = t.shape[0] - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    errs_a = np.asarray(errs, dtype=np.float64)
    return dict(tp=tp, fp=fp, fn=fn, precision=precision, recall=recall, f1=f1, boundary_errors_s=errs_a,
                median_boundary_error_s=float(np.median(errs_a)) if errs_a.size else float("nan"))
