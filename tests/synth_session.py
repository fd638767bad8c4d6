"""A synthetic two-sided session with known truth, written as a real ``.medius`` file (test helper).

Built independently of the analysis code: EMG is white noise shaped in the frequency domain (Gaussian band
around ``fc``, as clinical.md section 10's stochastic fatigue fixture) and scaled to known RMS amplitudes; the
thigh IMU sees known abduction angles through a tilted mount. Truth is returned alongside the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from app.protocol import Patient, Placement, SessionProtocol, Trial
from sensors.recording import SessionWriter
from sensors.stream import ChannelInfo, Frame, StreamInfo

EMG_HZ = 2000.0
IMU_HZ = 100.0
GAIN_UV = 0.25  # µV per count
MVIC_UV = {"gluteus_medius_left": 220.0, "tfl_left": 160.0, "gluteus_medius_right": 260.0, "tfl_right": 150.0}
KEYS = list(MVIC_UV)


@dataclass
class Truth:
    pct_mvic: dict = field(default_factory=dict)  # key -> %MVIC during exercise reps
    ratio: dict = field(default_factory=dict)  # side -> GMed:TFL ratio of %MVIC
    onset_gmed_minus_tfl_ms: dict = field(default_factory=dict)
    reps_s: dict = field(default_factory=dict)  # side -> (n, 2) movement start/stop
    mdf_slope_pct_per_s: dict = field(default_factory=dict)  # key -> normalised MDF slope of the hold
    hold_s: dict = field(default_factory=dict)  # side -> (start, stop) of the contraction


def _shaped_noise(rng, n, rate, fc_hz, sigma_hz=40.0):
    """White noise shaped by exp(-((f - fc)/sigma)^2 / 2), unit RMS; fc may vary per 1 s block."""
    out = np.empty(n)
    block = int(rate)
    fcs = np.broadcast_to(np.asarray(fc_hz, dtype=float), (int(np.ceil(n / block)),))
    for k, i in enumerate(range(0, n, block)):
        m = min(block, n - i)
        spec = np.fft.rfft(rng.standard_normal(m))
        f = np.fft.rfftfreq(m, 1 / rate)
        spec *= np.exp(-0.5 * ((f - fcs[k]) / sigma_hz) ** 2)
        seg = np.fft.irfft(spec, m)
        out[i:i + m] = seg / np.sqrt(np.mean(seg**2))
    return out


def _ramp(t, a, b, edge_s=0.05):
    """1 inside [a, b] with raised-cosine edges of ``edge_s``, 0 outside."""
    up = np.clip((t - a) / edge_s + 0.5, 0, 1)
    down = np.clip((b - t) / edge_s + 0.5, 0, 1)
    return np.minimum(0.5 - 0.5 * np.cos(np.pi * up), 0.5 - 0.5 * np.cos(np.pi * down))


def build(path, seed=0, affected="left", pct_affected=(36.0, 31.0), pct_unaffected=(50.0, 30.0), n_reps=8,
          onset_delay_ms=(60.0, 0.0), hold_fc=((120.0, 90.0), (120.0, 100.0)), date="2026-11-25",
          patient="P-SYN", noise_uv=3.0, mvic_scale=1.0, with_mvic=True, hold_fail_s=None):
    """Write a session to ``path``; returns `Truth`.

    ``pct_*`` = (GMed, TFL) %MVIC during the reps of each side; ``onset_delay_ms`` = GMed onset after TFL on
    (affected, unaffected); ``hold_fc`` = (start, end) spectral centre of both muscles during each side's hold;
    ``hold_fail_s``: the thigh sinks from 30 to 15 deg (over 0.5 s, smoothstep) this long after each hold's
    start and stays there until the hold's end (the patient could not keep the leg up).
    """
    rng = np.random.default_rng(seed)
    unaffected = "right" if affected == "left" else "left"
    trials = [Trial("rest", "rest", 0.0, 5.0)]
    t_s = 6.0
    for side in ("left", "right"):
        if with_mvic:
            trials.append(Trial(f"mvic_{side}", "mvic", t_s, t_s + 14.0, side=side, muscle="gluteus_medius"))
        t_s += 15.0
    plan = {}
    for side in ("left", "right"):
        reps, r = [], t_s + 2.0
        for _ in range(n_reps):
            up, hold, down = rng.uniform(0.8, 1.1), rng.uniform(0.3, 0.7), rng.uniform(0.8, 1.1)
            reps.append((r, up, hold, down))
            r += up + hold + down + rng.uniform(1.2, 1.8)
        trials.append(Trial(f"abd_{side}", "exercise", t_s, r + 1.0, side=side, movement="side_lying_abduction"))
        plan[side] = reps
        t_s = r + 2.0
    holds = {}
    for side in ("left", "right"):
        trials.append(Trial(f"hold_{side}", "hold", t_s, t_s + 64.0, side=side))
        holds[side] = (t_s + 2.0, t_s + 62.0)
        t_s += 66.0
    total_s = t_s + 1.0

    n = int(total_s * EMG_HZ)
    t = np.arange(n) / EMG_HZ
    truth = Truth()
    emg = np.empty((n, 4))
    ni = int(total_s * IMU_HZ)
    ti = np.arange(ni) / IMU_HZ
    angle = {"left": np.zeros(ni), "right": np.zeros(ni)}
    for side, reps in plan.items():
        truth.reps_s[side] = np.array([(s, s + u + h + d) for s, u, h, d in reps])
        for s, u, h, d in reps:
            a = 35.0 * rng.uniform(0.85, 1.05)
            for lo, hi, f in ((s, s + u, lambda x: x), (s + u, s + u + h, lambda x: 1 + 0 * x),
                              (s + u + h, s + u + h + d, lambda x: 1 - x)):
                m = (ti >= lo) & (ti < hi)
                x = f((ti[m] - lo) / (hi - lo))
                angle[side][m] = a * (10 * x**3 - 15 * x**4 + 6 * x**5)
        hs, he = holds[side]
        m = (ti >= hs) & (ti < he)
        angle[side][m] = 30.0
        end_deg = 30.0
        if hold_fail_s is not None:
            f0 = hs + hold_fail_s
            m = (ti >= f0) & (ti < he)
            x = np.minimum((ti[m] - f0) / 0.5, 1.0)
            angle[side][m] = 30.0 - 15.0 * (10 * x**3 - 15 * x**4 + 6 * x**5)
            end_deg = 15.0
        for lo, hi, up in ((hs - 1.0, hs, True), (he, he + 1.0, False)):
            m = (ti >= lo) & (ti < hi)
            x = (ti[m] - lo)
            x = x if up else 1 - x
            angle[side][m] = (30.0 if up else end_deg) * (10 * x**3 - 15 * x**4 + 6 * x**5)
    for col, key in enumerate(KEYS):
        muscle, side = key.rsplit("_", 1)
        gmed = muscle == "gluteus_medius"
        mvic = MVIC_UV[key] * mvic_scale
        is_aff = side == affected
        pct = (pct_affected if is_aff else pct_unaffected)[0 if gmed else 1]
        truth.pct_mvic[key] = pct
        amp = np.zeros(n)
        # MVIC: both muscles of that side at 100 %, three 3 s efforts 1.5 s apart
        ms = 6.0 + (0 if side == "left" else 15.0) + 1.0
        for k in range(3):
            amp += _ramp(t, ms + 4.5 * k, ms + 4.5 * k + 3.0, 0.2) * mvic
        delay = (onset_delay_ms[0] if is_aff else onset_delay_ms[1]) / 1000.0 if gmed else 0.0
        for s, u, h, d in plan[side]:
            amp += _ramp(t, s + delay, s + u + h + d, 0.05) * mvic * pct / 100.0
        hs, he = holds[side]
        hold_amp = _ramp(t, hs, he, 0.2) * mvic * 0.4
        amp += hold_amp
        sig = _shaped_noise(rng, n, EMG_HZ, 110.0 if gmed else 125.0, sigma_hz=70.0)
        # the hold gets its own spectrum: centre frequency falling linearly over the contraction
        f0, f1 = hold_fc[0 if is_aff else 1]
        i0, i1 = int(hs * EMG_HZ), int(he * EMG_HZ)
        n_blocks = int(np.ceil((i1 - i0) / EMG_HZ))
        fc = f0 + (f1 - f0) * (np.arange(n_blocks) + 0.5) / n_blocks
        sig[i0:i1] = _shaped_noise(rng, i1 - i0, EMG_HZ, fc)
        truth.mdf_slope_pct_per_s[key] = (f1 - f0) / (he - hs) / f0 * 100.0
        emg[:, col] = sig * amp + rng.standard_normal(n) * noise_uv
    for side in ("left", "right"):
        truth.ratio[side] = (pct_affected if side == affected else pct_unaffected)[0] / \
            (pct_affected if side == affected else pct_unaffected)[1]
        truth.onset_gmed_minus_tfl_ms[side] = onset_delay_ms[0] if side == affected else onset_delay_ms[1]
        truth.hold_s[side] = holds[side]

    imu = []
    mount = Rotation.from_euler("zyx", [20, -15, 10], degrees=True)
    for side in ("left", "right"):
        body = Rotation.from_rotvec(np.radians(angle[side])[:, None] * np.array([0.0, 1.0, 0.0]))
        sensor = body * mount
        acc = sensor.inv().apply([0.0, 0.0, 1.0]) + rng.normal(0, 0.01, (ni, 3))
        omega = np.gradient(np.radians(angle[side]), 1 / IMU_HZ)[:, None] * np.array([0.0, 1.0, 0.0])
        gyro = np.degrees(sensor.inv().apply(omega)) + rng.normal(0, 0.5, (ni, 3))
        imu += [acc, gyro]
    imu = np.hstack(imu)

    emg_info = StreamInfo("emg", EMG_HZ, tuple(
        ChannelInfo(f"emg{i}", "emg", "uV", GAIN_UV, 0.0, *k.rsplit("_", 1)) for i, k in enumerate(KEYS)),
        dtype="int16", device="synthetic")
    imu_ch = []
    for side in ("left", "right"):
        imu_ch += [ChannelInfo(f"acc_{a}_{side}", "acc", "g", 1.0, 0.0, None, side) for a in "xyz"]
        imu_ch += [ChannelInfo(f"gyro_{a}_{side}", "gyro", "deg/s", 1.0, 0.0, None, side) for a in "xyz"]
    imu_info = StreamInfo("imu", IMU_HZ, tuple(imu_ch), dtype="float32", device="synthetic")
    proto = SessionProtocol(
        patient=Patient(patient, affected_side=affected),
        date=date,
        placements=tuple(Placement(*k.rsplit("_", 1), "emg", i, site="test") for i, k in enumerate(KEYS)),
        devices=("synthetic",),
        trials=tuple(trials),
        mvic_protocol="synthetic: both muscles 3 s at 100 %",
    )
    counts = np.clip(np.round(emg / GAIN_UV), -32768, 32767).astype(np.int16)
    with SessionWriter.create(path, proto.to_meta()) as w:
        w.add_stream(emg_info)
        w.add_stream(imu_info)
        step = int(EMG_HZ)
        for i in range(0, n, step):
            w.write_frame(Frame("emg", i, counts[i:i + step]))
        for i in range(0, ni, 100):
            w.write_frame(Frame("imu", i, imu[i:i + 100].astype(np.float32)))
        for ev in proto.to_events():
            w.add_event(ev["kind"], None, None, ev["time_s"], ev["payload"])
    return truth
