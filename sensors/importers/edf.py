"""EDF, EDF+, BDF and BDF+ via pyedflib.

Signals are read as digital values (the file's own integers: 16-bit for EDF, 24-bit for BDF) with the header's
linear scaling ``physical = (digital - digital_min) * gain + physical_min``, ``gain = (physical_max -
physical_min) / (digital_max - digital_min)``, i.e. ``offset = digital_min - physical_min / gain`` in
`ChannelInfo` terms. Signals with the same sampling rate share a stream (EDF allows a different rate per signal).
EDF+ annotations become marker events.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sensors.stream import ChannelInfo, ChannelKind, StreamInfo

from .imported import MAX_CHANNELS, ImportedEvent, ImportedRecording, ImportFormatError, check_rate, check_size
from .units import kind_for_unit, normalise_unit


def read(path: Path) -> ImportedRecording:
    import pyedflib  # heavy and only needed here

    try:
        f = pyedflib.EdfReader(str(path))
    except OSError as e:
        raise ImportFormatError(path, f"not a readable EDF/BDF file ({e})") from None
    try:
        return _read(path, f, pyedflib)
    finally:
        f.close()


def _read(path: Path, f, pyedflib) -> ImportedRecording:
    bdf = f.filetype in (pyedflib.FILETYPE_BDF, pyedflib.FILETYPE_BDFPLUS)
    n_sig = f.signals_in_file
    if not 0 < n_sig <= MAX_CHANNELS:
        raise ImportFormatError(path, f"{n_sig} signals (expected 1..{MAX_CHANNELS})")
    check_size(path, int(sum(f.getNSamples())))
    labels = [lab.strip() or f"signal {i + 1}" for i, lab in enumerate(f.getSignalLabels())]
    by_rate: dict[float, list[int]] = {}
    for i in range(n_sig):
        rate = check_rate(path, f.getSampleFrequency(i), f"signal {labels[i]!r} sampling rate")
        by_rate.setdefault(rate, []).append(i)

    streams, counts, aliases = [], {}, {}
    for rate, members in sorted(by_rate.items(), key=lambda kv: -kv[0]):
        sid = "signals" if len(by_rate) == 1 else f"signals_{rate:g}hz".replace(".", "_")
        chans, cols = [], []
        for i in members:
            dmin, dmax = f.getDigitalMinimum(i), f.getDigitalMaximum(i)
            pmin, pmax = f.getPhysicalMinimum(i), f.getPhysicalMaximum(i)
            if dmax <= dmin or pmax == pmin:
                raise ImportFormatError(path, f"signal {labels[i]!r}: degenerate scaling (digital {dmin}..{dmax}, physical {pmin}..{pmax})")
            gain = (pmax - pmin) / (dmax - dmin)
            unit = normalise_unit(f.getPhysicalDimension(i))
            kind = ChannelKind.EMG if "emg" in labels[i].lower() else kind_for_unit(unit)
            chans.append(ChannelInfo(label=labels[i], kind=kind, unit=unit or "a.u.", gain=gain, offset=dmin - pmin / gain,
                                     count_min=int(dmin), count_max=int(dmax)))  # EDF: the recorder's digital range
            cols.append(f.readSignal(i, digital=True))
        lengths = {c.shape[0] for c in cols}
        if len(lengths) != 1:
            raise ImportFormatError(path, f"signals at {rate:g} Hz have different lengths {sorted(lengths)}")
        if lengths == {0}:
            raise ImportFormatError(path, "no data records")
        streams.append(
            StreamInfo(
                stream_id=sid,
                rate_hz=rate,
                channels=tuple(chans),
                dtype="int32" if bdf else "int16",
                device=(f.getEquipment() or ("BDF" if bdf else "EDF")).strip(),
            )
        )
        counts[sid] = np.column_stack(cols).astype(np.int32 if bdf else np.int16)
        aliases[sid] = tuple((str(i + 1),) if labels[i] != str(i + 1) else () for i in members)

    events = []
    onsets, durations, texts = f.readAnnotations()
    for onset, duration, text in zip(onsets, durations, texts):
        payload = {"text": str(text), "source": "EDF+ annotation"}
        if duration > 0:
            payload["duration_s"] = float(duration)
        events.append(ImportedEvent(kind="marker", time_s=float(onset), payload=payload))
    meta = {"start": f.getStartdatetime().isoformat(), "file_type": ["EDF", "EDF+", "BDF", "BDF+"][f.filetype]}
    return ImportedRecording(path=path, format="edf", streams=streams, counts=counts, aliases=aliases, events=events, meta=meta)


def looks_like(head: bytes) -> bool:
    """EDF starts with ``"0       "``, BDF with ``0xFF "BIOSEMI"``."""
    return head[:8] == b"0       " or head[:8] == b"\xffBIOSEMI"

