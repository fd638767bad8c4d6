"""EMG amplitude: band-passed signal, centred moving-RMS envelope, and the MVIC reference that normalises it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.analysis.config import AnalysisConfig
from app.analysis.data import EmgChannel
from app.protocol import SessionProtocol, TrialType
from sensors.stream import ChannelKind


def band_passed(ch: EmgChannel, cfg: AnalysisConfig, notch: bool = True) -> np.ndarray:
    """The channel band-passed (and notched if configured), gaps zero-filled, shape (n,), channel units.

    An on-board envelope channel (cheap sensors' analogue RMS/rectified output) is already an amplitude: a
    20 Hz high-pass would remove it, so it is passed through unfiltered.
    """
    from dsp.filters import cascade, design_emg_bandpass, design_notch, sosfilt

    x = np.nan_to_num(ch.values(), nan=0.0)
    if ch.info.kind is ChannelKind.ENVELOPE:
        return x
    design = design_emg_bandpass(ch.rate_hz, *cfg.band_hz)
    if notch and cfg.mains_hz:
        design = cascade(design, design_notch(ch.rate_hz, cfg.mains_hz))
    return sosfilt(design.sos, x[:, None])[:, 0]


def centred_rms(x: np.ndarray, rate_hz: float, window_s: float) -> np.ndarray:
    """Moving RMS over ``window_s`` centred on each sample (dsp's causal RMS shifted back by half a window)."""
    from dsp.envelope import moving_rms

    w = max(1, int(round(window_s * rate_hz)))
    causal = moving_rms(np.asarray(x, dtype=np.float64)[:, None], w)[:, 0]
    shift = w // 2
    if shift == 0:
        return causal
    return np.concatenate([causal[shift:], np.full(shift, causal[-1])])


@dataclass(frozen=True)
class MvicReference:
    """Peak moving RMS of the best MVIC trial for one muscle and side, in the channel's units."""

    key: str
    value: float
    unit: str
    window_s: float
    trial_id: str
    date: str  # session date the reference was measured on (it may be reused in later sessions)
    method: str = "mvic"  # "mvic", or "peak_of_task" when no MVIC trial exists (labelled in every export)
    effort_peaks: tuple[float, ...] = ()  # peak of each maximal effort found in the MVIC trials
    effort_cv_pct: float = math.nan  # their SD / mean: how repeatable the reference is within the session

    def to_dict(self) -> dict:
        return {"value": self.value, "unit": self.unit, "window_s": self.window_s, "trial_id": self.trial_id,
                "date": self.date, "method": self.method, "effort_peaks": list(self.effort_peaks),
                "effort_cv_pct": self.effort_cv_pct}

    @classmethod
    def from_dict(cls, key: str, d: dict) -> "MvicReference":
        cv = d.get("effort_cv_pct")
        return cls(key, float(d["value"]), d["unit"], float(d["window_s"]), d["trial_id"], d["date"],
                   d.get("method", "mvic"), tuple(d.get("effort_peaks") or ()), math.nan if cv is None else float(cv))


def mvic_references(channels: list[EmgChannel], envelopes: dict[str, np.ndarray], protocol: SessionProtocol,
                    cfg: AnalysisConfig) -> dict[str, MvicReference]:
    """Per muscle/side: the highest peak of the moving RMS over that side's MVIC trials.

    Trials aimed at the muscle are preferred; if none is, any MVIC trial on that side counts (a hip-abduction
    MVIC drives both GMed and TFL). Several positions may be tested: the maximum wins (Contreras et al. 2015).
    Muscles with no MVIC trial on their side are absent here (see `peak_of_task_reference`).
    """
    from dsp.reps import auto_thresholds, hysteresis_segments

    out = {}
    for ch in channels:
        trials = [t for t in protocol.trials_of(TrialType.MVIC) if t.side == ch.side]
        aimed = [t for t in trials if t.muscle == ch.muscle]
        best, peaks = None, []
        for t in aimed or trials:
            env = envelopes[ch.key][ch.stream.index(t.start_s): ch.stream.index(t.stop_s)]
            if not env.size:
                continue
            if best is None or env.max() > best[0]:
                best = (float(env.max()), t.trial_id)
            # separate efforts inside the trial (e.g. 3 x 5 s), for the reference's repeatability
            high, low, _ = auto_thresholds(env, 0.5, 0.25)
            if high > low:
                segs = hysteresis_segments(env, ch.rate_hz, high, low, min_duration_s=1.0, velocity_frac=None)
                peaks += [float(env[a:b].max()) for a, b in segs]
        if best is not None:
            cv = float(np.std(peaks, ddof=1) / np.mean(peaks) * 100.0) if len(peaks) >= 2 else math.nan
            out[ch.key] = MvicReference(ch.key, best[0], ch.info.unit, cfg.amplitude_window_s, best[1], protocol.date,
                                        "mvic", tuple(peaks), cv)
    return out


def peak_of_task_reference(ch: EmgChannel, envelope: np.ndarray, protocol: SessionProtocol,
                           cfg: AnalysisConfig) -> MvicReference | None:
    """Fallback normalisation: the peak envelope over the session's exercise and hold trials (labelled so)."""
    peak, tid = -math.inf, ""
    for t in protocol.trials:
        if t.type in (TrialType.EXERCISE, TrialType.HOLD):
            env = envelope[ch.stream.index(t.start_s): ch.stream.index(t.stop_s)]
            if env.size and env.max() > peak:
                peak, tid = float(env.max()), t.trial_id
    if not math.isfinite(peak) or peak <= 0:
        return None
    return MvicReference(ch.key, peak, ch.info.unit, cfg.amplitude_window_s, tid, protocol.date, "peak_of_task")
