"""Turn an imported recording into a Medius session file, all or nothing.

The session is written to a hidden temporary file in the destination folder and renamed to its final name only
after the writer closed cleanly; any failure deletes the temporary file, so a half-written session never
appears under the requested name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from pathlib import Path

import numpy as np

from sensors.recording import SessionWriter
from sensors.stream import MUSCLES, SIDES, Frame, StreamInfo

from .detect import read_any
from .imported import ImportedRecording, ImportFormatError


def parse_channel_map(items: list[str]) -> dict[str, tuple[str, str]]:
    """Parse CLI ``CH=MUSCLE:SIDE`` items into a `import_file` channel map.

    ``CH`` may itself contain ``=`` or ``:`` (Delsys labels do): the last ``=`` separates it.
    """
    out: dict[str, tuple[str, str]] = {}
    for item in items:
        ch, eq, target = item.rpartition("=")
        muscle, colon, side = target.partition(":")
        if not eq or not ch or not colon:
            raise ValueError(f"--map {item!r}: expected CH=MUSCLE:SIDE, e.g. 'EMG 1=gluteus_medius:right'")
        if ch in out:
            raise ValueError(f"--map: channel {ch!r} is mapped twice")
        out[ch] = (muscle.strip(), side.strip())
    return out


def apply_channel_map(rec: ImportedRecording, channel_map: dict[str, tuple[str, str]]) -> list[StreamInfo]:
    """The recording's streams with ``muscle``/``side`` set on the mapped channels.

    Raises
    ------
    ImportFormatError
        For an unknown or ambiguous channel (listing the available ones), an unknown muscle or side, a channel
        mapped twice, or two channels mapped to the same muscle and side.
    """
    assigned: dict[tuple[str, int], tuple[str, str]] = {}
    used: dict[tuple[str, str], str] = {}
    for ch, (muscle, side) in channel_map.items():
        if muscle not in MUSCLES:
            raise ImportFormatError(rec.path, f"--map {ch}: unknown muscle {muscle!r}; expected one of {', '.join(MUSCLES)}")
        if side not in SIDES:
            raise ImportFormatError(rec.path, f"--map {ch}: unknown side {side!r}; expected one of {', '.join(SIDES)}")
        where = rec.resolve_channel(ch)
        if where in assigned:
            raise ImportFormatError(rec.path, f"--map {ch}: that channel is already mapped to {':'.join(assigned[where])}")
        if (muscle, side) in used:
            raise ImportFormatError(rec.path, f"--map {ch}: {muscle}:{side} is already given to channel {used[(muscle, side)]!r}")
        assigned[where] = (muscle, side)
        used[(muscle, side)] = ch
    streams = []
    for s in rec.streams:
        chans = tuple(
            dataclasses.replace(c, muscle=assigned[(s.stream_id, i)][0], side=assigned[(s.stream_id, i)][1])
            if (s.stream_id, i) in assigned
            else c
            for i, c in enumerate(s.channels)
        )
        streams.append(dataclasses.replace(s, channels=chans))
    return streams


def import_file(
    path: str | os.PathLike,
    channel_map: dict[str, tuple[str, str]],
    out_path: str | os.PathLike,
    rate_hz: float | None = None,
    meta: dict | None = None,
    patient_code: str | None = None,
    affected_side: str | None = None,
) -> Path:
    """Import a recording from another system into a new session file (`read_any` + `write_session`).

    Parameters
    ----------
    path : path-like
        The file to import (any format `read_any` knows).
    channel_map : dict of str to (str, str)
        Channel name (label, alias or ``STREAM/NAME``, see `ImportedRecording.resolve_channel`) to
        ``(muscle, side)`` from `sensors.stream.MUSCLES` / `SIDES`. Unmapped channels are imported too, without
        a placement.
    out_path : path-like
        The session file to create (``*.medius``); must not exist, its folder must.
    rate_hz : float, optional
        Sampling rate for formats that do not state one (see `read_any`).
    meta : dict, optional
        Extra session metadata (e.g. ``date``, ``devices``), stored beside the import's provenance.
    patient_code : str, optional
        The clinic's pseudonymous patient code. Without one the session gets ``IMPORT-`` and the first 8 hex
        digits of the SHA-256 of the source file's bytes: the analysis needs a code, this one is stable for the
        file and says nothing about the person.
    affected_side : {'left', 'right'}, optional
        The patient's affected side, for the symmetry measures.

    Returns
    -------
    Path
        ``out_path``, now a complete session.

    Raises
    ------
    ImportFormatError
        The file or the channel map cannot be imported; nothing is written.
    ValueError
        ``patient_code`` is blank or ``affected_side`` is not a side; nothing is written.
    FileExistsError, FileNotFoundError
        ``out_path`` exists, or its folder does not.
    RecordingError, OSError
        Writing the session failed (disk full, permissions); the temporary file is removed.
    """
    _check_out(Path(out_path))
    _check_patient(patient_code, affected_side)
    return write_session(read_any(path, rate_hz), channel_map, out_path, meta, patient_code, affected_side)


def write_session(
    rec: ImportedRecording,
    channel_map: dict[str, tuple[str, str]],
    out_path: str | os.PathLike,
    meta: dict | None = None,
    patient_code: str | None = None,
    affected_side: str | None = None,
) -> Path:
    """Write an already-read recording as a new session file; for a GUI that showed ``rec``'s channels first.

    Parameters, return value and errors as `import_file`.
    """
    out = Path(out_path)
    _check_out(out)
    _check_patient(patient_code, affected_side)
    streams = apply_channel_map(rec, channel_map)
    sha256 = _sha256(rec.path)
    code = patient_code.strip() if patient_code else f"IMPORT-{sha256[:8]}"
    # the keys app.protocol.SessionProtocol.from_file reads: the patient dict, and the code on its own
    session_meta = {
        **(meta or {}),
        "patient_code": code,
        "patient": {"code": code, "affected_side": affected_side, "notes": ""},
        "imported_from": {
            "file": rec.path.name,
            "format": rec.format,
            "sha256": sha256,
            "notes": rec.notes,
            "stream_start_s": rec.start_s,
            "source": rec.meta,
        },
    }
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.importing")
    try:
        with SessionWriter.create(tmp, session_meta) as w:
            for s in streams:
                w.add_stream(s)
                _write_stream(w, s.stream_id, rec.counts[s.stream_id], rec.gaps[s.stream_id])
            # Events without a sample go to the fastest stream's nearest sample, if inside it.
            ref = max(streams, key=lambda s: s.rate_hz)
            n_ref = rec.counts[ref.stream_id].shape[0] + sum(n for _, n in rec.gaps[ref.stream_id])
            for e in rec.events:
                sid, index = e.stream_id, e.index
                if sid is None and index is None:
                    k = int(round((e.time_s - rec.start_s[ref.stream_id]) * ref.rate_hz))
                    if 0 <= k < n_ref:
                        sid, index = ref.stream_id, k
                w.add_event(e.kind, sid, index, e.time_s, e.payload)
        os.replace(tmp, out)
    except BaseException:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)
        raise
    return out


def _check_patient(patient_code: str | None, affected_side: str | None) -> None:
    if patient_code is not None and (not isinstance(patient_code, str) or not patient_code.strip()):
        raise ValueError(f"patient code must be a non-empty pseudonymous code, got {patient_code!r}")
    if affected_side is not None and affected_side not in SIDES:
        raise ValueError(f"affected side must be one of {', '.join(SIDES)}, got {affected_side!r}")


def _check_out(out: Path) -> None:
    if out.exists():
        raise FileExistsError(f"{out}: already exists; choose a new session file name")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out.parent}: no such folder for the session file")


def _write_stream(w: SessionWriter, stream_id: str, counts: np.ndarray, gaps: list[tuple[int, int]]) -> None:
    """Write ``counts`` rows in index order, jumping over each gap (the writer records the jump as a gap)."""
    row, index = 0, 0
    for start, n_missing in sorted(gaps):
        take = start - index
        w.write_frame(Frame(stream_id, index, counts[row : row + take]))
        row, index = row + take, start + n_missing
    w.write_frame(Frame(stream_id, index, counts[row:]))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
