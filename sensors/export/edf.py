"""EDF+ / BDF+ export of a session: every channel of every stream in physical units, with annotations.

Streams keep their own rates: EDF+ lets each signal have its own number of samples per data record, so the record
duration is chosen so that every rate gives a whole number of samples per record (1 s for integer rates; e.g.
0.999 s for 2000 Hz next to Delsys' 2000/13.5 Hz). A rate for which no such duration of at most 60 s exists with
an 8-character header field (an irrational-looking rate) cannot be represented: the export refuses with
`ExportError` naming the rate, rather than silently resampling — export that stream as CSV instead.

Samples are quantised to 16 bits (EDF) or 24 bits (BDF) over each channel's recorded range; physical min/max are
rounded outward to values the 8-character header stores exactly, so reading back is exact to half a digital step.
Recorded gaps are written as 0 and annotated; trials, repetitions, markers and device events become annotations.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from sensors.recording import MARKER, REPETITION, TRIAL_START, TRIAL_STOP, SessionReader

#: EDF+ advises data records of at most 61440 bytes.
_MAX_RECORD_BYTES = 61440


class ExportError(Exception):
    """The session cannot be exported in the requested format; the message says why."""


def record_duration_s(rates_hz: list[float]) -> tuple[float, list[int]]:
    """Data-record duration making every rate a whole number of samples, and those numbers.

    Returns the largest such duration of at most 1 s (or the smallest one, if that is above 1 s), written in
    at most 8 characters as the EDF header requires.

    Raises
    ------
    ExportError
        If a rate is not a ratio of small integers (no duration of at most 60 s fits).
    """
    fracs = []
    for rate in rates_hz:
        f = Fraction(rate).limit_denominator(1000)
        if abs(float(f) - rate) > 1e-9 * rate:
            raise ExportError(f"rate {rate!r} Hz is not a ratio of small integers, so no EDF+ record duration holds "
                              "a whole number of its samples; export this stream as CSV instead")
        fracs.append(f)
    # rate p/q gives whole samples for durations that are multiples of q/p; the common multiple of all of them:
    base = Fraction(math.lcm(*(f.denominator for f in fracs)), math.gcd(*(f.numerator for f in fracs)))
    first = max(1, math.floor(1 / base))
    # Longest duration up to 1 s that the header states exactly, else the shortest one above 1 s (at most 60 s).
    candidates = [*range(first, 0, -1), *range(first + 1, math.floor(60 / base) + 1)] if base <= 60 else []
    for multiple in candidates:
        duration = base * multiple
        text = _fmt8(float(duration))
        if text is not None and Fraction(text) == duration:
            break
    else:
        raise ExportError(f"rates {rates_hz} Hz need a data record that is a multiple of {float(base)} s, which "
                          "EDF+ cannot state (at most 60 s in 8 characters); export these streams as CSV instead")
    return float(duration), [int(f * duration) for f in fracs]


def _fmt8(x: float) -> str | None:
    """``x`` as EDF writes it (at most 8 characters, no trailing zeros), or None if it does not fit exactly."""
    for decimals in range(7, -1, -1):
        s = f"{x:.{decimals}f}"
        s = s.rstrip("0").rstrip(".") if "." in s else s
        if len(s) <= 8 and float(s) == x:
            return s
    return None


def _round8(x: float, up: bool) -> float:
    """The nearest value at or beyond ``x`` (above if ``up``) that an 8-character EDF header field holds exactly."""
    for decimals in range(7, -1, -1):
        scale = 10 ** decimals
        v = (math.ceil(x * scale) if up else math.floor(x * scale)) / scale
        s = f"{v:.{decimals}f}"
        if len(s) <= 8:
            return float(s)
    raise ExportError(f"value {x!r} does not fit an 8-character EDF header field")


def write_edf(reader: SessionReader, path: os.PathLike | str, bdf: bool = False, include_identifying: bool = False,
              progress: Callable[[float], None] | None = None) -> None:
    """Write the session open in ``reader`` as EDF+ (16 bit) or BDF+ (24 bit) to ``path``.

    Parameters
    ----------
    reader : SessionReader
    path : path-like
        Output file (overwritten).
    bdf : bool
        BDF+ (24-bit samples) instead of EDF+ (16-bit).
    include_identifying : bool
        Also write ``meta["identifying"]["name"]`` as the patient name; by default only the pseudonymous
        patient code goes into the header.
    progress : callable, optional
        Called with the fraction done (0–1) after each data record.
    """
    import pyedflib  # format library, imported only when exporting

    layout = _plan(reader, bdf)
    try:
        _write(pyedflib, reader, path, layout, include_identifying, progress)
    except (ValueError, OSError) as exc:
        Path(path).unlink(missing_ok=True)  # never leave a half-written file behind
        raise ExportError(f"{path}: writing {'BDF+' if bdf else 'EDF+'} failed: {exc}") from exc
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise


@dataclass
class _Layout:
    """What goes where in the file: record duration, samples per record, signal headers and scaling."""

    bdf: bool
    streams: list
    duration_s: float
    samples_per_record: list[int]
    n_records: int
    headers: list[dict] = field(default_factory=list)
    scales: list[tuple[float, float]] = field(default_factory=list)  # (physical_min, physical_max) per signal
    gaps: dict = field(default_factory=dict)

    @property
    def digital_range(self) -> tuple[int, int]:
        return (-(2 ** 23), 2 ** 23 - 1) if self.bdf else (-32768, 32767)


def _plan(reader: SessionReader, bdf: bool) -> _Layout:
    streams = reader.streams
    if not streams:
        raise ExportError(f"{reader.path}: the session has no streams to export")
    duration_s, spr = record_duration_s([s.rate_hz for s in streams])
    gaps = {s.stream_id: reader.gaps(s.stream_id) for s in streams}
    ends = [max([reader.n_samples(s.stream_id)] + [a + b for a, b in gaps[s.stream_id]]) for s in streams]
    n_records = max(1, max(math.ceil(end / k) for end, k in zip(ends, spr)))
    layout = _Layout(bdf, streams, duration_s, spr, n_records, gaps=gaps)
    dmin, dmax = layout.digital_range
    for s in streams:
        lo, hi = _physical_range(reader, s)
        for c, pmin, pmax in zip(s.channels, lo, hi):
            pmin, pmax = _round8(min(pmin, 0.0), up=False), _round8(max(pmax, 0.0), up=True)
            if pmax == pmin:
                pmax = _round8(pmin + 1.0, up=True)
            place = " ".join(x for x in (c.muscle, c.side) if x)
            layout.headers.append({
                "label": f"{s.stream_id} {c.label}"[:16], "dimension": c.unit[:8], "sample_frequency": s.rate_hz,
                "physical_min": pmin, "physical_max": pmax, "digital_min": dmin, "digital_max": dmax,
                "transducer": f"{c.kind.value} {place} {s.device}".strip()[:80], "prefilter": "raw (unfiltered)"})
            layout.scales.append((pmin, pmax))
    record_bytes = sum(k * s.n_channels for s, k in zip(streams, spr)) * (3 if bdf else 2)
    if record_bytes > _MAX_RECORD_BYTES:
        warnings.warn(f"EDF data records of {record_bytes} bytes exceed the advised {_MAX_RECORD_BYTES}")
    return layout


def _write(pyedflib, reader: SessionReader, path, layout: _Layout, include_identifying: bool, progress) -> None:
    streams, n_records, gaps = layout.streams, layout.n_records, layout.gaps
    dmin, dmax = layout.digital_range
    writer = pyedflib.EdfWriter(os.fspath(path), len(layout.headers),
                                file_type=pyedflib.FILETYPE_BDFPLUS if layout.bdf else pyedflib.FILETYPE_EDFPLUS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyedflib warns whenever a record duration is set explicitly
            writer.setDatarecordDuration(layout.duration_s)
        writer.setSignalHeaders(layout.headers)
        # EDF+ header subfields are space-separated, so spaces inside a value become underscores.
        writer.setPatientCode(_subfield(reader.meta.get("patient_code") or "X"))
        if include_identifying and isinstance(reader.meta.get("identifying"), dict):
            writer.setPatientName(_subfield(reader.meta["identifying"].get("name", "X")))
        writer.setEquipment(_subfield(",".join(sorted({s.device for s in streams if s.device})) or "medius"))
        created = reader.meta.get("created_utc")
        if created:
            writer.setStartdatetime(datetime.fromisoformat(created).replace(tzinfo=None))
        # Room for every annotation: each annotation signal carries a few per data record.
        n_annotations = len(reader.events()) + sum(len(g) for g in gaps.values())
        writer.set_number_of_annotation_signals(min(64, max(1, math.ceil(n_annotations / n_records) + 1)))

        chunks = [_record_chunks(reader, s, k, n_records) for s, k in zip(streams, layout.samples_per_record)]
        for r in range(n_records):
            parts = []
            col = 0
            for s, it in zip(streams, chunks):
                phys = next(it)
                for ch in range(s.n_channels):
                    pmin, pmax = layout.scales[col]
                    x = np.nan_to_num(phys[:, ch], nan=0.0)  # gaps: 0, annotated
                    d = np.rint((x - pmin) / (pmax - pmin) * (dmax - dmin) + dmin)
                    parts.append(np.clip(d, dmin, dmax).astype(np.int32))
                    col += 1
            if writer.blockWriteDigitalSamples(np.concatenate(parts)) < 0:
                raise ExportError(f"{path}: pyedflib failed writing data record {r}")
            if progress:
                progress((r + 1) / n_records)
        for onset_s, dur_s, text in _annotations(reader, gaps):
            writer.writeAnnotation(onset_s, dur_s, text)
    finally:
        writer.close()


def _subfield(value) -> str:
    return str(value).strip().replace(" ", "_") or "X"


def _physical_range(reader: SessionReader, s) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel min and max of the recorded physical values (one pass, a block at a time)."""
    lo = np.full(s.n_channels, np.inf)
    hi = np.full(s.n_channels, -np.inf)
    for _, counts in reader.iter_blocks(s.stream_id):
        phys = s.to_physical(counts)
        lo = np.minimum(lo, phys.min(axis=0))
        hi = np.maximum(hi, phys.max(axis=0))
    return np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 0.0)


def _record_chunks(reader: SessionReader, s, k: int, n_records: int):
    """Physical values of ``s`` record by record, ``(k, n_channels)`` each, NaN in gaps and after the end."""
    blocks = reader.iter_blocks(s.stream_id)
    pending_first, pending = None, None
    for r in range(n_records):
        start, stop = r * k, (r + 1) * k
        out = np.full((k, s.n_channels), np.nan)
        while True:
            if pending is None:
                nxt = next(blocks, None)
                if nxt is None:
                    break
                pending_first, pending = nxt[0], s.to_physical(nxt[1])
            lo, hi = max(pending_first, start), min(pending_first + pending.shape[0], stop)
            if lo < hi:
                out[lo - start:hi - start] = pending[lo - pending_first:hi - pending_first]
            if pending_first + pending.shape[0] <= stop:
                pending = None  # used up; fetch the next block
            else:
                break
        yield out


def _annotations(reader: SessionReader, gaps: dict):
    """``(onset_s, duration_s, text)`` for gaps, trials (start to stop), repetitions, markers and other events."""
    out = []
    for s in reader.streams:
        for start, n in gaps[s.stream_id]:
            out.append((start / s.rate_hz, n / s.rate_hz, f"gap {s.stream_id}: {n} samples missing"))
    events = reader.events()
    stops = {e["payload"].get("trial"): reader.event_time_s(e) for e in events if e["kind"] == TRIAL_STOP}
    for e in events:
        t = reader.event_time_s(e) or 0.0
        p = e["payload"]
        if e["kind"] == TRIAL_START:
            stop = stops.get(p.get("trial"))
            out.append((t, -1 if stop is None else stop - t, f"trial {p.get('trial')} {p.get('type', '')}".strip()))
        elif e["kind"] == TRIAL_STOP:
            continue  # folded into the trial's duration
        elif e["kind"] == REPETITION:
            rate = reader.stream(e["stream_id"]).rate_hz if e["stream_id"] else None
            dur = (p["end_index"] - e["index"]) / rate if rate and "end_index" in p and e["index"] is not None else -1
            out.append((t, dur, f"trial {p.get('trial')} rep {p.get('rep')}"))
        elif e["kind"] == MARKER:
            out.append((t, -1, f"marker: {p.get('text', '')}"))
        else:
            out.append((t, -1, f"{e['kind']}: {p.get('message', '')}".strip().rstrip(":")))
    return sorted(out, key=lambda a: a[0])
