"""The "session CSV" export: samples with filtered and envelope columns, repetitions, trials, events, metadata.

Column names are stable and carry their units (``gluteus_medius_right_raw_mV``); README.md documents them. The
samples are processed a stored block (about a second) at a time through the same `dsp.pipeline.StreamPipeline`
the live view runs, and written as they are produced, so memory stays flat however long the session is.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from dsp.pipeline import PipelineConfig, StreamPipeline
from sensors.recording import MARKER, REPETITION, TRIAL_START, TRIAL_STOP, SessionReader
from sensors.stream import ChannelKind, StreamInfo

#: Version of the export layout (files and columns); bumped if a column changes meaning or name.
EXPORT_FORMAT_VERSION = 1
#: Below this rate there is no usable EMG band (the live view draws the same line): raw columns only.
MIN_FILTER_RATE_HZ = 100.0
#: Rows formatted per string operation: bounds the Python objects alive at once (one per value).
_FORMAT_ROWS = 256
#: Keys of ``meta["filters"]`` that configure the export's pipeline (the settings the session was recorded with).
_FILTER_KEYS = ("band_hz", "mains_hz", "mains_harmonics", "rms_window_s")


def unit_suffix(unit: str) -> str:
    """A unit as a column-name suffix: ``"mV"`` -> ``mV``, ``"deg/s"`` -> ``deg_per_s``, ``"%"`` -> ``pct``."""
    u = unit.replace("/", "_per_").replace("%", "pct").replace("µ", "u").replace("°", "deg")
    return re.sub(r"[^0-9A-Za-z_]+", "_", u).strip("_") or "1"


def channel_names(streams: list[StreamInfo]) -> dict[tuple[str, int], str]:
    """Column base name per ``(stream_id, channel)``: ``muscle_side`` where known, else the device label;
    made unique across the session by appending stream id and label where two would collide."""
    base = {}
    for s in streams:
        for i, c in enumerate(s.channels):
            name = f"{c.muscle}_{c.side}" if c.muscle and c.side else (c.muscle or c.label)
            if c.kind not in (ChannelKind.EMG, ChannelKind.ENVELOPE):
                name = f"{name}_{c.kind.value}" if c.muscle else name
            base[(s.stream_id, i)] = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_") or f"ch{i}"
    counts: dict[str, int] = {}
    for name in base.values():
        counts[name] = counts.get(name, 0) + 1
    for (sid, i), name in list(base.items()):
        if counts[name] > 1:
            label = re.sub(r"[^0-9A-Za-z_]+", "_", next(s for s in streams if s.stream_id == sid).channels[i].label)
            base[(sid, i)] = f"{name}_{sid}_{label}"
    return base


def pipeline_config(meta: dict, rate_hz: float) -> PipelineConfig:
    """The pipeline settings stored with the session (``meta["filters"]``), defaults where absent."""
    filters = meta.get("filters") if isinstance(meta.get("filters"), dict) else {}
    kwargs = {k: (tuple(v) if k == "band_hz" else v) for k, v in filters.items() if k in _FILTER_KEYS}
    return PipelineConfig(rate_hz=rate_hz, fatigue_window_s=None, **kwargs)


@dataclass
class _Rep:
    trial: object
    rep: object
    stream_id: str
    start: int
    end: int
    sumsq: np.ndarray = field(default=None)
    n: int = 0
    peak_env: np.ndarray = field(default=None)


def export_session_csv(session: Path | str, out_dir: Path | str, include_identifying: bool = False,
                       progress: Callable[[str, float], None] | None = None) -> list[Path]:
    """Write the session CSV export of ``session`` into ``out_dir`` (created if needed); returns the files.

    Files: ``samples_<stream>.csv`` per stream, ``repetitions.csv``, ``trials.csv``, ``events.csv`` and the
    sidecar ``session.json``. Pseudonymous unless ``include_identifying``: only the patient code leaves the
    session file. ``progress(file_name, fraction)`` is called as samples are written.
    """
    out_dir = Path(out_dir)
    written = []
    with SessionReader(session) as r:  # a bad session fails here, before anything is created
        out_dir.mkdir(parents=True, exist_ok=True)
        names = channel_names(r.streams)
        events = r.events()
        reps = [_Rep(e["payload"].get("trial"), e["payload"].get("rep"), e["stream_id"], int(e["index"]),
                     int(e["payload"]["end_index"]))
                for e in events if e["kind"] == REPETITION and e["stream_id"] and e["index"] is not None
                and "end_index" in e["payload"]]
        configs = {}
        for s in r.streams:
            path = out_dir / f"samples_{_safe(s.stream_id)}.csv"
            configs[s.stream_id] = _write_samples(r, s, names, path, [x for x in reps if x.stream_id == s.stream_id],
                                                  progress)
            written.append(path)
        written.append(_write_repetitions(r, names, reps, out_dir / "repetitions.csv"))
        written.append(_write_trials(r, events, reps, out_dir / "trials.csv"))
        written.append(_write_events(r, events, out_dir / "events.csv"))
        written.append(_write_sidecar(r, names, configs, include_identifying, out_dir / "session.json", written))
    return written


def _safe(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", text)


def _emg_channels(s: StreamInfo) -> list[int]:
    """Channels that get filtered and envelope columns: raw EMG sampled fast enough for the EMG band."""
    if s.rate_hz < MIN_FILTER_RATE_HZ:
        return []
    return [i for i, c in enumerate(s.channels) if c.kind is ChannelKind.EMG]


def _write_samples(r: SessionReader, s: StreamInfo, names: dict, path: Path, reps: list[_Rep],
                   progress) -> PipelineConfig | None:
    emg = _emg_channels(s)
    config = pipeline_config(r.meta, s.rate_hz) if emg else None
    pipe = StreamPipeline(config, len(emg)) if emg else None
    header, fmts = ["time_s", "sample_index"], ["%.6f", "%d"]
    for i, c in enumerate(s.channels):
        base, unit = names[(s.stream_id, i)], unit_suffix(c.unit)
        header.append(f"{base}_raw_{unit}")
        fmts.append("%.10g")
        if i in emg:
            header += [f"{base}_filtered_{unit}", f"{base}_envelope_{unit}"]
            fmts += ["%.9g", "%.9g"]
    row_fmt = ",".join(fmts) + "\n"
    # column positions in the output row for raw / filtered / envelope of each channel
    raw_col, filt_col = [], []
    col = 2
    for i in range(s.n_channels):
        raw_col.append(col)
        col += 1
        if i in emg:
            filt_col.append(col)
            col += 2
    for rep in reps:
        rep.sumsq, rep.peak_env = np.zeros(len(emg)), np.zeros(len(emg))
    total = max(1, r.n_samples(s.stream_id))
    expected = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(",".join(header) + "\n")
        for first, counts in r.iter_blocks(s.stream_id):
            if first != expected and pipe is not None:
                pipe.reset()  # after a gap the filter state describes data that no longer continues
            n = counts.shape[0]
            phys = s.to_physical(counts)
            out = np.empty((n, col))
            out[:, 0] = np.arange(first, first + n) / s.rate_hz
            out[:, 1] = np.arange(first, first + n)
            out[:, raw_col] = phys
            if pipe is not None:
                res = pipe.process(np.ascontiguousarray(phys[:, emg]))
                out[:, filt_col] = res.filtered
                out[:, [c + 1 for c in filt_col]] = res.envelope
                for rep in reps:
                    lo, hi = max(rep.start, first), min(rep.end, first + n)
                    if lo < hi:
                        seg = slice(lo - first, hi - first)
                        rep.sumsq += np.sum(res.filtered[seg] ** 2, axis=0)
                        rep.n += hi - lo
                        rep.peak_env = np.maximum(rep.peak_env, res.envelope[seg].max(axis=0))
            for a in range(0, n, _FORMAT_ROWS):
                part = out[a:a + _FORMAT_ROWS]
                f.write((row_fmt * part.shape[0]) % tuple(part.ravel().tolist()))
            expected = first + n
            if progress:
                progress(path.name, expected / total)
    return config


def _rep_columns(r: SessionReader, names: dict) -> list[tuple[str, int, str, str]]:
    cols = []
    for s in r.streams:
        for k, i in enumerate(_emg_channels(s)):
            base, unit = names[(s.stream_id, i)], unit_suffix(s.channels[i].unit)
            cols.append((s.stream_id, k, f"{base}_rms_{unit}", f"{base}_peak_envelope_{unit}"))
    return cols


def _write_repetitions(r: SessionReader, names: dict, reps: list[_Rep], path: Path) -> Path:
    cols = _rep_columns(r, names)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["trial", "rep", "stream_id", "start_index", "end_index", "start_s", "end_s", "duration_s"]
                   + [name for c in cols for name in c[2:]])
        for rep in sorted(reps, key=lambda x: (x.stream_id, x.start)):
            rate = r.stream(rep.stream_id).rate_hz
            row = [rep.trial, rep.rep, rep.stream_id, rep.start, rep.end, f"{rep.start / rate:.6f}",
                   f"{rep.end / rate:.6f}", f"{(rep.end - rep.start) / rate:.6f}"]
            for sid, k, _, _ in cols:
                if sid == rep.stream_id and rep.n:
                    row += [f"{np.sqrt(rep.sumsq[k] / rep.n):.9g}", f"{rep.peak_env[k]:.9g}"]
                else:
                    row += ["", ""]
            w.writerow(row)
    return path


def _write_trials(r: SessionReader, events: list[dict], reps: list[_Rep], path: Path) -> Path:
    stops = {e["payload"].get("trial"): r.event_time_s(e) for e in events if e["kind"] == TRIAL_STOP}
    markers = [r.event_time_s(e) for e in events if e["kind"] == MARKER]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["trial", "type", "muscle", "side", "planned_repetitions", "start_s", "stop_s", "duration_s",
                    "n_repetitions", "n_markers"])
        for e in events:
            if e["kind"] != TRIAL_START:
                continue
            p = e["payload"]
            start, stop = r.event_time_s(e), stops.get(p.get("trial"))
            in_trial = (lambda t: t is not None and start <= t <= stop) if stop is not None else (lambda t: False)
            w.writerow([p.get("trial", ""), p.get("type", ""), p.get("muscle") or "", p.get("side") or "",
                        "" if p.get("repetitions") is None else p["repetitions"], f"{start:.6f}",
                        "" if stop is None else f"{stop:.6f}", "" if stop is None else f"{stop - start:.6f}",
                        sum(1 for x in reps if x.trial == p.get("trial")), sum(1 for t in markers if in_trial(t))])
    return path


def _write_events(r: SessionReader, events: list[dict], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["time_s", "kind", "stream_id", "sample_index", "text", "payload_json"])
        for s in r.streams:
            for start, n in r.gaps(s.stream_id):
                w.writerow([f"{start / s.rate_hz:.6f}", "gap", s.stream_id, start, f"{n} samples missing",
                            json.dumps({"n_missing": n})])
        for e in events:
            t = r.event_time_s(e)
            p = e["payload"]
            w.writerow(["" if t is None else f"{t:.6f}", e["kind"], e["stream_id"] or "",
                        "" if e["index"] is None else e["index"], p.get("text", p.get("message", "")),
                        json.dumps(p, sort_keys=True)])
    return path


def _processing(s: StreamInfo, cfg: PipelineConfig | None) -> dict | None:
    """What the filtered and envelope columns of a stream are (ISEK reporting: filters, envelope, normalisation)."""
    if cfg is None:
        if any(c.kind is ChannelKind.EMG for c in s.channels):
            return {"note": f"no filtered/envelope columns: {s.rate_hz:g} Hz is below the {MIN_FILTER_RATE_HZ:g} Hz "
                            "needed for the EMG band"}
        return None
    design = cfg.design()
    return {
        "filtered": f"{design.description} (causal, zero initial state, restarted after each gap)",
        "filter_notes": list(design.notes),
        "band_hz": list(cfg.band_hz), "mains_notch_hz": cfg.mains_hz, "mains_harmonics": cfg.mains_harmonics,
        "envelope": f"moving RMS of the filtered signal over {cfg.rms_window_s} s ({cfg.rms_window_samples} samples, "
                    "causal)",
        "normalisation": "none (physical units)",
    }


def _write_sidecar(r: SessionReader, names: dict, configs: dict, include_identifying: bool, path: Path,
                   files: list[Path]) -> Path:
    session_meta = {k: v for k, v in r.meta.items() if k not in ("patient_code", "identifying")}
    streams = []
    for s in r.streams:
        cfg = configs.get(s.stream_id)
        streams.append({
            "stream_id": s.stream_id, "samples_file": f"samples_{_safe(s.stream_id)}.csv",
            "sampling_rate_hz": s.rate_hz, "n_samples": r.n_samples(s.stream_id), "raw_dtype": s.dtype,
            "device": s.device, "spectral_ok": s.spectral_ok, "note": s.note,
            "gaps": [{"start_index": a, "n_missing": b} for a, b in r.gaps(s.stream_id)],
            "channels": [{
                "column_prefix": names[(s.stream_id, i)], "label": c.label, "kind": c.kind.value, "unit": c.unit,
                "gain_per_count": c.gain, "offset_counts": c.offset,
                "placement": {"muscle": c.muscle, "side": c.side},
            } for i, c in enumerate(s.channels)],
            "processing": _processing(s, cfg),
        })
    doc = {
        "format": "medius session CSV export", "format_version": EXPORT_FORMAT_VERSION,
        "source_file": Path(r.path).name, "patient_code": r.meta.get("patient_code"),
        "schema_version": r.schema_version, "recorded_with": r.meta.get("software_version"),
        "session": session_meta, "streams": streams,
        "files": [p.name for p in files] + [path.name],
        "repetition_metrics": "rms of the filtered signal and peak of the envelope over each recorded repetition; "
                              "further per-repetition metrics are added by the analysis once it has run",
    }
    if include_identifying:
        doc["identifying"] = r.meta.get("identifying")
    path.write_text(json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
