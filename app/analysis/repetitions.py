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
    source: str  # "imu_tilt" or "emg_envelope"


def find_repetitions(session: SessionData, trial: Trial, envelopes: dict[str, np.ndarray],
                     cfg: AnalysisConfig) -> Repetitions:
    """Segment ``trial`` with hysteresis on the thigh tilt, falling back to the summed normalised EMG envelope."""
    from dsp.reps import auto_thresholds, complementary_tilt, hysteresis_segments

    imu = session.thigh_imu(trial.side)
    if imu is not None:
        acc, gyro, rate = imu
        i0 = int(round(trial.start_s * rate))
        i1 = min(int(round(trial.stop_s * rate)), acc.shape[0])
        ok = np.all(np.isfinite(acc[i0:i1]), axis=1) & np.all(np.isfinite(gyro[i0:i1]), axis=1)
        if i1 - i0 > rate and ok.mean() > 0.9:
            # the trial starts at rest by protocol, so its first half second is the tilt's zero
            a, g = acc[i0:i1].copy(), gyro[i0:i1].copy()
            a[~ok], g[~ok] = np.nanmedian(a, axis=0), 0.0
            tilt = complementary_tilt(a, g, rate, tau_s=cfg.imu_tau_s)
            high, low, _ = auto_thresholds(tilt, cfg.rep_high_frac, cfg.rep_low_frac)
            segs = hysteresis_segments(tilt, rate, high, low, cfg.rep_min_duration_s, cfg.rep_velocity_frac)
            return Repetitions(segs / rate + i0 / rate, "imu_tilt")
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
