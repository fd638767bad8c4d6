"""Amplitude: rectification, causal moving RMS (streaming and batch), linear envelope."""

from __future__ import annotations

import numpy as np

from dsp._jit import kernel
from dsp._validate import float_dtype, out_buffer, positive, samples_2d
from dsp.filters import _MIN_VECTOR_CHANNELS, SosFilter, design_lowpass


@kernel
def _rms_kernel(ring, sums, pos_filled, x, out):  # pragma: no cover - compiled
    # ring: (window, n_channels) float64 squares of the last `window` samples; sums: their per-channel sum;
    # pos_filled: [next ring row, rows filled so far]. The running sum is updated by add/subtract, and re-summed
    # from the ring every time the ring wraps, so rounding error never outlives one window: an hour of data (or a
    # loud burst followed by quiet) stays exact. The re-sum point depends on the sample count only, so any chunking
    # gives bit-identical output.
    window, n_channels = ring.shape
    pos = pos_filled[0]
    filled = pos_filled[1]
    if n_channels < _MIN_VECTOR_CHANNELS:
        # Few channels: one channel at a time, so the running sum stays in a register instead of going through
        # memory every sample (3x faster for one channel); the same operations in the same order per channel.
        n_samples = x.shape[0]
        for c in range(n_channels):
            p = pos
            f = filled
            inv = 1.0 / max(f, 1)
            total = sums[c]
            for i in range(n_samples):
                v = np.float64(x[i, c])
                sq = v * v
                total += sq - ring[p, c]
                ring[p, c] = sq
                p += 1
                if f < window:
                    f += 1
                    inv = 1.0 / f
                if p == window:
                    p = 0
                    total = 0.0
                    for k in range(window):
                        total += ring[k, c]
                out[i, c] = total * inv
            sums[c] = total
        pos_filled[0] = (pos + n_samples) % window
        pos_filled[1] = min(window, filled + n_samples)
    else:
        _rms_rows(ring, sums, pos_filled, x, out)
    _sqrt_in_place(out)


@kernel
def _sqrt_in_place(out):  # pragma: no cover - compiled
    # mean squares -> RMS, in one vectorised pass
    flat = out.reshape(-1)
    for k in range(flat.shape[0]):
        flat[k] = np.sqrt(max(flat[k], 0.0))


@kernel
def _rms_rows(ring, sums, pos_filled, x, out):  # pragma: no cover - compiled
    # Many channels: row by row, channel loop innermost (vectorised); mean squares into `out`.
    window, n_channels = ring.shape
    pos = pos_filled[0]
    filled = pos_filled[1]
    for i in range(x.shape[0]):
        for c in range(n_channels):
            v = np.float64(x[i, c])
            sq = v * v
            sums[c] += sq - ring[pos, c]
            ring[pos, c] = sq
        pos += 1
        if filled < window:
            filled += 1
        if pos == window:
            pos = 0
            _resum(ring, sums)
        inv = 1.0 / filled
        for c in range(n_channels):
            out[i, c] = sums[c] * inv  # mean square; _sqrt_in_place follows
    pos_filled[0] = pos
    pos_filled[1] = filled


@kernel
def _resum(ring, sums):  # pragma: no cover - compiled
    # sums[c] = ring[0, c] + ring[1, c] + ... in that order. Four ring rows per channel-loop pass with the sum in
    # a register: the sum makes one store-to-load round trip per four rows instead of per row (this re-sum was
    # about a third of the moving RMS's cost at 8 channels).
    window, n_channels = ring.shape
    for c in range(n_channels):
        sums[c] = 0.0
    k = 0
    while k + 4 <= window:
        g0 = ring[k]
        g1 = ring[k + 1]
        g2 = ring[k + 2]
        g3 = ring[k + 3]
        for c in range(n_channels):
            sums[c] = sums[c] + g0[c] + g1[c] + g2[c] + g3[c]
        k += 4
    for k in range(k, window):
        for c in range(n_channels):
            sums[c] += ring[k, c]


@kernel
def _abs_kernel(x, out):  # pragma: no cover - compiled
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[i, c] = abs(x[i, c])


class MovingRms:
    """Causal moving RMS with carried state: output[i] = RMS of the last ``window_samples`` inputs.

    Parameters
    ----------
    window_samples : int
        Window length in samples (>= 1). Before that many samples have arrived, the RMS is over all so far.
    n_channels : int
    dtype : float32 or float64
        Dtype of input and output chunks; squares and sums are kept in float64.
    """

    def __init__(self, window_samples: int, n_channels: int, dtype=np.float64):
        if not isinstance(window_samples, (int, np.integer)) or window_samples < 1:
            raise ValueError(f"window_samples must be an integer >= 1, got {window_samples!r}")
        if not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
            raise ValueError(f"n_channels must be an integer >= 1, got {n_channels!r}")
        self.window_samples = int(window_samples)
        self.n_channels = int(n_channels)
        self.dtype = float_dtype(dtype)
        self._ring = np.zeros((self.window_samples, self.n_channels), np.float64)
        self._sums = np.zeros(self.n_channels, np.float64)
        self._pos_filled = np.zeros(2, np.int64)

    def reset(self) -> None:
        """Forget all samples seen."""
        self._ring[...] = 0.0
        self._sums[...] = 0.0
        self._pos_filled[...] = 0

    def process(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Moving RMS of the next chunk.

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_channels), ``dtype``
        out : ndarray, shape (n_samples, n_channels), ``dtype``, optional (may be ``x``)

        Returns
        -------
        ndarray, shape (n_samples, n_channels), ``dtype``, in the units of ``x``
        """
        x = samples_2d("x", x, self.n_channels, self.dtype)
        out = out_buffer(out, x.shape, self.dtype)
        _rms_kernel(self._ring, self._sums, self._pos_filled, x, out)
        return out


def moving_rms(x: np.ndarray, window_samples: int) -> np.ndarray:
    """Causal moving RMS of a whole signal (batch form of :class:`MovingRms`).

    Parameters
    ----------
    x : ndarray, shape (n_samples, n_channels) or (n_samples,), float32/float64
    window_samples : int
        Window in samples; output[i] is the RMS of x[max(0, i - window_samples + 1) : i + 1].

    Returns
    -------
    ndarray, shape (n_samples, n_channels), dtype of ``x``
    """
    x = samples_2d("x", x)
    return MovingRms(window_samples, x.shape[1], x.dtype).process(x)


def rectify(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Full-wave rectification, ``|x|``.

    Parameters
    ----------
    x : ndarray, shape (n_samples, n_channels) or (n_samples,), float32/float64
    out : ndarray, same shape (2-D) and dtype as ``x``, optional (may be ``x``)

    Returns
    -------
    ndarray, shape (n_samples, n_channels), dtype of ``x``
    """
    x = samples_2d("x", x)
    out = out_buffer(out, x.shape, x.dtype)
    _abs_kernel(x, out)
    return out


class LinearEnvelope:
    """Streaming linear envelope: rectify, then causal 2nd-order Butterworth low-pass, state carried.

    Parameters
    ----------
    rate_hz : float
        Sampling rate in Hz.
    n_channels : int
    cutoff_hz : float
        Low-pass cut-off in Hz (6 Hz is pyemgpipeline's default).
    dtype : float32 or float64
        Dtype of input and output chunks.
    """

    def __init__(self, rate_hz: float, n_channels: int, cutoff_hz: float = 6.0, dtype=np.float64):
        self.design = design_lowpass(rate_hz, cutoff_hz, order=2)
        self._filter = SosFilter(self.design, n_channels, dtype)
        self.n_channels = self._filter.n_channels
        self.dtype = self._filter.dtype

    def reset(self) -> None:
        """Forget all state."""
        self._filter.reset()

    def process(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Envelope of the next chunk.

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_channels), ``dtype``
            Band-passed EMG.
        out : ndarray, shape (n_samples, n_channels), ``dtype``, optional (may be ``x``)

        Returns
        -------
        ndarray, shape (n_samples, n_channels), ``dtype``, units of ``x``
        """
        x = samples_2d("x", x, self.n_channels, self.dtype)
        out = out_buffer(out, x.shape, self.dtype)
        _abs_kernel(x, out)
        return self._filter.process(out, out)


def linear_envelope(x: np.ndarray, rate_hz: float, cutoff_hz: float = 6.0) -> np.ndarray:
    """Linear envelope of a whole signal (batch form of :class:`LinearEnvelope`).

    Parameters
    ----------
    x : ndarray, shape (n_samples, n_channels) or (n_samples,), float32/float64
        Band-passed EMG.
    rate_hz : float
        Sampling rate in Hz.
    cutoff_hz : float
        Low-pass cut-off in Hz.

    Returns
    -------
    ndarray, shape (n_samples, n_channels), dtype of ``x``, units of ``x``
    """
    x = samples_2d("x", x)
    return LinearEnvelope(positive("rate_hz", rate_hz), x.shape[1], cutoff_hz, x.dtype).process(x)
