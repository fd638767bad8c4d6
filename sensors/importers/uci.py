"""The UCI "EMG dataset in Lower Limb" text format (Sanchez & Sotelo): a header block, then tab-separated columns.

::

    File Name: 5Nmar.log
    Channel 1: 'RF', 6563 values, engineering units: mV, no filters.
    ...
    Channel 5: 'FX', 329 values, engineering units: deg, no filters, extrapolated from 50 to 1000 samples per second.
    <blank>
    0.0037<TAB>-0.0015<TAB>...

The files do not state the sampling rate; the dataset documents 1000 Hz for every channel (the goniometer is
repeated from 50 Hz to 1000 Hz). A column may end before the others (5Nmar: 6563 EMG rows, 6580 goniometer
rows), so the EMG channels and the goniometer become separate streams, each complete: nothing is cut.
Channel names are Spanish in some files (``'Recto Femoral'``) and abbreviations in others (``'RF'``); the file's
channel number is accepted as an alias.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sensors.stream import ChannelInfo, ChannelKind, StreamInfo

from .imported import ImportedRecording, ImportFormatError, check_rate
from .text import cells_to_float, read_text
from .units import kind_for_unit, normalise_unit

#: The dataset's documented sampling rate (not written in the files).
UCI_RATE_HZ = 1000.0

_CHANNEL_RE = re.compile(
    r"^Channel\s+(?P<num>\d+):\s*'(?P<name>[^']*)',\s*(?P<n>\d+)\s+values,\s*engineering units:\s*(?P<unit>[^,]+),(?P<rest>.*)$"
)
_UPSAMPLED_RE = re.compile(r"extrapolated from (\d+) to (\d+) samples per second")


def looks_like(head: str) -> bool:
    """True if the start of a text file is a UCI lower-limb header."""
    lines = head.splitlines()
    return len(lines) > 1 and lines[0].startswith("File Name:") and bool(_CHANNEL_RE.match(lines[1].strip()))


def read(path: Path, rate_hz: float | None = None) -> ImportedRecording:
    """Read one UCI lower-limb file; ``rate_hz`` overrides the dataset's 1000 Hz."""
    rate = UCI_RATE_HZ if rate_hz is None else check_rate(path, rate_hz, "given rate")
    lines = read_text(path).splitlines()
    if not lines or not lines[0].startswith("File Name:"):
        raise ImportFormatError(path, "not a UCI lower-limb file: first line should be 'File Name: ...'")
    headers = []
    k = 1
    while k < len(lines) and lines[k].strip():
        m = _CHANNEL_RE.match(lines[k].strip())
        if m is None:
            raise ImportFormatError(path, f"line {k + 1}: expected \"Channel N: 'name', K values, engineering units: U, ...\"")
        headers.append(m)
        k += 1
    if not headers:
        raise ImportFormatError(path, "no 'Channel N:' lines in the header")
    n_ch = len(headers)
    labels = [h["name"] for h in headers]

    # Each column is a run of values from the first data row, then empty cells to the end (ragged tail).
    first_data_line = k + 2  # 1-based: header lines, a blank line, then data
    rows = [ln.split("\t") for ln in lines[k + 1 :]]
    columns: list[list[str]] = [[] for _ in range(n_ch)]
    ended = [False] * n_ch
    for i, row in enumerate(rows):
        if len(row) > n_ch:
            raise ImportFormatError(path, f"line {first_data_line + i} has {len(row)} cells, the header declares {n_ch} channels")
        for j in range(n_ch):
            cell = row[j].strip() if j < len(row) else ""
            if not cell:
                ended[j] = True
            elif ended[j]:
                raise ImportFormatError(path, f"line {first_data_line + i}, channel {labels[j]!r}: value after an empty cell")
            else:
                columns[j].append(cell)
    values = []
    for j, (h, col) in enumerate(zip(headers, columns)):
        line_nos = range(first_data_line, first_data_line + len(col))
        v = cells_to_float(path, [[c] for c in col], line_nos, [labels[j]])[:, 0]
        if v.size == 0:
            raise ImportFormatError(path, f"channel {labels[j]!r} has no values")
        declared = int(h["n"])
        up = _UPSAMPLED_RE.search(h["rest"])
        if up is not None and int(up.group(1)) > 0:
            declared = declared * int(up.group(2)) // int(up.group(1))
        if v.size != declared:
            raise ImportFormatError(path, f"channel {labels[j]!r}: header declares {declared} values, file holds {v.size}")
        values.append(v)

    # Group channels into streams: same kind and the same length share a stream.
    units = [normalise_unit(h["unit"]) for h in headers]
    kinds = [kind_for_unit(u) for u in units]
    groups: dict[tuple[ChannelKind, int], list[int]] = {}
    for j in range(n_ch):
        groups.setdefault((kinds[j], values[j].size), []).append(j)
    streams, counts, aliases = [], {}, {}
    base_ids = {ChannelKind.EMG: "emg", ChannelKind.ANGLE: "angle"}
    for (kind, _), members in groups.items():
        sid = base_ids.get(kind, kind.value)
        while sid in counts:
            sid += "_2"
        notes = [_UPSAMPLED_RE.search(headers[j]["rest"]) for j in members]
        note = "; ".join(f"{labels[j]}: {m.group(0)}" for j, m in zip(members, notes) if m)
        streams.append(
            StreamInfo(
                stream_id=sid,
                rate_hz=rate,
                channels=tuple(ChannelInfo(label=labels[j], kind=kind, unit=units[j]) for j in members),
                dtype="float64",
                spectral_ok=kind is ChannelKind.EMG,
                note=note,
                device="UCI lower-limb dataset",
            )
        )
        counts[sid] = np.column_stack([values[j] for j in members])
        aliases[sid] = tuple((headers[j]["num"],) for j in members)
    return ImportedRecording(
        path=path,
        format="uci",
        streams=streams,
        counts=counts,
        aliases=aliases,
        notes=[] if rate_hz is not None else [f"rate {UCI_RATE_HZ:g} Hz from the dataset documentation (not in the file)"],
        meta={"source_file_name": lines[0].partition(":")[2].strip()},
    )
