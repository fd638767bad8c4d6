"""Signal-quality figures on real recordings (read in place from ../shared/data).

Delsys Trigno export: sensor 10's EMG is dominated by ~60 Hz mains, sensor 11's is a quiet ~10 uV rest
(PROVENANCE.md). The mains ratio must tell them apart and find 60 Hz, not 50 Hz, when both are tried.
"""

import csv
from pathlib import Path

import numpy as np

from app.analysis.quality import mains_ratio

DATA = next(p / "shared" / "data" for p in Path(__file__).resolve().parents if (p / "shared" / "data").is_dir())


def _trigno_emg():
    path = DATA / "delsys_trigno_csv" / "truncated_trigno_sample.csv"
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header_at = next(i for i, r in enumerate(rows) if r and r[0] == "X[s]")
    header = rows[header_at]
    cols = {name: i for i, name in enumerate(header) if "EMG" in name}
    out = {}
    for name, i in cols.items():
        t, v = [], []
        for r in rows[header_at + 1:]:
            if len(r) > i and r[i - 1].strip() and r[i].strip():
                t.append(float(r[i - 1]))
                v.append(float(r[i]))
        out[name] = (np.array(t), np.array(v))
    return out


def test_mains_ratio_on_delsys_hum():
    emg = _trigno_emg()
    (t10, v10), (t11, v11) = emg["Mini sensor 10: EMG 10"], emg["Mini sensor 11: EMG 11"]
    rate = 1 / np.median(np.diff(t10))
    assert abs(rate - 1259.26) < 1
    hum = mains_ratio(v10, rate, (20.0, 450.0), None)
    quiet = mains_ratio(v11, rate, (20.0, 450.0), None)
    assert hum > 0.5 > quiet
    assert mains_ratio(v10, rate, (20.0, 450.0), 60.0) == hum  # the hum is 60 Hz
    assert mains_ratio(v10, rate, (20.0, 450.0), 50.0) < 0.2
