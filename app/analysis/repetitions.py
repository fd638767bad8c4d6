"""Where the repetitions of an exercise trial are: from the thigh IMU, or from the EMG envelope without one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.analysis.config import AnalysisConfig
from app.analysis.data import SessionData
from app.protocol import Trial


@dataclass(frozen=True)
class Repetitions:
    times_s: np.ndarray  # (n_reps, 2) start/stop on the session clock
    source: str  # "imu_tilt", "joint_angle:<label>" or "emg_envelope"


def _bridge(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Linear interpolation across lost samples (rows where ``ok`` is False), so a dropped packet cannot split
    a repetition in two; ``x`` is (n, k)."""
    out = np.array(x, dtype=np.float64)
    if ok.all():
        return out
    idx = np.arange(out.shape[0])
    for j in range(out.shape[1]):
        out[~ok, j] = np.interp(idx[~ok], idx[ok], out[ok, j])
    return out


def movement_signal(session: SessionData, trial: Trial, cfg: AnalysisConfig) -> tuple[np.ndarray, float, float, str] | None:
    """The joint excursion during ``trial``: ``(signal_deg, rate_hz, start_s, source)`` or None without kinematics.

    A thigh IMU (accelerometer + gyroscope) gives the complementary-filter tilt; otherwise the joint-angle
    channel that moves most in the trial, taken as the distance from its starting value in the direction it
    moves (the trial starts at rest by protocol).
    """
    from dsp.reps import complementary_tilt

    imu = session.thigh_imu(trial.side)
    if imu is not None:
        acc, gyro, rate = imu
        i0 = int(round(trial.start_s * rate))
        i1 = min(int(round(trial.stop_s * rate)), acc.shape[0])
        ok = np.all(np.isfinite(acc[i0:i1]), axis=1) & np.all(np.isfinite(gyro[i0:i1]), axis=1)
        if i1 - i0 > rate and ok.mean() > 0.9:
            a, g = _bridge(acc[i0:i1], ok), _bridge(gyro[i0:i1], ok)
            return complementary_tilt(a, g, rate, tau_s=cfg.imu_tau_s), rate, i0 / rate, "imu_tilt"
    best = None
    for label, angle, rate in session.joint_angles(trial.side):
        i0 = int(round(trial.start_s * rate))
        seg = angle[i0: min(int(round(trial.stop_s * rate)), angle.size)]
        if seg.size <= rate or np.isfinite(seg).mean() < 0.9:
            continue
        seg = _bridge(seg[:, None], np.isfinite(seg))[:, 0]
        dev = seg - np.nanmedian(seg[: max(1, int(0.5 * rate))])
        lo, hi = np.nanpercentile(dev, [1, 99])
        x = dev if hi >= -lo else -dev
        excursion = max(hi, -lo)
        if best is None or excursion > best[0]:
            best = (excursion, x, rate, i0 / rate, f"joint_angle:{label}")
    return None if best is None or best[0] < 5.0 else best[1:]  # < 5 deg: the joint did not move


def find_repetitions(session: SessionData, trial: Trial, envelopes: dict[str, np.ndarray],
                     cfg: AnalysisConfig) -> Repetitions:
    """Segment ``trial`` with hysteresis on the joint excursion (`movement_signal`), falling back to the summed
    normalised EMG envelope."""
    from dsp.reps import auto_thresholds, hysteresis_segments

    moved = movement_signal(session, trial, cfg)
    if moved is not None:
        x, rate, start_s, source = moved
        high, low, _ = auto_thresholds(x, cfg.rep_high_frac, cfg.rep_low_frac)
        segs = hysteresis_segments(x, rate, high, low, cfg.rep_min_duration_s, cfg.rep_velocity_frac)
        return Repetitions(segs / rate + start_s, source)
    chans = [c for c in session.emg_channels() if c.side == trial.side]
    if not chans:
        return Repetitions(np.empty((0, 2)), "none")
    rate = chans[0].rate_hz
    i0, i1 = chans[0].stream.index(trial.start_s), chans[0].stream.index(trial.stop_s)
    # each muscle scaled to its own range within the trial, so a weak muscle still shapes the reps
    total = np.zeros(i1 - i0)
    for c in chans:
        if c.rate_hz != rate:
            continue
        e = envelopes[c.key][i0:i1]
        lo, hi = np.percentile(e, [5, 99])
        total += (e - lo) / (hi - lo) if hi > lo else 0.0
    high, low, _ = auto_thresholds(total, cfg.rep_high_frac, cfg.rep_low_frac)
    segs = hysteresis_segments(total, rate, high, low, cfg.rep_min_duration_s, cfg.rep_velocity_frac)
    return Repetitions(segs / rate + i0 / rate, "emg_envelope")
