"""Flat views of analysis results: long-format CSV tables and a plain-text summary."""

from __future__ import annotations

import csv
from pathlib import Path

from sensors.stream import MUSCLES

MEASURE_COLUMNS = ["source", "patient_code", "date", "scope", "trial_id", "movement", "measure", "unit", "n", "mean",
                   "sd", "ci95_low", "ci95_high"]
REP_COLUMNS = ["source", "patient_code", "date", "scope", "trial_id", "movement", "rep", "start_s", "stop_s",
               "measure", "unit", "value"]
#: session CSV export ``repetitions.csv``: one row per repetition the analysis found, its measures as columns
REPETITION_COLUMNS = ["trial_id", "side", "movement", "rep", "start_s", "stop_s",
                      *[f"{m}_{q}" for m in MUSCLES for q in ("peak_pct_mvic", "rms_pct_mvic")],
                      "gmed_tfl_ratio", "gmed_minus_tfl_pct_mvic", "gmed_onset_minus_tfl_ms", "coactivation_index_pct"]
#: session CSV export ``trials.csv``: one row per trial and measure (the measure rows that belong to a trial)
TRIAL_COLUMNS = ["trial_id", "type", "side", "muscle", "movement", "start_s", "stop_s", "scope", "measure", "unit", "n",
                 "mean", "sd", "ci95_low", "ci95_high"]


_SUFFIX_UNITS = (("_pct_mvic", "pct_mvic"), ("_pct_per_s", "pct_per_s"), ("_hz_per_s", "Hz_per_s"), ("_uv_rms", "uV"), ("_uv", "uV"),
                 ("_pct", "pct"), ("_db", "dB"), ("_hz", "Hz"), ("_ms", "ms"), ("_s", "s"), ("_ratio", "fraction"))


def unit_of(name: str) -> str:
    """The unit a measure's name carries (``mdf_slope_pct_per_s`` -> ``pct_per_s``); '' for unitless (r)."""
    for suffix, unit in _SUFFIX_UNITS:
        if name.endswith(suffix):
            return unit
    return ""


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _summaries(scope: str, trial_id: str, rec: dict):
    for name, v in rec.items():
        if isinstance(v, dict) and "per_rep" in v:
            yield scope, trial_id, name, v


def rows(result: dict) -> tuple[list[dict], list[dict]]:
    """(measure rows, per-repetition rows) of one session result."""
    s = result["session"]
    base = {"source": s["source"], "patient_code": s["patient_code"], "date": s["date"]}
    measures, reps = [], []
    items = []
    for key, m in result["muscles"].items():
        for tid, t in m["trials"].items():
            items.append((key, tid, t, None))
            for name, v in t.items():  # single values of the trial: an MVIC's or hold's %MVIC, a rest's RMS, slopes
                if _number(v):
                    measures.append({**base, "scope": key, "trial_id": tid, "movement": t.get("movement", ""),
                                     "measure": name, "unit": unit_of(name), "n": 1, "mean": v})
            for q, v in (t.get("quality") or {}).items():
                if not isinstance(v, list):
                    measures.append({**base, "scope": key, "trial_id": tid, "movement": t.get("movement", ""),
                                     "measure": q, "unit": unit_of(q), "n": 1, "mean": v})
            for name, v in (t.get("fatigue") or {}).items():
                if _number(v):
                    measures.append({**base, "scope": key, "trial_id": tid, "movement": t.get("movement", ""),
                                     "measure": name, "unit": unit_of(name), "n": 1, "mean": v})
    for side, sd in result["sides"].items():
        for tid, t in sd["trials"].items():
            items.append((side, tid, t, t.get("reps")))
    rep_times = {tid: t.get("reps") for sd in result["sides"].values() for tid, t in sd["trials"].items()}
    for scope, tid, t, _ in items:
        for _, _, name, v in _summaries(scope, tid, t):
            measures.append({**base, "scope": scope, "trial_id": tid, "movement": t.get("movement", ""),
                             "measure": name, "unit": v["unit"], "n": v["n"], "mean": v["mean"], "sd": v["sd"],
                             "ci95_low": v["ci95_low"], "ci95_high": v["ci95_high"]})
            times = rep_times.get(tid) or []
            for i, value in enumerate(v["per_rep"]):
                rt = times[i] if i < len(times) else {}
                reps.append({**base, "scope": scope, "trial_id": tid, "movement": t.get("movement", ""), "rep": i + 1,
                             "start_s": rt.get("start_s"), "stop_s": rt.get("stop_s"), "measure": name,
                             "unit": v["unit"], "value": value})
    for mv, entry in result["symmetry"]["movements"].items():
        for name, c in entry.items():
            for k in ("si_pct", "lsi_pct", "difference", "difference_ci95_low", "difference_ci95_high"):
                if c.get(k) is not None:
                    measures.append({**base, "scope": "symmetry", "trial_id": "", "movement": mv,
                                     "measure": f"{name}:{k}", "unit": "pct" if k.endswith("pct") else name, "n": 1,
                                     "mean": c[k]})
    return measures, reps


def repetition_rows(result: dict) -> list[dict]:
    """One dict per repetition (keys of `REPETITION_COLUMNS`), in trial order: the per-repetition values of
    `rows` side by side. A repetition whose measures were withheld keeps its times and leaves them out."""
    order = {t["trial_id"]: i for i, t in enumerate(result["session"]["trials"])}
    table = {}
    for side, sd in result["sides"].items():
        for tid, t in sd["trials"].items():
            for i, rt in enumerate(t.get("reps") or [], 1):
                table[(tid, i)] = {"trial_id": tid, "side": side, "movement": t["movement"], "rep": i,
                                   "start_s": rt["start_s"], "stop_s": rt["stop_s"]}
    for r in rows(result)[1]:
        m = result["muscles"].get(r["scope"])
        column = f"{m['muscle']}_{r['measure']}" if m else r["measure"]
        # the columns are fixed so the file's layout is stable; a new per-rep measure needs a new documented column
        if column in REPETITION_COLUMNS:
            table[(r["trial_id"], r["rep"])][column] = r["value"]
    return [table[k] for k in sorted(table, key=lambda k: (order[k[0]], k[1]))]


def trial_rows(result: dict) -> list[dict]:
    """One dict per trial and measure (keys of `TRIAL_COLUMNS`), in trial order: the measure rows of `rows` that
    belong to a trial (the side comparisons span trials and are left out), with the trial's type, side and times."""
    trials = {t["trial_id"]: t for t in result["session"]["trials"]}
    order = {tid: i for i, tid in enumerate(trials)}
    out = []
    for m in rows(result)[0]:
        t = trials.get(m["trial_id"])
        if t is not None:
            out.append({**{k: t[k] for k in ("trial_id", "type", "side", "muscle", "movement", "start_s", "stop_s")},
                        **{k: m.get(k) for k in TRIAL_COLUMNS[7:]}})
    return sorted(out, key=lambda r: order[r["trial_id"]])  # stable: measures keep their order within a trial


def write_csv(results: list[dict], folder: Path) -> None:
    """Write ``measures.csv`` and ``reps.csv`` (long format, one row per value) for all results."""
    folder.mkdir(parents=True, exist_ok=True)
    all_m, all_r = [], []
    for r in results:
        m, rep = rows(r)
        all_m += m
        all_r += rep
    for name, cols, data in (("measures.csv", MEASURE_COLUMNS, all_m), ("reps.csv", REP_COLUMNS, all_r)):
        with open(folder / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, restval="")
            w.writeheader()
            w.writerows(data)


def fmt(v, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def mean_sd(s: dict | None, digits: int = 1) -> str:
    """'mean ± SD (n)' of a summary, '-' when missing."""
    if not s or s.get("mean") is None:
        return "-"
    sd = f" ± {s['sd']:.{digits}f}" if s.get("sd") is not None else ""
    return f"{s['mean']:.{digits}f}{sd} (n={s['n']})"


def text_summary(result: dict) -> str:
    """A few lines per side for the terminal."""
    s = result["session"]
    lines = [f"{s['source']}  patient {s['patient_code']}  {s['date']}  affected side: {s['affected_side'] or '-'}"]
    for side, sd in result["sides"].items():
        for tid, t in sd["trials"].items():
            g = result["muscles"].get(f"gluteus_medius_{side}", {}).get("trials", {}).get(tid, {})
            tf = result["muscles"].get(f"tfl_{side}", {}).get("trials", {}).get(tid, {})
            lines.append(f"  {side:5s} {t['movement']}: {t['n_reps']} reps ({t['rep_source']}); "
                         f"GMed {mean_sd(g.get('rms_pct_mvic'))} %MVIC, TFL {mean_sd(tf.get('rms_pct_mvic'))} %MVIC, "
                         f"GMed:TFL {mean_sd(t.get('gmed_tfl_ratio'), 2)}")
    for w in result["warnings"]:
        lines.append(f"  note: {w}")
    return "\n".join(lines)
