"""Tiny readers for the shared real recordings, local to the dsp tests (the importers live in sensors/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The repository sits next to shared/ (../shared/data); a git worktree sits one level deeper, so look upwards.
DATA = next(
    (p / "shared" / "data" for p in Path(__file__).resolve().parents if (p / "shared" / "data").is_dir()),
    Path(__file__).resolve().parents[2] / "shared" / "data",
)


def delsys_emg(sensor_column: int = 1):
    """One EMG column of the Delsys Trigno CSV: (values in V, rate in Hz from the X[s] column)."""
    lines = (DATA / "delsys_trigno_csv" / "truncated_trigno_sample.csv").read_text(encoding="latin-1").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("X[s]"))
    t, v = [], []
    for line in lines[header + 1 :]:
        cells = line.split(",")
        if len(cells) > sensor_column and cells[sensor_column - 1] and cells[sensor_column]:
            t.append(float(cells[sensor_column - 1]))
            v.append(float(cells[sensor_column]))
    t = np.array(t)
    return np.array(v), 1.0 / np.median(np.diff(t))


def physionet(name: str):
    """A PhysioNet EMGDB record (format 16: little-endian int16): (values in mV, rate in Hz)."""
    hea = (DATA / "physionet_emgdb" / f"{name}.hea").read_text().splitlines()
    _, _, rate, n = hea[0].split()[:4]
    # signal line: file, format, gain/units, ADC resolution, ADC zero, initial value, checksum, block size, name
    fields = hea[1].split()
    assert fields[1] == "16"
    gain = float(fields[2].split("/")[0])  # counts per mV
    adc_zero, initial, checksum = int(fields[4]), int(fields[5]), int(fields[6])
    counts = np.fromfile(DATA / "physionet_emgdb" / fields[0], dtype="<i2")
    # the header's own integrity data: length, first sample, 16-bit checksum of all samples
    assert len(counts) == int(n) and counts[0] == initial
    assert (int(np.sum(counts.astype(np.int64))) + 32768) % 65536 - 32768 == checksum
    return (counts.astype(np.float64) - adc_zero) / gain, float(rate)


def uci(name: str):
    """The four EMG columns of a UCI lower-limb file (mV, 1000 Hz): rows where all four are present."""
    rows = []
    for line in (DATA / "uci_lower_limb" / name).read_text(encoding="latin-1").splitlines():
        cells = line.split("\t")
        if len(cells) >= 4:
            try:
                rows.append([float(c) for c in cells[:4]])
            except ValueError:
                continue
    return np.array(rows), 1000.0
