"""Analyse one session: every measure per muscle/side, per side pair and per trial, as a JSON-ready dict.

The dict is what ``medius analyze --json`` writes, what the report draws and what trends read. Measures are
named with their unit (``peak_pct_mvic``, ``mdf_slope_pct_per_s``); withheld values are ``None`` with a reason
next to them. No wording here judges the patient: numbers, spreads, side differences and their noise.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from app.analysis import measures as M
from app.analysis.amplitude import MvicReference, band_passed, centred_rms, mvic_references, peak_of_task_reference
from app.analysis.config import AnalysisConfig
from app.analysis.data import AnalysisError, EmgChannel, SessionData
from app.analysis.quality import (mains_ratio, packet_loss_pct, rms, saturation_pct, snr_db, spectral_withheld)
from app.analysis.repetitions import find_repetitions
from app.analysis.stats import activation_ratio, limb_symmetry_index, summarise, symmetry_index
from app.protocol import Trial, TrialType, other_side

RESULT_VERSION = 1
GMED, TFL = "gluteus_medius", "tfl"


def clean(x):
    """NaN/inf -> None and numpy scalars -> Python, recursively, so the result is strict JSON."""
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return [clean(v) for v in x.tolist()]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def summary(values, unit: str) -> dict:
    """Spread of a per-repetition measure: n, mean, SD, 95 % t-CI of the mean, and the per-rep values."""
    s = summarise(values)
    return {"unit": unit, "n": s.n, "mean": s.mean, "sd": s.sd, "ci95_low": s.ci95_low, "ci95_high": s.ci95_high,
            "per_rep": [float(v) for v in np.asarray(values, dtype=np.float64)]}


class _Channel:
    """Everything computed once per channel over the whole recording."""

    def __init__(self, ch: EmgChannel, cfg: AnalysisConfig):
        self.ch = ch
        self.filtered = band_passed(ch, cfg)  # amplitude path (notched if configured)
        self.spectral = band_passed(ch, cfg, notch=False) if cfg.mains_hz else self.filtered
        self.envelope = centred_rms(self.filtered, ch.rate_hz, cfg.amplitude_window_s)
        self.rest_idx = np.empty(0, dtype=np.int64)
        self.ref: MvicReference | None = None

    def span(self, t: Trial | tuple[float, float]) -> tuple[int, int]:
        a, b = (t.start_s, t.stop_s) if isinstance(t, Trial) else t
        return self.ch.stream.index(a), self.ch.stream.index(b)

    def noise_rms(self) -> float:
        return rms(self.filtered[self.rest_idx]) if self.rest_idx.size else math.nan


def analyze(session: SessionData, cfg: AnalysisConfig | None = None,
            prior_mvic: dict[str, MvicReference] | None = None) -> dict:
    """Analyse a session.

    Parameters
    ----------
    session : SessionData
        The loaded session (`app.analysis.data.load_session`).
    cfg : AnalysisConfig
        Settings; recorded in the result.
    prior_mvic : dict, optional
        MVIC references from an earlier session of the same patient (key -> `MvicReference`), used for muscles
        this session has no MVIC trial for; their date is carried into the result.

    Returns
    -------
    dict
        JSON-ready result (see docs/analysis.md for the layout).
    """
    cfg = cfg or AnalysisConfig()
    # the notch the user asked for wins; otherwise the mains the session was recorded at (its meta), so hum
    # does not count as muscle activity just because nobody repeated the setting
    notch_from = "option" if cfg.mains_hz else "none"
    if cfg.mains_hz is None and session.recorded_mains_hz:
        cfg = dataclasses.replace(cfg, mains_hz=session.recorded_mains_hz)
        notch_from = "session_meta"
    proto = session.protocol
    channels = session.emg_channels()
    if not channels:
        raise AnalysisError("the session has no EMG channel with a muscle and side (placements or channel hints)")
    warnings: list[str] = []
    chans = {c.key: _Channel(c, cfg) for c in channels}

    refs = mvic_references(channels, {k: c.envelope for k, c in chans.items()}, proto, cfg)
    for key, ref in refs.items():
        aimed = [t for t in proto.trials_of(TrialType.MVIC) if t.trial_id == ref.trial_id and t.muscle == chans[key].ch.muscle]
        if not aimed:
            target = next(t.muscle for t in proto.trials if t.trial_id == ref.trial_id)
            warnings.append(f"{key}: no MVIC trial aimed at this muscle; its reference comes from the {target} MVIC "
                            f"(trial {ref.trial_id}), which may not be maximal for it, so its %MVIC may read high")
    for key, c in chans.items():
        ref = refs.get(key)
        if ref is None and prior_mvic and key in prior_mvic:
            ref = prior_mvic[key]
            if ref.unit != c.ch.info.unit or ref.window_s != cfg.amplitude_window_s:
                warnings.append(f"{key}: earlier MVIC reference ({ref.unit}, {ref.window_s} s window) does not match "
                                f"this recording ({c.ch.info.unit}, {cfg.amplitude_window_s} s); not used")
                ref = None
            else:
                warnings.append(f"{key}: MVIC reference reused from the session of {ref.date}")
        if ref is None:
            ref = peak_of_task_reference(c.ch, c.envelope, proto, cfg)
            if ref is not None:
                warnings.append(f"{key}: no MVIC trial; normalised to the peak of this session's tasks (peak_of_task)")
        c.ref = ref
        rests = [c.span(t) for t in proto.trials_of(TrialType.REST)]
        if rests:
            c.rest_idx = np.concatenate([np.arange(a, b) for a, b in rests])
    if not proto.trials_of(TrialType.REST):
        warnings.append("no rest trial: noise floor, SNR and onsets cannot be measured; spectral indices withheld")

    muscles = {}
    for key, c in chans.items():
        noise = c.noise_rms()
        muscles[key] = {
            "muscle": c.ch.muscle, "side": c.ch.side, "unit": c.ch.info.unit, "rate_hz": c.ch.rate_hz,
            "mvic": c.ref.to_dict() if c.ref else None,
            "noise_floor_uv_rms": noise * c.ch.to_uv,
            "trials": {},
        }

    sides: dict[str, dict] = {s: {"trials": {}} for s in sorted({c.ch.side for c in chans.values()})}
    # without kinematics repetitions come from the EMG, on a short envelope of its own (cfg.rep_emg_window_s)
    rep_envelopes = {k: centred_rms(c.filtered, c.ch.rate_hz, cfg.rep_emg_window_s) for k, c in chans.items()} \
        if proto.trials_of(TrialType.EXERCISE) else {}
    for trial in proto.trials:
        on_side = [c for c in chans.values() if trial.side is None or c.ch.side == trial.side]
        if trial.type is TrialType.EXERCISE:
            reps = find_repetitions(session, trial, rep_envelopes, cfg)
            if reps.times_s.shape[0] == 0:
                warnings.append(f"trial {trial.trial_id}: no repetitions found")
            per_muscle = {}
            for c in on_side:
                rec = _exercise_channel(c, trial, reps.times_s, cfg, warnings)
                muscles[c.ch.key]["trials"][trial.trial_id] = rec
                per_muscle[c.ch.muscle] = (c, rec)
            sides[trial.side]["trials"][trial.trial_id] = _exercise_side(trial, reps, per_muscle, cfg)
        else:
            for c in on_side:
                muscles[c.ch.key]["trials"][trial.trial_id] = _other_channel(c, session, trial, cfg)

    return clean({
        "result_version": RESULT_VERSION,
        "session": {
            "source": session.source, "patient_code": proto.patient.code, "date": proto.date,
            "affected_side": proto.patient.affected_side, "devices": list(proto.devices),
            "placements": [dict(muscle=p.muscle, side=p.side, site=p.site, inter_electrode_mm=p.inter_electrode_mm)
                           for p in proto.placements],
            "mvic_protocol": proto.mvic_protocol,
            "trials": [dict(trial_id=t.trial_id, type=t.type.value, side=t.side, muscle=t.muscle, movement=t.movement,
                            start_s=t.start_s, stop_s=t.stop_s) for t in proto.trials],
        },
        "config": cfg.to_dict(),
        "mains_notch": {"mains_hz": cfg.mains_hz, "from": notch_from},
        "muscles": muscles,
        "sides": sides,
        "symmetry": _symmetry(proto.patient.affected_side, muscles, sides, cfg),
        "warnings": warnings,
    })


def _quality(c: _Channel, trial: Trial, active_idx: np.ndarray, cfg: AnalysisConfig) -> dict:
    i0, i1 = c.span(trial)
    noise = c.noise_rms()
    snr = snr_db(rms(c.filtered[active_idx]) if active_idx.size else math.nan, noise)
    return {
        "noise_floor_uv_rms": noise * c.ch.to_uv,
        "mains_ratio": mains_ratio(c.ch.values()[i0:i1], c.ch.rate_hz, cfg.band_hz, cfg.mains_hz),
        "saturation_pct": saturation_pct(c.ch, i0, i1),
        "packet_loss_pct": packet_loss_pct(c.ch, i0, i1),
        "snr_db": snr,
        "spectral_withheld": spectral_withheld(c.ch, snr, cfg),
    }


def _rms_pct(c: _Channel, a: int, b: int) -> float:
    """RMS of the band-passed EMG over samples [a, b) as %MVIC, with the rest noise power removed
    (sqrt(max(0, RMS^2 - noise^2))), so a weak contraction is not inflated by the noise floor."""
    if b <= a:
        return math.nan
    power = float(np.mean(c.filtered[a:b] ** 2))
    noise = c.noise_rms()
    if math.isfinite(noise):
        power = max(0.0, power - noise**2)
    return math.sqrt(power) / c.ref.value * 100.0


def _active_span(c: _Channel, trial: Trial) -> tuple[int, int]:
    """The contraction inside a hold/MVIC trial: first to last sample with envelope above half its median."""
    i0, i1 = c.span(trial)
    env = c.envelope[i0:i1]
    on = np.flatnonzero(env > 0.5 * np.median(env)) if env.size else np.empty(0, dtype=np.int64)
    return (i0 + int(on[0]), i0 + int(on[-1]) + 1) if on.size else (i0, i1)


def _other_channel(c: _Channel, session: SessionData, trial: Trial, cfg: AnalysisConfig) -> dict:
    rec = {"type": trial.type.value, "side": trial.side, "muscle_targeted": trial.muscle}
    if trial.type is TrialType.REST:
        i0, i1 = c.span(trial)
        rec["quality"] = _quality(c, trial, np.empty(0, dtype=np.int64), cfg)
        rec["rms_uv"] = rms(c.filtered[i0:i1]) * c.ch.to_uv
        return rec
    a, b = _active_span(c, trial)
    q = _quality(c, trial, np.arange(a, b), cfg)
    rec["quality"] = q
    if c.ref:
        rec["peak_pct_mvic"] = float(c.envelope[a:b].max() / c.ref.value * 100.0) if b > a else math.nan
        rec["rms_pct_mvic"] = _rms_pct(c, a, b)
    if trial.type is TrialType.HOLD:
        rec["fatigue"] = _hold_fatigue(c, session, trial, (a, b), q["spectral_withheld"], cfg)
    return rec


def _hold_fatigue(c: _Channel, session: SessionData, trial: Trial, span: tuple[int, int], withheld: list[str],
                  cfg: AnalysisConfig) -> dict:
    a, b = span
    rate = c.ch.rate_hz
    out: dict = {"active_start_s": a / rate, "active_stop_s": b / rate}
    if b - a < 3 * cfg.fatigue_window_s * rate:
        out["withheld"] = ["hold shorter than three analysis windows"]
        return out
    series = M.spectral_series(c.spectral[a:b], rate, cfg)
    t = series.time_s
    rms_slope = M.slope_pct_per_s(t, series.rms[:, 0])
    out["rms_slope_pct_per_s"] = rms_slope[0]
    out["rms_r"] = rms_slope[2]
    out["time_s"] = (t + a / rate).tolist()
    out["rms_uv"] = (series.rms[:, 0] * c.ch.to_uv).tolist()
    out["withheld"] = withheld
    if not withheld:
        for name, values, unit in (("mdf", series.mdf_hz[:, 0], "hz"), ("mnf", series.mnf_hz[:, 0], "hz"),
                                   ("fi_nsm5", series.fi_nsm5[:, 0], None)):
            pct, raw, r, se = M.slope_pct_per_s(t, values)
            out[f"{name}_slope_pct_per_s"] = pct
            # overlapping windows are not independent: n_eff = n hop/window inflates the SE by sqrt(window/hop)
            out[f"{name}_slope_se_pct_per_s"] = se * math.sqrt(max(1.0, cfg.fatigue_window_s / cfg.fatigue_hop_s))
            out[f"{name}_r"] = r
            if unit:
                out[f"{name}_slope_{unit}_per_s"] = raw
                out[f"{name}_{unit}"] = values.tolist()
        out["initial_mdf_hz"] = float(np.median(series.mdf_hz[: min(3, len(t)), 0]))
    from app.analysis.repetitions import movement_signal

    moved = movement_signal(session, trial, cfg)
    if moved is not None:
        x, irate, _, source = moved
        out["endurance_time_s"] = M.endurance_time_s(x, irate, cfg.endurance_drop_frac)
        out["endurance_method"] = (f"{source.replace('_', ' ')} held above {cfg.endurance_drop_frac:.0%} of its "
                                   "initial level")
        return out
    out["endurance_time_s"] = (b - a) / rate
    out["endurance_method"] = "duration of the EMG contraction (no thigh IMU)"
    return out


def _exercise_channel(c: _Channel, trial: Trial, reps_s: np.ndarray, cfg: AnalysisConfig, warnings: list[str]) -> dict:
    rate = c.ch.rate_hz
    spans = [c.span((s, e)) for s, e in reps_s]
    active = np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.empty(0, dtype=np.int64)
    q = _quality(c, trial, active, cfg)
    rec = {"type": "exercise", "movement": trial.movement, "side": trial.side, "quality": q}
    if c.ref is None:
        rec["withheld"] = ["no normalisation reference"]
        return rec
    peak = np.array([c.envelope[a:b].max() if b > a else math.nan for a, b in spans]) / c.ref.value * 100.0
    rec["peak_pct_mvic"] = summary(peak, "pct_mvic")
    rec["rms_pct_mvic"] = summary([_rms_pct(c, a, b) for a, b in spans], "pct_mvic")
    over = np.flatnonzero(peak > (1.0 + cfg.over_mvic_warn_frac) * 100.0)
    if over.size and c.ref.method == "mvic":
        warnings.append(f"{c.ch.key}, trial {trial.trial_id}: repetitions {(over + 1).tolist()} exceed the MVIC "
                        f"reference by more than {cfg.over_mvic_warn_frac:.0%} (max {np.nanmax(peak):.0f} %MVIC); "
                        "the reference may not be maximal")
    # fatigue across repetitions: one spectrum per burst
    if not q["spectral_withheld"] and spans:
        mdf, mnf, fi, mid = [], [], [], []
        for a, b in spans:
            w_s = (b - a) / rate
            if w_s < 0.25:
                mdf.append(math.nan), mnf.append(math.nan), fi.append(math.nan), mid.append((a + b) / 2 / rate)
                continue
            s = M.spectral_series(c.spectral[a:b], rate, cfg, window_s=w_s, hop_s=w_s)
            mdf.append(float(s.mdf_hz[0, 0])), mnf.append(float(s.mnf_hz[0, 0])), fi.append(float(s.fi_nsm5[0, 0]))
            mid.append((a + b) / 2 / rate)
        rec["burst_mdf_hz"] = mdf
        rec["burst_mnf_hz"] = mnf
        rec["burst_fi_nsm5"] = fi
        rec["burst_mdf_slope_pct_per_s"] = M.slope_pct_per_s(np.array(mid), np.array(mdf))[0]
        rec["burst_mnf_slope_pct_per_s"] = M.slope_pct_per_s(np.array(mid), np.array(mnf))[0]
        rec["burst_fi_nsm5_slope_pct_per_s"] = M.slope_pct_per_s(np.array(mid), np.array(fi))[0]
    rec["burst_rms_slope_pct_per_s"] = M.slope_pct_per_s(
        reps_s.mean(axis=1) if len(spans) else np.empty(0),
        np.array([rms(c.filtered[a:b]) for a, b in spans]))[0]
    return rec


def _exercise_side(trial: Trial, reps, per_muscle: dict, cfg: AnalysisConfig) -> dict:
    out = {"movement": trial.movement, "n_reps": int(reps.times_s.shape[0]), "rep_source": reps.source,
           "reps": [{"start_s": float(s), "stop_s": float(e)} for s, e in reps.times_s]}
    if GMED not in per_muscle or TFL not in per_muscle:
        out["withheld"] = ["GMed and TFL both needed on this side for ratio, onset and co-activation"]
        return out
    (cg, rg), (ct, rt) = per_muscle[GMED], per_muscle[TFL]
    if "rms_pct_mvic" not in rg or "rms_pct_mvic" not in rt:
        out["withheld"] = ["a muscle lacks a normalisation reference"]
        return out
    g = np.array(rg["rms_pct_mvic"]["per_rep"])
    t = np.array(rt["rms_pct_mvic"]["per_rep"])
    out["gmed_tfl_ratio"] = summary([activation_ratio(a, b, cfg.min_activation_pct) for a, b in zip(g, t)], "ratio")
    out["gmed_minus_tfl_pct_mvic"] = summary(g - t, "pct_mvic")
    rate = cg.ch.rate_hz
    coact, onset = [], []
    # the rest stretch skips its first second: the band-pass settles there from the recording's start
    rest_g = cg.filtered[cg.rest_idx[int(rate): int(6 * rate)]]
    rest_t = ct.filtered[ct.rest_idx[int(ct.ch.rate_hz): int(6 * ct.ch.rate_hz)]]
    for s, e in reps.times_s:
        a, b = cg.span((s, e))
        at, bt = ct.span((s, e))
        n = min(b - a, bt - at)
        coact.append(M.coactivation_index(cg.envelope[a:a + n] / cg.ref.value * 100, ct.envelope[at:at + n] / ct.ref.value * 100))
        # onsets searched from 0.5 s before the movement to its middle
        lo = s - 0.5
        og = M.first_onset_s(cg.filtered, rate, rest_g, cg.span((lo, (s + e) / 2)), cfg)
        ot = M.first_onset_s(ct.filtered, ct.ch.rate_hz, rest_t, ct.span((lo, (s + e) / 2)), cfg)
        onset.append((og - ot) * 1000.0)
    out["coactivation_index_pct"] = summary(coact, "pct")
    out["gmed_onset_minus_tfl_ms"] = summary(onset, "ms")
    return out


def _diff_ci(a: dict, u: dict) -> tuple[float, float]:
    """Welch 95 % CI of the difference of two per-rep samples (affected - unaffected)."""
    from scipy import stats

    x = np.array([v for v in a["per_rep"] if v is not None and math.isfinite(v)])
    y = np.array([v for v in u["per_rep"] if v is not None and math.isfinite(v)])
    if x.size < 2 or y.size < 2:
        return math.nan, math.nan
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(vx + vy)
    if se == 0:
        return float(x.mean() - y.mean()), float(x.mean() - y.mean())
    dof = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    h = float(stats.t.ppf(0.975, dof)) * se
    d = float(x.mean() - y.mean())
    return d - h, d + h


def _pool(records: list[dict], name: str) -> dict | None:
    """One summary over the reps of several trials of the same movement on one side."""
    vals = [v for r in records if name in r for v in r[name]["per_rep"]]
    return clean(summary(vals, records[0][name]["unit"])) if vals else None


def _compare(a: dict | None, u: dict | None, cfg: AnalysisConfig, index: bool = True) -> dict | None:
    if a is None or u is None:
        return None
    am, um = a["mean"], u["mean"]
    am = math.nan if am is None else am
    um = math.nan if um is None else um
    lo, hi = _diff_ci(a, u)
    out = {"affected": a, "unaffected": u, "difference": am - um, "difference_ci95_low": lo, "difference_ci95_high": hi,
           "difference_within_rep_spread": bool(lo <= 0 <= hi) if math.isfinite(lo) else None}
    if index:
        out["si_pct"] = symmetry_index(am, um, cfg.min_activation_pct)
        out["lsi_pct"] = limb_symmetry_index(am, um, cfg.min_activation_pct)
    return out


def _symmetry(affected: str | None, muscles: dict, sides: dict, cfg: AnalysisConfig) -> dict:
    """Affected vs unaffected, same muscle, same movement, same normalisation (clinical.md section 8)."""
    a_side = affected or "left"
    u_side = other_side(a_side)
    out = {"affected_side": a_side, "unaffected_side": u_side,
           "convention": ("SI = (A - U) / (0.5 (A + U)) x 100 %, LSI = A / U x 100 %, A = affected side"
                          if affected else "no affected side declared: A = left, U = right"),
           "movements": {}}
    movements = sorted({r["movement"] for s in sides.values() for r in s["trials"].values()})
    for mv in movements:
        entry = {}
        for muscle in (GMED, TFL):
            recs = {sd: [r for r in muscles.get(f"{muscle}_{sd}", {}).get("trials", {}).values()
                         if r.get("movement") == mv] for sd in (a_side, u_side)}
            for measure in ("rms_pct_mvic", "peak_pct_mvic"):
                if recs[a_side] and recs[u_side]:
                    cmp_ = _compare(_pool(recs[a_side], measure), _pool(recs[u_side], measure), cfg)
                    if cmp_:
                        entry[f"{muscle}_{measure}"] = cmp_
        srecs = {sd: [r for r in sides.get(sd, {"trials": {}})["trials"].values() if r["movement"] == mv]
                 for sd in (a_side, u_side)}
        for measure in ("gmed_tfl_ratio", "gmed_minus_tfl_pct_mvic", "gmed_onset_minus_tfl_ms", "coactivation_index_pct"):
            if srecs[a_side] and srecs[u_side]:
                cmp_ = _compare(_pool(srecs[a_side], measure), _pool(srecs[u_side], measure), cfg,
                                index=measure == "gmed_tfl_ratio")
                if cmp_ and measure == "gmed_tfl_ratio":
                    # a ratio is not an activation: apply the index without the %MVIC activation guard
                    cmp_["si_pct"] = symmetry_index(cmp_["affected"]["mean"] or math.nan,
                                                    cmp_["unaffected"]["mean"] or math.nan, 0.0)
                    cmp_["lsi_pct"] = limb_symmetry_index(cmp_["affected"]["mean"] or math.nan,
                                                          cmp_["unaffected"]["mean"] or math.nan, 1e-9)
                if cmp_:
                    entry[measure] = cmp_
        if entry:
            out["movements"][mv] = entry
    holds = {}
    for muscle in (GMED, TFL):
        for sd in (a_side, u_side):
            for tid, r in muscles.get(f"{muscle}_{sd}", {}).get("trials", {}).items():
                if r.get("type") == "hold" and "fatigue" in r:
                    holds.setdefault(muscle, {})[sd] = {k: r["fatigue"].get(k) for k in (
                        "mdf_slope_pct_per_s", "mnf_slope_pct_per_s", "fi_nsm5_slope_pct_per_s", "rms_slope_pct_per_s",
                        "endurance_time_s")}
    out["holds"] = holds
    return clean(out)
