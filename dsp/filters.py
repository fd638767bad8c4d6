"""Filter design (scipy, imported lazily) and the streaming second-order-section cascade (numba).

Every filter is a stack of second-order sections so that one kernel pass runs band-pass, notch and any other
stage together; :func:`cascade` stacks designs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numba import njit

from dsp._jit import KERNEL_FLAGS, kernel
from dsp._validate import float_dtype, out_buffer, positive, samples_2d

# The band-pass upper edge is kept at or below this fraction of the sampling rate (0.9 x Nyquist), so that a
# 450 Hz edge survives at 1 kHz but is lowered to 90 Hz for a 200 Hz device.
_MAX_EDGE_FRACTION_OF_RATE = 0.45


@dataclass(frozen=True, eq=False)
class FilterDesign:
    """A designed filter as second-order sections.

    Attributes
    ----------
    sos : ndarray, shape (n_sections, 6), float64
        ``[b0, b1, b2, 1, a1, a2]`` per section, as scipy.signal returns them.
    rate_hz : float
        Sampling rate the filter was designed for.
    description : str
        Human-readable summary, e.g. for recording headers ("Butterworth band-pass 20-450 Hz, order 4").
    notes : tuple of str
        What the design had to change from the request (e.g. a lowered upper edge).
    """

    sos: np.ndarray
    rate_hz: float
    description: str
    notes: tuple[str, ...] = ()


def _signal():
    # scipy.signal costs ~0.5 s to import; only filter design needs it.
    import scipy.signal

    return scipy.signal


def _fmt(hz: float) -> str:
    return f"{hz:g}"


def design_emg_bandpass(rate_hz: float, low_hz: float = 20.0, high_hz: float = 450.0, order: int = 4) -> FilterDesign:
    """Design the causal Butterworth EMG band-pass.

    Parameters
    ----------
    rate_hz : float
        Sampling rate in Hz.
    low_hz, high_hz : float
        Band edges in Hz (-3 dB). ``high_hz`` is lowered to 0.45 x ``rate_hz`` when the rate cannot carry it,
        and ``notes`` says so.
    order : int
        Butterworth prototype order N as in ``scipy.signal.butter``: the band-pass has 2N poles in N sections.

    Returns
    -------
    FilterDesign
        ``sos`` of shape (order, 6), float64.

    Raises
    ------
    ValueError
        If a parameter is not positive, the order is not an integer >= 1, or the band is empty at this rate.
    """
    rate_hz = positive("rate_hz", rate_hz)
    low_hz = positive("low_hz", low_hz)
    high_hz = positive("high_hz", high_hz)
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    notes = []
    max_high = _MAX_EDGE_FRACTION_OF_RATE * rate_hz
    if high_hz > max_high:
        notes.append(f"upper edge lowered from {_fmt(high_hz)} Hz to {_fmt(max_high)} Hz for a {_fmt(rate_hz)} Hz rate")
        high_hz = max_high
    if low_hz >= high_hz:
        raise ValueError(f"band {_fmt(low_hz)}-{_fmt(high_hz)} Hz is empty at a {_fmt(rate_hz)} Hz rate")
    sos = _signal().butter(int(order), [low_hz, high_hz], btype="bandpass", output="sos", fs=rate_hz)
    desc = f"Butterworth band-pass {_fmt(low_hz)}-{_fmt(high_hz)} Hz, order {order}, causal"
    return FilterDesign(np.ascontiguousarray(sos, dtype=np.float64), rate_hz, desc, tuple(notes))


def design_notch(rate_hz: float, mains_hz: float = 50.0, harmonics: int = 1, q: float = 30.0) -> FilterDesign:
    """Design a mains notch at ``mains_hz`` and its first ``harmonics`` multiples.

    Parameters
    ----------
    rate_hz : float
        Sampling rate in Hz.
    mains_hz : float
        Mains frequency in Hz (50 or 60 in practice).
    harmonics : int
        Number of notches: ``mains_hz * k`` for k = 1..harmonics. Multiples at or above Nyquist are dropped and
        ``notes`` says so.
    q : float
        Quality factor of each notch (``scipy.signal.iirnotch``): -3 dB width = frequency / q.

    Returns
    -------
    FilterDesign
        ``sos`` of shape (n_notches, 6), float64.
    """
    rate_hz = positive("rate_hz", rate_hz)
    mains_hz = positive("mains_hz", mains_hz)
    q = positive("q", q)
    if not isinstance(harmonics, (int, np.integer)) or harmonics < 1:
        raise ValueError(f"harmonics must be an integer >= 1, got {harmonics!r}")
    if mains_hz >= rate_hz / 2:
        raise ValueError(f"mains_hz {_fmt(mains_hz)} Hz is not below Nyquist ({_fmt(rate_hz / 2)} Hz)")
    sig = _signal()
    sections, notes = [], []
    freqs = [mains_hz * k for k in range(1, int(harmonics) + 1)]
    kept = [f for f in freqs if f < rate_hz / 2]
    if len(kept) < len(freqs):
        notes.append(f"harmonics at or above Nyquist dropped: {', '.join(_fmt(f) for f in freqs[len(kept):])} Hz")
    for f in kept:
        b, a = sig.iirnotch(f, q, fs=rate_hz)
        sections.append(sig.tf2sos(b, a))
    sos = np.ascontiguousarray(np.vstack(sections), dtype=np.float64)
    desc = f"notch {', '.join(_fmt(f) for f in kept)} Hz, Q {_fmt(q)}"
    return FilterDesign(sos, rate_hz, desc, tuple(notes))


def design_lowpass(rate_hz: float, cutoff_hz: float, order: int = 2) -> FilterDesign:
    """Design a causal Butterworth low-pass (e.g. for a linear envelope).

    Parameters
    ----------
    rate_hz : float
        Sampling rate in Hz.
    cutoff_hz : float
        -3 dB cut-off in Hz, below Nyquist.
    order : int
        Butterworth order (``ceil(order / 2)`` sections).

    Returns
    -------
    FilterDesign
        ``sos`` of shape (ceil(order/2), 6), float64.
    """
    rate_hz = positive("rate_hz", rate_hz)
    cutoff_hz = positive("cutoff_hz", cutoff_hz)
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    if cutoff_hz >= rate_hz / 2:
        raise ValueError(f"cutoff_hz {_fmt(cutoff_hz)} Hz is not below Nyquist ({_fmt(rate_hz / 2)} Hz)")
    sos = _signal().butter(int(order), cutoff_hz, btype="lowpass", output="sos", fs=rate_hz)
    desc = f"Butterworth low-pass {_fmt(cutoff_hz)} Hz, order {order}, causal"
    return FilterDesign(np.ascontiguousarray(sos, dtype=np.float64), rate_hz, desc)


def cascade(*designs: FilterDesign) -> FilterDesign:
    """Stack designs (applied in the given order) into one SOS so a single kernel pass runs them all.

    Raises
    ------
    ValueError
        If no design is given or their rates differ.
    """
    if not designs:
        raise ValueError("cascade needs at least one FilterDesign")
    for d in designs:
        if not isinstance(d, FilterDesign):
            raise ValueError(f"cascade takes FilterDesign objects, got {type(d).__name__}")
    rates = {d.rate_hz for d in designs}
    if len(rates) != 1:
        raise ValueError(f"cannot cascade designs for different rates: {sorted(rates)}")
    sos = np.ascontiguousarray(np.vstack([d.sos for d in designs]), dtype=np.float64)
    notes = tuple(n for d in designs for n in d.notes)
    return FilterDesign(sos, designs[0].rate_hz, " -> ".join(d.description for d in designs), notes)


def _checked_sos(sos) -> np.ndarray:
    if isinstance(sos, FilterDesign):
        sos = sos.sos
    sos = np.asarray(sos)
    if sos.ndim != 2 or sos.shape[1] != 6 or sos.shape[0] < 1:
        raise ValueError(f"sos must have shape (n_sections, 6), got {sos.shape}")
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    if not np.all(np.isfinite(sos)):
        raise ValueError("sos must be finite")
    if not np.all(sos[:, 3] == 1.0):
        # Normalise each section so a0 == 1, as scipy.signal.sosfilt assumes of its input.
        if np.any(sos[:, 3] == 0.0):
            raise ValueError("sos sections must have a0 != 0")
        sos = sos / sos[:, 3:4]
    return sos


@njit(inline="always", **KERNEL_FLAGS)
def _biquad(x, z0, z1, b0, b1, b2, a1, a2):  # pragma: no cover - compiled
    # One direct-form-II-transposed step with exactly scipy's sosfilt arithmetic: (output, new z0, new z1).
    # Inlined by numba, so the unrolled loops below keep their state in registers.
    y = b0 * x + z0
    return y, b1 * x - a1 * y + z1, b2 * x - a2 * y


# Samples per block in the SOS kernel: sections run over a block before the next pair of sections, so the
# channel loop (innermost, contiguous) vectorises; the block stays in L1.
_BLOCK = 64
# Below this many channels the vector loop has too little to do and a per-channel pass is faster.
_MIN_VECTOR_CHANNELS = 4


@kernel
def _sos_kernel(sos, zi, block, x, out):  # pragma: no cover - compiled
    # Direct form II transposed with exactly scipy's sosfilt arithmetic (same operations in the same order, so
    # the result is bit-identical to scipy), in float64 whatever the I/O dtype. zi: (n_sections, 2, n_channels);
    # block: (_BLOCK, n_channels) float64 scratch owned by the caller.
    n_samples, n_channels = x.shape
    n_sections = sos.shape[0]
    if n_channels < _MIN_VECTOR_CHANNELS:
        # Few channels: sample by sample through all sections, so the out-of-order core overlaps section s at
        # sample i+1 with section s+1 at sample i (what scipy does).
        # Four samples at a time per section, with the section's state in registers across them (one
        # store-to-load round trip of the state per four samples): 1 ch x 5 sections 6.1 -> 4.2 ns a sample.
        for c in range(n_channels):
            i = 0
            while i + 4 <= n_samples:
                v0 = np.float64(x[i, c])
                v1 = np.float64(x[i + 1, c])
                v2 = np.float64(x[i + 2, c])
                v3 = np.float64(x[i + 3, c])
                for s in range(n_sections):
                    b0 = sos[s, 0]
                    b1 = sos[s, 1]
                    b2 = sos[s, 2]
                    a1 = sos[s, 4]
                    a2 = sos[s, 5]
                    p0 = zi[s, 0, c]
                    p1 = zi[s, 1, c]
                    y, p0, p1 = _biquad(v0, p0, p1, b0, b1, b2, a1, a2)
                    v0 = y
                    y, p0, p1 = _biquad(v1, p0, p1, b0, b1, b2, a1, a2)
                    v1 = y
                    y, p0, p1 = _biquad(v2, p0, p1, b0, b1, b2, a1, a2)
                    v2 = y
                    y, p0, p1 = _biquad(v3, p0, p1, b0, b1, b2, a1, a2)
                    v3 = y
                    zi[s, 0, c] = p0
                    zi[s, 1, c] = p1
                out[i, c] = v0
                out[i + 1, c] = v1
                out[i + 2, c] = v2
                out[i + 3, c] = v3
                i += 4
            for i in range(i, n_samples):
                v = np.float64(x[i, c])
                for s in range(n_sections):
                    y, zi[s, 0, c], zi[s, 1, c] = _biquad(v, zi[s, 0, c], zi[s, 1, c],
                                                          sos[s, 0], sos[s, 1], sos[s, 2], sos[s, 4], sos[s, 5])
                    v = y
                out[i, c] = v
        return
    # Many channels: per block of samples, sections in pairs, channel loop innermost. Channels are independent,
    # so that loop vectorises (one AVX-512 op covers 8 channels); pairing gives the core two recursions to
    # overlap and halves the passes over the block. Rows go four at a time with the state in registers across
    # them: the state then makes one store-to-load round trip per four samples instead of per sample, which is
    # what bounds this loop (8 ch x 5 sections: 19.5 -> 13.2 ns a row). Same operations in the same order.
    block_len = block.shape[0]
    for i0 in range(0, n_samples, block_len):
        m = min(block_len, n_samples - i0)
        for i in range(m):
            for c in range(n_channels):
                block[i, c] = x[i0 + i, c]
        s = 0
        while s < n_sections:
            b0 = sos[s, 0]
            b1 = sos[s, 1]
            b2 = sos[s, 2]
            a1 = sos[s, 4]
            a2 = sos[s, 5]
            z0 = zi[s, 0]
            z1 = zi[s, 1]
            if s + 1 < n_sections:
                d0 = sos[s + 1, 0]
                d1 = sos[s + 1, 1]
                d2 = sos[s + 1, 2]
                e1 = sos[s + 1, 4]
                e2 = sos[s + 1, 5]
                w0 = zi[s + 1, 0]
                w1 = zi[s + 1, 1]
                i = 0
                while i + 4 <= m:
                    r0 = block[i]
                    r1 = block[i + 1]
                    r2 = block[i + 2]
                    r3 = block[i + 3]
                    for c in range(n_channels):
                        p0 = z0[c]
                        p1 = z1[c]
                        q0 = w0[c]
                        q1 = w1[c]
                        xc = r0[c]
                        y, p0, p1 = _biquad(xc, p0, p1, b0, b1, b2, a1, a2)
                        y2, q0, q1 = _biquad(y, q0, q1, d0, d1, d2, e1, e2)
                        r0[c] = y2
                        xc = r1[c]
                        y, p0, p1 = _biquad(xc, p0, p1, b0, b1, b2, a1, a2)
                        y2, q0, q1 = _biquad(y, q0, q1, d0, d1, d2, e1, e2)
                        r1[c] = y2
                        xc = r2[c]
                        y, p0, p1 = _biquad(xc, p0, p1, b0, b1, b2, a1, a2)
                        y2, q0, q1 = _biquad(y, q0, q1, d0, d1, d2, e1, e2)
                        r2[c] = y2
                        xc = r3[c]
                        y, p0, p1 = _biquad(xc, p0, p1, b0, b1, b2, a1, a2)
                        y2, q0, q1 = _biquad(y, q0, q1, d0, d1, d2, e1, e2)
                        r3[c] = y2
                        z0[c] = p0
                        z1[c] = p1
                        w0[c] = q0
                        w1[c] = q1
                    i += 4
                for i in range(i, m):
                    v = block[i]
                    for c in range(n_channels):
                        xc = v[c]
                        y, z0[c], z1[c] = _biquad(xc, z0[c], z1[c], b0, b1, b2, a1, a2)
                        y2, w0[c], w1[c] = _biquad(y, w0[c], w1[c], d0, d1, d2, e1, e2)
                        v[c] = y2
                s += 2
            else:
                i = 0
                while i + 4 <= m:
                    r0 = block[i]
                    r1 = block[i + 1]
                    r2 = block[i + 2]
                    r3 = block[i + 3]
                    for c in range(n_channels):
                        p0 = z0[c]
                        p1 = z1[c]
                        xc = r0[c]
                        y, p0, p1 = _biquad(xc, p0, p1, b0, b1, b2, a1, a2)
                        r0[c] = y
                        xc = r1[c]
                        y, p0, p1 = _biquad(xc, p0, p1, b0, b1, b2, a1, a2)
                        r1[c] = y
                        xc = r2[c]
                        y, p0, p1 = _biquad(xc, p0, p1, b0, b1, b2, a1, a2)
                        r2[c] = y
                        xc = r3[c]
                        y, p0, p1 = _biquad(xc, p0, p1, b0, b1, b2, a1, a2)
                        r3[c] = y
                        z0[c] = p0
                        z1[c] = p1
                    i += 4
                for i in range(i, m):
                    v = block[i]
                    for c in range(n_channels):
                        xc = v[c]
                        y, z0[c], z1[c] = _biquad(xc, z0[c], z1[c], b0, b1, b2, a1, a2)
                        v[c] = y
                s += 1
        for i in range(m):
            for c in range(n_channels):
                out[i0 + i, c] = block[i, c]


class SosFilter:
    """Streaming SOS cascade with carried state; one kernel pass per chunk, no allocation when ``out`` is given.

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6), or FilterDesign
        Second-order sections (all stages stacked, see :func:`cascade`).
    n_channels : int
        Channels per chunk.
    dtype : float32 or float64
        Dtype of input and output chunks. State and arithmetic are float64 either way.

    Notes
    -----
    Output is bit-for-bit independent of how a signal is split into chunks, and matches
    ``scipy.signal.sosfilt`` with ``zi`` (zeros at start) to ~1e-15 relative in float64.
    """

    def __init__(self, sos, n_channels: int, dtype=np.float64):
        if not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
            raise ValueError(f"n_channels must be an integer >= 1, got {n_channels!r}")
        self.sos = _checked_sos(sos)
        self.n_channels = int(n_channels)
        self.dtype = float_dtype(dtype)
        self.zi = np.zeros((self.sos.shape[0], 2, self.n_channels), np.float64)
        self._block = np.zeros((_BLOCK, self.n_channels), np.float64)

    def reset(self) -> None:
        """Forget all state (as if no sample had been seen)."""
        self.zi[...] = 0.0

    def process(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Filter one chunk, continuing from the previous one.

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_channels), ``dtype``
            Next chunk (1-D accepted for one channel).
        out : ndarray, shape (n_samples, n_channels), ``dtype``, optional
            Buffer to write into (may be ``x`` itself for in-place filtering).

        Returns
        -------
        ndarray, shape (n_samples, n_channels), ``dtype``
            ``out`` (or a new array).
        """
        x = samples_2d("x", x, self.n_channels, self.dtype)
        out = out_buffer(out, x.shape, self.dtype)
        _sos_kernel(self.sos, self.zi, self._block, x, out)
        return out


def sosfilt(sos, x: np.ndarray) -> np.ndarray:
    """Filter a whole signal causally from zero state (batch form of :class:`SosFilter`).

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6), or FilterDesign
    x : ndarray, shape (n_samples, n_channels) or (n_samples,), float32/float64 (integers become float64)

    Returns
    -------
    ndarray, shape (n_samples, n_channels), same dtype as ``x``
    """
    x = samples_2d("x", x)
    f = SosFilter(sos, x.shape[1], x.dtype)
    return f.process(x)
