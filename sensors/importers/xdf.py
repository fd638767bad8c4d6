"""XDF (Lab Streaming Layer recordings) via pyxdf.

pyxdf does the hard parts with its defaults: clock synchronisation, clock-reset handling and de-jittering, which
split a stream into segments where its time stamps break. Here:

- every numeric stream with a nominal rate and samples becomes a stream at that nominal rate (a large
  difference from the effective rate is noted); the breaks between pyxdf's segments become recorded gaps of
  ``round(break_s * rate) - 1`` samples so later samples keep their place in time;
- string streams become marker events (text payload), placed at the nearest sample of the fastest stream;
- empty streams and numeric streams without a nominal rate are skipped, with a note each.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from sensors.stream import ChannelInfo, ChannelKind, StreamInfo

from .imported import MAX_CHANNELS, ImportedEvent, ImportedRecording, ImportFormatError, check_rate, check_size
from .units import kind_for_unit, normalise_unit

_DTYPES = {"int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64", "float32": "float32", "double64": "float64"}
_TYPE_KINDS = {"emg": ChannelKind.EMG, "acc": ChannelKind.ACC, "gyro": ChannelKind.GYRO, "angle": ChannelKind.ANGLE}
#: Effective rate this far from nominal gets a note (device clocks drift by ppm, not percent).
_RATE_NOTE_TOLERANCE = 0.01


def read(path: Path) -> ImportedRecording:
    import pyxdf  # heavy and only needed here

    with open(path, "rb") as fh:
        if fh.read(4) != b"XDF:":
            raise ImportFormatError(path, "not an XDF file (no 'XDF:' magic)")
    # pyxdf logs damaged chunks and carries on with what it could read; a damaged file is refused instead (its
    # per-segment warnings are noise and stay quiet).
    log, problems = logging.getLogger("pyxdf"), _Collect()
    saved_level, saved_propagate = log.level, log.propagate
    log.setLevel(logging.ERROR)
    log.propagate = False
    log.addHandler(problems)
    try:
        xdf_streams, header = pyxdf.load_xdf(str(path))
    except Exception as e:  # pyxdf raises whatever its parser hits (XML, struct, Runtime errors)
        raise ImportFormatError(path, f"XDF file cannot be parsed ({type(e).__name__}: {e}); truncated or corrupt?") from None
    finally:
        log.removeHandler(problems)
        log.setLevel(saved_level)
        log.propagate = saved_propagate
    if problems.messages:
        raise ImportFormatError(path, f"damaged XDF file (truncated or corrupt?): pyxdf: {problems.messages[0]}")
    if not xdf_streams:
        raise ImportFormatError(path, "no streams in the XDF file (truncated or corrupt?)")

    numeric, markers, notes = [], [], []
    for s in xdf_streams:
        info = s["info"]
        name = _first(info, "name") or f"stream {_first(info, 'stream_id')}"
        fmt = _first(info, "channel_format")
        srate = _float(path, _first(info, "nominal_srate") or "0", f"stream {name!r} nominal rate")
        n = len(s["time_stamps"])
        if not s.get("footer"):
            notes.append(f"XDF stream {name!r} has no footer: the recorder did not close the file cleanly")
        if n == 0:
            notes.append(f"XDF stream {name!r} skipped: empty")
        elif fmt == "string":
            markers.append((name, s))
        elif fmt not in _DTYPES:
            notes.append(f"XDF stream {name!r} skipped: channel format {fmt!r} not supported")
        elif srate <= 0:
            notes.append(f"XDF stream {name!r} skipped: numeric with irregular rate ({n} samples)")
        else:
            numeric.append((name, s, check_rate(path, srate, f"stream {name!r} nominal rate")))
    if not numeric:
        raise ImportFormatError(path, "no numeric stream with a nominal sampling rate; " + "; ".join(notes or ["only markers"]))

    t0 = min(float(s["time_stamps"][0]) for _, s, _ in numeric)
    streams, counts, aliases, start_s, gaps = [], {}, {}, {}, {}
    index_of_row: dict[str, np.ndarray] = {}
    total = 0
    for name, s, rate in numeric:
        info = s["info"]
        sid = _unique_id(name, counts)
        x = np.asarray(s["time_series"])
        n_ch = int(_first(info, "channel_count") or 0)
        if x.ndim != 2 or x.shape[1] != n_ch or not 0 < n_ch <= MAX_CHANNELS:
            raise ImportFormatError(path, f"stream {name!r}: data shape {x.shape} does not match {n_ch} channels")
        total += x.size
        check_size(path, total)
        dtype = _DTYPES[_first(info, "channel_format")]
        x = x.astype(dtype, copy=False)
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            r, c = np.argwhere(~np.isfinite(x))[0]
            raise ImportFormatError(path, f"stream {name!r}, sample {r}, channel {c + 1}: value {float(x[r, c])} is not finite")
        ts = np.asarray(s["time_stamps"], dtype=np.float64)
        stream_gaps, idx = _segment_gaps(info.get("segments") or [(0, len(ts) - 1)], ts, rate)
        chans, al = _channels(info, n_ch)
        eff = float(info.get("effective_srate") or 0)
        note = ""
        if eff > 0 and abs(eff / rate - 1) > _RATE_NOTE_TOLERANCE:
            note = f"effective rate {eff:.6g} Hz differs from nominal {rate:g} Hz"
            notes.append(f"stream {sid}: {note}")
        for start, n_missing in stream_gaps:
            notes.append(f"stream {sid}: time stamps break at sample {start} (clock reset or dropout): {n_missing} missing samples recorded as a gap")
        streams.append(
            StreamInfo(stream_id=sid, rate_hz=rate, channels=chans, dtype=dtype, note=note, device=f"XDF {name}".strip())
        )
        counts[sid] = np.ascontiguousarray(x)
        aliases[sid] = al
        start_s[sid] = float(ts[0] - t0)
        gaps[sid] = stream_gaps
        index_of_row[sid] = idx

    # Markers go to the fastest stream's nearest sample; outside its span they keep only their time.
    ref = max(numeric, key=lambda t: t[2])
    ref_id = streams[numeric.index(ref)].stream_id
    ref_ts = np.asarray(ref[1]["time_stamps"], dtype=np.float64)
    half = 0.5 / ref[2]
    events = []
    for name, s in markers:
        for t, value in zip(np.asarray(s["time_stamps"], dtype=np.float64), s["time_series"]):
            text = value[0] if len(value) == 1 else list(value)
            index = None
            if ref_ts[0] - half <= t <= ref_ts[-1] + half:
                k = int(np.clip(np.searchsorted(ref_ts, t), 1, len(ref_ts) - 1))
                k = k - 1 if t - ref_ts[k - 1] <= ref_ts[k] - t else k
                index = int(index_of_row[ref_id][k])
            events.append(
                ImportedEvent(
                    kind="marker",
                    time_s=float(t - t0),
                    payload={"text": text, "source": f"XDF stream {name}"},
                    stream_id=ref_id if index is not None else None,
                    index=index,
                )
            )
    events.sort(key=lambda e: e.time_s)
    meta = {"xdf_header": {k: _first(header.get("info", {}), k) for k in ("version", "datetime") if k in header.get("info", {})}}
    return ImportedRecording(
        path=path,
        format="xdf",
        streams=streams,
        counts=counts,
        aliases=aliases,
        start_s=start_s,
        gaps=gaps,
        events=events,
        notes=notes,
        meta=meta,
    )


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _segment_gaps(segments, ts: np.ndarray, rate: float) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Gaps ``(start_index, n_missing)`` between pyxdf segments, and each row's sample index (rows + gaps before)."""
    idx = np.arange(len(ts), dtype=np.int64)
    gaps = []
    shift = 0
    for (_, prev_end), (next_start, _) in zip(segments[:-1], segments[1:]):
        n_missing = int(round((ts[next_start] - ts[prev_end]) * rate)) - 1
        if n_missing > 0:
            gaps.append((int(next_start) + shift, n_missing))
            shift += n_missing
            idx[next_start:] += n_missing
    return gaps, idx


def _channels(info: dict, n_ch: int) -> tuple[tuple[ChannelInfo, ...], tuple[tuple[str, ...], ...]]:
    stream_kind = _TYPE_KINDS.get((_first(info, "type") or "").lower(), ChannelKind.OTHER)
    described = []
    desc = (info.get("desc") or [None])[0]
    if isinstance(desc, dict) and desc.get("channels"):
        chs = desc["channels"][0]
        if isinstance(chs, dict):
            described = chs.get("channel", []) or []
    chans, aliases, seen = [], [], set()
    for i in range(n_ch):
        d = described[i] if i < len(described) and isinstance(described[i], dict) else {}
        label = _first(d, "label") or f"ch{i + 1}"
        if label in seen:
            label = f"{label} ({i + 1})"
        seen.add(label)
        unit = normalise_unit(_first(d, "unit") or "")
        kind = _TYPE_KINDS.get((_first(d, "type") or "").lower()) or (kind_for_unit(unit) if unit else stream_kind)
        chans.append(ChannelInfo(label=label, kind=kind, unit=unit or "a.u."))
        aliases.append(tuple(a for a in (str(i + 1),) if a != label))
    return tuple(chans), tuple(aliases)


def _first(d: dict, key: str) -> str | None:
    v = d.get(key)
    if isinstance(v, list):
        v = v[0] if v else None
    return None if v is None else str(v)


def _float(path: Path, text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ImportFormatError(path, f"{what}: {text!r} is not a number") from None


def _unique_id(name: str, taken) -> str:
    base = re.sub(r"[^\w.-]+", "_", name).strip("_") or "stream"
    sid, n = base, 2
    while sid in taken:
        sid, n = f"{base}_{n}", n + 1
    return sid
