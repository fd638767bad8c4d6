"""Signal synthesis for the simulator: sEMG as spectrally shaped Gaussian noise, and the thigh/pelvis IMU.

sEMG: independent Gaussian segments with the Shwedyk/Stulen–De Luca power spectrum
``P(f) ∝ f²·fh⁴ / ((f² + fl²)(f² + fh²)²)`` frequency-scaled per segment to the wanted median frequency,
windowed with a square-root periodic Hann window and overlap-added at 50 % (so the variance is exactly 1 at
every sample), then multiplied by the per-sample RMS envelope. Each segment's random numbers come from its
own generator seeded by ``(seed, segment)``, so any sample range can be produced on its own and equals the same
range cut from one long run (chunk invariance; no per-sample Python loops).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sensors.sim.model import Timeline

_FL_HZ, _FH_HZ = 50.0, 120.0  # base spectrum corners; its MDF is then scaled to the target
SEGMENT = 512  # synthesis window, samples
HOP = SEGMENT // 2
_EMG_STREAM, _IMU_STREAM = 1, 2
ANGLE_DEG_PER_COUNT = 0.01
GYRO_DPS_PER_COUNT = 0.1
#: the raw thigh IMU at a MetaMotion-like range: ±8 g and ±2000 deg/s over int16
ACC_G_PER_COUNT = 8.0 / 32768
RAW_GYRO_DPS_PER_COUNT = 2000.0 / 32768
#: physical units per count of every `IMU_CHANNELS` column
IMU_UNITS_PER_COUNT = np.array([ANGLE_DEG_PER_COUNT] * 3 + [GYRO_DPS_PER_COUNT] + [ACC_G_PER_COUNT] * 3
                               + [RAW_GYRO_DPS_PER_COUNT] * 3)
_G0 = 9.80665  # m/s2 per g
_SENSOR_POS_M = np.array([0.0, 0.08, -0.25])  # lateral thigh surface, 25 cm below the hip centre (sensor frame)
_ACC_NOISE_G = 0.004  # white noise, g RMS (MEMS accelerometer at ~100 Hz)
_GYRO_NOISE_DPS = 0.1  # white noise, deg/s RMS
_IMU_DIFF_S = 1e-3  # step of the numerical derivatives of the orientation


def _base_psd(f_hz: np.ndarray) -> np.ndarray:
    f2 = f_hz * f_hz
    return f2 * _FH_HZ**4 / ((f2 + _FL_HZ**2) * (f2 + _FH_HZ**2) ** 2)


@lru_cache(maxsize=8)
def _mdf_of_scale(rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """MDF (Hz, band 0..fs/2) of the base spectrum scaled by s, tabulated over s; for inverting MDF -> s."""
    f = np.linspace(0.0, rate_hz / 2, 4001)
    scales = np.linspace(0.2, 3.0, 400)
    p = _base_psd(f[None, :] / scales[:, None])
    c = np.cumsum(p, axis=1)
    mdf = f[np.argmax(c >= c[:, -1:] / 2, axis=1)]
    return mdf, scales


def scale_for_mdf(mdf_hz: np.ndarray, rate_hz: float) -> np.ndarray:
    """Frequency scale giving the wanted MDF (Hz) at sample rate ``rate_hz`` (same shape as ``mdf_hz``)."""
    mdf_table, scales = _mdf_of_scale(float(rate_hz))
    return np.interp(mdf_hz, mdf_table, scales)


_MOTION_HZ, _MOTION_DECAY_S = 4.0, 0.15


def _damped_sine(dt_s: np.ndarray) -> np.ndarray:
    return np.exp(-dt_s / _MOTION_DECAY_S) * np.sin(2 * np.pi * _MOTION_HZ * dt_s)


# the damped sine peaks where tan(2 pi f t) = 2 pi f tau; dividing by that value makes motion_uv its peak
_MOTION_PEAK = float(_damped_sine(np.arctan(2 * np.pi * _MOTION_HZ * _MOTION_DECAY_S) / (2 * np.pi * _MOTION_HZ)))


class EmgSynth:
    """Muscle signal plus noise floor, hum, motion artefacts and lift-off, as int16 counts.

    Parameters
    ----------
    timeline : Timeline
        Gives activation, MDF and fatigue gain at any time.
    """

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        c = timeline.config
        self.rate_hz = float(c.emg_rate_hz)
        self.n_channels = len(timeline.channels)
        self._window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(SEGMENT) / SEGMENT))  # periodic sqrt-Hann
        self._freqs = np.fft.rfftfreq(SEGMENT, 1.0 / self.rate_hz)
        self._weights = np.full(self._freqs.size, 2.0)  # rfft bins counted twice except DC and Nyquist
        self._weights[[0, -1]] = 1.0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._hum_phase = np.arange(self.n_channels) * 0.7
        labels = [ch.label for ch in timeline.channels]
        self._lift = [(labels.index(x.label), x.start_s, x.start_s + x.duration_s) for x in c.lift_offs
                      if x.label in labels]
        unknown = [x.label for x in c.lift_offs if x.label not in labels]
        if unknown:
            raise ValueError(f"lift-off on unknown channel(s) {unknown}; channels are {labels}")
        self._rep_starts = [(r["start_s"], r["side"], r["movement"]) for r in timeline.rep_bounds()]

    def _segment(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Unit-variance windowed noise of segment j ``(SEGMENT, C)`` and the white noise of hop j ``(HOP, C)``."""
        hit = self._cache.get(j)
        if hit is not None:
            return hit
        c = self.timeline.config
        rng = np.random.default_rng([c.seed, _EMG_STREAM, j + 1])  # j = -1 is the segment before sample 0
        centre_s = (j * HOP + SEGMENT / 2) / self.rate_hz
        scale = scale_for_mdf(self.timeline.mdf_hz(np.array([centre_s]))[0], self.rate_hz)  # (C,)
        psd = _base_psd(self._freqs[:, None] / scale[None, :])  # (K, C)
        psd /= (self._weights[:, None] * psd).sum(axis=0, keepdims=True)
        amp = np.sqrt(psd) * SEGMENT  # irfft of these magnitudes with unit complex noise has variance 1
        spec = amp * (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) / np.sqrt(2.0)
        spec[0] = spec[0].real * np.sqrt(2.0)
        spec[-1] = spec[-1].real * np.sqrt(2.0)
        seg = np.fft.irfft(spec, n=SEGMENT, axis=0) * self._window[:, None]
        white = rng.standard_normal((HOP, self.n_channels))
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[j] = (seg, white)
        return seg, white

    def unit_noise(self, first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Shaped unit-variance noise and white noise for samples ``[first, first + n)``, each ``(n, C)``."""
        j0 = first // HOP - 1
        j1 = (first + n - 1) // HOP
        span = np.zeros(((j1 - j0 + 2) * HOP, self.n_channels))
        white = np.empty(((j1 - j0 + 1) * HOP, self.n_channels))
        for k, j in enumerate(range(j0, j1 + 1)):  # a few segments per call: loop over segments, not samples
            seg, w = self._segment(j)
            span[k * HOP : k * HOP + SEGMENT] += seg
            white[k * HOP : (k + 1) * HOP] = w
        lo = first - j0 * HOP
        return span[lo : lo + n], white[lo : lo + n]

    def microvolts(self, first: int, n: int) -> np.ndarray:
        """The EMG channels in µV for samples ``[first, first + n)``, shape ``(n, C)``, float64."""
        c = self.timeline.config
        t = (first + np.arange(n)) / self.rate_hz
        shaped, white = self.unit_noise(first, n)
        x = shaped * self.timeline.emg_rms_uv(t) + white * c.noise_uv
        if c.hum_uv:
            x += c.hum_uv * np.sin(2 * np.pi * c.hum_hz * t[:, None] + self._hum_phase[None, :])
        if c.motion_uv:
            x += self._motion(t)
        for ch, start_s, end_s in self._lift:
            inside = (t >= start_s) & (t < end_s)
            if inside.any():  # contact lost: the input floats to the rails with a slow wander
                x[inside, ch] = 40000.0 * np.sin(2 * np.pi * 1.5 * (t[inside] - start_s) + 0.3)
        return x

    def _motion(self, t: np.ndarray) -> np.ndarray:
        """Damped 4 Hz artefact starting at every repetition, on the working side's channels, peaking at
        ``motion_uv``."""
        out = np.zeros((t.size, self.n_channels))
        c = self.timeline.config
        for start_s, side, _ in self._rep_starts:
            if start_s > t[-1] or start_s + 1.0 < t[0]:
                continue
            dt = t - start_s
            bump = np.where((dt >= 0) & (dt < 1.0), _damped_sine(dt) / _MOTION_PEAK, 0.0)
            for j, ch in enumerate(self.timeline.channels):
                if ch.side == side:
                    out[:, j] += c.motion_uv * bump
        return out

    def counts(self, first: int, n: int) -> np.ndarray:
        """int16 counts ``(n, C)`` at the declared gain, clipped at the rails."""
        x = np.round(self.microvolts(first, n) / self.timeline.config.gain_uv_per_count)
        return np.clip(x, -32768, 32767).astype(np.int16)


class ImuSynth:
    """Thigh/pelvis IMU: joint angles, their summed rate, and the raw thigh accelerometer and gyroscope.

    Columns (`IMU_CHANNELS`): hip abduction, hip flexion, pelvic drop (deg), thigh angular rate (deg/s, the
    summed rate of the two hip angles), then a thigh-mounted accelerometer (3 axes, g) and gyroscope (3 axes,
    deg/s) as a real IMU (e.g. MetaMotion) strapped on the lateral thigh of the working side would report.

    The pelvis is taken as fixed, upright, in the world (side-lying exercises are simulated in the standing
    frame: the joint rotation is about a horizontal axis either way, which is what the tilt of the thigh
    measures). Sensor axes at rest: x anterior, y lateral, z up along the thigh. The thigh orientation is
    ``R = Rx(abduction) @ Ry(-flexion)`` (abduction swings the knee laterally, flexion anteriorly). The
    accelerometer reads the specific force ``R^T (a - g) / g0`` of a point ``_SENSOR_POS_M`` from the hip
    centre (gravity plus the tangential and centripetal acceleration of the movement); the gyroscope reads the
    body-frame angular rate from ``R^T dR/dt``. Both add white noise (`_ACC_NOISE_G`, `_GYRO_NOISE_DPS`).
    """

    BLOCK = 256  # samples per random block (noise is drawn per block, so ranges are chunk-invariant)

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.rate_hz = float(timeline.config.imu_rate_hz)

    def _noise(self, first: int, n: int, width: int, *tag: int) -> np.ndarray:
        c = self.timeline.config
        b0, b1 = first // self.BLOCK, (first + n - 1) // self.BLOCK
        return np.concatenate([np.random.default_rng([c.seed, _IMU_STREAM, b, *tag]).standard_normal((self.BLOCK, width))
                               for b in range(b0, b1 + 1)])[first - b0 * self.BLOCK :][:n]

    def _orientation(self, t_s: np.ndarray) -> np.ndarray:
        """Thigh-to-world rotation matrices ``(n, 3, 3)`` at times ``t_s`` (noise-free)."""
        a = np.radians(self.timeline.angles(t_s))
        abd, flex = a[:, 0], -a[:, 1]
        ca, sa, cf, sf = np.cos(abd), np.sin(abd), np.cos(flex), np.sin(flex)
        one, zero = np.ones_like(ca), np.zeros_like(ca)
        rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, ca, -sa], -1),
                       np.stack([zero, sa, ca], -1)], -2)
        ry = np.stack([np.stack([cf, zero, sf], -1), np.stack([zero, one, zero], -1),
                       np.stack([-sf, zero, cf], -1)], -2)
        return rx @ ry

    def inertial(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Noise-free thigh accelerometer (g) and gyroscope (deg/s), each ``(n, 3)`` in the sensor frame."""
        h = _IMU_DIFF_S
        r_m, r0, r_p = self._orientation(t_s - h), self._orientation(t_s), self._orientation(t_s + h)
        rt = np.swapaxes(r0, 1, 2)
        w = rt @ ((r_p - r_m) / (2 * h))  # skew-symmetric: the body-frame angular velocity, rad/s
        gyro = np.degrees(np.stack([w[:, 2, 1], w[:, 0, 2], w[:, 1, 0]], axis=1))
        acc_world = (r_p - 2 * r0 + r_m) @ _SENSOR_POS_M / (h * h)  # d2(R p)/dt2, m/s2
        acc = rt @ (acc_world / _G0 + np.array([0.0, 0.0, 1.0]))[:, :, None]  # at rest it reads +1 g up
        return acc[:, :, 0], gyro

    def values(self, first: int, n: int) -> np.ndarray:
        """``(n, 10)`` float64: deg ×3, deg/s, g ×3, deg/s ×3 (see `IMU_CHANNELS`)."""
        c = self.timeline.config
        t = (first + np.arange(n)) / self.rate_hz
        half = 0.5 / self.rate_hz
        angles = self.timeline.angles(t)
        rate = (self.timeline.angles(t + half) - self.timeline.angles(t - half))[:, :2].sum(axis=1) * self.rate_hz
        noise = self._noise(first, n, 4)
        out = np.column_stack([angles, rate])
        out[:, :3] += noise[:, :3] * c.imu_noise_deg
        out[:, 3] += noise[:, 3] * c.imu_noise_deg * self.rate_hz / 10.0
        # the raw sensor draws its own noise, so the angle channels stay what they were before it existed
        acc, gyro = self.inertial(t)
        raw_noise = self._noise(first, n, 6, 1)
        acc += raw_noise[:, :3] * _ACC_NOISE_G
        gyro += raw_noise[:, 3:] * _GYRO_NOISE_DPS
        return np.column_stack([out, acc, gyro])

    def counts(self, first: int, n: int) -> np.ndarray:
        v = self.values(first, n)
        return np.clip(np.round(v / IMU_UNITS_PER_COUNT), -32768, 32767).astype(np.int16)
