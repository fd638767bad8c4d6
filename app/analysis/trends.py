"""Change over a patient's sessions, judged against measurement noise.

For every measure a series over session dates; the noise is the standard error of measurement from
*within-session* variability (Weir 2005): for per-repetition measures the pooled within-session SD of the
repetitions divided by sqrt(n reps) (the SEM of a session mean), combined with the MVIC reference's own
effort-to-effort scatter for %MVIC measures and ratios (each session re-measures its reference, and that error
moves every %MVIC value of the session together, which repetition scatter cannot show); for a fatigue slope
the standard error of its regression; for a symmetry index its delta-method standard error. The smallest real difference
SRD = MDC95 = 1.96 sqrt(2) SEM (Beckerman et al. 2001): a change is called beyond noise only when larger.
"""

from __future__ import annotations

import math

import numpy as np

from app.analysis.session import clean
from app.analysis.stats import sem_from_repeats, smallest_real_difference


def _finite(values) -> np.ndarray:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    return v[np.isfinite(v)]


def _per_rep_points(results: list[dict]) -> dict[tuple, list[dict]]:
    """(scope, movement, measure, unit) -> one point per session: date, mean, sd, n, per-rep values."""
    out: dict[tuple, list[dict]] = {}

    def add(key, date, reps, unit, ref_rel=0.0):
        v = _finite(reps)
        if v.size:
            mean = float(v.mean())
            out.setdefault(key + (unit,), []).append(
                {"date": date, "mean": mean, "sd": float(v.std(ddof=1)) if v.size > 1 else math.nan,
                 "n": int(v.size), "reference_sem": abs(mean) * ref_rel, "_reps": v})

    for r in results:
        date = r["session"]["date"]
        cv = {k: _cv(m) for k, m in r["muscles"].items()}
        for key, m in r["muscles"].items():
            by_mv: dict[str, dict[str, list]] = {}
            for t in m["trials"].values():
                if t.get("type") == "exercise":
                    for measure in ("peak_pct_mvic", "rms_pct_mvic"):
                        if measure in t:
                            by_mv.setdefault(t["movement"], {}).setdefault(measure, []).extend(t[measure]["per_rep"])
            for mv, d in by_mv.items():
                for measure, reps in d.items():
                    add((key, mv, measure), date, reps, "pct_mvic", cv[key])
        for side, s in r["sides"].items():
            by_mv = {}
            for t in s["trials"].values():
                for measure in ("gmed_tfl_ratio", "gmed_minus_tfl_pct_mvic", "gmed_onset_minus_tfl_ms",
                                "coactivation_index_pct"):
                    if measure in t:
                        by_mv.setdefault(t["movement"], {}).setdefault(measure, ([], t[measure]["unit"]))[0].extend(
                            t[measure]["per_rep"])
            for mv, d in by_mv.items():
                for measure, (reps, unit) in d.items():
                    # a ratio of two %MVIC values carries both references' relative error
                    rel = math.hypot(cv.get(f"gluteus_medius_{side}", 0.0), cv.get(f"tfl_{side}", 0.0)) \
                        if measure == "gmed_tfl_ratio" else 0.0
                    add((side, mv, measure), date, reps, unit, rel)
    return out


def _cv(muscle: dict) -> float:
    """Relative effort-to-effort scatter of a muscle's MVIC reference (0 when unknown)."""
    cv = (muscle.get("mvic") or {}).get("effort_cv_pct")
    return cv / 100.0 if cv is not None and math.isfinite(cv) else 0.0


def _single_points(results: list[dict]) -> dict[tuple, list[dict]]:
    """Measures with one value per session and their own standard error: fatigue slopes, symmetry indices."""
    out: dict[tuple, list[dict]] = {}
    for r in results:
        date = r["session"]["date"]
        for key, m in r["muscles"].items():
            for t in m["trials"].values():
                f = t.get("fatigue") or {}
                for name in ("mdf", "mnf"):
                    v, se = f.get(f"{name}_slope_pct_per_s"), f.get(f"{name}_slope_se_pct_per_s")
                    if v is not None:
                        out.setdefault((key, "hold", f"{name}_slope_pct_per_s", "pct_per_s"), []).append(
                            {"date": date, "mean": v, "se": se if se is not None else math.nan})
        for mv, entry in r["symmetry"]["movements"].items():
            for measure, cmp_ in entry.items():
                if "si_pct" not in cmp_ or cmp_["si_pct"] is None:
                    continue
                a, u = cmp_["affected"], cmp_["unaffected"]
                out.setdefault(("symmetry", mv, f"si_{measure}", "pct"), []).append(
                    {"date": date, "mean": cmp_["si_pct"], "se": _si_se(a, u)})
    return out


def _si_se(a: dict, u: dict) -> float:
    """Delta-method SE of SI = 200 (A - U) / (A + U) from the two sides' means and SDs over repetitions."""
    try:
        ma, mu, sa, su = a["mean"], u["mean"], a["sd"] / math.sqrt(a["n"]), u["sd"] / math.sqrt(u["n"])
    except (TypeError, ZeroDivisionError):
        return math.nan
    s = ma + mu
    if not s:
        return math.nan
    da, du = 400 * mu / s**2, -400 * ma / s**2
    return math.sqrt((da * sa) ** 2 + (du * su) ** 2)


def _changes(points: list[dict], srd: float) -> None:
    base = points[0]["mean"]
    for i, p in enumerate(points):
        p["change_from_first"] = p["mean"] - base
        p["change_from_previous"] = p["mean"] - points[i - 1]["mean"] if i else math.nan
        p["change_from_first_beyond_srd"] = bool(abs(p["change_from_first"]) > srd) if i and math.isfinite(srd) else None


def patient_trends(results: list[dict]) -> dict:
    """Trends per patient over several session results (as returned by `app.analysis.session.analyze`).

    Returns ``{patient_code: {"sessions": [...], "series": {name: {...}}, "comparability": [warnings]}}``.
    Series names read ``scope/movement/measure`` (scope = muscle_side, side, or ``symmetry``).
    """
    by_patient: dict[str, list[dict]] = {}
    for r in results:
        by_patient.setdefault(r["session"]["patient_code"], []).append(r)
    out = {}
    for code, rs in sorted(by_patient.items()):
        rs = sorted(rs, key=lambda r: (r["session"]["date"], r["session"]["source"]))
        series = {}
        for (scope, mv, measure, unit), pts in sorted(_per_rep_points(rs).items()):
            within_sd = sem_from_repeats([p["_reps"] for p in pts])
            n_h = len(pts) / sum(1.0 / p["n"] for p in pts)  # harmonic mean of reps per session
            ref_var = float(np.mean([p["reference_sem"] ** 2 for p in pts]))
            sem = math.sqrt(within_sd**2 / n_h + ref_var) if math.isfinite(within_sd) else math.nan
            srd = smallest_real_difference(sem)
            for p in pts:
                del p["_reps"]
            _changes(pts, srd)
            series[f"{scope}/{mv}/{measure}"] = {"unit": unit, "within_session_sd": within_sd,
                                                   "reference_sem": math.sqrt(ref_var), "sem": sem, "srd": srd,
                                                   "points": pts}
        for (scope, mv, measure, unit), pts in sorted(_single_points(rs).items()):
            ses = _finite([p["se"] for p in pts])
            sem = float(np.sqrt(np.mean(ses**2))) if ses.size else math.nan
            srd = smallest_real_difference(sem)
            _changes(pts, srd)
            series[f"{scope}/{mv}/{measure}"] = {"unit": unit, "sem": sem, "srd": srd, "points": pts}
        out[code] = clean({"sessions": [{"date": r["session"]["date"], "source": r["session"]["source"]} for r in rs],
                           "series": series, "comparability": _comparability(rs)})
    return out


def _comparability(rs: list[dict]) -> list[str]:
    """Differences between sessions that make their numbers less comparable (clinical.md section 11)."""
    notes = []
    first = rs[0]
    for r in rs[1:]:
        d = r["session"]["date"]
        if r["session"]["placements"] != first["session"]["placements"]:
            notes.append(f"{d}: electrode placement differs from {first['session']['date']}")
        if r["session"]["devices"] != first["session"]["devices"]:
            notes.append(f"{d}: devices differ from {first['session']['date']}")
        if r["config"] != first["config"]:
            notes.append(f"{d}: analysis settings differ from {first['session']['date']}")
        if r["session"]["mvic_protocol"] != first["session"]["mvic_protocol"]:
            notes.append(f"{d}: MVIC protocol differs from {first['session']['date']}")
        for key, m in r["muscles"].items():
            fm = first["muscles"].get(key, {}).get("mvic") or {}
            if (m.get("mvic") or {}).get("method") != fm.get("method"):
                notes.append(f"{d}: {key} normalised by {(m.get('mvic') or {}).get('method')}, "
                             f"first session by {fm.get('method')}")
    return notes
