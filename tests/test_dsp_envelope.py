"""Rectification, moving RMS and linear envelope against naive references and analytic values."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.envelope import LinearEnvelope, MovingRms, linear_envelope, moving_rms, rectify
from naive_dsp import naive_moving_rms


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("window", [1, 7, 64, 500])
@pytest.mark.parametrize("n_channels", [3, 8])  # the kernel's channel-at-a-time and vectorised paths
def test_moving_rms_matches_naive(dtype, window, n_channels):
    x = (np.random.default_rng(window).standard_normal((300, n_channels)) * 5).astype(dtype)
    got = moving_rms(x, window)
    assert got.dtype == dtype and got.shape == x.shape
    rtol = 1e-12 if dtype == np.float64 else 2e-7
    assert np.allclose(got, naive_moving_rms(x, window), rtol=rtol, atol=0)


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.floats(0, 1), max_size=12),
    window=st.integers(1, 150),
    dtype=st.sampled_from([np.float32, np.float64]),
    n_channels=st.sampled_from([2, 8]),
)
def test_moving_rms_chunk_invariance_bit_for_bit(cuts, window, dtype, n_channels):
    x = np.random.default_rng(window).standard_normal((600, n_channels)).astype(dtype)
    whole = moving_rms(x, window)
    r = MovingRms(window, n_channels, dtype)
    pts = sorted({int(c * len(x)) for c in cuts} | {0, len(x)})
    out = np.empty_like(x)
    for a, b in zip(pts[:-1], pts[1:]):
        r.process(x[a:b], out[a:b])
    assert np.array_equal(out, whole)
    # each channel alone (channel-at-a-time path) gives the same bits as inside the wider array
    assert np.array_equal(moving_rms(np.ascontiguousarray(x[:, :1]), window), whole[:, :1])


def test_an_hour_at_2_khz_in_float32_does_not_drift():
    # A loud first 59 minutes then quiet: a running sum that never re-sums would keep the loud part's rounding
    # error and be wrong by orders of magnitude at the end; a float32 cumulative sum would be far worse.
    rate_hz, window = 2000, 200
    n = 3600 * rate_hz
    rng = np.random.default_rng(5)
    x = rng.standard_normal(n).astype(np.float32)
    x[: n - 60 * rate_hz] *= 1000.0
    x[n - 60 * rate_hz :] *= 0.001
    got = moving_rms(x, window)[:, 0]
    idx = np.concatenate([rng.integers(window, n, 300), [n - 1, n - 60 * rate_hz + window - 1]])
    x64 = x.astype(np.float64)
    exact = np.array([np.sqrt(np.mean(x64[i - window + 1 : i + 1] ** 2)) for i in idx])
    assert np.max(np.abs(got[idx] - exact) / exact) < 1e-6


def test_rms_of_sine_and_noise_are_analytic():
    rate_hz = 2000.0
    t = np.arange(int(10 * rate_hz)) / rate_hz
    sine = np.sin(2 * np.pi * 100.0 * t)
    assert moving_rms(sine, 2000)[-1, 0] == pytest.approx(1 / np.sqrt(2), rel=1e-9)
    # ARV 2/pi is for the continuous sine: a frequency incommensurate with the rate samples every phase
    sine_odd = np.sin(2 * np.pi * 97.3 * t)
    assert np.mean(rectify(sine_odd)) == pytest.approx(2 / np.pi, rel=1e-3)
    noise = np.random.default_rng(6).standard_normal(int(60 * rate_hz)) * 0.05
    assert moving_rms(noise, len(noise))[-1, 0] == pytest.approx(0.05, rel=0.01)
    assert np.mean(rectify(noise)) == pytest.approx(0.05 * np.sqrt(2 / np.pi), rel=0.01)


def test_rectify_in_place_and_dtypes():
    x = np.random.default_rng(7).standard_normal((50, 4)).astype(np.float32)
    expected = np.abs(x)
    out = rectify(x, out=x)
    assert out is x and np.array_equal(x, expected)


def test_linear_envelope_is_rectify_then_butterworth_lowpass():
    rate_hz = 1000.0
    x = np.random.default_rng(8).standard_normal((4000, 2))
    b, a = ss.butter(2, 6.0, fs=rate_hz)
    expected = ss.lfilter(b, a, np.abs(x), axis=0)
    got = linear_envelope(x, rate_hz, 6.0)
    assert np.max(np.abs(got - expected)) <= 1e-10 * np.max(np.abs(expected))


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.floats(0, 1), max_size=10), dtype=st.sampled_from([np.float32, np.float64]))
def test_linear_envelope_chunk_invariance_bit_for_bit(cuts, dtype):
    x = np.random.default_rng(9).standard_normal((800, 3)).astype(dtype)
    whole = linear_envelope(x, 1000.0, 6.0)
    env = LinearEnvelope(1000.0, 3, 6.0, dtype)
    pts = sorted({int(c * len(x)) for c in cuts} | {0, len(x)})
    got = np.concatenate([env.process(x[a:b]) for a, b in zip(pts[:-1], pts[1:])])
    assert got.dtype == dtype and np.array_equal(got, whole)


@pytest.mark.parametrize(
    "call",
    [
        lambda: MovingRms(0, 1),
        lambda: MovingRms(10, 0),
        lambda: MovingRms(10, 2).process(np.zeros((4, 3))),
        lambda: moving_rms(np.zeros((3, 2, 2)), 3),
        lambda: rectify(np.zeros(4), out=np.zeros(4, np.float32)),
        lambda: linear_envelope(np.zeros(100), 0.0),
        lambda: linear_envelope(np.zeros(100), 100.0, cutoff_hz=50.0),
        lambda: LinearEnvelope(1000.0, 2).process(np.zeros((5, 2), np.float32)),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()
