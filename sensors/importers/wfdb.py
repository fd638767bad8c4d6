"""PhysioNet WFDB records: a text header (``.hea``) and a binary signal file in format 16.

Format 16 is little-endian int16, samples interleaved across the signals stored in one file. The header's
``adc_gain(baseline)/units`` gives ``physical = (count - baseline) / adc_gain``; its ``init_val`` and ``checksum``
(16-bit sum of all samples) are verified, so a truncated or altered ``.dat`` is refused. Other storage formats and
multi-segment records are not supported and say so.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sensors.stream import ChannelInfo, ChannelKind, StreamInfo

from .imported import MAX_CHANNELS, ImportedRecording, ImportFormatError, check_rate, check_size
from .text import read_text
from .units import kind_for_unit, normalise_unit

_GAIN_RE = re.compile(r"^(?P<gain>[-+0-9.eE]+)(?:\((?P<baseline>[-+0-9]+)\))?(?:/(?P<units>\S+))?$")
_FORMAT_RE = re.compile(r"^(?P<fmt>\d+)(?:x\d+)?(?::\d+)?(?:\+(?P<offset>\d+))?$")
#: WFDB defaults for fields a header may omit.
_DEFAULT_RATE_HZ = 250.0
_DEFAULT_GAIN = 200.0


def header_for(path: Path) -> Path:
    """The ``.hea`` of a record given either its header or its ``.dat``."""
    return path if path.suffix.lower() == ".hea" else path.with_suffix(".hea")


def read(path: Path) -> ImportedRecording:
    hea = header_for(path)
    if not hea.exists():
        raise ImportFormatError(path, f"WFDB header {hea.name} not found beside the signal file")
    raw_lines = read_text(hea).splitlines()
    lines = [ln.strip() for ln in raw_lines]
    comments, dropped = _recording_comments([ln for ln in raw_lines if ln.startswith("#")])
    fields = [ln.split() for ln in lines if ln and not ln.startswith("#")]
    if not fields:
        raise ImportFormatError(hea, "empty WFDB header")
    rec = fields[0]
    if len(rec) < 2 or "/" in rec[0]:
        raise ImportFormatError(hea, "record line must be 'name nsig [fs [nsamp]]' (multi-segment records are not supported)")
    n_sig = _int(hea, rec[1], "number of signals")
    if not 0 < n_sig <= MAX_CHANNELS:
        raise ImportFormatError(hea, f"{n_sig} signals (expected 1..{MAX_CHANNELS})")
    rate = check_rate(hea, _float(hea, rec[2].split("/")[0].split("(")[0], "sampling rate") if len(rec) > 2 else _DEFAULT_RATE_HZ)
    n_samp = _int(hea, rec[3], "number of samples") if len(rec) > 3 else None
    if len(fields) - 1 != n_sig:
        raise ImportFormatError(hea, f"header declares {n_sig} signals but has {len(fields) - 1} signal lines")

    sigs = []
    for k, sf in enumerate(fields[1:]):
        if len(sf) < 2:
            raise ImportFormatError(hea, f"signal line {k + 1}: expected 'file format ...'")
        m = _FORMAT_RE.match(sf[1])
        if m is None or m["fmt"] != "16":
            raise ImportFormatError(hea, f"signal line {k + 1}: storage format {sf[1]!r} not supported (only 16)")
        g = _GAIN_RE.match(sf[2]) if len(sf) > 2 else None
        if len(sf) > 2 and g is None:
            raise ImportFormatError(hea, f"signal line {k + 1}: malformed gain field {sf[2]!r}")
        gain = _float(hea, g["gain"], "ADC gain") if g else _DEFAULT_GAIN
        adc_zero = _int(hea, sf[4], "ADC zero") if len(sf) > 4 else 0
        sigs.append(
            {
                "file": sf[0],
                "offset": int(m["offset"] or 0),
                "gain": gain if gain != 0 else _DEFAULT_GAIN,
                "baseline": int(g["baseline"]) if g and g["baseline"] else adc_zero,
                "units": normalise_unit(g["units"]) if g and g["units"] else "mV",
                "init": _int(hea, sf[5], "initial value") if len(sf) > 5 else None,
                "checksum": _int(hea, sf[6], "checksum") if len(sf) > 6 else None,
                "label": " ".join(sf[8:]) or f"signal {k + 1}",
            }
        )
    files = {s["file"] for s in sigs}
    if len(files) != 1 or len({s["offset"] for s in sigs}) != 1:
        raise ImportFormatError(hea, "signals spread over several files or byte offsets are not supported")
    dat = hea.with_name(sigs[0]["file"])
    if not dat.exists():
        raise ImportFormatError(hea, f"signal file {dat.name} not found")
    size = dat.stat().st_size - sigs[0]["offset"]
    if n_samp is not None:
        check_size(hea, n_samp * n_sig)
        if size != 2 * n_sig * n_samp:
            raise ImportFormatError(dat, f"{size} bytes, but the header declares {n_samp} samples x {n_sig} signals x 2 bytes")
    elif size % (2 * n_sig):
        raise ImportFormatError(dat, f"{size} bytes is not a whole number of {n_sig}-signal frames")
    check_size(hea, size // 2)
    counts = np.fromfile(dat, dtype="<i2", offset=sigs[0]["offset"]).reshape(-1, n_sig).astype(np.int16)
    if counts.shape[0] == 0:
        raise ImportFormatError(dat, "no samples")
    for j, s in enumerate(sigs):
        if s["init"] is not None and counts[0, j] != s["init"]:
            raise ImportFormatError(dat, f"signal {s['label']!r}: first sample {counts[0, j]} differs from the header's {s['init']}")
        if s["checksum"] is not None:
            total = int(counts[:, j].astype(np.int64).sum()) & 0xFFFF
            want = s["checksum"] & 0xFFFF
            if total != want:
                raise ImportFormatError(dat, f"signal {s['label']!r}: checksum {total} does not match the header's {want} (corrupt file)")
    labels = [s["label"] for s in sigs]
    if len(set(labels)) != len(labels):
        labels = [f"{lab} ({j + 1})" for j, lab in enumerate(labels)]
    chans = tuple(
        ChannelInfo(
            label=lab,
            kind=ChannelKind.EMG if "emg" in lab.lower() else kind_for_unit(s["units"]),
            unit=s["units"],
            gain=1.0 / s["gain"],
            offset=float(s["baseline"]),
        )
        for lab, s in zip(labels, sigs)
    )
    info = StreamInfo(stream_id="signals", rate_hz=rate, channels=chans, dtype="int16", device=f"WFDB record {rec[0]}")
    return ImportedRecording(
        path=path,
        format="wfdb",
        streams=[info],
        counts={"signals": counts},
        aliases={"signals": tuple((str(j + 1),) if lab != str(j + 1) else () for j, lab in enumerate(labels))},
        meta={"record": rec[0], "header_comments": comments},
        notes=[f"{dropped} WFDB header comment line(s) about the subject (<age>, <sex>, <diagnoses>, ...) not imported"]
        if dropped
        else [],
    )


def _recording_comments(lines: list[str]) -> tuple[list[str], int]:
    """Header comments minus the subject's details: WFDB writes those as ``<tag>:`` info lines, continued on
    lines indented further. Sessions are pseudonymous, so those stay out; recording notes (electrode, task) stay in.
    Returns the kept comments and how many lines were dropped."""
    kept, dropped, in_subject = [], 0, False
    for ln in lines:
        body = ln[1:]
        text = body.strip()
        continuation = body.startswith("  ")
        if text.startswith("<") or (in_subject and continuation):
            in_subject = True
            dropped += 1
        else:
            in_subject = False
            kept.append(text)
    return kept, dropped


def _int(path: Path, text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ImportFormatError(path, f"{what} {text!r} is not an integer") from None


def _float(path: Path, text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ImportFormatError(path, f"{what} {text!r} is not a number") from None
