"""Delsys Trigno CSV as exported by EMGworks.

::

    Label: Mini sensor 10: EMG 10 Sampling frequency: 1.259259e+003 Number of points: 81141 start: 0.000000e+000 Unit: V Domain Unit: s
    ... one Label line per channel ...
    Start Trigger Method: None
    Stop Trigger Method: None
    <blank>
    X[s],"Mini sensor 10: EMG 10",X[s],"Mini sensor 10: ACC.X 10",...
    0.0,0.0,0.0,0.0,...

Every channel is a ``time, value`` column pair. EMG (~1259.26 Hz) and IMU (~148.15 Hz) channels share rows, so
the slower columns end early and leave empty cells. Channels whose time columns agree (same rate, start and
length) form one stream; the rate is fitted to the time column, and the header's rate must agree with it.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from sensors.stream import ChannelInfo, ChannelKind, StreamInfo

from .imported import MAX_CHANNELS, ImportedRecording, ImportFormatError, check_rate
from .text import cells_to_float, read_text, uniform_rate
from .units import normalise_unit

_LABEL_RE = re.compile(
    r"^Label:\s*(?P<label>.+?)\s+Sampling frequency:\s*(?P<fs>\S+)\s+Number of points:\s*(?P<n>\d+)\s+"
    r"start:\s*(?P<start>\S+)\s+Unit:\s*(?P<unit>.*?)\s+Domain Unit:\s*(?P<dunit>\S+)\s*$"
)
_KIND_RE = re.compile(r":\s*(EMG|ACC|GYRO|MAG|IMU|ORIENT)", re.IGNORECASE)
_KINDS = {"EMG": ChannelKind.EMG, "ACC": ChannelKind.ACC, "GYRO": ChannelKind.GYRO}
#: Header rate and time-column rate must agree this well (the header prints 7 significant digits).
_RATE_TOLERANCE = 1e-4


def looks_like(head: str) -> bool:
    """True if the start of a text file is an EMGworks export."""
    return head.startswith("Label:") and "Sampling frequency:" in head.split("\n", 1)[0]


def read(path: Path) -> ImportedRecording:
    lines = read_text(path).splitlines()
    headers = []
    k = 0
    while k < len(lines) and lines[k].startswith("Label:"):
        m = _LABEL_RE.match(lines[k])
        if m is None:
            raise ImportFormatError(path, f"line {k + 1}: malformed 'Label:' header line")
        headers.append(m)
        k += 1
    if not headers:
        raise ImportFormatError(path, "no 'Label:' header lines (not an EMGworks CSV export)")
    if len(headers) > MAX_CHANNELS:
        raise ImportFormatError(path, f"{len(headers)} channels is beyond the importer's limit of {MAX_CHANNELS}")
    while k < len(lines) and not lines[k].startswith("X["):
        k += 1
    if k == len(lines):
        raise ImportFormatError(path, "no column header line ('X[s],...') after the 'Label:' lines")
    n_ch = len(headers)
    labels = [h["label"] for h in headers]
    col_names = next(csv.reader([lines[k]]))
    if len(col_names) != 2 * n_ch or col_names[1::2] != labels:
        raise ImportFormatError(path, f"line {k + 1}: column header does not list the {n_ch} labelled channels as X[s],value pairs")
    for j, h in enumerate(headers):
        if h["dunit"] != "s" or col_names[2 * j] != "X[s]":
            raise ImportFormatError(path, f"channel {labels[j]!r}: time axis is not in seconds")

    first_line = k + 2
    rows = [r.split(",") for r in lines[k + 1 :]]
    # Column pair j runs from the first row until its first empty cell; after that it must stay empty.
    cols: list[list[list[str]]] = [[] for _ in range(n_ch)]
    ended = [False] * n_ch
    for i, row in enumerate(rows):
        if len(row) > 2 * n_ch:
            raise ImportFormatError(path, f"line {first_line + i} has {len(row)} cells, expected at most {2 * n_ch}")
        for j in range(n_ch):
            t = row[2 * j].strip() if 2 * j < len(row) else ""
            v = row[2 * j + 1].strip() if 2 * j + 1 < len(row) else ""
            if not t and not v:
                ended[j] = True
            elif ended[j]:
                raise ImportFormatError(path, f"line {first_line + i}, channel {labels[j]!r}: value after the channel's data ended")
            elif not t or not v:
                raise ImportFormatError(path, f"line {first_line + i}, channel {labels[j]!r}: time and value must both be present")
            else:
                cols[j].append([t, v])

    # Fit each channel's rate to its time column, then group channels sharing a clock.
    per_channel = []
    for j, (h, pairs) in enumerate(zip(headers, cols)):
        tv = cells_to_float(path, pairs, range(first_line, first_line + len(pairs)), [f"X[s] of {labels[j]}", labels[j]])
        what = f"channel {labels[j]!r}"
        rate = check_rate(path, uniform_rate(path, tv[:, 0], what), f"{what} rate")
        header_rate = check_rate(path, _float(path, h["fs"], what), f"{what} header rate")
        if abs(rate / header_rate - 1) > _RATE_TOLERANCE:
            raise ImportFormatError(path, f"{what}: time column gives {rate:.6g} Hz but the header says {header_rate:.6g} Hz")
        per_channel.append((rate, tv))
    # Same time column (hence rate, start and length) = same clock = one stream.
    groups: list[list[int]] = []
    for j, (_, tv) in enumerate(per_channel):
        for g in groups:
            tv0 = per_channel[g[0]][1]
            if tv.shape == tv0.shape and np.array_equal(tv[:, 0], tv0[:, 0]):
                g.append(j)
                break
        else:
            groups.append([j])

    streams, counts, aliases, start_s, notes = [], {}, {}, {}, []
    for g in groups:
        kinds = [_kind(labels[j]) for j in g]
        base = "emg" if all(kd is ChannelKind.EMG for kd in kinds) else (
            "imu" if all(kd in (ChannelKind.ACC, ChannelKind.GYRO) for kd in kinds) else "other"
        )
        sid = base
        n = 2
        while sid in counts:
            sid, n = f"{base}_{n}", n + 1
        rate, tv = per_channel[g[0]]
        streams.append(
            StreamInfo(
                stream_id=sid,
                rate_hz=rate,
                channels=tuple(
                    ChannelInfo(label=labels[j], kind=kd, unit=normalise_unit(headers[j]["unit"])) for j, kd in zip(g, kinds)
                ),
                dtype="float64",
                spectral_ok=all(kd is ChannelKind.EMG for kd in kinds),
                device="Delsys Trigno (EMGworks CSV)",
            )
        )
        counts[sid] = np.column_stack([per_channel[j][1][:, 1] for j in g])
        aliases[sid] = tuple(_aliases(labels[j], j) for j in g)
        start_s[sid] = float(tv[0, 0])
        declared = {int(headers[j]["n"]) for j in g}
        n_read = counts[sid].shape[0]
        if any(d != n_read for d in declared):
            notes.append(f"stream {sid}: header declares {sorted(declared)} points, file holds {n_read} (truncated export)")
    return ImportedRecording(
        path=path, format="delsys", streams=streams, counts=counts, aliases=aliases, start_s=start_s, notes=notes
    )


def _float(path: Path, text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ImportFormatError(path, f"{what}: {text!r} is not a number") from None


def _kind(label: str) -> ChannelKind:
    m = _KIND_RE.search(label)
    return _KINDS.get(m.group(1).upper(), ChannelKind.OTHER) if m else ChannelKind.OTHER


def _aliases(label: str, j: int) -> tuple[str, ...]:
    """``"Mini sensor 10: EMG 10"`` -> ``("EMG 10", "<j+1>")``: the short name and the channel's position."""
    short = label.rpartition(": ")[2]
    return tuple(a for a in (short, str(j + 1)) if a != label)
