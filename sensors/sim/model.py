"""The simulator's deterministic model: configuration, the activation/angle timeline, and the ground truth.

Everything here is a pure function of time (vectorised over arrays of sample times), so the signal
synthesis (`sensors.sim.synth`) and the ground truth read the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from sensors.sim.protocol import CONTRALATERAL, GMAX, GMED, MOVEMENTS, MVIC_SYNERGY, REST_PCT_MVIC, TFL, Movement, Trial

_SHORT = {GMED: "GMED", TFL: "TFL", GMAX: "GMAX"}
IMU_CHANNELS = ("hip_abduction_deg", "hip_flexion_deg", "pelvic_drop_deg", "thigh_gyro_dps",
                "thigh_acc_x_g", "thigh_acc_y_g", "thigh_acc_z_g",
                "thigh_gyro_x_dps", "thigh_gyro_y_dps", "thigh_gyro_z_dps")


@dataclass(frozen=True)
class EmgChannel:
    """One simulated electrode pair."""

    muscle: str
    side: str

    @property
    def label(self) -> str:
        return f"{self.side[0].upper()}_{_SHORT[self.muscle]}"


@dataclass(frozen=True)
class LiftOff:
    """Electrode ``label`` loses contact for ``duration_s`` from ``start_s``: the channel drifts to the rails."""

    label: str
    start_s: float
    duration_s: float


@dataclass(frozen=True)
class SimConfig:
    """Every simulator parameter (defaults: a healthy, quiet, lossless recording).

    Parameters
    ----------
    seed : int
        Same seed and parameters give bit-identical output.
    emg_rate_hz, imu_rate_hz : int
        Sample rates of the two streams.
    include_gmax : bool
        Add gluteus maximus channels (8 EMG channels instead of 6).
    gain_uv_per_count : float
        Declared EMG scaling (counts are int16; ±32767 counts are the rails).
    mvic_rms_uv : dict
        EMG RMS (µV) of each muscle at 100 %MVIC.
    mdf_hz : dict
        Median frequency (Hz) of each muscle's EMG at rest from fatigue.
    affected_side : str or None
        Side with GMed under-activation.
    gmed_deficit : float
        Fraction by which the affected GMed's exercise activation is reduced (0.4 → 60 % of normal).
    tfl_compensation : float
        Fraction by which the affected TFL's exercise activation is increased.
    fatigue_mdf_pct_per_s : float
        Normalised MDF slope (%/s of the initial MDF) of working-side muscles during exercises and holds.
    fatigue_amp_pct_per_s : float
        Amplitude rise (%/s) of the same muscles over the same time.
    noise_uv : float
        White noise floor, µV RMS, on every EMG channel.
    hum_uv, hum_hz : float
        Mains interference amplitude (µV, peak) and frequency (50 or 60 Hz).
    motion_uv : float
        Peak of the low-frequency artefact at the start of every repetition (working side), µV.
    lift_offs : tuple of LiftOff
        Electrode lift-off episodes.
    packet_loss : float
        Fraction of packets dropped (the Source emits ``GAP`` events for them).
    packet_samples : int
        EMG samples per packet (IMU packets carry the same time span).
    imu_noise_deg : float
        Angle noise, degrees RMS.
    onset_lead_s : float
        Muscles activate this long before the joint starts to move.
    """

    seed: int = 0
    emg_rate_hz: int = 2000
    imu_rate_hz: int = 100
    include_gmax: bool = False
    gain_uv_per_count: float = 0.5
    mvic_rms_uv: dict = field(default_factory=lambda: {GMED: 250.0, TFL: 300.0, GMAX: 200.0})
    mdf_hz: dict = field(default_factory=lambda: {GMED: 95.0, TFL: 110.0, GMAX: 85.0})
    affected_side: str | None = None
    gmed_deficit: float = 0.0
    tfl_compensation: float = 0.0
    fatigue_mdf_pct_per_s: float = 0.0
    fatigue_amp_pct_per_s: float = 0.0
    noise_uv: float = 3.0
    hum_uv: float = 0.0
    hum_hz: float = 50.0
    motion_uv: float = 0.0
    lift_offs: tuple = ()
    packet_loss: float = 0.0
    packet_samples: int = 20
    imu_noise_deg: float = 0.2
    onset_lead_s: float = 0.05

    def __post_init__(self) -> None:
        if self.affected_side not in (None, "left", "right"):
            raise ValueError(f"affected_side must be None, 'left' or 'right', got {self.affected_side!r}")
        if not 0.0 <= self.gmed_deficit < 1.0:
            raise ValueError(f"gmed_deficit must be in [0, 1), got {self.gmed_deficit}")
        if not 0.0 <= self.packet_loss < 1.0:
            raise ValueError(f"packet_loss must be in [0, 1), got {self.packet_loss}")
        if self.emg_rate_hz % self.imu_rate_hz:
            raise ValueError("emg_rate_hz must be a multiple of imu_rate_hz (packets span equal time)")
        if self.packet_samples * self.imu_rate_hz % self.emg_rate_hz:
            raise ValueError("packet_samples must span a whole number of IMU samples")
        object.__setattr__(self, "lift_offs", tuple(self.lift_offs))

    @property
    def emg_channels(self) -> tuple[EmgChannel, ...]:
        muscles = (GMED, TFL, GMAX) if self.include_gmax else (GMED, TFL)
        return tuple(EmgChannel(m, s) for m in muscles for s in ("left", "right"))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lift_offs"] = [dataclasses.asdict(x) for x in self.lift_offs]
        return d


def _ramp(x: np.ndarray) -> np.ndarray:
    """Raised-cosine 0 → 1 over x in [0, 1] (clipped outside)."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def rep_shape(tau_s: np.ndarray, m: Movement, reps: int, lead_in_s: float) -> np.ndarray:
    """Repetition envelope (0 rest .. 1 top) at trial times ``tau_s``: raise, hold, lower, pause, repeated."""
    t = tau_s - lead_in_s
    k = np.floor(t / m.period_s)
    phi = t - k * m.period_s
    up = _ramp(phi / m.up_s)
    down = 1.0 - _ramp((phi - m.up_s - m.top_s) / m.down_s)
    shape = np.where(phi < m.up_s + m.top_s, up, down)
    return np.where((t >= 0) & (k < reps) & (phi < m.rep_s), shape, 0.0)


class Timeline:
    """The protocol laid out in time, evaluated vectorised at arbitrary times (seconds from the start)."""

    def __init__(self, config: SimConfig, trials: Sequence[Trial]) -> None:
        if not trials:
            raise ValueError("the protocol has no trials")
        self.config = config
        self.trials = tuple(trials)
        durations = np.array([t.duration_s for t in self.trials])
        self.starts_s = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
        self.ends_s = self.starts_s + durations
        self.duration_s = float(self.ends_s[-1])
        self.channels = config.emg_channels

    def movement(self, trial: Trial) -> Movement | None:
        if trial.movement is None:
            return None
        m = MOVEMENTS[trial.movement]
        if trial.kind == "hold":
            m = dataclasses.replace(m, top_s=trial.duration_s - Trial.LEAD_IN_S - m.up_s - m.down_s, pause_s=0.0)
        return m

    def _segments(self, t_s: np.ndarray):
        """Yield ``(trial, mask, tau)`` for each trial that the times touch (tau = time into the trial)."""
        idx = np.clip(np.searchsorted(self.starts_s, t_s, side="right") - 1, 0, len(self.trials) - 1)
        after_end = t_s >= self.duration_s
        for i in np.unique(idx):
            mask = (idx == i) & ~after_end
            if mask.any():
                yield i, self.trials[i], mask, t_s[mask] - self.starts_s[i]

    def _peak(self, trial: Trial, ch) -> float:
        """Peak %MVIC of channel ``ch`` in an exercise or hold trial (affected-side changes applied)."""
        c = self.config
        m = self.movement(trial)
        assert m is not None
        level = m.peak_pct_mvic[ch.muscle]
        if ch.side != trial.side and not m.bilateral:
            level *= CONTRALATERAL
        if ch.side == c.affected_side:
            if ch.muscle == GMED:
                level *= 1.0 - c.gmed_deficit
            elif ch.muscle == TFL:
                level *= 1.0 + c.tfl_compensation
        return level

    def activation(self, t_s: np.ndarray) -> np.ndarray:
        """Neural activation, %MVIC, shape ``(len(t_s), n_emg_channels)``."""
        t_s = np.asarray(t_s, dtype=np.float64)
        out = np.full((t_s.size, len(self.channels)), REST_PCT_MVIC)
        lead = self.config.onset_lead_s
        for _, trial, mask, tau in self._segments(t_s):
            if trial.kind == "rest":
                continue
            if trial.kind == "mvic":
                shape = _ramp(tau + lead) * (1.0 - _ramp(tau + lead - (trial.duration_s - 1.0)))
                for j, ch in enumerate(self.channels):
                    if ch.side != trial.side:
                        peak = 10.0
                    elif ch.muscle == trial.muscle:
                        peak = 100.0
                    else:
                        peak = MVIC_SYNERGY[trial.muscle][ch.muscle]
                    out[mask, j] = REST_PCT_MVIC + (peak - REST_PCT_MVIC) * shape
                continue
            m = self.movement(trial)
            shape = rep_shape(tau + lead, m, trial.reps, Trial.LEAD_IN_S)
            for j, ch in enumerate(self.channels):
                out[mask, j] = REST_PCT_MVIC + (self._peak(trial, ch) - REST_PCT_MVIC) * shape
        return out

    def fatigue_time(self, t_s: np.ndarray) -> np.ndarray:
        """Seconds of work so far in the current exercise/hold, per channel (0 off the working side, at rest)."""
        t_s = np.asarray(t_s, dtype=np.float64)
        out = np.zeros((t_s.size, len(self.channels)))
        for _, trial, mask, tau in self._segments(t_s):
            if trial.kind not in ("exercise", "hold"):
                continue
            m = self.movement(trial)
            work = np.clip(tau - Trial.LEAD_IN_S, 0.0, None)
            for j, ch in enumerate(self.channels):
                if ch.side == trial.side or m.bilateral:
                    out[mask, j] = work
        return out

    def mdf_hz(self, t_s: np.ndarray) -> np.ndarray:
        """True median frequency of each channel's EMG, Hz, shape ``(len(t_s), n_emg_channels)``."""
        base = np.array([self.config.mdf_hz[ch.muscle] for ch in self.channels])
        return base * (1.0 + self.config.fatigue_mdf_pct_per_s / 100.0 * self.fatigue_time(t_s))

    def amplitude_gain(self, t_s: np.ndarray) -> np.ndarray:
        """Fatigue amplitude factor (1 when fresh), shape ``(len(t_s), n_emg_channels)``."""
        return 1.0 + self.config.fatigue_amp_pct_per_s / 100.0 * self.fatigue_time(t_s)

    def emg_rms_uv(self, t_s: np.ndarray) -> np.ndarray:
        """Expected EMG RMS (µV) of the muscle signal alone (no noise, hum or artefacts)."""
        mvic = np.array([self.config.mvic_rms_uv[ch.muscle] for ch in self.channels])
        return mvic * self.activation(t_s) / 100.0 * self.amplitude_gain(t_s)

    def angles(self, t_s: np.ndarray) -> np.ndarray:
        """Noise-free IMU angles (deg), shape ``(len(t_s), 3)``: abduction, flexion, pelvic drop of the working side."""
        t_s = np.asarray(t_s, dtype=np.float64)
        out = np.zeros((t_s.size, 3))
        c = self.config
        for _, trial, mask, tau in self._segments(t_s):
            m = self.movement(trial)
            if m is None:
                continue
            shape = rep_shape(tau, m, trial.reps, Trial.LEAD_IN_S)
            col = 0 if m.angle == "hip_abduction_deg" else 1
            out[mask, col] = m.start_deg + (m.peak_deg - m.start_deg) * shape
            if m.pelvic_drop_deg:
                drop = m.pelvic_drop_deg * (1.0 + (8.0 * c.gmed_deficit if trial.side == c.affected_side else 0.0))
                out[mask, 2] = drop * shape
        return out

    def rep_bounds(self) -> list[dict]:
        """Every repetition: trial index, side, movement, start/top/end times (s)."""
        reps = []
        for i, trial in enumerate(self.trials):
            m = self.movement(trial)
            if m is None:
                continue
            for k in range(trial.reps):
                start = float(self.starts_s[i] + Trial.LEAD_IN_S + k * m.period_s)
                reps.append({"trial": i, "rep": k, "side": trial.side, "movement": trial.movement,
                             "kind": trial.kind, "start_s": start, "top_start_s": start + m.up_s,
                             "top_end_s": start + m.up_s + m.top_s, "end_s": start + m.rep_s})
        return reps


@dataclass
class GroundTruth:
    """What the simulator put in the signal, as plain data for scoring an analysis.

    ``reps[i]["rms_pct_mvic"][label]`` is the RMS over the repetition of the muscle signal, in % of that
    muscle's MVIC RMS (what an ideal RMS analysis reports); ``peak_pct_mvic`` the peak neural activation;
    ``ratios[side]`` GMed/TFL of ``rms_pct_mvic``. ``mdf`` samples the true MDF every ``mdf_step_s``.
    """

    config: dict
    trials: list[dict]
    reps: list[dict]
    mdf: dict
    lift_offs: list[dict]
    gaps: list[dict] = field(default_factory=list)  # filled as packets are dropped: stream_id, start_index, n_missing

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def ground_truth(timeline: Timeline, mdf_step_s: float = 0.1) -> GroundTruth:
    """Compute the ground truth of a timeline (deterministic; no randomness is involved)."""
    c = timeline.config
    labels = [ch.label for ch in timeline.channels]
    reps = []
    for rep in timeline.rep_bounds():
        t = np.arange(rep["start_s"], rep["end_s"], 1.0 / c.emg_rate_hz)
        mvic = np.array([c.mvic_rms_uv[ch.muscle] for ch in timeline.channels])
        rms = np.sqrt(np.mean(timeline.emg_rms_uv(t) ** 2, axis=0)) / mvic * 100.0
        peak = timeline.activation(t).max(axis=0)
        rep = dict(rep, rms_pct_mvic=dict(zip(labels, rms.round(6).tolist())),
                   peak_pct_mvic=dict(zip(labels, peak.round(6).tolist())))
        ratios = {}
        for side in ("left", "right"):
            g = rep["rms_pct_mvic"][f"{side[0].upper()}_GMED"]
            f = rep["rms_pct_mvic"][f"{side[0].upper()}_TFL"]
            ratios[side] = g / f
        rep["ratios"] = ratios
        reps.append(rep)
    t_mdf = np.arange(0.0, timeline.duration_s, mdf_step_s)
    mdf = timeline.mdf_hz(t_mdf)
    trials = []
    for i, trial in enumerate(timeline.trials):
        trials.append(dict(trial.to_dict(), index=i, start_s=float(timeline.starts_s[i]),
                           end_s=float(timeline.ends_s[i])))
    return GroundTruth(
        config=c.to_dict(),
        trials=trials,
        reps=reps,
        mdf={"t_s": t_mdf.round(6).tolist(),
             "mdf_hz": {lab: mdf[:, j].round(4).tolist() for j, lab in enumerate(labels)}},
        lift_offs=[dataclasses.asdict(x) for x in c.lift_offs],
    )
