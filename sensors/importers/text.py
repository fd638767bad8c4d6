"""Shared pieces of the text-format readers: decoding a file and turning rows of cells into numbers with errors
that point at a line and a column."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .imported import MAX_VALUES, ImportFormatError

#: A text export bigger than this cannot fit `MAX_VALUES` anyway (a value takes at least 2 characters).
MAX_TEXT_BYTES = 2 * MAX_VALUES


def read_text(path: Path) -> str:
    """Whole file as text: UTF-8 (with or without BOM), else Latin-1 (older Windows exports write ``°`` that way)."""
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise ImportFormatError(path, f"{size} bytes is beyond the importer's limit for text files ({MAX_TEXT_BYTES} bytes)")
    if size == 0:
        raise ImportFormatError(path, "file is empty")
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise ImportFormatError(path, "binary content where a text export was expected")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def cells_to_float(path: Path, rows: list[list[str]], line_nos: Sequence[int], labels: list[str]) -> np.ndarray:
    """Convert a rectangular table of numeric strings to float64, shape (len(rows), len(labels)).

    ``rows[i]`` is line ``line_nos[i]`` of the file (1-based), used in error messages. Empty cells, words,
    NaN and infinities are errors: a lossless import cannot guess what a missing value was.
    """
    if not rows:
        return np.empty((0, len(labels)), dtype=np.float64)
    try:
        table = np.array(rows, dtype=np.str_)
        values = np.char.strip(table).astype(np.float64)
    except ValueError:
        values = None
    if values is None or not np.isfinite(values).all():
        _raise_first_bad_cell(path, rows, line_nos, labels)
    return values


def _raise_first_bad_cell(path: Path, rows: list[list[str]], line_nos: Sequence[int], labels: list[str]) -> None:
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            text = cell.strip()
            try:
                v = float(text)
            except ValueError:
                what = "empty cell" if not text else f"non-numeric cell {text[:40]!r}"
                raise ImportFormatError(path, f"line {line_nos[i]}, column {labels[j]!r}: {what}") from None
            if not np.isfinite(v):
                raise ImportFormatError(path, f"line {line_nos[i]}, column {labels[j]!r}: {text!r} is not a finite number")
    raise AssertionError("unreachable: a bad cell was expected")  # pragma: no cover


def uniform_rate(path: Path, t_s: np.ndarray, what: str, hint: str = "") -> float:
    """Sampling rate of a time column, shape (n,), seconds; raise if it is not evenly spaced.

    The rate is fitted over the whole column (first to last sample), so printing precision of individual time
    stamps does not bias it. "Evenly spaced" means no sample sits more than a quarter sample period from where
    that rate puts it: a dropped or duplicated sample is a half-period error or worse.
    """
    n = t_s.shape[0]
    if n < 2:
        raise ImportFormatError(path, f"{what}: fewer than 2 samples, cannot infer a sampling rate")
    dt = np.diff(t_s)
    if not (dt > 0).all():
        k = int(np.argmin(dt > 0))
        raise ImportFormatError(path, f"{what}: time does not increase at sample {k + 1} ({t_s[k]:g} -> {t_s[k + 1]:g} s)")
    period = (t_s[-1] - t_s[0]) / (n - 1)
    resid = t_s - (t_s[0] + period * np.arange(n))
    worst = int(np.argmax(np.abs(resid)))
    if abs(resid[worst]) > 0.25 * period:
        raise ImportFormatError(
            path,
            f"{what}: irregular time stamps (sample {worst} is {resid[worst] * 1e3:+.3g} ms off a uniform "
            f"{1 / period:.6g} Hz clock){hint}",
        )
    return 1.0 / period
