"""Generic delimited text (CSV, TSV, semicolon, whitespace): one sample per row, one channel per column.

The delimiter and the presence of a header row are sniffed from the first lines. A header column named like a
time axis (``time``, ``t``, ``time_s``, ``Time (ms)``, ``timestamp``, ``X[s]``) gives the rate, and must be
evenly spaced; without one, the caller must give the rate. Units come from the header when it states them
(``EMG1 (mV)``, ``emg_uv``); otherwise the channel is EMG in arbitrary units.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path

import numpy as np

from sensors.stream import ChannelInfo, ChannelKind, StreamInfo

from .imported import MAX_CHANNELS, ImportedRecording, ImportFormatError, check_rate
from .text import cells_to_float, read_text, uniform_rate
from .units import kind_for_unit, normalise_unit

_DELIMITERS = ("\t", ";", ",", "|")  # ties go to the earlier: "1;2,5" is semicolon-separated with a decimal comma
_TIME_RE = re.compile(r"(?:time|t|timestamp|seconds|secs?|elapsed)(?:\s*[_ ]\s*(s|ms)|\s*[\[(]\s*(s|sec|ms|msec)\s*[\])])?|x\[s\]")
_UNIT_RE = re.compile(r"^(?P<name>.*?)\s*(?:[\[(](?P<br>[^\])]+)[\])]|_(?P<suffix>uv|mv|v|g|dps|deg))$", re.IGNORECASE)
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


def read(path: Path, rate_hz: float | None = None) -> ImportedRecording:
    """Read a delimited text file. ``rate_hz`` overrides (and drops) a time column; required without one."""
    text = read_text(path)
    lines = text.splitlines()
    body = [i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]
    if not body:
        raise ImportFormatError(path, "no data lines")
    head = [lines[i] for i in body[:50]]
    delimiter = _sniff_delimiter(head)
    head_rows = _split(delimiter, head)
    decimal_comma = delimiter != "," and _uses_decimal_comma(head_rows[1:] if len(head_rows) > 1 else head_rows)
    first = [c.replace(",", ".") for c in head_rows[0]] if decimal_comma else head_rows[0]
    first_is_header = any(not _is_number(c) for c in first)
    n_cols = len(first)
    if n_cols > MAX_CHANNELS:
        raise ImportFormatError(path, f"{n_cols} columns is beyond the importer's limit of {MAX_CHANNELS} (not a signal table?)")
    if first_is_header:
        labels = [c.strip() or f"column {j + 1}" for j, c in enumerate(first)]
        data_lines = body[1:]
    else:
        labels = [str(j + 1) for j in range(n_cols)]
        data_lines = body
    if len(set(labels)) != len(labels):
        dup = [k for k, v in Counter(labels).items() if v > 1]
        raise ImportFormatError(path, f"duplicate column names {dup}")
    if not data_lines:
        raise ImportFormatError(path, "header only, no data rows")
    values = None if decimal_comma else _fast_parse(text, delimiter, data_lines[0], len(data_lines), n_cols)
    if values is None:
        values = _slow_parse(path, lines, data_lines, delimiter, decimal_comma, labels, body[0])

    time_col = next((j for j, lab in enumerate(labels) if first_is_header and _time_scale(lab) is not None), None)
    notes = []
    if rate_hz is not None:
        rate = check_rate(path, rate_hz, "given rate")
        if time_col is not None:
            notes.append(f"time column {labels[time_col]!r} ignored: the rate was given ({rate:g} Hz)")
    elif time_col is not None:
        what = f"time column {labels[time_col]!r}"
        t_s = values[:, time_col] * _time_scale(labels[time_col])
        rate = check_rate(path, uniform_rate(path, t_s, what, "; resample it, or give the rate to ignore it"), f"{what} rate")
    else:
        raise ImportFormatError(
            path, f"no time column among {labels} and no rate given: give the sampling rate (e.g. --rate 1000)"
        )
    keep = [j for j in range(n_cols) if j != time_col]
    if not keep:
        raise ImportFormatError(path, "only a time column, no signal columns")
    channels, aliases = [], []
    for j in keep:
        name, unit = _label_unit(labels[j])
        kind = kind_for_unit(unit) if unit else ChannelKind.EMG
        channels.append(ChannelInfo(label=labels[j], kind=kind, unit=unit or "a.u."))
        aliases.append(tuple(dict.fromkeys(a for a in (name, str(j + 1)) if a != labels[j])))
    delim_name = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe", None: "whitespace"}[delimiter]
    info = StreamInfo(
        stream_id="data",
        rate_hz=rate,
        channels=tuple(channels),
        dtype="float64",
        note=f"imported from {delim_name}-separated text" + (" with decimal commas" if decimal_comma else ""),
        device="text",
    )
    return ImportedRecording(
        path=path,
        format="csv",
        streams=[info],
        counts={"data": np.ascontiguousarray(values[:, keep])},
        aliases={"data": tuple(aliases)},
        notes=notes,
    )


def _sniff_delimiter(sample: list[str]) -> str | None:
    """The delimiter splitting most sampled lines into as many (>1) cells as the first line; None = whitespace.

    Judged against the first line rather than requiring every line to agree, so one ragged row is reported as
    such instead of making the whole file look undelimited.
    """
    best, best_key = None, (0, 1)
    for d in _DELIMITERS:
        counts = [len(r) for r in _split(d, sample)]
        key = (sum(c == counts[0] for c in counts), counts[0])
        if counts[0] > 1 and key > best_key:
            best, best_key = d, key
    return best


def _fast_parse(text: str, delimiter: str | None, skip: int, n_rows: int, n_cols: int) -> np.ndarray | None:
    """numpy's C parser over the data lines; None if anything is off, so `_slow_parse` can say exactly what."""
    try:
        values = np.loadtxt(
            io.StringIO(text), dtype=np.float64, delimiter=delimiter, comments="#", skiprows=skip, ndmin=2,
            quotechar='"' if delimiter else None,
        )
    except ValueError:
        return None
    if values.shape != (n_rows, n_cols) or not np.isfinite(values).all():
        return None
    return values


def _slow_parse(
    path: Path, lines: list[str], data_lines: list[int], delimiter: str | None, decimal_comma: bool, labels: list[str],
    first_line: int,
) -> np.ndarray:
    """Cell-by-cell parse that names the line and column of the first problem."""
    rows = _split(delimiter, [lines[i] for i in data_lines])
    if decimal_comma:
        rows = [[c.replace(",", ".") for c in r] for r in rows]
    for row, i in zip(rows, data_lines):
        if len(row) != len(labels):
            raise ImportFormatError(path, f"line {i + 1} has {len(row)} cells, expected {len(labels)} like line {first_line + 1}")
    return cells_to_float(path, rows, [i + 1 for i in data_lines], labels)


def _is_number(cell: str) -> bool:
    """Numeric for header detection; "nan"/"inf" count, so a bad first data row is reported, not taken as names."""
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _split(delimiter: str | None, lines: list[str]) -> list[list[str]]:
    if delimiter is None:
        return [ln.split() for ln in lines]
    return list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))


def _uses_decimal_comma(rows: list[list[str]]) -> bool:
    cells = [c.strip() for r in rows for c in r]
    return any("," in c for c in cells) and all(_NUMBER_RE.match(c.replace(",", ".")) for c in cells if c)



def _label_unit(label: str) -> tuple[str, str]:
    """``"EMG1 (mV)"`` -> ``("EMG1", "mV")``, ``"emg_uv"`` -> ``("emg", "uV")``, ``"EMG1"`` -> ``("EMG1", "")``."""
    m = _UNIT_RE.match(label.strip())
    if m is None:
        return label, ""
    return m.group("name") or label, normalise_unit(m.group("br") or m.group("suffix"))


def _time_scale(label: str) -> float | None:
    """Seconds per unit if ``label`` names a time column (``time``, ``t_ms``, ``Time (s)``, ``X[s]``), else None."""
    m = _TIME_RE.fullmatch(label.strip().lower())
    if m is None:
        return None
    return 1e-3 if (m.group(1) or m.group(2) or "").startswith("m") else 1.0
