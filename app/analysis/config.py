"""Analysis settings. Every one is recorded in the results so a number can be traced to how it was made."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class AnalysisConfig:
    band_hz: tuple[float, float] = (20.0, 450.0)  # EMG band-pass (upper edge lowered by dsp below 1 kHz rates)
    mains_hz: float | None = None  # notch for amplitude work; None: the session's recorded mains, if any (spectra never notched)
    amplitude_window_s: float = 0.5  # centred moving RMS for the MVIC peak AND the exercise %MVIC (same processing)
    onset_window_s: float = 0.05  # moving average of |EMG| for onsets: short, so latency is not smeared
    onset_k_sd: float = 3.0  # onset threshold = rest mean + k SD of the same test function (Hodges & Bui 1996)
    onset_min_duration_s: float = 0.05
    over_mvic_warn_frac: float = 0.20  # warn when an exercise exceeds the MVIC reference by more than this
    rep_high_frac: float = 0.5  # hysteresis thresholds as fractions of the trial's range (dsp.reps.auto_thresholds)
    rep_low_frac: float = 0.25
    rep_min_duration_s: float = 0.5
    rep_velocity_frac: float = 0.05  # boundaries at 5 % of peak angular velocity (movement start/end)
    # centred moving RMS the EMG fallback segments on: 0.1 s leaves enough ripple to stop the 5 %-of-peak-rate
    # boundary search early (median boundary error 90 ms, up to 135 ms on the simulator), 0.5 s smears the
    # edges (106 ms); 0.2 s: 52 ms (max 64 ms) over 12 simulated trials
    rep_emg_window_s: float = 0.2
    imu_tau_s: float = 0.5  # complementary filter crossover
    fatigue_window_s: float = 1.0
    fatigue_hop_s: float = 0.5
    min_snr_db: float = 10.0  # spectral indices withheld below this contraction-to-rest SNR (Sensors 2022 22:6360)
    min_spectral_rate_hz: float = 1000.0  # and below this sampling rate (band to 450 Hz needs >= ~1 kHz)
    min_activation_pct: float = 5.0  # SI/LSI/ratio denominators below this %MVIC are withheld
    endurance_drop_frac: float = 0.8  # hold ends when the thigh tilt falls below this fraction of its initial level

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
