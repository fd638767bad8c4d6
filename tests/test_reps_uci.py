"""dsp.reps on real goniometer recordings (UCI lower limb: knee angle, gait / standing flexion / seated extension).

No repetition truth ships with the data, so the reference is independent: scipy's prominence peak finder
(each cycle's excursion is a peak of at least half the range). Counts checked by eye on a decimated print of
the angle: 3Asen 4 extensions, 3Apie 3 flexions (the last a long hold), 5Npie 5, 5Nsen 4.
"""

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import find_peaks

from dsp.reps import auto_thresholds, hysteresis_segments

# the repository sits next to shared/; a git worktree one level deeper, so look upwards
DATA = next(p / "shared" / "data" for p in Path(__file__).resolve().parents
            if (p / "shared" / "data").is_dir()) / "uci_lower_limb"
RATE_HZ = 1000.0


def _knee_angle(path):
    rows = []
    for line in path.read_text(encoding="latin-1").splitlines():
        parts = line.split("\t")
        if len(parts) == 5:  # data rows; header lines and the ragged tail of 5Nmar have other shapes
            try:
                rows.append(float(parts[4]))
            except ValueError:
                pass
    return np.array(rows)


@pytest.mark.parametrize("name, by_eye", [("3Amar", None), ("3Apie", 3), ("3Asen", 4), ("5Nmar", None),
                                          ("5Npie", 5), ("5Nsen", 4)])
def test_goniometer_cycles(name, by_eye):
    angle = _knee_angle(DATA / f"{name}.txt")
    # a repetition moves the knee away from where the recording starts, in whichever direction
    dev = angle - np.median(angle[:1000])
    x = dev if dev.max() > -dev.min() else -dev
    high, low, _ = auto_thresholds(x, 0.5, 0.25)
    segs = hysteresis_segments(x, RATE_HZ, high, low, min_duration_s=0.3)
    span = np.percentile(x, 99) - np.percentile(x, 1)
    peaks, _ = find_peaks(x, prominence=0.5 * span, distance=int(0.3 * RATE_HZ))
    assert len(segs) == len(peaks)
    if by_eye is not None:
        assert len(segs) == by_eye
    inside = [(segs[:, 0] <= p) & (p < segs[:, 1]) for p in peaks]
    assert all(m.sum() == 1 for m in inside)  # one peak per repetition
    assert np.all(np.diff(segs.ravel()) >= 0)  # ordered, non-overlapping
