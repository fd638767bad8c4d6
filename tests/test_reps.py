"""dsp.reps: complementary-filter tilt, hysteresis segmentation, scoring; references built independently here."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dsp.reps import auto_thresholds, complementary_tilt, hysteresis_segments, match_segments


def _min_jerk(u):
    return 10 * u**3 - 15 * u**4 + 6 * u**5


def _abduction(rate_hz=100.0, n_reps=8, seed=0, amp_deg=35.0):
    """Thigh abduction reps (min-jerk up 1 s, hold 0.5 s, down 1 s, rest 1.5 s) seen by a tilted IMU."""
    rng = np.random.default_rng(seed)
    rest0 = 2.0
    truth, t_edges = [], []
    t_s = rest0
    for k in range(n_reps):
        up, hold, down = rng.uniform(0.8, 1.2), rng.uniform(0.3, 0.8), rng.uniform(0.8, 1.2)
        truth.append((t_s, t_s + up + hold + down, up, hold, down, amp_deg * rng.uniform(0.8, 1.1)))
        t_s += up + hold + down + rng.uniform(1.0, 2.0)
    n = int((t_s + 2.0) * rate_hz)
    t = np.arange(n) / rate_hz
    theta = np.zeros(n)
    for start, stop, up, hold, down, a in truth:
        u = (t - start) / up
        m = (u >= 0) & (u <= 1)
        theta[m] = a * _min_jerk(u[m])
        m = (t > start + up) & (t <= start + up + hold)
        theta[m] = a
        u = (t - start - up - hold) / down
        m = (u > 0) & (u <= 1)
        theta[m] = a * (1 - _min_jerk(u[m]))
    # body rotation about the world x axis (horizontal), sensor strapped with an arbitrary fixed mount
    mount = Rotation.from_euler("zyx", [30, 10, -20], degrees=True)
    body = Rotation.from_rotvec(np.radians(theta)[:, None] * np.array([1.0, 0.0, 0.0]))
    sensor = body * mount  # sensor-to-world
    acc = sensor.inv().apply(np.array([0.0, 0.0, 1.0]))
    omega_world = np.gradient(np.radians(theta), 1 / rate_hz)[:, None] * np.array([1.0, 0.0, 0.0])
    gyro = np.degrees(sensor.inv().apply(omega_world))
    acc = acc + rng.normal(0, 0.02, acc.shape)
    gyro = gyro + rng.normal(0, 1.0, gyro.shape) + np.array([0.5, -0.3, 0.2])  # noise and bias
    return acc, gyro, theta, np.array([(s, e) for s, e, *_ in truth]), rate_hz


def test_tilt_tracks_true_abduction_angle_whatever_the_mount():
    acc, gyro, theta, _, rate = _abduction()
    tilt = complementary_tilt(acc, gyro, rate, tau_s=0.5)
    err = np.abs(tilt - theta)
    assert np.median(err) < 1.0
    assert np.percentile(err, 99) < 4.0


def test_tilt_rejects_bad_input():
    with pytest.raises(ValueError, match="n, 3"):
        complementary_tilt(np.zeros((10, 2)), np.zeros((10, 2)), 100.0)
    acc = np.tile([0, 0, 1.0], (5, 1))
    acc[2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        complementary_tilt(acc, np.zeros((5, 3)), 100.0)


def test_hysteresis_against_hand_worked_signal():
    x = np.array([0, 0, 3, 6, 11, 12, 7, 4, 6, 11, 3, 0, 0, 8, 12, 12, 2, 0], dtype=float)
    # high 10, low 5: first rep rises over low at 3 and ends below low at 7 (the dip to 4 ends it);
    # second: 8 (6) ... 10 (3); third: 13 ... 16
    segs = hysteresis_segments(x, rate_hz=1.0, high=10, low=5, min_duration_s=1, velocity_frac=None)
    assert segs.tolist() == [[3, 7], [8, 10], [13, 16]]


def test_velocity_refinement_against_hand_worked_signal():
    # slow ramps: rest at 1, rise 1 -> 9 -> 17 -> 21 -> 22 (hold), fall back the same way
    x = np.array([1, 1, 1, 1.2, 9, 17, 21, 22, 22, 22, 21, 17, 9, 1.2, 1, 1, 1], dtype=float)
    v = np.gradient(x)  # central differences, as documented (no smoothing here)
    segs = hysteresis_segments(x, 1.0, high=15, low=8, min_duration_s=1, velocity_frac=0.05, smooth_s=0)
    peak = np.abs(v[4:13]).max()
    # start: walk back from the low crossing (index 4) while v > 5 % of peak; stop: forward while v < -5 %
    start = 4
    while start > 0 and v[start - 1] > 0.05 * peak:
        start -= 1
    stop = 12
    while stop < len(x) and v[stop] < -0.05 * peak:
        stop += 1
    assert segs.tolist() == [[start, stop]] == [[3, 14]]  # first off-rest sample .. first back-at-rest sample


def test_hysteresis_min_duration_and_errors():
    x = np.array([0, 11, 0, 0, 11, 11, 11, 0], dtype=float)
    assert hysteresis_segments(x, 1.0, 10, 5, min_duration_s=2, velocity_frac=None).tolist() == [[4, 7]]
    with pytest.raises(ValueError, match="high > low"):
        hysteresis_segments(x, 1.0, 5, 10)
    with pytest.raises(ValueError, match="1-D"):
        hysteresis_segments(x[:, None], 1.0, 10, 5)


def test_match_segments_counts():
    truth = [(1, 2), (3, 4), (5, 6)]
    det = [(1.05, 2.1), (3.0, 3.9), (7, 8)]
    m = match_segments(det, truth)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 1)
    assert m["f1"] == pytest.approx(2 / 3)
    assert sorted(np.round(m["boundary_errors_s"], 6)) == [0.0, 0.05, 0.1, 0.1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_imu_rep_segmentation_scores(seed):
    acc, gyro, theta, truth, rate = _abduction(seed=seed, n_reps=10)
    tilt = complementary_tilt(acc, gyro, rate)
    high, low, _ = auto_thresholds(tilt, 0.5, 0.25)
    segs = hysteresis_segments(tilt, rate, high, low)
    m = match_segments(segs / rate, truth)
    assert m["f1"] >= 0.95
    assert m["median_boundary_error_s"] <= 0.100


def test_kernels_correct_without_jit():
    """The same hand-worked checks with NUMBA_DISABLE_JIT=1: the kernels are correct plain Python too."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, NUMBA_DISABLE_JIT="1",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "hand_worked or tilt_tracks",
         str(Path(__file__))], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout
