"""The "session CSV" export: samples with filtered and envelope columns, the analysis's per-repetition metrics and
per-trial summary, events, metadata.

Column names are stable and carry their units (``gluteus_medius_right_raw_mV``); README.md documents them. The
samples are processed a stored block (about a second) at a time through the same `dsp.pipeline.StreamPipeline`
the live view runs, and written as they are produced, so the CSV never sits in memory however long the session
is. The repetition and trial tables are the rows ``medius analyze --csv`` draws from the same result
(`app.analysis.tables`), pivoted to one row per repetition.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from dsp.pipeline import PipelineConfig, StreamPipeline
from sensors.recording import SessionReader
from sensors.stream import ChannelKind, StreamInfo

#: Version of the export layout (files and columns); bumped if a column changes meaning or name.
EXPORT_FORMAT_VERSION = 2  # 2: repetitions.csv and trials.csv hold the analysis's metrics
#: Below this rate there is no usable EMG band (the live view draws the same line): raw columns only.
MIN_FILTER_RATE_HZ = 100.0
#: Rows formatted per string operation: bounds the Python objects alive at once (one per value).
_FORMAT_ROWS = 256
#: Keys of ``meta["filters"]`` that configure the export's pipeline (the settings the session was recorded with).
_FILTER_KEYS = ("band_hz", "mains_hz", "mains_harmonics", "rms_window_s")
#: Session meta that leaves the file by default: how the measurement was made (ISEK reporting: devices, filters,
#: placement), the pseudonymous code, the affected side and the dates as recorded. Key -> None for the whole value,
#: or the sub-keys allowed. Everything else (free-text notes, an import's source file name and start time, ...)
#: is exported only with ``include_identifying``: an allow-list, so a key added later stays out by default.
_SHAREABLE_META = {
    "protocol_version": None, "schema_version": None, "software_version": None, "created_utc": None, "date": None,
    "devices": None, "placements": None, "mvic_protocol": None, "filters": None,
    "patient": ("code", "affected_side"), "session": ("affected_side",), "imported_from": ("format",),
}


def shareable_meta(meta: dict) -> dict:
    """The part of a session's ``meta`` a pseudonymous export carries (see ``_SHAREABLE_META``)."""
    out = {}
    for key, allowed in _SHAREABLE_META.items():
        if key not in meta:
            continue
        if allowed is None:
            out[key] = meta[key]
        elif isinstance(meta[key], dict):
            out[key] = {k: meta[key][k] for k in allowed if k in meta[key]}
    return out


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


@dataclass(frozen=True)
class SessionAnalysis:
    """The clinical analysis behind ``repetitions.csv`` and ``trials.csv``."""

    result: dict | None  # `app.analysis.session.analyze`'s result; None when the session cannot be analysed
    note: str  # where the result comes from, or why there is none


def session_analysis(session: Path | str) -> SessionAnalysis:
    """The session's analysis with default settings: the run ``medius analyze --store`` kept in the file when it
    is current (same Medius version, same settings, same result layout), else analysed now."""
    from app.analysis.config import AnalysisConfig
    from app.analysis.data import load_session, recorded_mains_hz
    from app.analysis.session import RESULT_VERSION, analyze
    from app.cmd_analyze import RESULT_NAME
    from sensors.recording.writer import software_version

    version = software_version()
    with SessionReader(session) as r:
        stored = r.analysis_results(RESULT_NAME)
        # the defaults as `analyze` resolves them for this session (its recorded mains notch included)
        settings = json.loads(json.dumps(AnalysisConfig(mains_hz=recorded_mains_hz(r.meta)).to_dict()))
    # a source tree has no version to compare: its code may differ from the run's, so it always re-analyses
    current = [run for run in stored if run["software_version"] == version and not version.startswith("unknown")
               and run["params"] == settings and run["result"].get("result_version") == RESULT_VERSION]
    if current:
        run = current[-1]
        return SessionAnalysis(run["result"], f"stored analysis run {run['run_id']} of {run['created_utc']}")
    try:
        return SessionAnalysis(analyze(load_session(session)), f"analysed at export (Medius {version})")
    except ValueError as exc:  # AnalysisError, ProtocolError: the samples still export, the metrics cannot
        return SessionAnalysis(None, f"not analysable: {exc}")


def export_session_csv(session: Path | str, out_dir: Path | str, include_identifying: bool = False,
                       progress: Callable[[str, float], None] | None = None,
                       analysis: SessionAnalysis | None = None) -> list[Path]:
    """Write the session CSV export of ``session`` into ``out_dir`` (created if needed); returns the files.

    Files: ``samples_<stream>.csv`` per stream, ``repetitions.csv`` and ``trials.csv`` (the analysis's
    per-repetition metrics and per-trial summary, `app.analysis.tables`), ``events.csv`` and the sidecar
    ``session.json``. Pseudonymous unless ``include_identifying``: the sidecar carries `shareable_meta`, no
    file names. ``progress(file_name, fraction)`` is called as
    samples are written. ``analysis`` defaults to `session_analysis` of the session (which holds the whole
    session in memory while it runs, as ``medius analyze`` does; the samples then stream block by block).
    """
    from app.analysis.tables import REPETITION_COLUMNS, TRIAL_COLUMNS, repetition_rows, trial_rows

    out_dir = Path(out_dir)
    written = []
    with SessionReader(session) as r:  # a bad session fails here, before anything is created
        analysis = analysis or session_analysis(session)
        out_dir.mkdir(parents=True, exist_ok=True)
        names = channel_names(r.streams)
        configs = {}
        for s in r.streams:
            path = out_dir / f"samples_{_safe(s.stream_id)}.csv"
            configs[s.stream_id] = _write_samples(r, s, names, path, progress)
            written.append(path)
        result = analysis.result
        written.append(_write_table(out_dir / "repetitions.csv", REPETITION_COLUMNS,
                                    repetition_rows(result) if result else []))
        written.append(_write_table(out_dir / "trials.csv", TRIAL_COLUMNS, trial_rows(result) if result else []))
        written.append(_write_events(r, r.events(), out_dir / "events.csv"))
        written.append(_write_sidecar(r, names, configs, include_identifying, analysis, out_dir / "session.json",
                                      written))
    return written


def _safe(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", text)


def _emg_channels(s: StreamInfo) -> list[int]:
    """Channels that get filtered and envelope columns: raw EMG sampled fast enough for the EMG band."""
    if s.rate_hz < MIN_FILTER_RATE_HZ:
        return []
    return [i for i, c in enumerate(s.channels) if c.kind is ChannelKind.EMG]


def _write_samples(r: SessionReader, s: StreamInfo, names: dict, path: Path, progress) -> PipelineConfig | None:
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
            for a in range(0, n, _FORMAT_ROWS):
                part = out[a:a + _FORMAT_ROWS]
                f.write((row_fmt * part.shape[0]) % tuple(part.ravel().tolist()))
            expected = first + n
            if progress:
                progress(path.name, expected / total)
    return config


def _write_table(path: Path, columns: list[str], rows: list[dict]) -> Path:
    """A CSV with a fixed header; missing values (withheld, not applicable) are empty cells."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns, restval="", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
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


def _write_sidecar(r: SessionReader, names: dict, configs: dict, include_identifying: bool,
                   analysis: SessionAnalysis, path: Path, files: list[Path]) -> Path:
    if include_identifying:
        session_meta = {k: v for k, v in r.meta.items() if k not in ("patient_code", "identifying")}
    else:
        session_meta = shareable_meta(r.meta)
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
        "patient_code": r.meta.get("patient_code"),
        "schema_version": r.schema_version, "recorded_with": r.meta.get("software_version"),
        "session": session_meta, "streams": streams,
        "files": [p.name for p in files] + [path.name],
        "analysis": {
            "source": analysis.note,
            "settings": analysis.result["config"] if analysis.result else None,
            "warnings": analysis.result["warnings"] if analysis.result else [],
            "files": "repetitions.csv: per-repetition metrics; trials.csv: per-trial summary (README: Session CSV "
                     "export; definitions in docs/analysis.md)",
        },
    }
    if include_identifying:  # a session file's name is often the patient's
        doc["source_file"] = Path(r.path).name
        doc["identifying"] = r.meta.get("identifying")
    path.write_text(json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
