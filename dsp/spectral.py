"""Spectral fatigue indices over sliding Hann windows: PSD, MDF, MNF, Dimitrov FInsm5, band power, slopes.

Definitions follow clinical.md section 6: the PSD is a one-sided Hann periodogram (Welch-averaged when
``nperseg`` is shorter than the window, 50 % segment overlap, mean removed per segment, as
``scipy.signal.welch`` does), restricted to the analysis band [f1, f2] (bins with f1 <= f <= f2). MDF is the first
bin where the cumulative power reaches half the band total. FFTs run in numpy/scipy outside numba, batched over
windows and channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp._jit import kernel
from dsp._validate import float_dtype, positive, samples_2d

# Windows per FFT batch: bounds memory for hour-long recordings and keeps a batch (~1 MB at 8 ch, 1 s, 2 kHz)
# in cache between preparation, FFT and index kernels.
_WINDOWS_PER_BATCH = 16


@dataclass(frozen=True, eq=False)
class SpectralSeries:
    """Spectral indices per analysis window.

    Attributes
    ----------
    time_s : ndarray, shape (n_windows,), float64
        Window centre in seconds from the first sample of the signal (or stream).
    mdf_hz, mnf_hz : ndarray, shape (n_windows, n_channels), float64
        Median and mean frequency in Hz.
    fi_nsm5 : ndarray, shape (n_windows, n_channels), float64
        Dimitrov FInsm5 = M(-1) / M(5) with f in Hz, in s^6.
    band_power : ndarray, shape (n_windows, n_channels), float64
        Power in the analysis band (integral of the PSD), in signal units squared.
    rms : ndarray, shape (n_windows, n_channels), float64
        RMS of the window's samples, in signal units.
    """

    time_s: np.ndarray
    mdf_hz: np.ndarray
    mnf_hz: np.ndarray
    fi_nsm5: np.ndarray
    band_power: np.ndarray
    rms: np.ndarray

    def __len__(self) -> int:
        return len(self.time_s)

    @staticmethod
    def empty(n_channels: int) -> SpectralSeries:
        """A series with no windows."""
        e = np.empty((0, n_channels))
        return SpectralSeries(np.empty(0), e, e, e, e, e)

    @staticmethod
    def concatenate(parts: list[SpectralSeries], n_channels: int) -> SpectralSeries:
        """Join series in time order."""
        if not parts:
            return SpectralSeries.empty(n_channels)
        fields = ("time_s", "mdf_hz", "mnf_hz", "fi_nsm5", "band_power", "rms")
        return SpectralSeries(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


@dataclass(frozen=True)
class SlopeFit:
    """Least-squares line of an index over time (per channel when the values are 2-D).

    Attributes
    ----------
    slope_per_s : float or ndarray (n_channels,)
        Slope in index units per second (e.g. Hz/s for MDF).
    intercept : float or ndarray (n_channels,)
        Fitted value at time 0.
    initial : float or ndarray (n_channels,)
        Fitted value at the first time point: the "initial value" the slope is normalised to.
    slope_pct_per_s : float or ndarray (n_channels,)
        100 x slope / initial, in %/s.
    r : float or ndarray (n_channels,)
        Pearson correlation of index and time.
    """

    slope_per_s: np.ndarray | float
    intercept: np.ndarray | float
    initial: np.ndarray | float
    slope_pct_per_s: np.ndarray | float
    r: np.ndarray | float


@kernel
def _prepare_segments(x, starts, window_len, offsets, hann, segments, rms):  # pragma: no cover - compiled
    # One pass per window: gather the window's samples from the (n_samples, n_channels) signal, keep its RMS,
    # and write every Welch segment mean-removed and Hann-weighted as (window, segment, channel, sample) rows
    # ready for one batched rFFT. Sums are float64 whatever the dtype.
    n_channels = x.shape[1]
    nperseg = hann.shape[0]
    for k in range(starts.shape[0]):
        s0 = starts[k]
        for c in range(n_channels):
            acc = 0.0
            for j in range(window_len):
                v = np.float64(x[s0 + j, c])
                acc += v * v
            rms[k, c] = np.sqrt(acc / window_len)
            for g in range(offsets.shape[0]):
                a = s0 + offsets[g]
                mean = 0.0
                for j in range(nperseg):
                    mean += x[a + j, c]
                mean /= nperseg
                for j in range(nperseg):
                    segments[k, g, c, j] = (x[a + j, c] - mean) * hann[j]


@kernel
def _band_indices(spec, lo, freqs, scale, out):  # pragma: no cover - compiled
    # spec: (n_windows, n_segments, n_channels, n_fft_bins) complex rFFT of the prepared segments; bins lo..lo+n_band
    # are the analysis band. out[k, c] = (MDF, MNF, FInsm5, band total P) with the Welch average over segments.
    n_windows, n_segments, n_channels, _ = spec.shape
    n_band = freqs.shape[0]
    p = np.empty(n_band)
    for k in range(n_windows):
        for c in range(n_channels):
            total = 0.0
            m1 = 0.0
            m_inv = 0.0
            m5 = 0.0
            for b in range(n_band):
                acc = 0.0
                for g in range(n_segments):
                    z = spec[k, g, c, lo + b]
                    acc += np.float64(z.real) * z.real + np.float64(z.imag) * z.imag
                v = acc * scale[b]
                p[b] = v
                f = freqs[b]
                total += v
                m1 += f * v
                m_inv += v / f
                f2 = f * f
                m5 += f2 * f2 * f * v
            half = 0.5 * total
            acc = 0.0
            mdf = np.nan
            for b in range(n_band):
                acc += p[b]
                if acc >= half:
                    mdf = freqs[b]
                    break
            if total > 0.0:
                out[k, c, 0] = mdf
                out[k, c, 1] = m1 / total
                out[k, c, 2] = m_inv / m5
            else:
                out[k, c, 0] = np.nan
                out[k, c, 1] = np.nan
                out[k, c, 2] = np.nan
            out[k, c, 3] = total


class _Plan:
    """Everything about a window geometry that does not depend on the data (computed once)."""

    def __init__(self, rate_hz: float, window_len: int, nperseg: int, band_hz: tuple[float, float]):
        self.rate_hz = rate_hz
        self.window_len = window_len
        self.nperseg = nperseg
        step = nperseg - nperseg // 2
        self.offsets = tuple(range(0, window_len - nperseg + 1, step))
        self.offsets_arr = np.array(self.offsets, dtype=np.int64)
        self.hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(nperseg) / nperseg)  # periodic, as scipy's 'hann'
        freqs = np.arange(nperseg // 2 + 1) * (rate_hz / nperseg)
        f1, f2 = band_hz
        f2 = min(f2, rate_hz / 2)
        sel = np.nonzero((freqs >= f1) & (freqs <= f2))[0]
        if len(sel) == 0:
            raise ValueError(f"band {f1:g}-{f2:g} Hz holds no frequency bin at nperseg {nperseg}, {rate_hz:g} Hz")
        self.lo, self.hi = int(sel[0]), int(sel[-1]) + 1
        self.freqs = freqs[self.lo : self.hi]
        # density scaling and one-sided doubling as scipy.signal.welch (only DC and an even-length Nyquist
        # bin stay single)
        scale = np.full(len(freqs), 2.0 / (rate_hz * np.sum(self.hann**2)))
        scale[0] /= 2
        if nperseg % 2 == 0:
            scale[-1] /= 2
        self.scale = scale[self.lo : self.hi]
        self.df = rate_hz / nperseg

    def _spectra(self, x: np.ndarray, starts: np.ndarray):
        import scipy.fft

        work = np.float32 if x.dtype == np.float32 else np.float64
        segments = np.empty((len(starts), len(self.offsets), x.shape[1], self.nperseg), work)
        rms = np.empty((len(starts), x.shape[1]))
        _prepare_segments(x, starts, self.window_len, self.offsets_arr, self.hann.astype(work), segments, rms)
        return scipy.fft.rfft(segments, axis=-1), rms

    def psd(self, x: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Band-limited PSD of the windows starting at ``starts``: (n_windows, n_channels, n_band), float64."""
        spec, _ = self._spectra(x, starts)
        band = spec[..., self.lo : self.hi]
        p = (band.real.astype(np.float64) ** 2 + band.imag.astype(np.float64) ** 2).mean(axis=1)
        return p * self.scale

    def indices(self, x: np.ndarray, starts: np.ndarray):
        """MDF, MNF, FInsm5, band power, RMS of the windows of ``x`` starting at ``starts``, each (n_windows, ch)."""
        spec, rms = self._spectra(x, starts)
        out = np.empty((len(starts), x.shape[1], 4))
        _band_indices(spec, self.lo, self.freqs, self.scale / len(self.offsets), out)
        return out[..., 0], out[..., 1], out[..., 2], out[..., 3] * self.df, rms


def _geometry(rate_hz, window_s, hop_s, band_hz, nperseg):
    rate_hz = positive("rate_hz", rate_hz)
    window_len = int(round(positive("window_s", window_s) * rate_hz))
    hop = int(round(positive("hop_s", hop_s) * rate_hz))
    if window_len < 4 or hop < 1:
        raise ValueError(f"window_s/hop_s too short for {rate_hz:g} Hz: {window_len} / {hop} samples")
    if nperseg is None:
        nperseg = window_len
    if not isinstance(nperseg, (int, np.integer)) or not 4 <= nperseg <= window_len:
        raise ValueError(f"nperseg must be an integer in [4, {window_len}] (the window length), got {nperseg!r}")
    try:
        f1, f2 = (float(b) for b in band_hz)
    except (TypeError, ValueError):
        raise ValueError(f"band_hz must be (low_hz, high_hz), got {band_hz!r}") from None
    if not (0 < f1 < f2):
        raise ValueError(f"band_hz must satisfy 0 < low < high (FInsm5 needs f > 0), got {band_hz!r}")
    return _Plan(rate_hz, window_len, int(nperseg), (f1, f2)), hop


def spectral_indices(
    x: np.ndarray,
    rate_hz: float,
    window_s: float = 1.0,
    hop_s: float = 0.5,
    band_hz: tuple[float, float] = (20.0, 450.0),
    nperseg: int | None = None,
) -> SpectralSeries:
    """Spectral fatigue indices over sliding windows of a whole recording.

    Parameters
    ----------
    x : ndarray, shape (n_samples, n_channels) or (n_samples,), float32/float64
        Band-passed EMG. float32 input is transformed in float32 (error ~1e-6, far below estimator scatter).
    rate_hz : float
        Sampling rate in Hz.
    window_s, hop_s : float
        Window length and hop in seconds (rounded to whole samples). Window k covers samples
        [k*hop, k*hop + window); only complete windows are analysed.
    band_hz : (float, float)
        Analysis band in Hz; the upper edge is clipped to Nyquist.
    nperseg : int, optional
        Welch segment length in samples (default: the whole window, i.e. one Hann periodogram per window).

    Returns
    -------
    SpectralSeries
        One row per complete window; ``time_s`` is the window centre.
    """
    x = samples_2d("x", x)
    plan, hop = _geometry(rate_hz, window_s, hop_s, band_hz, nperseg)
    return _indices_over(x, plan, hop)


def _indices_over(x: np.ndarray, plan: _Plan, hop: int) -> SpectralSeries:
    # every complete window of a whole (validated) signal, in batches
    n, n_channels = x.shape
    n_windows = 0 if n < plan.window_len else (n - plan.window_len) // hop + 1
    if n_windows == 0:
        return SpectralSeries.empty(n_channels)
    parts = []
    for k0 in range(0, n_windows, _WINDOWS_PER_BATCH):
        starts = np.arange(k0, min(k0 + _WINDOWS_PER_BATCH, n_windows), dtype=np.int64) * hop
        parts.append(plan.indices(x, starts))
    mdf, mnf, fi, bp, rms = (np.concatenate(cols) for cols in zip(*parts))
    time_s = (np.arange(n_windows) * hop + plan.window_len / 2) / plan.rate_hz
    return SpectralSeries(time_s, mdf, mnf, fi, bp, rms)


class FatigueTracker:
    """Streaming spectral indices: emits one window per hop as samples arrive.

    Gives the same numbers as :func:`spectral_indices` over the concatenated stream, for any chunking.

    Parameters
    ----------
    rate_hz : float
    n_channels : int
    window_s, hop_s : float
        Window and hop in seconds (see :func:`spectral_indices`).
    band_hz : (float, float)
    nperseg : int, optional
    dtype : float32 or float64
        Dtype of incoming chunks.
    """

    def __init__(self, rate_hz, n_channels, window_s=1.0, hop_s=0.5, band_hz=(20.0, 450.0), nperseg=None,
                 dtype=np.float64):
        if not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
            raise ValueError(f"n_channels must be an integer >= 1, got {n_channels!r}")
        self._plan, self._hop = _geometry(rate_hz, window_s, hop_s, band_hz, nperseg)
        self.n_channels = int(n_channels)
        self.dtype = float_dtype(dtype)
        self._ring = np.zeros((self._plan.window_len, self.n_channels), self.dtype)
        self._empty = SpectralSeries.empty(self.n_channels)
        self.reset()

    def batch(self, x: np.ndarray) -> SpectralSeries:
        """What feeding all of ``x`` to a fresh tracker would emit, computed over the whole array at once.

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_channels), ``dtype``

        Returns
        -------
        SpectralSeries
        """
        return _indices_over(samples_2d("x", x, self.n_channels, self.dtype), self._plan, self._hop)

    def reset(self) -> None:
        """Forget all samples seen; the next sample is time 0."""
        self._count = 0  # samples seen
        self._next_end = self._plan.window_len  # sample count at which the next window is complete
        self._ring[...] = 0

    def process(self, x: np.ndarray) -> SpectralSeries:
        """Add a chunk; return the windows it completed (often none).

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_channels), ``dtype``

        Returns
        -------
        SpectralSeries
            0 or more windows, in time order.
        """
        x = samples_2d("x", x, self.n_channels, self.dtype)
        win = self._plan.window_len
        frames = []
        pos = 0
        n = len(x)
        while pos < n:
            take = min(self._next_end - self._count, n - pos)
            # keep only the last `win` samples, in a ring indexed by sample count
            for a in range(pos + max(0, take - win), pos + take, win):
                chunk = x[a : min(a + win, pos + take)]
                r0 = (self._count + (a - pos)) % win
                first = min(len(chunk), win - r0)
                self._ring[r0 : r0 + first] = chunk[:first]
                self._ring[: len(chunk) - first] = chunk[first:]
            self._count += take
            pos += take
            if self._count == self._next_end:
                r0 = self._count % win
                frames.append(np.concatenate([self._ring[r0:], self._ring[:r0]]))
                self._next_end += self._hop
        if not frames:
            return self._empty
        joined = np.concatenate(frames)
        mdf, mnf, fi, bp, rms = self._plan.indices(joined, np.arange(len(frames), dtype=np.int64) * win)
        first_end = self._next_end - self._hop * len(frames)
        ends = first_end + self._hop * np.arange(len(frames))
        time_s = (ends - win / 2) / self._plan.rate_hz
        return SpectralSeries(time_s, mdf, mnf, fi, bp, rms)


def power_spectrum(x: np.ndarray, rate_hz: float, nperseg: int | None = None, band_hz=(0.0, np.inf)):
    """Welch PSD (Hann, 50 % overlap, mean removed per segment, density scaling) of a whole signal.

    Parameters
    ----------
    x : ndarray, shape (n_samples, n_channels) or (n_samples,), float32/float64
    rate_hz : float
    nperseg : int, optional
        Segment length (default: the whole signal).
    band_hz : (float, float)
        Return only bins with low <= f <= high.

    Returns
    -------
    freqs_hz : ndarray, shape (n_freq,), float64
    psd : ndarray, shape (n_freq, n_channels), float64, in signal units^2 / Hz
    """
    x = samples_2d("x", x)
    rate_hz = positive("rate_hz", rate_hz)
    n = len(x)
    nperseg = n if nperseg is None else nperseg
    if not isinstance(nperseg, (int, np.integer)) or not 4 <= nperseg <= n:
        raise ValueError(f"nperseg must be an integer in [4, {n}], got {nperseg!r}")
    lo, hi = band_hz
    plan = _Plan(rate_hz, n, int(nperseg), (max(float(lo), 0.0), min(float(hi), rate_hz / 2)))
    p = plan.psd(x, np.zeros(1, np.int64))[0].T
    return plan.freqs.copy(), np.ascontiguousarray(p)


def _spectrum_args(freqs_hz, psd):
    f = np.asarray(freqs_hz, dtype=np.float64)
    p = np.asarray(psd, dtype=np.float64)
    if f.ndim != 1 or p.ndim not in (1, 2) or p.shape[0] != len(f) or len(f) == 0:
        raise ValueError(f"psd must have shape (n_freq,) or (n_freq, n_channels) matching freqs_hz, got "
                         f"{p.shape} for {f.shape}")
    return f, p


def median_frequency(freqs_hz: np.ndarray, psd: np.ndarray):
    """MDF: the first frequency where the cumulative power reaches half the total.

    Parameters
    ----------
    freqs_hz : ndarray, shape (n_freq,)
        Bin frequencies in Hz, already restricted to the analysis band.
    psd : ndarray, shape (n_freq,) or (n_freq, n_channels)

    Returns
    -------
    float or ndarray (n_channels,), Hz
    """
    f, p = _spectrum_args(freqs_hz, psd)
    cs = np.cumsum(p, axis=0)
    return f[np.argmax(cs >= 0.5 * cs[-1], axis=0)]


def mean_frequency(freqs_hz: np.ndarray, psd: np.ndarray):
    """MNF = sum(f P) / sum(P), in Hz (shapes as :func:`median_frequency`)."""
    f, p = _spectrum_args(freqs_hz, psd)
    return np.tensordot(f, p, axes=(0, 0)) / p.sum(axis=0)


def dimitrov_fi_nsm5(freqs_hz: np.ndarray, psd: np.ndarray):
    """Dimitrov FInsm5 = sum(P / f) / sum(f^5 P), in s^6 (shapes as :func:`median_frequency`; needs f > 0)."""
    f, p = _spectrum_args(freqs_hz, psd)
    if np.any(f <= 0):
        raise ValueError("FInsm5 needs all frequencies > 0 (restrict the band above 0 Hz)")
    return np.tensordot(1.0 / f, p, axes=(0, 0)) / np.tensordot(f**5, p, axes=(0, 0))


def normalised_slope(time_s: np.ndarray, values: np.ndarray) -> SlopeFit:
    """Least-squares slope of an index over time, absolute and as %/s of the initial value.

    Parameters
    ----------
    time_s : ndarray, shape (n_points,)
        Times in seconds (e.g. ``SpectralSeries.time_s``).
    values : ndarray, shape (n_points,) or (n_points, n_channels)
        Index values (e.g. ``mdf_hz``); must be finite.

    Returns
    -------
    SlopeFit
        Scalars for 1-D values, arrays (n_channels,) for 2-D. ``slope_pct_per_s`` = 100 x slope / fitted value
        at ``time_s[0]`` (clinical.md section 6: the intercept at the start is the initial value).
    """
    t = np.asarray(time_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.ndim != 1 or v.ndim not in (1, 2) or v.shape[0] != len(t) or len(t) < 2:
        raise ValueError(f"need time_s (n,) and values (n,) or (n, ch) with n >= 2, got {t.shape}, {v.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
        raise ValueError("time_s and values must be finite")
    tc = t - t.mean()
    stt = np.sum(tc * tc)
    if stt == 0:
        raise ValueError("time_s must not be constant")
    vc = v - v.mean(axis=0)
    slope = np.tensordot(tc, vc, axes=(0, 0)) / stt
    intercept = v.mean(axis=0) - slope * t.mean()
    initial = intercept + slope * t[0]
    svv = np.sum(vc * vc, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.tensordot(tc, vc, axes=(0, 0)) / np.sqrt(stt * svv)
        pct = 100.0 * slope / initial
    if v.ndim == 1:
        return SlopeFit(float(slope), float(intercept), float(initial), float(pct), float(r))
    return SlopeFit(slope, intercept, initial, pct, r)
